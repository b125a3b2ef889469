//! `parse_unit` errors: every single-file problem with its exact `FILE:LINE:COL: message`.

use std::path::Path;

use kennel_units::parse_unit;

fn errors(text: &str) -> Vec<String> {
    match parse_unit("web", Path::new("u/web.toml"), text) {
        Ok(unit) => panic!("expected errors, parsed {unit:?}"),
        Err(diags) => diags.iter().map(ToString::to_string).collect(),
    }
}

fn parse_ok(text: &str) -> kennel_units::Unit {
    parse_unit("web", Path::new("u/web.toml"), text).unwrap()
}

const S: &str = "[service]\ncommand = [\"a\"]\n"; // lines 1-2

#[test]
fn missing_service_and_command() {
    assert_eq!(
        errors("description = \"x\"\n"),
        ["u/web.toml:1:1: [service] is required"]
    );
    assert_eq!(errors(""), ["u/web.toml:1:1: [service] is required"]);
    assert_eq!(
        errors("\n\n[service]\nuser = \"a\"\n"),
        ["u/web.toml:3:1: service.command is required"]
    );
    assert_eq!(
        errors("[restart]\n[service.environment]\n"),
        ["u/web.toml:2:2: service.command is required"]
    );
}

#[test]
fn toml_syntax_error_is_one_diagnostic_at_its_position() {
    assert_eq!(
        errors("[service\ncommand = [\"a\"]\n"),
        ["u/web.toml:1:9: invalid TOML: invalid table header; expected `.`, `]`"]
    );
    assert_eq!(errors("[service]\ncommand = [\"a\"\n").len(), 1);
    assert_eq!(
        errors("[service]\ncommand = [\"a\"]\ncommand = [\"b\"]\n"),
        ["u/web.toml:3:1: invalid TOML: duplicate key `command` in table `service`"]
    );
}

#[test]
fn unknown_keys_with_and_without_suggestions() {
    let text = "descripton = \"x\"\n[service]\ncomand = [\"a\"]\nxyz = 1\n[restart]\npolicy = \"no\"\n  dealy = \"1s\"\n[servce]\n[logs]\nmax = \"1M\"\n";
    assert_eq!(
        errors(text),
        [
            "u/web.toml:1:1: unknown key \"descripton\" at top level; did you mean \"description\"?",
            "u/web.toml:2:1: service.command is required",
            "u/web.toml:3:1: unknown key \"comand\" in [service]; did you mean \"command\"?",
            "u/web.toml:4:1: unknown key \"xyz\" in [service]",
            "u/web.toml:7:3: unknown key \"dealy\" in [restart]; did you mean \"delay\"?",
            "u/web.toml:8:2: unknown key \"servce\" at top level; did you mean \"service\"?",
            "u/web.toml:10:1: unknown key \"max\" in [logs]; did you mean \"max_size\"?",
        ]
    );
}

#[test]
fn wrong_types_are_reported_at_the_value() {
    let text = format!(
        "{S}stop_timeout = 10\nuser = 1000\nafter = \"db\"\n[logs]\nmax_size = 1024\nkeep = \"3\"\n[ready]\nnotify = \"yes\"\n[restart]\nburst = 1.5\n"
    );
    assert_eq!(
        errors(&text),
        [
            "u/web.toml:3:16: service.stop_timeout: expected a duration string such as \"10s\", found integer 10",
            "u/web.toml:4:8: service.user: expected a user string such as \"www-data\" or \"1000:1000\", found integer 1000",
            "u/web.toml:5:9: service.after: expected an array of unit names such as [\"db\"], found string \"db\"",
            "u/web.toml:7:12: logs.max_size: expected a size string such as \"10M\", found integer 1024",
            "u/web.toml:8:8: logs.keep: expected an integer, found string \"3\"",
            "u/web.toml:10:10: ready.notify: expected true or false, found string \"yes\"",
            "u/web.toml:12:9: restart.burst: expected an integer, found float 1.5",
        ]
    );
    assert_eq!(
        errors("service = 3\n"),
        ["u/web.toml:1:11: service: expected a table, found integer 3"]
    );
    assert_eq!(
        errors("[[service]]\ncommand = [\"a\"]\n"),
        ["u/web.toml:1:1: service: expected a table, found array of tables"]
    );
    assert_eq!(
        errors("[service]\ncommand = \"/bin/sh -c true\"\n"),
        ["u/web.toml:2:11: service.command: expected an array of strings such as [\"/bin/app\", \"--flag\"], found string \"/bin/sh -c true\""]
    );
}

#[test]
fn bad_values_are_reported_at_the_value() {
    let text = r#"description = ""
[service]
command = ["", 3]
environment = { "A=B" = "x" }
environment_file = "default/web"
working_dir = "srv"
user = ""
type = "notfy"
success_exit_codes = [0, 256, -1]
stop_signal = "SIGFOO"
stop_timeout = "10 sec"
[restart]
policy = "sometimes"
delay = "-1s"
burst = 0
interval = ""
[logs]
max_size = "10 MB"
keep = -1
"#;
    assert_eq!(
        errors(text),
        [
            "u/web.toml:1:15: description: must not be empty",
            "u/web.toml:3:12: service.command[0]: the program must not be empty",
            "u/web.toml:3:16: service.command[1]: expected a string, found integer 3",
            "u/web.toml:4:17: service.environment.A=B: invalid variable name \"A=B\"",
            "u/web.toml:5:20: service.environment_file: must be an absolute path, found \"default/web\"",
            "u/web.toml:6:15: service.working_dir: must be an absolute path, found \"srv\"",
            "u/web.toml:7:8: service.user: must not be empty",
            "u/web.toml:8:8: service.type: invalid value \"notfy\": expected one of \"simple\", \"notify\", \"oneshot\", \"forking\", \"exec\", \"idle\"; did you mean \"notify\"?",
            "u/web.toml:9:26: service.success_exit_codes[1]: must be in 0..=255, found 256",
            "u/web.toml:9:31: service.success_exit_codes[2]: must be in 0..=255, found -1",
            "u/web.toml:10:15: service.stop_signal: invalid signal \"SIGFOO\": expected a name such as \"SIGTERM\" or \"TERM\", \"SIGRTMIN+N\", or a number 1..=64",
            "u/web.toml:11:16: service.stop_timeout: invalid duration \"10 sec\": expected a number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"5m\")",
            "u/web.toml:13:10: restart.policy: invalid value \"sometimes\": expected one of \"no\", \"on-success\", \"on-failure\", \"on-abnormal\", \"on-abort\", \"on-watchdog\", \"always\"",
            "u/web.toml:14:9: restart.delay: invalid duration \"-1s\": expected a number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"5m\")",
            "u/web.toml:15:9: restart.burst: must be at least 1, found 0",
            "u/web.toml:16:12: restart.interval: invalid duration \"\": expected a number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"5m\")",
            "u/web.toml:18:12: logs.max_size: invalid size \"10 MB\": expected a number of bytes with an optional K, M, G or T suffix (e.g. \"4096\", \"512K\", \"10M\", \"1G\")",
            "u/web.toml:19:8: logs.keep: must be at least 0, found -1",
        ]
    );
}

#[test]
fn more_bad_values() {
    let text = format!(
        "{S}success_exit_codes = []\nstop_signal = 65\nstop_timeout = \"99999999999999999999s\"\n[logs]\nmax_size = \"0\"\n[health]\ncommand = []\nretries = 0\n"
    );
    assert_eq!(
        errors(&text),
        [
            "u/web.toml:3:22: service.success_exit_codes: must not be empty",
            "u/web.toml:4:15: service.stop_signal: invalid signal \"65\": expected a name such as \"SIGTERM\" or \"TERM\", \"SIGRTMIN+N\", or a number 1..=64",
            "u/web.toml:5:16: service.stop_timeout: invalid duration \"99999999999999999999s\": too large",
            "u/web.toml:7:12: logs.max_size: must be greater than 0",
            "u/web.toml:9:11: health.command: must not be empty",
            "u/web.toml:10:11: health.retries: must be at least 1, found 0",
        ]
    );
}

#[test]
fn dependencies_are_merged_and_checked() {
    let unit = parse_ok(&format!(
        "{S}after = [\"b\", \"a\"]\nrequires = [\"c\", \"a\", \"c\"]\n"
    ));
    assert_eq!(unit.service.after, ["b", "a", "c"]);
    assert_eq!(unit.service.requires, ["c", "a"]);
    assert_eq!(
        errors(&format!("{S}after = [\"web\"]\nrequires = [\"ok\", \".bad\", \"web\"]\n")),
        [
            "u/web.toml:3:10: service.after: a unit cannot depend on itself",
            "u/web.toml:4:19: service.requires: invalid unit name \".bad\": use only letters, digits and _ . @ -, not starting with \".\"",
            "u/web.toml:4:27: service.requires: a unit cannot depend on itself",
        ]
    );
}

#[test]
fn restart_max_delay_must_cover_delay() {
    assert_eq!(
        errors(&format!("{S}[restart]\ndelay = \"10s\"\nmax_delay = \"1.5s\"\n")),
        ["u/web.toml:5:13: restart.max_delay: invalid duration \"1.5s\": expected a number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"5m\")"]
    );
    assert_eq!(
        errors(&format!(
            "{S}[restart]\ndelay = \"10s\"\nmax_delay = \"1500ms\"\n"
        )),
        ["u/web.toml:5:13: restart.max_delay: must be at least restart.delay (10s), found 1.5s"]
    );
    assert_eq!(
        errors(&format!("{S}[restart]\ndelay = \"1m\"\n")),
        ["u/web.toml:4:9: restart.delay: 1m is longer than the default restart.max_delay (30s); set restart.max_delay too"]
    );
    let unit = parse_ok(&format!("{S}[restart]\ndelay = \"30s\"\n"));
    assert_eq!(unit.restart.delay, unit.restart.max_delay);
}

#[test]
fn ready_rules() {
    assert_eq!(
        errors(&format!("{S}[ready]\ntimeout = \"1s\"\n")),
        ["u/web.toml:3:1: [ready] needs one of notify = true, tcp or command"]
    );
    assert_eq!(
        errors(&format!("{S}[ready]\nnotify = false\n")),
        ["u/web.toml:3:1: [ready] needs one of notify = true, tcp or command"]
    );
    assert_eq!(
        errors(&format!("{S}[ready]\ntcp = \"h:1\"\nnotify = true\ncommand = [\"x\"]\n")),
        [
            "u/web.toml:5:10: ready.notify: only one of ready.notify, ready.tcp and ready.command may be set",
            "u/web.toml:6:11: ready.command: only one of ready.notify, ready.tcp and ready.command may be set",
        ]
    );
    assert_eq!(
        errors(&format!("{S}type = \"notify\"\n[ready]\ntcp = \"h:1\"\n")),
        ["u/web.toml:5:7: ready.tcp: not allowed with type = \"notify\" (a notify service is ready when it sends READY=1)"]
    );
    assert_eq!(
        errors(&format!("{S}type = \"oneshot\"\n[ready]\nnotify = true\n[health]\ncommand = [\"x\"]\n")),
        [
            "u/web.toml:4:1: [ready] is not allowed with type = \"oneshot\" (a oneshot is up when it exits successfully)",
            "u/web.toml:6:1: [health] is not allowed with type = \"oneshot\"",
        ]
    );
    assert_eq!(
        errors(&format!("{S}[ready]\ntcp = \"localhost\"\n")),
        ["u/web.toml:4:7: ready.tcp: invalid address \"localhost\": expected HOST:PORT such as \"127.0.0.1:8080\", \"localhost:5432\" or \"[::1]:8080\""]
    );
    assert_eq!(
        errors(&format!("{S}[ready]\ntcp = \"localhost:0\"\n")),
        ["u/web.toml:4:7: ready.tcp: invalid address \"localhost:0\": the port must be in 1..=65535"]
    );
}

#[test]
fn every_problem_of_a_file_is_reported_in_order() {
    let text = "[logs]\nkeep = \"x\"\n[service]\ncomand = [\"a\"]\nstop_timeout = \"5\"\n[restart]\npolicy = \"On-Failure\"\n";
    assert_eq!(
        errors(text),
        [
            "u/web.toml:2:8: logs.keep: expected an integer, found string \"x\"",
            "u/web.toml:3:1: service.command is required",
            "u/web.toml:4:1: unknown key \"comand\" in [service]; did you mean \"command\"?",
            "u/web.toml:5:16: service.stop_timeout: invalid duration \"5\": expected a number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"5m\")",
            "u/web.toml:7:10: restart.policy: invalid value \"On-Failure\": expected one of \"no\", \"on-success\", \"on-failure\", \"on-abnormal\", \"on-abort\", \"on-watchdog\", \"always\"; did you mean \"on-failure\"?",
        ]
    );
}

#[test]
fn columns_count_characters() {
    assert_eq!(
        errors("description = \"café\"\n[service]\ncommand = [\"a\"]\nenvironment = { \"é\" = \"x\", \"ü\" = 1 }\n"),
        ["u/web.toml:4:34: service.environment.ü: expected a string, found integer 1"]
    );
}

#[test]
fn invalid_unit_name() {
    let diags = parse_unit("a b", Path::new("a b.toml"), S).unwrap_err();
    assert_eq!(
        diags.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["a b.toml:1:1: invalid unit name \"a b\": use only letters, digits and _ . @ -, not starting with \".\""]
    );
}

#[test]
fn commands_around_the_main_one() {
    assert_eq!(
        errors("[service]\ncommand = [\"/bin/a\"]\nstart_pre = [\"/bin/x\"]\nstop = [[]]\nstop_post = [[\"-\"]]\nstart_timeout = \"forever\"\n"),
        [
            "u/web.toml:3:14: service.start_pre[0]: expected an array of strings such as [\"/bin/app\", \"--flag\"], found string \"/bin/x\"",
            "u/web.toml:4:9: service.stop[0]: must not be empty",
            "u/web.toml:5:14: service.stop_post[0]: a command must follow \"-\"",
            "u/web.toml:6:17: service.start_timeout: invalid duration \"forever\": expected a number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"5m\")",
        ]
    );
}

#[test]
fn start_post_is_refused_for_a_oneshot() {
    assert_eq!(
        errors("[service]\ncommand = [\"/bin/a\"]\ntype = \"oneshot\"\nstart_post = [[\"/bin/b\"]]\n"),
        ["u/web.toml:4:1: service.start_post is not supported with type = \"oneshot\" yet (run the commands in the oneshot's own command)"]
    );
}

#[test]
fn pid_file_is_only_for_a_forking_service() {
    assert_eq!(
        errors("[service]\ncommand = [\"/bin/a\"]\npid_file = \"/run/a.pid\"\n"),
        ["u/web.toml:3:1: service.pid_file is only for type = \"forking\""]
    );
    let u = parse_ok(
        "[service]\ncommand = [\"/bin/a\"]\ntype = \"forking\"\npid_file = \"/run/a.pid\"\n",
    );
    assert_eq!(u.service.kind, kennel_units::ServiceType::Forking);
}

#[test]
fn directories_of_a_service() {
    let u = parse_ok("[service]\ncommand = [\"/bin/a\"]\nruntime_directory = [\"redis\", \"a/b\"]\nruntime_directory_mode = \"0750\"\nlogs_directory = [\"redis\"]\n");
    let dirs: Vec<(String, u32)> = u
        .service
        .directories
        .iter()
        .map(|d| (d.full_path().display().to_string(), d.mode))
        .collect();
    assert_eq!(
        dirs,
        [
            ("/run/redis".to_string(), 0o750),
            ("/run/a/b".to_string(), 0o750),
            ("/var/log/redis".to_string(), 0o755)
        ]
    );
    assert_eq!(
        errors("[service]\ncommand = [\"/bin/a\"]\nstate_directory = [\"../x\"]\ncache_directory_mode = \"0999\"\n"),
        [
            "u/web.toml:3:20: service.state_directory[0]: must be a relative path below its base directory (no /, ., .. or empty parts at either end or inside), found \"../x\"",
            "u/web.toml:4:24: service.cache_directory_mode: expected an octal mode such as \"0755\", found \"0999\"",
        ]
    );
}
