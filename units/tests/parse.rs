//! `parse_unit` on valid files: every key with its value, every default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kennel_units::{
    parse_unit, Activate, Health, Logs, Ready, ReadyProbe, Resources, Restart, RestartPolicy,
    Service, ServiceType, Signal, Unit,
};

fn parse(text: &str) -> Unit {
    match parse_unit("web", Path::new("u/web.toml"), text) {
        Ok(unit) => unit,
        Err(diags) => panic!("unexpected errors:\n{}", lines(&diags)),
    }
}

fn lines<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const FULL: &str = r#"description = "Static web server"

[service]
command = ["/bin/busybox", "httpd", "-f", "-p", "8080"]
environment = { GREETING = "hello", EMPTY = "" }
environment_file = "/etc/default/web"
working_dir = "/srv"
user = "www-data"
type = "simple"
after = ["db", "cache", "db"]
requires = ["auth", "db"]
success_exit_codes = [0, 143]
stop_signal = "SIGINT"
stop_timeout = "1m30s"
start_pre = [["/bin/prepare", "--check"], ["-", "/bin/may-fail"]]
start_post = [["/bin/announce"]]
reload = [["/bin/kill", "-HUP", "$MAINPID"]]
reload_signal = "SIGUSR1"
stop = [["/bin/web-ctl", "stop"]]
stop_post = [["-", "/bin/cleanup"]]
start_timeout = "infinity"
kill_mode = "mixed"
send_sigkill = false

[restart]
policy = "always"
delay = "250ms"
max_delay = "1m"
reset_after = "2h"
burst = 7
interval = "20s"

[ready]
tcp = "127.0.0.1:8080"
timeout = "45s"

[health]
command = ["/bin/busybox", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
interval = "5s"
timeout = "1s"
retries = 4

[logs]
max_size = "512K"
keep = 9
"#;

fn cmd(argv: &[&str], ignore_failure: bool) -> kennel_units::ExecCommand {
    kennel_units::ExecCommand {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        ignore_failure,
    }
}

#[test]
fn every_key_is_parsed() {
    let unit = parse(FULL);
    let expected = Unit {
        name: "web".into(),
        path: PathBuf::from("u/web.toml"),
        description: Some("Static web server".into()),
        service: Service {
            command: ["/bin/busybox", "httpd", "-f", "-p", "8080"]
                .map(String::from)
                .to_vec(),
            environment: BTreeMap::from([
                ("GREETING".into(), "hello".into()),
                ("EMPTY".into(), String::new()),
            ]),
            environment_file: Some("/etc/default/web".into()),
            working_dir: Some("/srv".into()),
            user: Some("www-data".into()),
            kind: ServiceType::Simple,
            after: ["db", "cache", "auth"].map(String::from).to_vec(),
            requires: ["auth", "db"].map(String::from).to_vec(),
            success_exit_codes: vec![0, 143],
            stop_signal: Signal::INT,
            stop_timeout: secs(90),
            activate: Activate::Up,
            start_pre: vec![
                cmd(&["/bin/prepare", "--check"], false),
                cmd(&["/bin/may-fail"], true),
            ],
            start_post: vec![cmd(&["/bin/announce"], false)],
            reload: vec![cmd(&["/bin/kill", "-HUP", "$MAINPID"], false)],
            reload_signal: Some(Signal { number: 10 }),
            stop: vec![cmd(&["/bin/web-ctl", "stop"], false)],
            stop_post: vec![cmd(&["/bin/cleanup"], true)],
            start_timeout: kennel_units::INFINITY,
            kill_mode: kennel_units::KillMode::Mixed,
            send_sigkill: false,
            pid_file: None,
            remain_after_exit: false,
            directories: Vec::new(),
            conditions: Vec::new(),
        },
        restart: Restart {
            policy: RestartPolicy::Always,
            delay: Duration::from_millis(250),
            max_delay: secs(60),
            reset_after: secs(7200),
            burst: 7,
            interval: secs(20),
        },
        ready: Some(Ready {
            probe: ReadyProbe::Tcp("127.0.0.1:8080".into()),
            timeout: secs(45),
        }),
        health: Some(Health {
            command: [
                "/bin/busybox",
                "wget",
                "-q",
                "-O-",
                "http://127.0.0.1:8080/",
            ]
            .map(String::from)
            .to_vec(),
            interval: secs(5),
            timeout: secs(1),
            retries: 4,
        }),
        logs: Logs {
            max_size: 512 * 1024,
            keep: 9,
        },
        container: None,
        resources: Resources::default(),
        sockets: Vec::new(),
    };
    assert_eq!(unit, expected);
}

#[test]
fn defaults_apply_to_a_minimal_unit() {
    let unit = parse("[service]\ncommand = [\"/bin/sleep\", \"1d\"]\n");
    let mut expected = Unit::new("web", vec!["/bin/sleep".into(), "1d".into()]);
    expected.path = PathBuf::from("u/web.toml");
    assert_eq!(unit, expected);
    assert_eq!(unit.description, None);
    assert_eq!(unit.service.kind, ServiceType::Simple);
    assert_eq!(unit.service.success_exit_codes, [0]);
    assert_eq!(unit.service.stop_signal, Signal::TERM);
    assert_eq!(unit.service.stop_timeout, secs(10));
    assert!(unit.service.environment.is_empty() && unit.service.after.is_empty());
    assert_eq!(
        (
            unit.service.working_dir,
            unit.service.user,
            unit.service.environment_file
        ),
        (None, None, None)
    );
    assert_eq!(unit.restart.policy, RestartPolicy::OnFailure);
    assert_eq!(unit.restart.delay, Duration::from_millis(100));
    assert_eq!(unit.restart.max_delay, secs(30));
    assert_eq!(unit.restart.reset_after, secs(60));
    assert_eq!((unit.restart.burst, unit.restart.interval), (5, secs(10)));
    assert_eq!((unit.ready, unit.health), (None, None));
    assert_eq!(
        unit.logs,
        Logs {
            max_size: 10 << 20,
            keep: 3
        }
    );
}

#[test]
fn health_defaults() {
    let unit = parse("[service]\ncommand = [\"a\"]\n[health]\ncommand = [\"check\"]\n");
    assert_eq!(
        unit.health,
        Some(Health {
            command: vec!["check".into()],
            interval: secs(10),
            timeout: secs(2),
            retries: 3
        })
    );
}

#[test]
fn dotted_and_inline_tables_work_too() {
    let unit = parse("service.command = [\"a\"]\nrestart = { policy = \"no\" }\n");
    assert_eq!(unit.service.command, ["a"]);
    assert_eq!(unit.restart.policy, RestartPolicy::No);
}

#[test]
fn signals_as_names_numbers_and_realtime() {
    for (text, number) in [
        ("\"TERM\"", 15),
        ("9", 9),
        ("\"9\"", 9),
        ("\"SIGRTMIN+2\"", 36),
        ("\"RTMIN+2\"", 36),
        ("\"sighup\"", 1),
    ] {
        let unit = parse(&format!(
            "[service]\ncommand = [\"a\"]\nstop_signal = {text}\n"
        ));
        assert_eq!(unit.service.stop_signal.number, number, "{text}");
    }
}

#[test]
fn notify_type_implies_notify_readiness() {
    let unit = parse("[service]\ncommand = [\"a\"]\ntype = \"notify\"\n");
    assert_eq!(
        unit.ready,
        Some(Ready {
            probe: ReadyProbe::Notify,
            timeout: secs(30)
        })
    );
    let unit =
        parse("[service]\ncommand = [\"a\"]\ntype = \"notify\"\n[ready]\ntimeout = \"2m\"\n");
    assert_eq!(
        unit.ready,
        Some(Ready {
            probe: ReadyProbe::Notify,
            timeout: secs(120)
        })
    );
    let unit = parse("[service]\ncommand = [\"a\"]\ntype = \"notify\"\n[ready]\nnotify = true\n");
    assert_eq!(
        unit.ready,
        Some(Ready {
            probe: ReadyProbe::Notify,
            timeout: secs(30)
        })
    );
}

#[test]
fn ready_probes_of_a_simple_service() {
    let unit = parse("[service]\ncommand = [\"a\"]\n[ready]\nnotify = true\n");
    assert_eq!(unit.service.kind, ServiceType::Simple);
    assert_eq!(
        unit.ready,
        Some(Ready {
            probe: ReadyProbe::Notify,
            timeout: secs(30)
        })
    );
    let unit = parse(
        "[service]\ncommand = [\"a\"]\n[ready]\ncommand = [\"pg_isready\"]\nnotify = false\n",
    );
    assert_eq!(
        unit.ready,
        Some(Ready {
            probe: ReadyProbe::Command(vec!["pg_isready".into()]),
            timeout: secs(30)
        })
    );
    let unit = parse("[service]\ncommand = [\"a\"]\n[ready]\ntcp = \"[::1]:5432\"\n");
    assert_eq!(
        unit.ready.map(|r| r.probe),
        Some(ReadyProbe::Tcp("[::1]:5432".into()))
    );
}

#[test]
fn oneshot_has_no_readiness() {
    let unit = parse("[service]\ncommand = [\"a\"]\ntype = \"oneshot\"\n");
    assert_eq!(
        (unit.service.kind, unit.ready),
        (ServiceType::Oneshot, None)
    );
}
