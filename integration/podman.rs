//! kennel as the entrypoint (PID 1) of podman containers, the way most users meet a
//! container init: images made here with `podman import` from busybox-static (no libc)
//! and from a debootstrapped Debian 12, run by an isolated podman with runc (see
//! `podman_util`). Checked: `podman exec C kennel status` finds kennel, `podman logs`
//! shows the units' lines, `podman stop` is an ordered shutdown ending in exit 0, a
//! crashing unit is restarted, units run with the read-only cgroups podman gives by
//! default, `[resources]` limits hold with writable ones (`--privileged`), `kennel status
//! --ready` works as a healthcheck, `kennel up --main` hands the main unit's exit code to
//! the runtime, and the Containerfile of docs/containers.md builds and passes its
//! HEALTHCHECK.

use std::path::PathBuf;

use crate::podman_images::{busybox_tar, debian_tar, tar_names};
use crate::podman_util::{static_kennel, Podman};

/// web (busybox httpd, ready when its port accepts), a worker that requires web and says
/// when it is stopped, a oneshot, and a unit that crashes twice, then stays up.
const BUSYBOX_SET: [(&str, &str); 4] = [
    (
        "web",
        "[service]\ncommand = [\"/bin/httpd\", \"-f\", \"-p\", \"127.0.0.1:8080\", \"-h\", \"/tmp\"]\n\
         [ready]\ntcp = \"127.0.0.1:8080\"\n",
    ),
    (
        "worker",
        "[service]\ncommand = [\"/bin/sh\", \"-c\", \"echo worker started as $(id -un); \
         trap 'echo worker stopping; exit 0' TERM; while :; do sleep 1 & wait $!; done\"]\n\
         requires = [\"web\"]\nuser = \"nobody\"\n",
    ),
    (
        "once",
        "[service]\ntype = \"oneshot\"\ncommand = [\"/bin/sh\", \"-c\", \"echo oneshot ran\"]\n",
    ),
    (
        "crasher",
        "[service]\ncommand = [\"/bin/sh\", \"-c\", \"n=$(cat /tmp/n 2>/dev/null || echo 0); \
         n=$((n+1)); echo $n > /tmp/n; echo crash run $n; [ $n -ge 3 ] && exec sleep 1000000; \
         exit 1\"]\n[restart]\ndelay = \"50ms\"\nmax_delay = \"100ms\"\n",
    ),
];

/// The same set for the Debian image, with Debian's own programs: perl-base listens for
/// web, bash's loop for the worker.
const DEBIAN_SET: [(&str, &str); 4] = [
    (
        "web",
        "[service]\ncommand = [\"/usr/bin/perl\", \"-MIO::Socket::INET\", \"-e\", \
         \"$s = IO::Socket::INET->new(LocalAddr => '127.0.0.1:8080', Listen => 5, ReuseAddr => 1) \
         or die $!; $| = 1; print qq(web listening\\n); while (my $c = $s->accept) { close $c }\"]\n\
         [ready]\ntcp = \"127.0.0.1:8080\"\n",
    ),
    BUSYBOX_SET[1],
    BUSYBOX_SET[2],
    BUSYBOX_SET[3],
];

/// The static kennel and a podman, or `None` after one skip saying what is missing.
fn setup() -> Option<(PathBuf, Podman)> {
    let kennel = static_kennel()?;
    Some((kennel, Podman::new()?))
}

/// The lines of `logs` holding `text`, in order.
fn lines_with<'a>(logs: &'a str, text: &str) -> Vec<&'a str> {
    logs.lines().filter(|l| l.contains(text)).collect()
}

/// The index of the first line of `logs` holding `text`; fails the test if there is none.
fn line_of(logs: &str, text: &str) -> usize {
    logs.lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in the container's logs:\n{logs}"))
}

/// The promises of the lifecycle tests, for the unit set `BUSYBOX_SET` or `DEBIAN_SET` in
/// container `c` started from `image` with `extra` options: everything up, the status
/// without flags, the units' lines in `podman logs`, the crasher restarted twice, then an
/// ordered `podman stop` ending in kennel's own exit 0.
fn lifecycle(p: &Podman, image: &str, extra: &[&str]) {
    let c = "kennel-life";
    p.run(c, extra, image, &[]);
    p.wait_states(
        c,
        &[
            ("web", "up"),
            ("worker", "up"),
            ("once", "exited"),
            ("crasher", "up"),
        ],
    );
    let once = p.unit(c, "once").expect("once's status");
    assert_eq!(once["last_exit"]["code"], 0, "{once}");
    let crasher = p.unit(c, "crasher").expect("crasher's status");
    assert_eq!(crasher["restarts"], 2, "the crasher ran 3 times: {crasher}");

    // The status table, found at the default socket without flags.
    let table = p.exec(c, &["kennel", "status"]);
    assert!(table.status.success(), "{table:?}");
    let table = String::from_utf8_lossy(&table.stdout);
    for (unit, state) in [("web", "up"), ("worker", "up"), ("once", "exited")] {
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().take(2).eq([unit, state])),
            "{unit} {state} in:\n{table}"
        );
    }

    // The units' own lines reach `podman logs`, prefixed with their name.
    p.wait_for(c, "the units' lines in podman logs", || {
        let logs = p.logs(c);
        logs.contains("worker | worker started as nobody")
            && logs.contains("once | oneshot ran")
            && logs.contains("crasher | crash run 3")
    });

    p.ok(&["stop", "-t", "10", c]);
    assert_eq!(p.state(c), "exited");
    let logs = p.logs(c);
    // kennel's own end, not the runtime's SIGKILL after 10s (which would be exit 137).
    assert_eq!(p.exit_code(c), 0, "{logs}");
    assert!(logs.contains("SIGTERM: shutting down"), "{logs}");
    assert!(logs.contains("kennel exits with code 0"), "{logs}");
    assert!(logs.contains("worker | worker stopping"), "{logs}");
    // Ordered: the worker (which requires web) stopped before web.
    let worker = line_of(&logs, "stopped unit=\"worker\"");
    let web = line_of(&logs, "stopped unit=\"web\"");
    assert!(worker < web, "worker stopped after web:\n{logs}");
}

#[test]
fn busybox_image_without_libc_runs_kennel_as_entrypoint_with_read_only_cgroups() {
    let Some((kennel, p)) = setup() else {
        return;
    };
    let tar = busybox_tar(p.dir.path(), &kennel, &BUSYBOX_SET);
    let names = tar_names(&tar);
    let libc: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("lib") || n.contains("/ld-") || n.contains("libc."))
        .collect();
    assert!(libc.is_empty(), "the image has a libc: {libc:?}");
    p.import(&tar, "localhost/kennel-busybox:test", "/bin/kennel");
    lifecycle(&p, "localhost/kennel-busybox:test", &[]);
}

#[test]
fn busybox_image_runs_kennel_as_entrypoint_with_writable_cgroups() {
    let Some((kennel, p)) = setup() else {
        return;
    };
    let tar = busybox_tar(p.dir.path(), &kennel, &BUSYBOX_SET);
    p.import(&tar, "localhost/kennel-busybox:test", "/bin/kennel");
    lifecycle(&p, "localhost/kennel-busybox:test", &["--privileged"]);
}

#[test]
fn debian_image_runs_the_static_kennel_as_entrypoint_with_read_only_cgroups() {
    let Some((kennel, p)) = setup() else {
        return;
    };
    let Some(tar) = debian_tar(p.dir.path(), &kennel, &DEBIAN_SET) else {
        return;
    };
    p.import(
        &tar,
        "localhost/kennel-debian:test",
        "/usr/local/bin/kennel",
    );
    lifecycle(&p, "localhost/kennel-debian:test", &[]);
    let logs = p.logs("kennel-life");
    assert!(logs.contains("web | web listening"), "{logs}");
}

/// A plain unit and a oneshot, with nothing that asks for a cgroup.
const PLAIN_SET: [(&str, &str); 3] = [
    BUSYBOX_SET[0],
    BUSYBOX_SET[2],
    (
        "forker",
        "[service]\ncommand = [\"/bin/sh\", \"-c\", \"setsid sleep 1000001 & exec sleep 1000000\"]\n",
    ),
];

#[test]
fn read_only_cgroups_units_run_without_a_cgroup_after_one_warning() {
    let Some((kennel, p)) = setup() else {
        return;
    };
    let tar = busybox_tar(p.dir.path(), &kennel, &PLAIN_SET);
    p.import(&tar, "localhost/kennel-busybox:test", "/bin/kennel");
    let c = "kennel-ro";
    p.run(c, &[], "localhost/kennel-busybox:test", &[]);
    p.wait_states(c, &[("web", "up"), ("once", "exited"), ("forker", "up")]);
    let logs = p.logs(c);
    let warnings = lines_with(&logs, "read-only");
    assert_eq!(
        warnings.len(),
        1,
        "one warning about read-only cgroups:\n{logs}"
    );
    assert!(warnings[0].contains("WARN"), "{logs}");

    // Without a cgroup, stopping a unit still ends what it left behind (its session's
    // child, setsid'd away from its process group).
    let escaped = |p: &Podman| {
        let ps = p.exec(c, &["ps", "-o", "pid,args"]);
        String::from_utf8_lossy(&ps.stdout).contains("sleep 1000001")
    };
    p.wait_for(c, "forker's setsid child", || escaped(&p));
    let stop = p.exec(c, &["kennel", "stop", "forker"]);
    assert!(stop.status.success(), "{stop:?}");
    p.wait_for(c, "forker's setsid child to be gone", || !escaped(&p));
}

#[test]
fn read_only_cgroups_a_resources_unit_fails_saying_what_to_give_the_container() {
    let Some((kennel, p)) = setup() else {
        return;
    };
    let limited = "[service]\ncommand = [\"/bin/sleep\", \"1000000\"]\n\
                   [restart]\npolicy = \"no\"\n[resources]\nmemory_max = \"64M\"\n";
    let tar = busybox_tar(
        p.dir.path(),
        &kennel,
        &[BUSYBOX_SET[0], ("limited", limited)],
    );
    p.import(&tar, "localhost/kennel-busybox:test", "/bin/kennel");
    let c = "kennel-ro-resources";
    p.run(c, &[], "localhost/kennel-busybox:test", &[]);
    p.wait_states(c, &[("web", "up"), ("limited", "failed")]);
    let limited = p.unit(c, "limited").expect("limited's status");
    let detail = limited["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("read-only"), "{limited}");
}

#[test]
fn writable_cgroups_enforce_a_resources_memory_limit() {
    let Some((kennel, p)) = setup() else {
        return;
    };
    let limited = "[service]\ncommand = [\"/bin/sleep\", \"1000000\"]\n\
                   [resources]\nmemory_max = \"64M\"\n";
    let hog = "[service]\ncommand = [\"/bin/sh\", \"-c\", \"a=$(head -c 209715200 /dev/zero | tr '\\\\0' x); \
               echo survived\"]\n[restart]\npolicy = \"no\"\n[resources]\nmemory_max = \"16M\"\n";
    let tar = busybox_tar(p.dir.path(), &kennel, &[("limited", limited), ("hog", hog)]);
    p.import(&tar, "localhost/kennel-busybox:test", "/bin/kennel");
    let c = "kennel-rw";
    p.run(c, &["--privileged"], "localhost/kennel-busybox:test", &[]);
    p.wait_states(c, &[("limited", "up"), ("hog", "failed")]);

    // The limit, read from inside: the unit's cgroup is PARENT/limited, PARENT being
    // kennel's own cgroup, the root of the container's cgroup mounts.
    let cat = |file: &str| {
        let out = p.exec(c, &["cat", file]);
        assert!(out.status.success(), "cat {file}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        cat("/sys/fs/cgroup/memory/limited/memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    let pid = p.unit(c, "limited").expect("status")["pid"].to_string();
    let procs = cat("/sys/fs/cgroup/memory/limited/cgroup.procs");
    assert!(procs.lines().any(|l| l == pid), "pid {pid} in {procs:?}");

    // Enforced: the hog was OOM-killed at 16M.
    let hog = p.unit(c, "hog").expect("hog's status");
    assert_eq!(hog["detail"], "oom-killed", "{hog}");
    assert!(!p.logs(c).contains("hog | survived"));
}

#[test]
fn status_ready_is_a_healthcheck_exit_0_when_all_up_else_1() {
    let Some((kennel, p)) = setup() else {
        return;
    };
    let never = "[service]\ncommand = [\"/bin/sleep\", \"1000000\"]\n\
                 [ready]\ncommand = [\"/bin/sh\", \"-c\", \"exit 1\"]\ntimeout = \"1h\"\n";
    let tar = busybox_tar(p.dir.path(), &kennel, &[BUSYBOX_SET[0], BUSYBOX_SET[2]]);
    p.import(&tar, "localhost/kennel-ready:test", "/bin/kennel");
    let tar = busybox_tar(
        &p.path("never"),
        &kennel,
        &[BUSYBOX_SET[0], ("never", never)],
    );
    p.import(&tar, "localhost/kennel-never:test", "/bin/kennel");

    let ready = "kennel-ready";
    p.run(ready, &["--privileged"], "localhost/kennel-ready:test", &[]);
    p.wait_states(ready, &[("web", "up"), ("once", "exited")]);
    let out = p.exec(ready, &["kennel", "status", "--ready"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let never = "kennel-never";
    p.run(never, &["--privileged"], "localhost/kennel-never:test", &[]);
    p.wait_states(never, &[("web", "up"), ("never", "starting")]);
    let out = p.exec(never, &["kennel", "status", "--ready"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("never"), "names the unit not ready: {said}");
    assert!(
        !said.contains("web"),
        "names only the units not ready: {said}"
    );
}

#[test]
fn up_main_ends_the_container_with_the_main_units_exit_code() {
    let Some((kennel, p)) = setup() else {
        return;
    };
    let main = "[service]\ncommand = [\"/bin/sh\", \"-c\", \"echo main running; exit 3\"]\n\
                requires = [\"web\"]\n[restart]\npolicy = \"no\"\n";
    let tar = busybox_tar(p.dir.path(), &kennel, &[BUSYBOX_SET[0], ("main", main)]);
    p.import(&tar, "localhost/kennel-main:test", "/bin/kennel");
    let c = "kennel-main";
    p.run(
        c,
        &["--privileged"],
        "localhost/kennel-main:test",
        &["--main", "main"],
    );
    p.wait_exited(c);
    let logs = p.logs(c);
    assert_eq!(p.exit_code(c), 3, "{logs}");
    assert!(logs.contains("main | main running"), "{logs}");
    // The others were stopped by kennel, not left to the runtime's kill.
    assert!(logs.contains("stopped unit=\"web\""), "{logs}");
}

/// The Containerfile of docs/containers.md's recipes, as written there.
fn documented_containerfile() -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/containers.md"
    ))
    .expect("read docs/containers.md");
    let start = doc
        .find("```dockerfile\n")
        .expect("a ```dockerfile block in docs/containers.md")
        + "```dockerfile\n".len();
    let len = doc[start..].find("```").expect("the block's end");
    doc[start..start + len].to_string()
}

#[test]
fn the_documented_containerfile_builds_an_image_whose_healthcheck_passes() {
    let Some((kennel, p)) = setup() else {
        return;
    };
    let ctx = p.path("context");
    std::fs::create_dir_all(ctx.join("units")).expect("mkdir context");
    std::fs::write(ctx.join("Containerfile"), documented_containerfile()).expect("write");
    std::fs::copy("/bin/busybox", ctx.join("busybox")).expect("copy busybox");
    crate::podman_util::run(
        "strip",
        &[
            "-o",
            &ctx.join("kennel").display().to_string(),
            &kennel.display().to_string(),
        ],
    );
    // Only busybox itself in the image: no /bin/sh, no /tmp.
    let units = [
        (
            "web",
            "[service]\ncommand = [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"127.0.0.1:8080\", \"-h\", \"/\"]\n\
             [ready]\ntcp = \"127.0.0.1:8080\"\n",
        ),
        (
            "once",
            "[service]\ntype = \"oneshot\"\ncommand = [\"/bin/busybox\", \"echo\", \"oneshot ran\"]\n",
        ),
    ];
    for (name, toml) in units {
        std::fs::write(ctx.join(format!("units/{name}.toml")), toml).expect("write unit");
    }
    p.ok(&[
        "build",
        "--format",
        "docker",
        "--network",
        "none",
        "-t",
        "localhost/kennel-recipe:test",
        &ctx.display().to_string(),
    ]);
    let c = "kennel-recipe";
    p.run(c, &[], "localhost/kennel-recipe:test", &[]);
    p.wait_states(c, &[("web", "up"), ("once", "exited")]);
    // podman runs the image's HEALTHCHECK command inside the container.
    let health = p.output(&["healthcheck", "run", c]);
    assert!(
        health.status.success(),
        "healthcheck: {health:?}\n{}",
        p.logs(c)
    );
    p.ok(&["stop", "-t", "10", c]);
    assert_eq!(p.exit_code(c), 0, "{}", p.logs(c));
}
