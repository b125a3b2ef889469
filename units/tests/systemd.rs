//! systemd `.service` files loaded beside TOML units: the mapping, drop-ins, templates,
//! warnings with positions, refusals, and `import-systemd`'s TOML.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kennel_units::{
    check_paths, load_paths_with_warnings, parse_unit, systemd, Networks, ReadyProbe,
    RestartPolicy, ServiceType, Signal,
};

fn dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("kennel-units-systemd")
        .join(name);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    for (f, text) in files {
        let p = d.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    d
}

fn shown(d: &Path, diags: &[kennel_units::Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .map(|x| x.to_string().replace(&format!("{}/", d.display()), "D/"))
        .collect()
}

const REDIS: &str = "\
[Unit]
Description=Advanced key-value store
After=network.target
Documentation=man:redis-server(1)

[Service]
Type=notify
ExecStart=/usr/bin/redis-server /etc/redis/redis.conf --supervised systemd --daemonize no
ExecStop=/bin/kill -s TERM $MAINPID
TimeoutStopSec=0
Restart=always
RestartSec=2s
User=redis
Group=redis
Environment=\"A=one two\" B=b
WorkingDirectory=/var/lib/redis
MemoryMax=512M
CPUQuota=50%
TasksMax=64
KillSignal=SIGINT
TimeoutStartSec=1min
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
";

#[test]
fn a_notify_service_maps_onto_the_model() {
    let d = dir("redis", &[("redis.service", REDIS)]);
    let (set, warnings) =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap();
    let u = set.get("redis").unwrap();
    assert_eq!(u.description.as_deref(), Some("Advanced key-value store"));
    assert_eq!(
        u.service.command,
        [
            "/usr/bin/redis-server",
            "/etc/redis/redis.conf",
            "--supervised",
            "systemd",
            "--daemonize",
            "no"
        ]
    );
    assert_eq!(u.service.kind, ServiceType::Notify);
    let ready = u.ready.as_ref().unwrap();
    assert_eq!(ready.probe, ReadyProbe::Notify);
    assert_eq!(ready.timeout, Duration::from_secs(60));
    assert_eq!(u.service.user.as_deref(), Some("redis:redis"));
    assert_eq!(u.service.environment["A"], "one two");
    assert_eq!(u.service.environment["B"], "b");
    assert_eq!(
        u.service.working_dir.as_deref(),
        Some(Path::new("/var/lib/redis"))
    );
    assert_eq!(u.service.stop_signal, Signal::INT);
    // TimeoutStopSec=0: no stop timeout (never SIGKILL).
    assert_eq!(u.service.stop_timeout, kennel_units::INFINITY);
    assert_eq!(u.service.start_timeout, Duration::from_secs(60));
    // ExecStop= with $MAINPID, which kennel sets: through /bin/sh -c.
    assert_eq!(u.service.stop.len(), 1);
    assert_eq!(
        u.service.stop[0].argv,
        [
            "/bin/sh",
            "-c",
            "set -f; exec '/bin/kill' '-s' 'TERM' ${MAINPID}"
        ]
    );
    assert_eq!(u.restart.policy, RestartPolicy::Always);
    assert_eq!(u.restart.delay, Duration::from_secs(2));
    assert_eq!(u.restart.max_delay, Duration::from_secs(2));
    assert_eq!(u.resources.memory_max, Some(512 << 20));
    assert_eq!(u.resources.cpu_millis, Some(500));
    assert_eq!(u.resources.pids_max, Some(64));
    assert!(u.service.after.is_empty());
    assert_eq!(
        shown(&d, &warnings),
        [
            "D/redis.service:3:1: warning: After=network.target: kennel has no target units; read as a no-op",
            "D/redis.service:22:1: warning: PrivateTmp= is not honoured: sandboxing of plain services is not mapped yet; the service runs without it",
        ]
    );
}

#[test]
fn systemd_defaults_differ_from_kennels() {
    let d = dir(
        "defaults",
        &[(
            "a.service",
            "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
        )],
    );
    let (set, warnings) = load_paths_with_warnings(&[d], &Networks::builtin()).unwrap();
    let u = set.get("a").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(u.restart.policy, RestartPolicy::No);
    assert_eq!(u.restart.delay, Duration::from_millis(100));
    assert_eq!(u.service.stop_timeout, Duration::from_secs(90));
    assert_eq!(u.service.kind, ServiceType::Simple);
}

#[test]
fn drop_ins_apply_in_file_name_order_and_empty_assignments_reset() {
    let d = dir(
        "dropins",
        &[
            ("web.service", "[Service]\nExecStart=/bin/web --old\nEnvironment=A=1\n[Install]\nWantedBy=x.target\n"),
            // Read after 10-a.conf although its directory entry may come first.
            ("web.service.d/20-b.conf", "[Service]\nEnvironment=C=3\nRestart=on-failure\n"),
            ("web.service.d/10-a.conf", "[Service]\nExecStart=\nExecStart=/bin/web --new\nEnvironment=\nEnvironment=B=2\nRestart=always\n"),
            ("web.service.d/ignored.txt", "[Service]\nRestart=always\n"),
        ],
    );
    let (set, _) = load_paths_with_warnings(&[d], &Networks::builtin()).unwrap();
    let u = set.get("web").unwrap();
    assert_eq!(u.service.command, ["/bin/web", "--new"]);
    assert_eq!(
        u.service.environment.iter().collect::<Vec<_>>(),
        [
            (&"B".to_string(), &"2".to_string()),
            (&"C".to_string(), &"3".to_string())
        ]
    );
    assert_eq!(u.restart.policy, RestartPolicy::OnFailure);
}

#[test]
fn templates_are_instantiated_by_symlinks() {
    let d = dir(
        "template",
        &[
            ("echo@.service", "[Unit]\nDescription=Echo %I\n[Service]\nExecStart=/bin/echo %i %p %n\n[Install]\nWantedBy=multi-user.target\n"),
            ("echo@.service.d/10.conf", "[Service]\nEnvironment=FROM=template\n"),
            ("echo@a-b.service.d/10.conf", "[Service]\nEnvironment=FROM=instance\n"),
        ],
    );
    symlink("echo@.service", d.join("echo@a-b.service")).unwrap();
    symlink(d.join("echo@.service"), d.join("echo@x.service")).unwrap();
    let (set, _) =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap();
    assert_eq!(set.names().collect::<Vec<_>>(), ["echo@a-b", "echo@x"]);
    let u = set.get("echo@a-b").unwrap();
    assert_eq!(u.description.as_deref(), Some("Echo a/b"));
    assert_eq!(
        u.service.command,
        ["/bin/echo", "a-b", "echo", "echo@a-b.service"]
    );
    // The instance's drop-in of the same name wins over the template's.
    assert_eq!(u.service.environment["FROM"], "instance");
    assert_eq!(
        set.get("echo@x").unwrap().service.environment["FROM"],
        "template"
    );
    // The template itself, named on its own, is refused.
    let diags = check_paths(&[d.join("echo@.service")]).unwrap_err();
    assert!(
        diags[0].message.contains("a template is not a unit"),
        "{diags:?}"
    );
}

#[test]
fn dependencies_on_services_of_the_set() {
    let d = dir(
        "deps",
        &[
            ("db.service", "[Service]\nExecStart=/bin/db\n[Install]\nWantedBy=multi-user.target\n"),
            ("cache.toml", "[service]\ncommand = [\"/bin/cache\"]\n"),
            ("web.service", "[Unit]\nRequires=db.service\nAfter=cache.service gone.service\nBefore=late.service\n[Service]\nExecStart=/bin/web\n[Install]\nWantedBy=multi-user.target\n"),
            ("late.service", "[Service]\nExecStart=/bin/late\n[Install]\nWantedBy=multi-user.target\n"),
        ],
    );
    let (set, warnings) =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap();
    let web = set.get("web").unwrap();
    assert_eq!(web.service.requires, ["db"]);
    assert_eq!(web.service.after, ["db", "cache"]);
    assert_eq!(set.get("late").unwrap().service.after, ["web"]);
    assert_eq!(set.start_order(), ["cache", "db", "web", "late"]);
    assert_eq!(
        shown(&d, &warnings),
        ["D/web.service:3:1: warning: After=gone.service: no such unit in the set; ordering against it is a no-op"]
    );
    // Requires= on a service that is not there is an error, as under systemd.
    fs::remove_file(d.join("db.service")).unwrap();
    let errors =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap_err();
    assert_eq!(
        shown(&d, &errors),
        ["D/web.service:2:1: Requires: unknown unit \"db\""]
    );
}

#[test]
fn refusals_are_errors_with_positions() {
    let d = dir(
        "refused",
        &[
            (
                "fork.service",
                "[Service]\nType=dbus\nBusName=x\nExecStart=/usr/sbin/x\n",
            ),
            ("tick.timer", "[Timer]\nOnCalendar=daily\n"),
            (
                "plus.service",
                "[Service]\nExecStart=+/bin/x\n[Install]\nWantedBy=a.target\n",
            ),
            (
                "spec.service",
                "[Service]\nExecStart=/bin/x %h\n[Install]\nWantedBy=a.target\n",
            ),
            (
                "same.service",
                "[Service]\nExecStart=/bin/x\n[Install]\nWantedBy=a.target\n",
            ),
            ("same.toml", "[service]\ncommand = [\"/bin/x\"]\n"),
        ],
    );
    let errors =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap_err();
    let errors = shown(&d, &errors);
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert!(
        errors[0].starts_with("D/fork.service:2:1: Type=dbus is not supported yet"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("D/plus.service:2:1: ExecStart=+...: running with full privileges")
    );
    assert!(errors[2]
        .starts_with("D/same.toml:1:1: duplicate unit \"same\": also defined in D/same.service"));
    assert!(errors[3].starts_with("D/spec.service:2:1: ExecStart=: specifier %h (the user of the service manager) is not supported"));
    assert!(errors[4].starts_with("D/tick.timer:1:1: .timer units are not supported yet"));
}

#[test]
fn check_reports_warnings_and_strict_is_the_callers_choice() {
    let d = dir(
        "check",
        &[(
            "a.service",
            "[Service]\nExecStart=/bin/true\nExecCondition=/bin/prep\n",
        )],
    );
    let checked = check_paths(std::slice::from_ref(&d)).unwrap();
    assert_eq!(checked.units, 1);
    assert_eq!(
        shown(&d, &checked.warnings),
        [
            "D/a.service:1:1: warning: no [Install] section (a static unit under systemd, started only when another pulls it in): kennel starts it at kennel up like every unit of the directory",
            "D/a.service:3:1: warning: ExecCondition= is not honoured: ExecCondition= is not supported yet; the unit always starts",
        ]
    );
}

#[test]
fn oneshot_with_several_commands_and_deferred_variables() {
    let text = "[Service]\nType=oneshot\nRemainAfterExit=yes\nEnvironmentFile=-%S/kennel-test-no-such-file\nExecStart=/bin/mkdir -p /run/x\nExecStart=-/bin/false\nExecStart=/bin/echo $OPTS\n[Install]\nWantedBy=multi-user.target\n";
    let d = dir("oneshot", &[("setup.service", text)]);
    let (set, warnings) =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap();
    let u = set.get("setup").unwrap();
    assert_eq!(u.service.kind, ServiceType::Oneshot);
    assert!(u.service.remain_after_exit);
    // EnvironmentFile=-FILE of a file that does not exist: not read, as systemd does.
    assert_eq!(u.service.environment_file, None);
    assert!(
        warnings[0].message.contains("the file does not exist"),
        "{warnings:#?}"
    );
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert_eq!(
        u.service.command,
        [
            "/bin/sh",
            "-c",
            "set -ef; '/bin/mkdir' '-p' '/run/x'; '/bin/false' || :; '/bin/echo' ${OPTS}"
        ]
    );
    let x = d.join("x").display().to_string();
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", &u.service.command[2].replace("/run/x", &x)])
        .env("OPTS", "a  b")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a b\n");

    // One that exists is read at each start.
    let env = d.join("setup.env");
    fs::write(&env, "OPTS=x\n").unwrap();
    let with_file = text.replace(
        "-%S/kennel-test-no-such-file",
        &format!("-{}", env.display()),
    );
    fs::write(d.join("setup.service"), with_file).unwrap();
    let (set, _) =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap();
    let u = set.get("setup").unwrap();
    assert_eq!(u.service.environment_file.as_deref(), Some(env.as_path()));
}

#[test]
fn imported_toml_loads_as_the_same_unit() {
    let d = dir("import", &[("redis.service", REDIS)]);
    let (unit, warnings) = systemd::import_service(&d.join("redis.service")).unwrap();
    let toml = systemd::to_toml(&unit, &d.join("redis.service"), &warnings);
    assert!(toml.contains("#   "), "{toml}");
    assert!(toml.contains("PrivateTmp= is not honoured"), "{toml}");
    assert!(toml.contains("stop = [["), "{toml}");
    assert!(toml.contains("stop_timeout = \"infinity\""), "{toml}");
    let mut back = parse_unit("redis", &unit.path, &toml).unwrap();
    back.path = unit.path.clone();
    assert_eq!(back, unit);
}

#[test]
fn drop_ins_of_template_and_instance_are_ordered_together_by_file_name() {
    let d = dir(
        "dropin-order",
        &[
            (
                "t@.service",
                "[Service]\nExecStart=/bin/t\n[Install]\nWantedBy=a.target\n",
            ),
            // The instance's 10- comes before the template's 20-, which wins.
            (
                "t@.service.d/20-template.conf",
                "[Service]\nEnvironment=X=template\n",
            ),
            (
                "t@i.service.d/10-instance.conf",
                "[Service]\nEnvironment=X=instance\n",
            ),
        ],
    );
    symlink("t@.service", d.join("t@i.service")).unwrap();
    assert_eq!(
        systemd::drop_ins(&d.join("t@i.service")),
        [
            d.join("t@i.service.d/10-instance.conf"),
            d.join("t@.service.d/20-template.conf")
        ]
    );
    let (set, _) =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap();
    assert_eq!(set.get("t@i").unwrap().service.environment["X"], "template");
}

#[test]
fn socket_files_give_their_service_its_sockets() {
    use kennel_units::{Activate, Listen, UnixKind};
    let d = dir(
        "sockets",
        &[
            (
                "web.socket",
                "[Unit]\nDescription=web sockets\n[Socket]\nListenStream=127.0.0.1:8080\n\
                 ListenDatagram=/run/web.dgram\nBacklog=16\nReusePort=yes\nSocketMode=0600\n\
                 SocketUser=1000\nFileDescriptorName=web\nNoDelay=yes\n\
                 [Install]\nWantedBy=sockets.target\n",
            ),
            ("web.service", "[Service]\nExecStart=/usr/bin/web\n"),
            (
                "admin.socket",
                "[Socket]\nListenSequentialPacket=/run/admin\nService=app.service\n",
            ),
            ("app.toml", "[service]\ncommand = [\"/bin/app\"]\n"),
        ],
    );
    let (set, warnings) =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap();
    assert_eq!(
        shown(&d, &warnings),
        ["D/web.socket:11:1: warning: NoDelay= is not honoured: kennel sets no socket option but SO_REUSEADDR, SO_REUSEPORT (ReusePort=) and the backlog"]
    );
    assert_eq!(set.len(), 2, "a .socket file is not a unit");
    let web = set.get("web").unwrap();
    assert_eq!(web.service.activate, Activate::Socket);
    assert_eq!(web.sockets.len(), 2);
    assert_eq!(
        web.sockets[0].listen,
        Listen::Tcp("127.0.0.1:8080".parse().unwrap())
    );
    assert_eq!(
        (
            web.sockets[0].backlog,
            web.sockets[0].reuse_port,
            web.sockets[0].name.as_str()
        ),
        (16, true, "web")
    );
    // Mode and owner are a Unix socket's only.
    assert_eq!(web.sockets[0].user, None);
    assert_eq!(
        web.sockets[1].listen,
        Listen::Unix {
            path: "/run/web.dgram".into(),
            kind: UnixKind::Datagram
        }
    );
    assert_eq!(
        (web.sockets[1].mode, web.sockets[1].user.as_deref()),
        (0o600, Some("1000"))
    );
    let app = set.get("app").unwrap();
    assert_eq!(app.service.activate, Activate::Socket);
    assert_eq!(app.sockets.len(), 1);
    // The default name: the socket unit's.
    assert_eq!(app.sockets[0].name, "admin.socket");

    // import-systemd: from the .service or from its .socket, the same unit, whose TOML
    // loads with the sockets.
    let (unit, _) = systemd::import_service(&d.join("web.service")).unwrap();
    assert_eq!(unit.sockets, web.sockets);
    assert_eq!(
        systemd::socket_service(&d.join("web.socket")).unwrap(),
        d.join("web.service")
    );
    let toml = systemd::to_toml(&unit, &d.join("web.service"), &[]);
    let back = parse_unit("web", Path::new("web.toml"), &toml).unwrap();
    assert_eq!(back.sockets, web.sockets);
    assert_eq!(back.service.activate, Activate::Socket);
}

#[test]
fn socket_file_problems() {
    let d = dir(
        "socket-problems",
        &[
            ("a.socket", "[Socket]\nListenStream=80\nAccept=yes\n"),
            (
                "b.socket",
                "[Socket]\nListenFIFO=/run/f\nListenStream=localhost:80\n",
            ),
            (
                "c.socket",
                "[Socket]\nListenStream=81\nService=nope.service\n",
            ),
            ("d.socket", "[Socket]\nBacklog=5\n"),
            ("e.socket", "[Socket]\nListenStream=/run/e\n"),
            (
                "e.toml",
                "[service]\ncommand = [\"/bin/e\"]\n[[socket]]\nlisten = \"unix:/run/e\"\n",
            ),
        ],
    );
    let errors =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap_err();
    assert_eq!(
        shown(&d, &errors),
        [
            "D/a.socket:3:1: Accept=yes is not supported: kennel does not start a service instance per connection; use Accept=no (one service that accepts), or run the service under inetd-style supervision of its own",
            "D/b.socket:2:1: ListenFIFO= is not supported (kennel holds stream, datagram and seqpacket sockets only); remove it or run the service without it",
            "D/b.socket:3:1: ListenStream=localhost:80: invalid address \"tcp:localhost:80\": \"localhost\" is not an IP address (names are not resolved; 0.0.0.0 or [::] for every address)",
            "D/c.socket:3:1: no unit \"nope\" for these sockets: add nope.service or nope.toml, or name another with Service=",
            "D/d.socket:1:1: no ListenStream=, ListenDatagram= or ListenSequentialPacket=: a .socket file needs one",
            "D/e.socket:2:1: socket: unix:/run/e clashes with unit \"e\"'s unix:/run/e; listen once, or set reuse_port on both",
        ]
    );
}

#[test]
fn a_forking_service_with_its_pid_file() {
    let d = dir(
        "forking",
        &[(
            "fork.service",
            "[Service]\nType=forking\nPIDFile=fork.pid\nExecStart=/usr/sbin/forkd\nKillMode=mixed\nSendSIGKILL=no\nRestart=on-abort\n[Install]\nWantedBy=multi-user.target\n",
        )],
    );
    let (set, warnings) =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let u = set.get("fork").unwrap();
    assert_eq!(u.service.kind, ServiceType::Forking);
    assert_eq!(
        u.service.pid_file.as_deref(),
        Some(Path::new("/run/fork.pid"))
    );
    assert_eq!(u.service.kill_mode, kennel_units::KillMode::Mixed);
    assert!(!u.service.send_sigkill);
    assert_eq!(u.restart.policy, RestartPolicy::OnAbort);
}

#[test]
fn path_conditions_and_assertions() {
    let d = dir(
        "conditions",
        &[(
            "c.service",
            "[Unit]\nConditionPathExists=!/run/c.off\nAssertPathExists=/etc/c.conf\nConditionPathExists=|/x\n[Service]\nExecStart=/bin/c\n[Install]\nWantedBy=multi-user.target\n",
        )],
    );
    let (set, warnings) =
        load_paths_with_warnings(std::slice::from_ref(&d), &Networks::builtin()).unwrap();
    let c = &set.get("c").unwrap().service.conditions;
    assert_eq!(
        c.iter().map(|c| c.describe()).collect::<Vec<_>>(),
        [
            "condition_path_exists !/run/c.off",
            "assert_path_exists /etc/c.conf"
        ]
    );
    assert_eq!(
        shown(&d, &warnings),
        ["D/c.service:4:1: warning: ConditionPathExists= is not honoured: triggering conditions (|) are not supported yet"]
    );
}
