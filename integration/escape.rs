//! Escapes ("Secure by default", docs/security.md): a test program built for the suite,
//! `integration/escape/attempts.c` (static, so that it runs on the busybox layer), tries
//! what a root process breaking out of a container would do, by raw system call, and prints
//! `ATTEMPT NAME blocked ERRNO` or `ATTEMPT NAME SUCCEEDED` for each. In a default
//! container, as its service and through `kennel exec`, every attempt must be blocked,
//! for the expected reason, and the host's state that an attempt would change must be the
//! same afterwards (kennel's side of it, its mount namespace and its /dev/null, private to
//! the test: [`HostState`]). Each attempt is chosen so that its success would be harmless
//! (see the program's header). Then each loosening key of `[container]` shows its effect.
//!
//! The same suite runs again in a container with a user namespace, where the attempts must
//! fail the same way (and the process is an unprivileged id on the host besides).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use crate::ctr::{toml_list, Rig};
use crate::harness::{skip, Missing, KENNEL};

/// Keep a container's service running once its script is done.
const STAY: &str = "exec sleep 100000";

/// Docker's default capability set as /proc/self/status shows it.
const DEFAULT_CAPS: &str = "00000000a80425fb";

/// The test layer: a directory holding `/bin/attempts`, built once per test process
/// (`gcc -static`) under the target's temporary directory; layers left there by earlier
/// test processes that are gone are removed.
pub(crate) fn attempts_layer() -> &'static Path {
    static LAYER: OnceLock<PathBuf> = OnceLock::new();
    LAYER.get_or_init(|| crate::ctr::c_layer("escape-layer", "escape/attempts.c", "attempts"))
}

/// A container unit on busybox + the test layer: `command`, then more `[container]` keys
/// and sections.
fn unit(s: &Rig, name: &str, command: &[&str], more: &str) {
    s.unit(
        name,
        &format!(
            "[service]\ncommand = {}\n[container]\nrootfs = [\"busybox\", \"{}\"]\n{more}",
            toml_list(command),
            attempts_layer().display()
        ),
    );
}

/// A unit running `/bin/sh -c SCRIPT` with `[service]` keys `service` and `[container]`
/// keys `container`.
fn sh_unit(s: &Rig, name: &str, script: &str, service: &str, container: &str) {
    s.unit(
        name,
        &format!(
            "[service]\ncommand = {}\n{service}[container]\nrootfs = [\"busybox\", \"{}\"]\n{container}",
            toml_list(&["/bin/sh", "-c", script]),
            attempts_layer().display()
        ),
    );
}

/// What each attempt printed: `Ok(())` for SUCCEEDED, `Err(ERRNO)` for blocked.
type Outcomes = BTreeMap<String, Result<(), String>>;

fn outcomes(lines: &[String]) -> Outcomes {
    lines
        .iter()
        .filter_map(|l| {
            let mut w = l.strip_prefix("ATTEMPT ")?.split_whitespace();
            let name = w.next()?.to_string();
            let result = match (w.next()?, w.next()) {
                ("SUCCEEDED", _) => Ok(()),
                ("blocked", Some(e)) => Err(e.to_string()),
                _ => return None,
            };
            Some((name, result))
        })
        .collect()
}

/// The `Cap*`, `NoNewPrivs` and `Seccomp` fields the program's `status` printed.
fn status_fields(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let ok = k.starts_with("Cap") || k == "NoNewPrivs" || k == "Seccomp";
            ok.then(|| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Every attempt of the default run, with the refusals that count as blocked: the reason
/// the layer that stops it gives (seccomp and missing capabilities: EPERM; read-only
/// /proc and /sys: EROFS; the device cgroup: EPERM at open; clone3: ENOSYS so that libc
/// falls back to clone, whose flags the filter sees).
const EXPECTED: &[(&str, &[&str])] = &[
    ("mount_tmpfs", &["EPERM"]),
    ("mount_proc", &["EPERM"]),
    ("mount_sysfs", &["EPERM"]),
    ("mount_cgroup2", &["EPERM"]),
    // The cgroup v1 release_agent trick: mounting a v1 hierarchy, or writing the agent
    // of one reachable under /sys/fs/cgroup (there is none: a fresh, read-only sysfs).
    ("mount_cgroup_v1", &["EPERM"]),
    (
        "cgroup_release_agent",
        &["EROFS", "ENOENT", "EPERM", "EACCES"],
    ),
    ("bind_mount", &["EPERM"]),
    ("remount_proc_sys", &["EPERM"]),
    // umount of the mask: EPERM; /proc/kcore itself is masked (reads nothing: ENODEV
    // here). On kernels without /proc/kcore or /proc/sysrq-trigger, ENOENT (ON_HOST).
    ("umount_kcore", &["EPERM"]),
    ("read_kcore", &["ENODEV"]),
    ("sysrq_trigger", &["EROFS"]),
    ("proc_sys_hostname", &["EROFS"]),
    ("proc_sys_panic", &["EROFS"]),
    ("sys_kernel", &["EROFS"]),
    ("mknod_block", &["EPERM"]),
    ("mknod_mem", &["EPERM"]),
    ("init_module", &["EPERM"]),
    ("finit_module", &["EPERM"]),
    ("delete_module", &["EPERM"]),
    ("kexec_load", &["EPERM"]),
    ("kexec_file_load", &["EPERM"]),
    ("reboot", &["EPERM"]),
    ("open_by_handle_at", &["EPERM"]),
    ("name_to_handle_at", &["EPERM"]),
    ("bpf", &["EPERM"]),
    ("perf_event_open", &["EPERM"]),
    ("keyctl", &["EPERM"]),
    ("add_key", &["EPERM"]),
    // The x32 system-call numbers: ENOSYS from the filter (or from a kernel without x32).
    #[cfg(target_arch = "x86_64")]
    ("x32_keyctl", &["ENOSYS"]),
    ("unshare_user", &["EPERM"]),
    ("unshare_mount", &["EPERM"]),
    ("unshare_net", &["EPERM"]),
    ("clone_user", &["EPERM"]),
    ("clone_mount", &["EPERM"]),
    ("clone3_user", &["ENOSYS"]),
    ("setns", &["EPERM"]),
    ("pivot_root", &["EPERM"]),
    // The program's verdict: ENOENT when the host-only file stayed out of sight.
    ("chroot_breakout", &["ENOENT"]),
    ("clock_settime", &["EPERM"]),
    ("settimeofday", &["EPERM"]),
    ("clock_adjtime", &["EPERM"]),
    // A missing swap file: EPERM, not ENOENT (the call never got to look).
    ("swapon", &["EPERM"]),
    ("swapoff", &["EPERM"]),
    ("iopl", &["EPERM"]),
    ("ioperm", &["EPERM"]),
    ("syslog", &["EPERM"]),
    ("userfaultfd", &["EPERM"]),
    ("sethostname", &["EPERM"]),
    ("fsopen", &["EPERM"]),
    ("open_tree", &["EPERM"]),
    // The host's kennel binary through /proc/1/exe (kennel's init is PID 1): never
    // writable (the running binary is busy; no ptrace access would be refused too).
    ("write_init_exe", &["ETXTBSY", "EACCES", "EPERM"]),
    // No descriptor of the process or of the container's PID 1 refers to a file of the
    // host's (the program's verdict: ENOENT, none found; it tries a same-mode chmod).
    ("host_fd", &["ENOENT"]),
];

/// Attempts on a file the kernel may not have: ENOENT also counts when the host has none.
const ON_HOST: &[(&str, &str)] = &[
    ("read_kcore", "/proc/kcore"),
    ("sysrq_trigger", "/proc/sysrq-trigger"),
];

/// With a user namespace, a few attempts are stopped one step earlier: the container's root
/// is not the owner of what the host's root owns (/proc/sys: EACCES before EROFS), and
/// kennel's init, which changed its ids to enter the namespace, is not dumpable (its
/// /proc/1/ns: EACCES before setns could refuse).
const USERNS_ALSO: &[(&str, &str)] = &[
    ("proc_sys_hostname", "EACCES"),
    ("proc_sys_panic", "EACCES"),
    ("setns", "EACCES"),
];

/// Assert that every attempt ran and was blocked for an expected reason (or one of `also`);
/// all failures at once.
fn assert_all_blocked(how: &str, lines: &[String], s: &Rig, also: &[(&str, &str)]) {
    let got = outcomes(lines);
    let mut bad = Vec::new();
    for (name, allowed) in EXPECTED {
        match got.get(*name) {
            None => bad.push(format!("{name}: did not run")),
            Some(Ok(())) => bad.push(format!("{name}: SUCCEEDED")),
            Some(Err(e)) if e == "ENOENT" && absent_on_host(name) => {}
            Some(Err(e)) if also.contains(&(*name, e.as_str())) => {}
            Some(Err(e)) if !allowed.contains(&e.as_str()) => bad.push(format!(
                "{name}: blocked with {e}, expected one of {allowed:?}"
            )),
            Some(Err(_)) => {}
        }
    }
    for name in got.keys() {
        if !EXPECTED.iter().any(|(n, _)| n == name) {
            bad.push(format!("{name}: not in EXPECTED"));
        }
    }
    assert!(
        bad.is_empty(),
        "{how}: escape attempts not blocked as expected:\n  {}\noutput:\n{}\n{}",
        bad.join("\n  "),
        lines.join("\n"),
        s.daemon_output()
    );
}

fn absent_on_host(attempt: &str) -> bool {
    ON_HOST
        .iter()
        .any(|(n, path)| *n == attempt && !Path::new(path).exists())
}

/// The default container's status fields, as docs/security.md states them.
fn assert_default_status(how: &str, lines: &[String]) {
    let f = status_fields(lines);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("missing");
    for cap in ["CapEff", "CapPrm", "CapBnd", "CapInh"] {
        assert_eq!(get(cap), DEFAULT_CAPS, "{how}: {cap} in {f:?}");
    }
    assert_eq!(get("CapAmb"), "0000000000000000", "{how}: {f:?}");
    assert_eq!(get("NoNewPrivs"), "1", "{how}: {f:?}");
    assert_eq!(get("Seccomp"), "2", "{how}: {f:?}");
}

/// What the attempts would change, taken before and compared after. The kernel's knobs,
/// the kennel binary and the clock are the machine's; the host side of the test's kennel,
/// which is what a container escapes into, is the sandbox's own: kennel's mount namespace
/// and its private /dev/null ([`Sandbox::private_null`](crate::harness::Sandbox::private_null)), so that
/// nothing outside the test (crun or runc of another run, which `fchown` the machine's
/// /dev/null) moves what is compared.
#[derive(Debug)]
struct HostState {
    files: BTreeMap<String, Option<String>>,
    /// Mounts of kennel's mount namespace (where its containers' mounts must never show):
    /// (mount point, type).
    mounts: Vec<(String, String)>,
    /// The kennel binary (which /proc/1/exe of a container names): size and mtime.
    kennel: (u64, i64),
    /// kennel's /dev/null (which a leaked descriptor would expose): mode, owner, ctime.
    null: (u32, u32, u32, i64, i64),
    wall: SystemTime,
    mono: Instant,
}

/// A rig whose kennel (once up) has a /dev/null of its own, which [`HostState`] watches.
fn watched_rig() -> Rig {
    let s = Rig::new();
    s.private_null();
    s
}

impl HostState {
    /// The state now, of the running kennel of `s` (made by [`watched_rig`]).
    fn take(s: &Rig) -> HostState {
        let mut files = BTreeMap::new();
        let mut watch: Vec<String> = [
            "/proc/sys/kernel/hostname",
            "/proc/sys/kernel/domainname",
            "/proc/sys/kernel/panic",
            "/proc/sys/kernel/ctrl-alt-del",
            "/proc/sys/kernel/modprobe",
            "/proc/sys/kernel/core_pattern",
            "/proc/swaps",
            "/proc/modules",
            "/sys/kernel/kexec_loaded",
            "/sys/kernel/kexec_crash_loaded",
            "/sys/kernel/rcu_expedited",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for e in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            watch.push(e.path().join("release_agent").display().to_string());
            watch.push(e.path().join("notify_on_release").display().to_string());
        }
        for f in watch {
            let v = fs::read_to_string(&f).ok();
            files.insert(f, v);
        }
        let meta = fs::metadata(KENNEL).expect("kennel binary");
        HostState {
            null: kennels_null(s),
            files,
            mounts: kennels_mounts(s),
            kennel: (meta.len(), meta.mtime()),
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// Assert that nothing changed since `self` was taken (the clock: wall time went on
    /// with the monotonic clock, within a few seconds).
    fn assert_unchanged(&self, s: &Rig, how: &str) {
        let now = HostState::take(s);
        assert_eq!(self.files, now.files, "{how}: host files changed");
        let new: Vec<_> = now
            .mounts
            .iter()
            .filter(|m| !self.mounts.contains(m))
            .collect();
        assert!(
            new.is_empty(),
            "{how}: new mounts on kennel's host side: {new:?}"
        );
        assert_eq!(self.kennel, now.kennel, "{how}: the kennel binary changed");
        assert_eq!(
            self.null, now.null,
            "{how}: kennel's /dev/null changed (mode, uid, gid, ctime)"
        );
        let wall = now
            .wall
            .duration_since(self.wall)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        let mono = now.mono.duration_since(self.mono).as_secs_f64();
        assert!(
            (wall - mono).abs() < 5.0,
            "{how}: the clock moved: {wall}s of wall time in {mono}s"
        );
    }
}

/// Mode, owner and ctime of the sandbox's /dev/null node, after checking that it is what
/// kennel has as /dev/null and as its stdin (else the watch would watch nothing).
fn kennels_null(s: &Rig) -> (u32, u32, u32, i64, i64) {
    let node = s
        .covering("/dev/null")
        .expect("a private /dev/null (watched_rig)");
    let n = fs::metadata(&node).unwrap_or_else(|e| panic!("stat {}: {e}", node.display()));
    let daemon = s.daemon_pid();
    for seen in [
        format!("/proc/{daemon}/root/dev/null"),
        format!("/proc/{daemon}/fd/0"),
    ] {
        let m = fs::metadata(&seen).unwrap_or_else(|e| panic!("stat {seen}: {e}"));
        assert_eq!(
            (m.dev(), m.ino()),
            (n.dev(), n.ino()),
            "{seen} is not the sandbox's /dev/null {}",
            node.display()
        );
    }
    (n.mode(), n.uid(), n.gid(), n.ctime(), n.ctime_nsec())
}

/// The mounts of kennel's mount namespace: the one its containers' mounts would reach by
/// escaping or propagating (its containers' roots are mounted in their own namespaces, so
/// kennel's own mounts stay as they were). Private: the host's mounts never propagate into
/// it, nor its into the host's, which is why the host's own table would show nothing.
fn kennels_mounts(s: &Rig) -> Vec<(String, String)> {
    let file = format!("/proc/{}/mountinfo", s.daemon_pid());
    let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {file}: {e}"));
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let point = f.get(4)?.to_string();
            let sep = f.iter().position(|x| *x == "-")?;
            let fstype = f.get(sep + 1)?.to_string();
            Some((point, fstype))
        })
        .collect()
}

/// `-b MAJOR:MINOR` (the host's root block device, for mknod_block) and `-h PATH` (a
/// file only the host has, for the chroot breakout), then the attempts.
fn attempt_args(s: &Rig) -> Vec<String> {
    let dev = fs::metadata("/").expect("stat /").dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    fs::write(s.path("host-only"), "host\n").expect("write host-only");
    vec![
        "-b".into(),
        format!("{major}:{minor}"),
        "-h".into(),
        s.p("host-only"),
    ]
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(String::from).collect()
}

/// `[container]` keys of the user-namespaced variant: container ids 0..65536 are host ids
/// from 1,500,000.
const USERNS: &str = "namespaces = [\"pid\", \"mount\", \"uts\", \"ipc\", \"net\", \"cgroup\", \"user\"]\nuid_map = [\"0 1500000 65536\"]\n";

#[test]
fn default_container_service_blocks_every_escape_and_leaves_the_host_unchanged() {
    service_suite("service", "");
}

#[test]
fn a_user_namespaced_container_service_blocks_every_escape_the_same_way() {
    service_suite("service with a user namespace", USERNS);
}

/// The attempts as the service of a container with `container` keys.
fn service_suite(how: &str, container: &str) {
    let s = watched_rig();
    let args = attempt_args(&s);
    // kennel first (the state is its host side's), then the container.
    s.up();
    let before = HostState::take(&s);
    let script = format!(
        "/bin/attempts {}; /bin/attempts status; echo finished; {STAY}",
        args.join(" ")
    );
    sh_unit(&s, "web", &script, "", container);
    s.ok(&["reload"]);
    let out = s.wait_stdout("web", "finished", 1);
    let also = if container.is_empty() {
        &[][..]
    } else {
        USERNS_ALSO
    };
    assert_all_blocked(how, &out, &s, also);
    assert_default_status(how, &out);
    before.assert_unchanged(&s, how);
    // The container is still whole: the attempts did not take its init down.
    assert_eq!(s.state("web"), "up");
    s.exec_ok(&["web", "true"]);
}

#[test]
fn kennel_exec_into_a_default_container_is_held_the_same_way() {
    exec_suite("kennel exec", "");
}

#[test]
fn kennel_exec_into_a_user_namespaced_container_is_held_the_same_way() {
    exec_suite("kennel exec with a user namespace", USERNS);
}

/// The attempts through `kennel exec` into a container with `container` keys.
fn exec_suite(how: &str, container: &str) {
    let s = watched_rig();
    let args = attempt_args(&s);
    sh_unit(&s, "web", &format!("echo started; {STAY}"), "", container);
    s.up();
    s.wait_started("web");
    let before = HostState::take(&s);
    let mut argv = vec!["web", "/bin/attempts"];
    argv.extend(args.iter().map(String::as_str));
    let out = lines(&s.exec_ok(&argv));
    let also = if container.is_empty() {
        &[][..]
    } else {
        USERNS_ALSO
    };
    assert_all_blocked(how, &out, &s, also);
    let status = lines(&s.exec_ok(&["web", "/bin/attempts", "status"]));
    assert_default_status(how, &status);
    // And as docs/security.md shows it, with busybox.
    let grep = s.exec_ok(&[
        "web",
        "grep",
        "-E",
        "CapEff|NoNewPrivs|Seccomp",
        "/proc/self/status",
    ]);
    let f = status_fields(&lines(&grep));
    assert_eq!(
        f.get("CapEff").map(String::as_str),
        Some(DEFAULT_CAPS),
        "{grep}"
    );
    assert_eq!(f.get("NoNewPrivs").map(String::as_str), Some("1"), "{grep}");
    assert_eq!(f.get("Seccomp").map(String::as_str), Some("2"), "{grep}");
    before.assert_unchanged(&s, how);
}

#[test]
fn added_sys_admin_can_mount_inside_and_nothing_shows_on_the_host() {
    let s = watched_rig();
    unit(
        &s,
        "admin",
        &["/bin/sleep", "100000"],
        "capabilities = { add = [\"SYS_ADMIN\"] }\n",
    );
    s.up();
    s.wait_state("admin", "up");
    let before = HostState::take(&s);
    let out = lines(&s.exec_ok(&["admin", "/bin/attempts", "mount_tmpfs", "status"]));
    assert_eq!(outcomes(&out).get("mount_tmpfs"), Some(&Ok(())), "{out:?}");
    let f = status_fields(&out);
    // SYS_ADMIN is bit 21, on top of the default set; the filter and no_new_privs stay.
    assert_eq!(f["CapEff"], "00000000a82425fb", "{f:?}");
    assert_eq!(f["Seccomp"], "2", "{f:?}");
    // A mount that stays: visible inside, never in kennel's namespace.
    s.exec_ok(&[
        "admin",
        "sh",
        "-c",
        "mkdir -p /tmp/m && mount -t tmpfs t /tmp/m",
    ]);
    let mounts = s.exec_ok(&["admin", "cat", "/proc/mounts"]);
    assert!(mounts.contains(" /tmp/m tmpfs "), "{mounts}");
    before.assert_unchanged(&s, "SYS_ADMIN");
}

#[test]
fn seccomp_unconfined_and_no_new_privileges_false_show_in_proc_status() {
    let s = Rig::new();
    let show = format!("/bin/attempts status; echo shown; {STAY}");
    sh_unit(&s, "open", &show, "", "seccomp = \"unconfined\"\n");
    sh_unit(&s, "privs", &show, "", "no_new_privileges = false\n");
    s.up();
    let open = status_fields(&s.wait_stdout("open", "shown", 1));
    assert_eq!(open["Seccomp"], "0", "{open:?}");
    assert_eq!(open["NoNewPrivs"], "1", "{open:?}");
    assert_eq!(open["CapEff"], DEFAULT_CAPS, "{open:?}");
    let privs = status_fields(&s.wait_stdout("privs", "shown", 1));
    assert_eq!(privs["NoNewPrivs"], "0", "{privs:?}");
    assert_eq!(privs["Seccomp"], "2", "{privs:?}");
    // The same through kennel exec.
    let open = status_fields(&lines(&s.exec_ok(&["open", "/bin/attempts", "status"])));
    assert_eq!(open["Seccomp"], "0", "{open:?}");
    let privs = status_fields(&lines(&s.exec_ok(&["privs", "/bin/attempts", "status"])));
    assert_eq!(privs["NoNewPrivs"], "0", "{privs:?}");
}

#[test]
fn a_listed_device_is_openable_inside_and_only_that_one() {
    let Some(dev) = ["/dev/fuse", "/dev/net/tun", "/dev/loop-control"]
        .into_iter()
        .find(|d| {
            fs::metadata(d).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_char_device()
            })
        })
    else {
        skip(
            Missing::Host,
            "none of /dev/fuse, /dev/net/tun, /dev/loop-control on this host",
        );
        return;
    };
    let s = Rig::new();
    let open = format!("open:{dev}");
    let script = format!("/bin/attempts {open}; echo opened; {STAY}");
    sh_unit(
        &s,
        "given",
        &script,
        "",
        &format!("devices = [\"{dev}\"]\n"),
    );
    sh_unit(&s, "plain", &script, "", "");
    s.up();
    let given = outcomes(&s.wait_stdout("given", "opened", 1));
    assert_eq!(given.get(&open), Some(&Ok(())), "{given:?}");
    let exec = outcomes(&lines(&s.exec_ok(&["given", "/bin/attempts", &open])));
    assert_eq!(exec.get(&open), Some(&Ok(())), "kennel exec: {exec:?}");
    // Without `devices`: not in /dev, and a node made by hand cannot be opened.
    let plain = outcomes(&s.wait_stdout("plain", "opened", 1));
    assert_eq!(plain.get(&open), Some(&Err("ENOENT".into())), "{plain:?}");
    let meta = fs::metadata(dev).unwrap();
    let rdev = meta.rdev();
    let mk = format!(
        "mknod /tmp/d c {} {} && cat /tmp/d",
        libc::major(rdev),
        libc::minor(rdev)
    );
    let out = s.exec(&["plain", "sh", "-c", &mk]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
}

#[test]
fn non_root_user_has_no_capabilities_unless_ambient() {
    let s = Rig::new();
    let show = format!("/bin/attempts status; echo shown; {STAY}");
    sh_unit(&s, "nobody", &show, "user = \"nobody\"\n", "");
    sh_unit(
        &s,
        "binder",
        &show,
        "user = \"nobody\"\n",
        "capabilities = { ambient = [\"NET_BIND_SERVICE\"] }\n",
    );
    s.up();
    let none = status_fields(&s.wait_stdout("nobody", "shown", 1));
    for cap in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(none[cap], "0000000000000000", "{cap}: {none:?}");
    }
    assert_eq!(none["NoNewPrivs"], "1", "{none:?}");
    assert_eq!(none["Seccomp"], "2", "{none:?}");
    let bind = status_fields(&s.wait_stdout("binder", "shown", 1));
    for cap in ["CapEff", "CapPrm", "CapAmb"] {
        assert_eq!(bind[cap], "0000000000000400", "{cap}: {bind:?}");
    }
    // kennel exec runs as the unit's user, with the same sets.
    let none = status_fields(&lines(&s.exec_ok(&["nobody", "/bin/attempts", "status"])));
    assert_eq!(none["CapEff"], "0000000000000000", "{none:?}");
    let bind = status_fields(&lines(&s.exec_ok(&["binder", "/bin/attempts", "status"])));
    assert_eq!(bind["CapEff"], "0000000000000400", "{bind:?}");
    // The one capability works: nobody binds port 80.
    let nc = s.exec(&[
        "binder",
        "sh",
        "-c",
        "nc -l -p 80 & sleep 0.3; netstat -ltn | grep -q ':80 ' && echo bound; kill %1",
    ]);
    assert!(
        String::from_utf8_lossy(&nc.stdout).contains("bound"),
        "{nc:?}"
    );
}

#[test]
fn read_only_volume_is_read_only_with_its_submounts() {
    let s = Rig::new();
    fs::create_dir_all(s.path("ro/sub")).unwrap();
    s.up();
    // A mount under the volume's source, made in kennel's own mount namespace only (never
    // on the host; it goes with the sandbox).
    let sub = s.p("ro/sub");
    let out = Command::new("nsenter")
        .args([
            "-t",
            &s.daemon_pid().to_string(),
            "-m",
            "mount",
            "-t",
            "tmpfs",
            "sub",
            &sub,
        ])
        .output()
        .expect("run nsenter");
    assert!(out.status.success(), "mount in kennel's namespace: {out:?}");
    sh_unit(
        &s,
        "vol",
        &format!("echo started; {STAY}"),
        "",
        &format!(
            "volumes = [{{ source = \"{}\", target = \"/vol\", read_only = true }}]\n",
            s.p("ro")
        ),
    );
    s.ok(&["reload"]);
    s.wait_started("vol");
    for file in ["/vol/x", "/vol/sub/x"] {
        let out = s.exec(&["vol", "touch", file]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("Read-only"),
            "{file}: {out:?}"
        );
    }
}

#[test]
fn exec_never_runs_unconfined_when_the_seccomp_profile_is_gone() {
    let s = Rig::new();
    let profile = s.path("profile.json");
    fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount", "unshare"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    sh_unit(
        &s,
        "web",
        &format!("echo started; {STAY}"),
        "",
        &format!("seccomp = \"{}\"\n", profile.display()),
    );
    s.up();
    s.wait_started("web");
    fs::remove_file(&profile).unwrap();
    let out = s.exec(&[
        "web",
        "/bin/attempts",
        "status",
        "mount_tmpfs",
        "unshare_user",
    ]);
    if out.status.success() {
        let text = lines(&String::from_utf8_lossy(&out.stdout));
        let f = status_fields(&text);
        assert_eq!(
            f.get("CapEff").map(String::as_str),
            Some(DEFAULT_CAPS),
            "{text:?}"
        );
        assert_eq!(
            f.get("NoNewPrivs").map(String::as_str),
            Some("1"),
            "{text:?}"
        );
        let got = outcomes(&text);
        assert!(got.values().all(|r| r.is_err()), "{text:?}");
    }
}

/// A layer whose `/etc/nsswitch.conf` sends user lookups to `libnss_kennelprobe.so.2`,
/// which leaves `/nss-loaded` in the container's root if anything ever loads it.
fn nss_layer() -> PathBuf {
    let dir = crate::ctr::process_layer_dir("nss-layer");
    let src = dir.join("probe.c");
    fs::create_dir_all(dir.join("etc")).expect("mkdir etc");
    fs::write(
        dir.join("etc/nsswitch.conf"),
        "passwd: kennelprobe files\ngroup: kennelprobe files\n",
    )
    .expect("write nsswitch.conf");
    fs::write(
        &src,
        "#include <fcntl.h>\n#include <unistd.h>\n\
         __attribute__((constructor)) static void loaded(void) {\n\
           int fd = open(\"/nss-loaded\", O_WRONLY | O_CREAT, 0644);\n\
           if (fd >= 0) { (void)write(fd, \"loaded\\n\", 7); close(fd); }\n\
         }\n",
    )
    .expect("write probe.c");
    for lib in ["lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib"] {
        fs::create_dir_all(dir.join(lib)).expect("mkdir lib");
        let out = Command::new("gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(dir.join(lib).join("libnss_kennelprobe.so.2"))
            .arg(&src)
            .output()
            .expect("run gcc");
        assert!(out.status.success(), "gcc -shared: {out:?}");
    }
    fs::remove_file(&src).expect("rm probe.c");
    dir
}

#[test]
fn an_images_nsswitch_conf_never_loads_a_library_into_kennel() {
    let s = Rig::new();
    let layer = nss_layer();
    // User and group names are looked up in the container, while kennel's helper still
    // has the host's privileges: as the service's user, and again through kennel exec.
    s.unit(
        "web",
        &format!(
            "[service]\ncommand = [\"/bin/sh\", \"-c\", \"echo started; id -un; {STAY}\"]\n\
             user = \"nobody:nogroup\"\n\
             [container]\nrootfs = [\"busybox\", \"{}\"]\n",
            layer.display()
        ),
    );
    s.up();
    s.wait_stdout("web", "nobody", 1);
    assert_eq!(s.exec_ok(&["web", "id", "-un"]).trim(), "nobody");
    assert_eq!(
        s.exec_ok(&["--user", "root", "web", "id", "-un"]).trim(),
        "root"
    );
    let upper = s.state.join("containers/web/upper");
    assert!(
        !upper.join("nss-loaded").exists(),
        "an NSS module of the image was loaded into kennel's helper"
    );
}
