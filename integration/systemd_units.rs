//! systemd `.service` files in the unit directory: `kennel up` runs them beside TOML units
//! (notify, oneshot, a template instance with a drop-in, `$VAR`/`${VAR}` expansion, ordering),
//! `kennel check` prints their warnings (`--strict`: errors) and reads a real Debian unit
//! directory without failing, `kennel import-systemd` writes TOML that loads.

use std::fs;
use std::os::unix::fs::symlink;

use crate::harness::{skip, Missing, Sandbox, KENNEL};

/// Writes `units/FILE` verbatim.
fn sd(s: &Sandbox, file: &str, text: &str) {
    let p = s.units.join(file);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(p, text).expect("write unit");
}

#[test]
fn systemd_services_come_up_in_order_and_stop() {
    let s = Sandbox::new();
    let d = s.dir.path().display().to_string();
    // A oneshot that db is ordered after (db's After=), which records it ran.
    sd(
        &s,
        "setup.service",
        &format!(
            "[Unit]\nDescription=One-time setup\nBefore=db.service\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo done > {d}/setup.done'\n\n[Install]\nWantedBy=multi-user.target\n"
        ),
    );
    // A notify service; its command line has a $WORD and a ${WORD} known from Environment=.
    let db = s.script(
        "db",
        &format!(
            "[ -e $D/setup.done ] && echo after-setup > $D/db.order\nprintf '%s|' \"$@\" > $D/db.args.tmp; echo >> $D/db.args.tmp; mv $D/db.args.tmp $D/db.args\nexec {KENNEL} notify --ready"
        ),
    );
    // (kennel notify exits after sending READY=1: the service then ends; that is fine for
    // a check of readiness, but keep it running so that it can be stopped.)
    let db_keep = s.script("db-main", &format!("{db} \"$@\"\nexec sleep 100000"));
    sd(
        &s,
        "db.service",
        &format!(
            "[Unit]\nDescription=Database\nAfter=network.target\n\n[Service]\nType=notify\nNotifyAccess=all\nEnvironment=\"OPTS=-a -b\" 'ONE=x y'\nExecStart={db_keep} $OPTS ${{ONE}} \\\n    --name=%n\nTimeoutStopSec=5\nKillSignal=SIGTERM\n\n[Install]\nWantedBy=multi-user.target\n"
        ),
    );
    // A template, instantiated by a symlink; its drop-in sets an environment file, so the
    // $PORTNAME of its command line is left to /bin/sh at start.
    let web = s.script(
        "web",
        "printf '%s|' \"$@\" > $D/web.args.tmp; echo >> $D/web.args.tmp; mv $D/web.args.tmp $D/web.args\nexec sleep 100000",
    );
    sd(
        &s,
        "web@.service",
        &format!(
            "[Unit]\nRequires=db.service\nAfter=db.service\n\n[Service]\nExecStart={web} %i $PORTNAME\nRestart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n"
        ),
    );
    fs::write(s.path("web.env"), "PORTNAME=http\n").expect("write env");
    sd(
        &s,
        "web@.service.d/10-env.conf",
        &format!("[Service]\nEnvironmentFile={d}/web.env\n"),
    );
    symlink("web@.service", s.units.join("web@8080.service")).expect("symlink");
    // And a TOML unit beside them.
    s.unit("plain", "[service]\ncommand = [\"sleep\", \"100000\"]\n");

    s.up();
    s.wait_state("web@8080", "up");
    s.wait_state("db", "up");
    s.wait_state("plain", "up");
    assert_eq!(s.wait_file("setup.done"), "done\n");
    assert_eq!(s.wait_file("db.order"), "after-setup\n");
    assert_eq!(s.wait_file("db.args"), "-a|-b|x y|--name=db.service|\n");
    assert_eq!(s.wait_file("web.args"), "8080|http|\n");

    // Requires=: stopping db stops web@8080 first.
    s.ok(&["stop", "db"]);
    assert_eq!(s.state("db"), "inactive");
    assert_eq!(s.state("web@8080"), "inactive");
    assert_eq!(s.state("plain"), "up");
    s.ok(&["shutdown"]);
    assert!(s.wait_exit().success());
}

#[test]
fn check_prints_warnings_and_strict_makes_them_errors() {
    let s = Sandbox::new();
    sd(
        &s,
        "a.service",
        "[Unit]\nAfter=network.target\n[Service]\nExecStart=/bin/true\nExecReload=/bin/kill -HUP $MAINPID\nPrivateTmp=yes\n[Install]\nWantedBy=multi-user.target\n",
    );
    let u = s.units.display();
    let expected = [
        format!("{u}/a.service:2:1: warning: After=network.target: kennel has no target units; read as a no-op"),
        format!("{u}/a.service:6:1: warning: PrivateTmp= is not honoured: sandboxing of plain services is not mapped yet; the service runs without it"),
    ];
    let out = std::process::Command::new(KENNEL)
        .args(["check"])
        .arg(&s.units)
        .output()
        .expect("kennel check");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut want: Vec<String> = expected.to_vec();
    want.push("1 unit OK, 2 warnings".into());
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want);

    let out = std::process::Command::new(KENNEL)
        .args(["check", "--strict"])
        .arg(&s.units)
        .output()
        .expect("kennel check --strict");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let strict: Vec<String> = expected
        .iter()
        .map(|l| format!("{} (an error with --strict)", l.replace("warning: ", "")))
        .collect();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), strict);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "2 problems\n");
}

#[test]
fn check_reads_the_machines_systemd_units() {
    let system = std::path::Path::new("/lib/systemd/system");
    if !system.is_dir() {
        skip(Missing::Host, "no /lib/systemd/system on this machine");
        return;
    }
    let s = Sandbox::new();
    let copy = s.path("system");
    let status = std::process::Command::new("cp")
        .args(["-a", "--"])
        .arg(system)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success());
    let out = std::process::Command::new(KENNEL)
        .arg("check")
        .arg(&copy)
        .output()
        .expect("kennel check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It ends (no crash: exit 0 or 1 with a count), every line FILE:LINE:COL: message.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    let services = fs::read_dir(&copy)
        .expect("read copy")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".service"))
        .count();
    assert!(services > 0);
    for line in stdout
        .lines()
        .filter(|l| !l.ends_with(" OK") && !l.contains(" OK, "))
    {
        let mut parts = line.splitn(4, ':');
        let (file, l, c) = (parts.next(), parts.next(), parts.next());
        assert!(
            file.is_some_and(|f| f.starts_with(&*copy.to_string_lossy())),
            "{line}"
        );
        assert!(l.is_some_and(|n| n.parse::<usize>().is_ok()), "{line}");
        assert!(c.is_some_and(|n| n.parse::<usize>().is_ok()), "{line}");
    }
    assert!(stdout.contains("warning: "), "{stdout}");
}

#[test]
fn import_systemd_writes_toml_that_loads() {
    let s = Sandbox::new();
    sd(
        &s,
        "cache.service",
        "[Unit]\nDescription=Cache\n[Service]\nExecStart=/usr/bin/cache -p 11211\nExecStartPre=/bin/true\nRestart=always\nRestartSec=3\nUser=nobody\nMemoryMax=64M\n[Install]\nWantedBy=multi-user.target\n",
    );
    let out_dir = s.path("imported");
    let out = std::process::Command::new(KENNEL)
        .arg("import-systemd")
        .arg(s.units.join("cache.service"))
        .arg("-o")
        .arg(&out_dir)
        .output()
        .expect("kennel import-systemd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = fs::read_to_string(out_dir.join("cache.toml")).expect("cache.toml");
    assert!(
        toml.contains("# ") && toml.contains("start_pre = [[\"/bin/true\"]]"),
        "{toml}"
    );
    assert!(
        toml.contains("command = [\"/usr/bin/cache\", \"-p\", \"11211\"]"),
        "{toml}"
    );
    assert!(toml.contains("policy = \"always\""), "{toml}");
    let out = std::process::Command::new(KENNEL)
        .arg("check")
        .arg(&out_dir)
        .output()
        .expect("kennel check");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 unit OK\n");
    // An existing file is not overwritten.
    let again = std::process::Command::new(KENNEL)
        .arg("import-systemd")
        .arg(s.units.join("cache.service"))
        .arg("-o")
        .arg(&out_dir)
        .output()
        .expect("kennel import-systemd");
    assert_eq!(again.status.code(), Some(1));
}

/// The real Debian unit files of `integration/debian/` (see its README).
fn debian(file: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../integration/debian");
    fs::read_to_string(dir.join(file)).expect("read a Debian unit file")
}

/// Debian's postgresql.service (postgresql-common), unchanged: a oneshot running
/// /bin/true with RemainAfterExit=on, which a TOML unit requires.
#[test]
fn a_real_debian_oneshot_runs_and_its_dependent_starts_after_it() {
    let s = Sandbox::new();
    sd(&s, "postgresql.service", &debian("postgresql.service"));
    s.script_unit(
        "app",
        "echo started > $D/app.started\nexec sleep 100000",
        "requires = [\"postgresql\"]\n",
    );
    s.up();
    s.wait_state("app", "up");
    // RemainAfterExit=on: it stays up.
    assert_eq!(s.state("postgresql"), "up");
    assert_eq!(s.wait_file("app.started"), "started\n");
    s.ok(&["shutdown"]);
    assert!(s.wait_exit().success());
}

/// Real Debian units (cron, ssh, redis with its template instantiated, memcached,
/// postgresql): they load, and `kennel check` says what it does not honour, where.
#[test]
fn real_debian_units_load_with_their_warnings() {
    let s = Sandbox::new();
    for f in [
        "cron.service",
        "ssh.service",
        "redis-server.service",
        "redis-server@.service",
        "memcached.service",
        "postgresql.service",
    ] {
        sd(&s, f, &debian(f));
    }
    symlink(
        "redis-server@.service",
        s.units.join("redis-server@alt.service"),
    )
    .expect("symlink");
    let out = std::process::Command::new(KENNEL)
        .arg("check")
        .arg(&s.units)
        .output()
        .expect("kennel check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let u = s.units.display();
    for line in [
        format!("{u}/cron.service:8:1: warning: ExecStart=: approximated: $EXTRA_OPTS not known when the file is read"),
        format!("{u}/cron.service:10:1: warning: KillMode=process: approximated: what the main process leaves"),
        format!("{u}/redis-server@alt.service:37:1: warning: PIDFile= is not honoured"),
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(&line)), "{line}\nnot in:\n{stdout}");
    }
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("6 units OK, ")),
        "{stdout}"
    );

    // What kennel made of them (ssh's $SSHD_OPTS is left to the shell).
    let ssh = std::process::Command::new(KENNEL)
        .arg("import-systemd")
        .arg(s.units.join("ssh.service"))
        .output()
        .expect("kennel import-systemd");
    let toml = String::from_utf8_lossy(&ssh.stdout);
    assert!(
        ssh.status.success(),
        "{}",
        String::from_utf8_lossy(&ssh.stderr)
    );
    assert!(
        toml.contains(
            r#"command = ["/bin/sh", "-c", "set -f; exec '/usr/sbin/sshd' '-D' ${SSHD_OPTS}"]"#
        ),
        "{toml}"
    );
    assert!(toml.contains("type = \"notify\""), "{toml}");
    assert!(
        toml.contains("runtime_directory = [\"sshd\"]\nruntime_directory_mode = \"0755\""),
        "{toml}"
    );
    // ExecStartPre= and both ExecReload= lines ($MAINPID is set by kennel).
    assert!(
        toml.contains(r#"start_pre = [["/usr/sbin/sshd", "-t"]]"#),
        "{toml}"
    );
    assert!(
        toml.contains(
            r#"reload = [["/usr/sbin/sshd", "-t"], ["/bin/sh", "-c", "set -f; exec '/bin/kill' '-HUP' ${MAINPID}"]]"#
        ),
        "{toml}"
    );
    // EnvironmentFile=-/etc/default/ssh: read only if the file is there.
    assert_eq!(
        toml.contains("environment_file = \"/etc/default/ssh\""),
        std::path::Path::new("/etc/default/ssh").exists(),
        "{toml}"
    );
}
