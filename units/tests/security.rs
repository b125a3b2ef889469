//! The security keys of `[container]` (capabilities, no_new_privileges, seccomp, devices,
//! limits, oom_score_adj): every key with its value and default, every error with its
//! exact `FILE:LINE:COL: message`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kennel_units::security::{Seccomp, Security, DEFAULT_CAPABILITIES};
use kennel_units::{parse_unit, Unit};

fn parse(text: &str) -> Unit {
    match parse_unit("web", Path::new("u/web.toml"), text) {
        Ok(unit) => unit,
        Err(diags) => panic!(
            "unexpected errors:\n{}",
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse_unit("web", Path::new("u/web.toml"), text) {
        Ok(unit) => panic!("expected errors, parsed {unit:?}"),
        Err(diags) => diags.iter().map(ToString::to_string).collect(),
    }
}

const S: &str = "[service]\ncommand = [\"/bin/httpd\"]\n"; // lines 1-2

/// A `[container]` section (line 3) with `rootfs` (line 4) and then `rest` (line 5 on).
fn c(rest: &str) -> String {
    format!("{S}[container]\nrootfs = [\"busybox\"]\n{rest}")
}

fn security(rest: &str) -> Security {
    parse(&c(rest)).container.unwrap().security
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// values and defaults

#[test]
fn every_security_key_is_parsed() {
    let got = security(
        r#"capabilities = { add = ["NET_ADMIN"], drop = ["ALL"], ambient = ["NET_ADMIN"] }
no_new_privileges = false
seccomp = "unconfined"
devices = ["/dev/fuse", "/dev/net/tun"]
limits = { nofile = 1024, nproc = 512, core = 0, memlock = "unlimited" }
oom_score_adj = -500
"#,
    );
    assert_eq!(
        got,
        Security {
            cap_add: strings(&["NET_ADMIN"]),
            cap_drop: strings(&["ALL"]),
            ambient: strings(&["NET_ADMIN"]),
            no_new_privileges: false,
            seccomp: Seccomp::Unconfined,
            devices: vec![PathBuf::from("/dev/fuse"), PathBuf::from("/dev/net/tun")],
            limits: BTreeMap::from([
                ("nofile".into(), 1024),
                ("nproc".into(), 512),
                ("core".into(), 0),
                ("memlock".into(), u64::MAX),
            ]),
            oom_score_adj: Some(-500),
            ..Default::default()
        }
    );
    assert_eq!(got.capabilities(), ["NET_ADMIN"]);
}

#[test]
fn security_defaults() {
    let got = security("");
    assert_eq!(got, Security::default());
    assert!(got.cap_add.is_empty() && got.cap_drop.is_empty() && got.ambient.is_empty());
    assert!(got.no_new_privileges);
    assert_eq!(got.seccomp, Seccomp::Default);
    assert!(got.devices.is_empty() && got.limits.is_empty());
    assert_eq!(got.oom_score_adj, None);
    assert_eq!(got.capabilities(), DEFAULT_CAPABILITIES);
    // Empty lists and tables are the defaults too.
    let got = security("capabilities = {}\ndevices = []\nlimits = {}\n");
    assert_eq!(got, Security::default());
}

#[test]
fn capability_names_are_normalized() {
    let got = security(
        "capabilities = { add = [\"cap_sys_admin\", \"Net_Admin\", \"CAP_BPF\"], drop = [\"cap_net_raw\", \"all\"], ambient = [\"sys_admin\", \"CAP_Bpf\"] }\n",
    );
    assert_eq!(got.cap_add, ["SYS_ADMIN", "NET_ADMIN", "BPF"]);
    assert_eq!(got.cap_drop, ["NET_RAW", "ALL"]);
    assert_eq!(got.ambient, ["SYS_ADMIN", "BPF"]);
    assert_eq!(got.capabilities(), ["SYS_ADMIN", "NET_ADMIN", "BPF"]);
}

#[test]
fn capabilities_as_a_table_and_the_resulting_set() {
    let got = security(
        "[container.capabilities]\nadd = [\"SYS_PTRACE\"]\ndrop = [\"NET_RAW\", \"MKNOD\"]\nambient = [\"NET_BIND_SERVICE\", \"SYS_PTRACE\"]\n",
    );
    assert_eq!(got.cap_add, ["SYS_PTRACE"]);
    assert_eq!(got.cap_drop, ["NET_RAW", "MKNOD"]);
    assert_eq!(got.ambient, ["NET_BIND_SERVICE", "SYS_PTRACE"]);
    let set = got.capabilities();
    assert!(set.contains(&"SYS_PTRACE".to_string()));
    assert!(!set.contains(&"NET_RAW".to_string()) && !set.contains(&"MKNOD".to_string()));
    assert_eq!(set.len(), DEFAULT_CAPABILITIES.len() - 1);

    // "ALL" in add: every capability, so any ambient one is in the set.
    let got = security("capabilities = { add = [\"ALL\"], ambient = [\"SYS_ADMIN\"] }\n");
    assert_eq!(got.capabilities(), ["ALL"]);
    assert_eq!(got.ambient, ["SYS_ADMIN"]);
    // A default capability can be ambient without being added.
    let got = security("capabilities.ambient = [\"NET_BIND_SERVICE\"]\n");
    assert_eq!(got.ambient, ["NET_BIND_SERVICE"]);
    // drop = ["ALL"] alone: no capability at all.
    assert!(security("capabilities = { drop = [\"ALL\"] }\n")
        .capabilities()
        .is_empty());
}

#[test]
fn every_linux_capability_is_known() {
    let all = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    assert_eq!(all.len(), 41);
    let list = all
        .iter()
        .map(|c| format!("\"CAP_{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let got = security(&format!(
        "capabilities = {{ drop = [\"ALL\"], add = [{list}], ambient = [{list}] }}\n"
    ));
    assert_eq!(got.cap_add, all);
    assert_eq!(got.ambient, all);
    for c in DEFAULT_CAPABILITIES {
        assert!(all.contains(c), "{c}");
    }
}

#[test]
fn seccomp_values() {
    assert_eq!(
        security("seccomp = \"default\"\n").seccomp,
        Seccomp::Default
    );
    assert_eq!(
        security("seccomp = \"unconfined\"\n").seccomp,
        Seccomp::Unconfined
    );
    // The profile is not read here: it need not exist.
    assert_eq!(
        security("seccomp = \"/etc/kennel/seccomp/none-such.json\"\n").seccomp,
        Seccomp::Profile(PathBuf::from("/etc/kennel/seccomp/none-such.json"))
    );
}

#[test]
fn limits_and_oom_score_adj_edges() {
    let every = [
        "nofile",
        "nproc",
        "core",
        "memlock",
        "stack",
        "cpu",
        "fsize",
        "as",
        "data",
        "rss",
        "locks",
        "sigpending",
        "msgqueue",
        "nice",
        "rtprio",
        "rttime",
    ];
    let body = every
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} = {i}\n"))
        .collect::<String>();
    let got = security(&format!("[container.limits]\n{body}"));
    assert_eq!(got.limits.len(), every.len());
    for (i, name) in every.iter().enumerate() {
        assert_eq!(got.limits[*name], i as u64);
    }
    let got = security(&format!(
        "limits = {{ stack = \"unlimited\", fsize = {} }}\n",
        i64::MAX
    ));
    assert_eq!(got.limits["stack"], u64::MAX);
    assert_eq!(got.limits["fsize"], i64::MAX as u64);
    assert_eq!(
        security("oom_score_adj = -1000\n").oom_score_adj,
        Some(-1000)
    );
    assert_eq!(security("oom_score_adj = 1000\n").oom_score_adj, Some(1000));
    assert_eq!(security("oom_score_adj = 0\n").oom_score_adj, Some(0));
}

#[test]
fn devices_are_kept_in_order() {
    let got = security("devices = [\"/dev/net/tun\", \"/dev/fuse\", \"/dev/kvm\"]\n");
    assert_eq!(
        got.devices,
        [
            PathBuf::from("/dev/net/tun"),
            PathBuf::from("/dev/fuse"),
            PathBuf::from("/dev/kvm")
        ]
    );
}

// ---------------------------------------------------------------------------------------
// errors

#[test]
fn unknown_keys_get_suggestions() {
    assert_eq!(
        errors(&c(
            "capabilites = {}\nno_new_privilege = true\nlimit = {}\ncapabilities = { ad = [], drops = [], ambiant = [], bounding = [] }\nlimits = { nofiles = 1, NPROC = 2, open_files = 3 }\n"
        )),
        [
            "u/web.toml:5:1: unknown key \"capabilites\" in [container]; did you mean \"capabilities\"?",
            "u/web.toml:6:1: unknown key \"no_new_privilege\" in [container]; did you mean \"no_new_privileges\"?",
            "u/web.toml:7:1: unknown key \"limit\" in [container]; did you mean \"limits\"?",
            "u/web.toml:8:18: unknown key \"ad\" in [container.capabilities]; did you mean \"add\"?",
            "u/web.toml:8:27: unknown key \"drops\" in [container.capabilities]; did you mean \"drop\"?",
            "u/web.toml:8:39: unknown key \"ambiant\" in [container.capabilities]; did you mean \"ambient\"?",
            "u/web.toml:8:53: unknown key \"bounding\" in [container.capabilities]",
            "u/web.toml:9:12: unknown key \"nofiles\" in [container.limits]; did you mean \"nofile\"?",
            "u/web.toml:9:25: unknown key \"NPROC\" in [container.limits]; did you mean \"nproc\"?",
            "u/web.toml:9:36: unknown key \"open_files\" in [container.limits]",
        ]
    );
    assert_eq!(
        errors(&c("[container.capabilities]\nadd = []\nkeep = []\n")),
        ["u/web.toml:7:1: unknown key \"keep\" in [container.capabilities]"]
    );
}

#[test]
fn capability_name_errors() {
    assert_eq!(
        errors(&c(
            "capabilities = { add = [\"NET_ADMN\", \"cap_sys_admn\", \"WHEEL\", 1, \"NET_ADMIN\", \"cap_net_admin\", \"AL\"] }\n"
        )),
        [
            "u/web.toml:5:25: container.capabilities.add[0]: unknown capability \"NET_ADMN\"; did you mean \"NET_ADMIN\"?",
            "u/web.toml:5:37: container.capabilities.add[1]: unknown capability \"cap_sys_admn\"; did you mean \"SYS_ADMIN\"?",
            "u/web.toml:5:53: container.capabilities.add[2]: unknown capability \"WHEEL\"",
            "u/web.toml:5:62: container.capabilities.add[3]: expected a capability name string, found integer 1",
            "u/web.toml:5:78: container.capabilities.add[5]: NET_ADMIN is already listed",
            "u/web.toml:5:95: container.capabilities.add[6]: unknown capability \"AL\"; did you mean \"ALL\"?",
        ]
    );
    assert_eq!(
        errors(&c("capabilities = { ambient = [\"ALL\", \"all\", \"NET_ADMN\"] }\n")),
        [
            "u/web.toml:5:29: container.capabilities.ambient[0]: \"ALL\" is not allowed in ambient; list the capabilities",
            "u/web.toml:5:36: container.capabilities.ambient[1]: \"ALL\" is not allowed in ambient; list the capabilities",
            "u/web.toml:5:43: container.capabilities.ambient[2]: unknown capability \"NET_ADMN\"; did you mean \"NET_ADMIN\"?",
        ]
    );
    // "ALL" is not suggested where it is not allowed.
    assert_eq!(
        errors(&c("capabilities = { ambient = [\"AL\"] }\n")),
        ["u/web.toml:5:29: container.capabilities.ambient[0]: unknown capability \"AL\""]
    );
}

#[test]
fn capability_type_errors() {
    assert_eq!(
        errors(&c("capabilities = [\"NET_ADMIN\"]\n")),
        ["u/web.toml:5:16: container.capabilities: expected a table, found array"]
    );
    assert_eq!(
        errors(&c(
            "capabilities = { add = \"NET_ADMIN\", drop = 1, ambient = {} }\n"
        )),
        [
            "u/web.toml:5:24: container.capabilities.add: expected an array of capability names such as [\"NET_ADMIN\"], found string \"NET_ADMIN\"",
            "u/web.toml:5:44: container.capabilities.drop: expected an array of capability names such as [\"NET_ADMIN\"], found integer 1",
            "u/web.toml:5:57: container.capabilities.ambient: expected an array of capability names such as [\"NET_ADMIN\"], found table",
        ]
    );
}

#[test]
fn ambient_must_be_in_the_capability_set() {
    assert_eq!(
        errors(&c("capabilities = { ambient = [\"NET_ADMIN\"] }\n")),
        ["u/web.toml:5:29: container.capabilities.ambient: NET_ADMIN is not in the container's capability set; add it to capabilities.add"]
    );
    assert_eq!(
        errors(&c(
            "capabilities = { drop = [\"ALL\"], add = [\"CHOWN\"], ambient = [\"CHOWN\", \"NET_BIND_SERVICE\"] }\n"
        )),
        ["u/web.toml:5:71: container.capabilities.ambient: NET_BIND_SERVICE is not in the container's capability set; add it to capabilities.add"]
    );
    assert_eq!(
        errors(&c(
            "capabilities = { drop = [\"NET_RAW\"], ambient = [\"cap_net_raw\"] }\n"
        )),
        ["u/web.toml:5:49: container.capabilities.ambient: NET_RAW is not in the container's capability set; remove it from capabilities.drop"]
    );
    // In a [container.capabilities] table: at the entry.
    assert_eq!(
        errors(&c(
            "[container.capabilities]\ndrop = [\"ALL\"]\nambient = [\n  \"KILL\",\n]\n"
        )),
        ["u/web.toml:8:3: container.capabilities.ambient: KILL is not in the container's capability set; add it to capabilities.add"]
    );
    // A wrong add or drop entry is reported alone: the set it would change is unknown.
    assert_eq!(
        errors(&c(
            "capabilities = { add = [\"NET_ADMN\"], ambient = [\"NET_ADMIN\"] }\n"
        )),
        ["u/web.toml:5:25: container.capabilities.add[0]: unknown capability \"NET_ADMN\"; did you mean \"NET_ADMIN\"?"]
    );
}

#[test]
fn add_and_drop_must_not_contradict() {
    assert_eq!(
        errors(&c(
            "capabilities = { add = [\"NET_RAW\"], drop = [\"CAP_NET_RAW\", \"MKNOD\"] }\n"
        )),
        ["u/web.toml:5:45: container.capabilities.drop: NET_RAW is also in capabilities.add; list it in only one of them"]
    );
    assert_eq!(
        errors(&c(
            "capabilities = { add = [\"ALL\"], drop = [\"NET_RAW\", \"ALL\"] }\n"
        )),
        [
            "u/web.toml:5:41: container.capabilities.drop: NET_RAW has no effect with \"ALL\" in capabilities.add; remove it",
            "u/web.toml:5:52: container.capabilities.drop: ALL has no effect with \"ALL\" in capabilities.add; remove it",
        ]
    );
}

#[test]
fn no_new_privileges_and_oom_score_adj_errors() {
    assert_eq!(
        errors(&c(
            "no_new_privileges = \"yes\"\noom_score_adj = 1001\n"
        )),
        [
            "u/web.toml:5:21: container.no_new_privileges: expected true or false, found string \"yes\"",
            "u/web.toml:6:17: container.oom_score_adj: must be in -1000..=1000, found 1001",
        ]
    );
    assert_eq!(
        errors(&c("oom_score_adj = -1001\n")),
        ["u/web.toml:5:17: container.oom_score_adj: must be in -1000..=1000, found -1001"]
    );
    assert_eq!(
        errors(&c("oom_score_adj = \"-500\"\n")),
        ["u/web.toml:5:17: container.oom_score_adj: expected an integer, found string \"-500\""]
    );
}

#[test]
fn seccomp_errors() {
    assert_eq!(
        errors(&c("seccomp = \"defualt\"\n")),
        ["u/web.toml:5:11: container.seccomp: invalid value \"defualt\": expected \"default\", \"unconfined\" or an absolute path to a profile; did you mean \"default\"?"]
    );
    assert_eq!(
        errors(&c("seccomp = \"profiles/app.json\"\n")),
        ["u/web.toml:5:11: container.seccomp: invalid value \"profiles/app.json\": expected \"default\", \"unconfined\" or an absolute path to a profile"]
    );
    assert_eq!(
        errors(&c("seccomp = \"\"\n")),
        ["u/web.toml:5:11: container.seccomp: invalid value \"\": expected \"default\", \"unconfined\" or an absolute path to a profile"]
    );
    assert_eq!(
        errors(&c("seccomp = false\n")),
        ["u/web.toml:5:11: container.seccomp: expected \"default\", \"unconfined\" or an absolute path to a profile, found boolean false"]
    );
}

#[test]
fn device_errors() {
    assert_eq!(
        errors(&c(
            "devices = [\"/dev/fuse\", \"fuse\", \"/etc/passwd\", \"/dev\", \"/dev/\", \"/dev/../etc/shadow\", \"/dev/net//tun\", \"/dev/fuse\", 1]\n"
        )),
        [
            "u/web.toml:5:25: container.devices[1]: must be an absolute path under /dev, such as \"/dev/fuse\", found \"fuse\"",
            "u/web.toml:5:33: container.devices[2]: must be an absolute path under /dev, such as \"/dev/fuse\", found \"/etc/passwd\"",
            "u/web.toml:5:48: container.devices[3]: must be an absolute path under /dev, such as \"/dev/fuse\", found \"/dev\"",
            "u/web.toml:5:56: container.devices[4]: must be a normalized path (no empty, \".\" or \"..\" components, no trailing \"/\"), found \"/dev/\"",
            "u/web.toml:5:65: container.devices[5]: must be a normalized path (no empty, \".\" or \"..\" components, no trailing \"/\"), found \"/dev/../etc/shadow\"",
            "u/web.toml:5:87: container.devices[6]: must be a normalized path (no empty, \".\" or \"..\" components, no trailing \"/\"), found \"/dev/net//tun\"",
            "u/web.toml:5:104: container.devices[7]: this device is already listed",
            "u/web.toml:5:117: container.devices[8]: expected a device path string, found integer 1",
        ]
    );
    assert_eq!(
        errors(&c("devices = \"/dev/fuse\"\n")),
        ["u/web.toml:5:11: container.devices: expected an array of device paths such as [\"/dev/fuse\"], found string \"/dev/fuse\""]
    );
}

#[test]
fn limit_errors() {
    assert_eq!(
        errors(&c(
            "limits = { nofile = -1, nproc = \"unlimted\", core = \"max\", stack = 1.5, cpu = true }\n"
        )),
        [
            "u/web.toml:5:21: container.limits.nofile: must be at least 0, found -1",
            "u/web.toml:5:33: container.limits.nproc: invalid value \"unlimted\": expected a non-negative integer or \"unlimited\"; did you mean \"unlimited\"?",
            "u/web.toml:5:52: container.limits.core: invalid value \"max\": expected a non-negative integer or \"unlimited\"",
            "u/web.toml:5:67: container.limits.stack: expected a non-negative integer or \"unlimited\", found float 1.5",
            "u/web.toml:5:78: container.limits.cpu: expected a non-negative integer or \"unlimited\", found boolean true",
        ]
    );
    assert_eq!(
        errors(&c("limits = [\"nofile=1024\"]\n")),
        ["u/web.toml:5:10: container.limits: expected a table, found array"]
    );
    assert_eq!(
        errors(&c("[container.limits]\nnofile = \"1024\"\n")),
        ["u/web.toml:6:10: container.limits.nofile: invalid value \"1024\": expected a non-negative integer or \"unlimited\""]
    );
}

#[test]
fn every_security_problem_at_once() {
    let text = c(
        "capabilities = { add = [\"CAP_FOO\"], ambient = [\"ALL\"] }\nno_new_privileges = 0\nseccomp = \"strict\"\ndevices = [\"/dev/fuse\", \"/dev/fuse\"]\nlimits = { nofile = -5 }\noom_score_adj = 2000\n",
    );
    assert_eq!(
        errors(&text),
        [
            "u/web.toml:5:25: container.capabilities.add[0]: unknown capability \"CAP_FOO\"",
            "u/web.toml:5:48: container.capabilities.ambient[0]: \"ALL\" is not allowed in ambient; list the capabilities",
            "u/web.toml:6:21: container.no_new_privileges: expected true or false, found integer 0",
            "u/web.toml:7:11: container.seccomp: invalid value \"strict\": expected \"default\", \"unconfined\" or an absolute path to a profile",
            "u/web.toml:8:25: container.devices[1]: this device is already listed",
            "u/web.toml:9:21: container.limits.nofile: must be at least 0, found -5",
            "u/web.toml:10:17: container.oom_score_adj: must be in -1000..=1000, found 2000",
        ]
    );
}
