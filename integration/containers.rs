//! Containers: the service's own namespaces and hostname, the overlay root filesystem
//! (read-only layers, whiteouts, the init layer, the writable layer and `persist`, both
//! kept from a run that left them as the next start needs them, and on store layers the
//! overlay itself),
//! volumes, the network, masked paths, and failures that name their step.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::Command;

use crate::ctr::{busybox_layer, opaque, whiteout, Rig};
use crate::harness::{ns_pids, KENNEL};

/// Keep a container's service running once its script is done.
const STAY: &str = "exec sleep 100000";

#[test]
fn container_sees_only_its_own_processes_under_kennels_init() {
    let s = Rig::new();
    s.sh_container("web", &format!("ps -o pid,comm; echo listed; {STAY}"), "");
    s.up();
    let out = s.wait_stdout("web", "listed", 1);
    let pids: Vec<i32> = out
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    // The init (1), the service's shell (2), and `ps` unless the shell ran it in-process.
    assert!(pids.contains(&1) && pids.contains(&2), "{out:?}");
    assert!(pids.iter().all(|&p| p <= 3), "{out:?}");

    // From the host: the unit's pid is PID 1 inside, kennel's init, which the zygote forked
    // right into the new pid namespace as kennel's own child (no helper waits outside).
    let init = s.host_pid(s.pid("web"));
    assert_eq!(ns_pids(init).last(), Some(&1), "init's pid inside");
    let ppid = crate::harness::proc_status_field(init, "PPid").expect("init's parent");
    assert_eq!(
        ppid,
        s.daemon_pid().to_string(),
        "the init's parent is kennel"
    );
    let exe = fs::read_link(format!("/proc/{init}/exe")).expect("init exe");
    assert_eq!(exe, fs::canonicalize(KENNEL).expect("kennel path"));
}

/// A process's command line as its words, and its command name (`comm`).
fn names(host_pid: i32) -> (Vec<String>, String) {
    let cmdline = fs::read(format!("/proc/{host_pid}/cmdline")).unwrap_or_default();
    let words = cmdline
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let comm = fs::read_to_string(format!("/proc/{host_pid}/comm")).unwrap_or_default();
    (words, comm.trim_end().to_string())
}

#[test]
fn kennels_own_processes_say_what_they_are_inside_and_outside() {
    let s = Rig::new();
    s.sh_container("web", &format!("echo started; {STAY}"), "");
    s.up();
    s.wait_started("web");
    // Outside: the container's init (the unit's pid) and the zygote, a child of kennel.
    let init = s.host_pid(s.pid("web"));
    let one = |name: &str| (vec![name.to_string()], name.to_string());
    assert_eq!(names(init), one("kennel-init"), "the unit's pid");
    let kids: Vec<_> = crate::harness::children(s.daemon_pid())
        .into_iter()
        .map(names)
        .collect();
    assert!(
        kids.contains(&one("kennel-zygote")),
        "kennel's children: {kids:?}"
    );
    // Inside: PID 1 is kennel's init, and no process shows a host path.
    let ps = s.exec_ok(&["web", "ps", "-o", "pid,comm,args"]);
    let first = ps
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_else(|| panic!("no PID 1 in {ps}"));
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>(),
        ["1", "kennel-init", "kennel-init"],
        "{ps}"
    );
    assert!(!ps.contains("/proc/self/exe") && !ps.contains("__"), "{ps}");
    // An exec's relay, outside the container's pid namespace.
    let mut client = s.exec_child(&["web", "sleep", "1003"]);
    s.wait_for("the exec session", || !s.execs("web").is_empty());
    let relay = s.host_pid(s.execs("web")[0]);
    assert_eq!(names(relay), one("kennel-relay"), "the exec's relay");
    client.kill().expect("kill the exec client");
    client.wait().expect("wait for the exec client");
}

#[test]
fn hostname_is_the_unit_name_or_the_configured_one() {
    let s = Rig::new();
    s.sh_container("web", &format!("echo host=$(hostname); {STAY}"), "");
    s.sh_container(
        "api",
        &format!("echo host=$(hostname) file=$(cat /etc/hostname); {STAY}"),
        "hostname = \"api.example\"\n",
    );
    s.up();
    s.wait_stdout("web", "host=web", 1);
    s.wait_stdout("api", "host=api.example file=api.example", 1);
    let host = fs::read_to_string("/proc/sys/kernel/hostname").expect("host's hostname");
    assert!(!["web", "api.example"].contains(&host.trim()));
}

#[test]
fn read_only_layer_is_never_changed_and_writes_land_in_the_writable_layer() {
    let s = Rig::new();
    let layer = s.state.join("layers/busybox");
    let passwd = fs::read_to_string(layer.join("etc/passwd")).expect("layer passwd");
    s.sh_container(
        "web",
        &format!(
            "echo 'extra:x:1000:1000::/:/bin/sh' >> /etc/passwd && rm /etc/group && \
             echo new > /newfile && echo written; {STAY}"
        ),
        "",
    );
    s.up();
    s.wait_stdout("web", "written", 1);

    let upper = s.state.join("containers/web/upper");
    let copied = fs::read_to_string(upper.join("etc/passwd")).expect("copied-up passwd");
    assert_eq!(copied, format!("{passwd}extra:x:1000:1000::/:/bin/sh\n"));
    assert_eq!(fs::read_to_string(upper.join("newfile")).unwrap(), "new\n");
    let gone = fs::symlink_metadata(upper.join("etc/group")).expect("whiteout of /etc/group");
    assert!(
        gone.file_type().is_char_device(),
        "a deletion is a whiteout"
    );

    assert_eq!(
        fs::read_to_string(layer.join("etc/passwd")).unwrap(),
        passwd
    );
    assert!(layer.join("etc/group").exists());
    assert!(!layer.join("newfile").exists());
    // Inside, the deletion holds.
    let out = s.exec(&["web", "cat", "/etc/group"]);
    assert!(!out.status.success(), "{out:?}");
}

#[test]
fn whiteout_and_opaque_dir_in_an_upper_layer_hide_lower_files() {
    let s = Rig::new();
    let lower = s.path("lower");
    let upper = s.path("upper");
    fs::create_dir_all(lower.join("data")).unwrap();
    fs::write(lower.join("gone.txt"), "lower\n").unwrap();
    fs::write(lower.join("kept.txt"), "lower\n").unwrap();
    fs::write(lower.join("data/a.txt"), "a\n").unwrap();
    fs::create_dir_all(upper.join("data")).unwrap();
    fs::write(upper.join("data/c.txt"), "c\n").unwrap();
    whiteout(&upper.join("gone.txt"));
    opaque(&upper.join("data"));
    s.unit(
        "web",
        &format!(
            "[service]\ncommand = [\"/bin/sh\", \"-c\", \"ls /; echo data=$(ls /data); echo listed; {STAY}\"]\n\
             [container]\nrootfs = [\"busybox\", \"{}\", \"{}\"]\n",
            lower.display(),
            upper.display()
        ),
    );
    s.up();
    let out = s.wait_stdout("web", "listed", 1);
    assert!(out.contains(&"kept.txt".to_string()), "{out:?}");
    assert!(!out.contains(&"gone.txt".to_string()), "{out:?}");
    assert!(out.contains(&"data=c.txt".to_string()), "{out:?}");
}

#[test]
fn init_layer_writes_hostname_hosts_and_resolv_conf_outside_the_writable_layer() {
    let s = Rig::new();
    let show = format!("cat /etc/hostname /etc/hosts /etc/resolv.conf; echo shown; {STAY}");
    s.sh_container(
        "web",
        &show,
        "hosts = { db = \"10.0.0.2\", cache = \"fd00::7\" }\ndns = [\"192.0.2.53\", \"192.0.2.54\"]\n",
    );
    s.sh_container("plain", &show, "");
    s.up();
    let out = s.wait_stdout("web", "shown", 1);
    for line in [
        "web",
        "127.0.0.1\tlocalhost",
        "127.0.1.1\tweb",
        "10.0.0.2\tdb",
        "fd00::7\tcache",
        "nameserver 192.0.2.53",
        "nameserver 192.0.2.54",
    ] {
        assert!(out.contains(&line.to_string()), "{line:?} in {out:?}");
    }
    // Without `dns`: a copy of the host's resolv.conf.
    let out = s.wait_stdout("plain", "shown", 1);
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for line in host.lines().filter(|l| !l.trim().is_empty()) {
        assert!(out.contains(&line.to_string()), "{line:?} in {out:?}");
    }
    for f in ["hostname", "hosts", "resolv.conf"] {
        let up = s.state.join("containers/web/upper/etc").join(f);
        assert!(!up.exists(), "{} is in the writable layer", up.display());
    }
}

#[test]
fn writable_layer_is_fresh_at_each_start_unless_persist() {
    let s = Rig::new();
    let probe = format!("[ -e /marker ] && echo found || echo missing; touch /marker; {STAY}");
    s.sh_container("fresh", &probe, "");
    s.sh_container("kept", &probe, "persist = true\n");
    s.up();
    s.wait_stdout("fresh", "missing", 1);
    s.wait_stdout("kept", "missing", 1);
    s.ok(&["restart", "fresh", "kept"]);
    assert_eq!(s.wait_stdout("fresh", "missing", 2), ["missing", "missing"]);
    assert_eq!(s.wait_stdout("kept", "found", 1), ["missing", "found"]);
}

/// A unit switched from a fresh writable layer to `persist = true` (reload) starts: the
/// layer its non-persistent run left (with overlayfs's `volatile` mark, which refuses a
/// second mount) is replaced by a new one, which is then kept.
#[test]
fn a_unit_switched_to_persist_starts_with_a_new_layer_then_keeps_it() {
    let s = Rig::new();
    let probe = format!("[ -e /marker ] && echo found || echo missing; touch /marker; {STAY}");
    s.sh_container("web", &probe, "");
    s.up();
    s.wait_stdout("web", "missing", 1);
    s.sh_container("web", &probe, "persist = true\n");
    // A changed unit is restarted by the reload.
    s.ok(&["reload"]);
    assert_eq!(s.wait_stdout("web", "missing", 2), ["missing", "missing"]);
    s.ok(&["restart", "web"]);
    assert_eq!(
        s.wait_stdout("web", "found", 1),
        ["missing", "missing", "found"]
    );
}

/// A run that wrote nothing leaves its writable layer empty and its init layer as the
/// next start writes it: the next start keeps both (the same inodes: nothing made anew,
/// none of them moved into the trash), and on plain directory layers (which may change
/// between runs) mounts a new overlay on them (a new instance: its fsid), in which `/` is
/// as a new directory is.
#[test]
fn a_run_that_wrote_nothing_leaves_layers_the_next_start_keeps() {
    let s = Rig::new();
    s.sh_oneshot(
        "once",
        "echo root=$(stat -c %a /) fsid=$(stat -f -c %i /)",
        "",
    );
    s.up();
    s.wait_state("once", "exited");
    let kept = [
        "upper",
        "work",
        "init",
        "init/etc",
        "init/etc/hostname",
        "init/etc/hosts",
        "init/etc/resolv.conf",
    ];
    let inodes = || s.layer_inodes("once", &kept);
    let first = inodes();
    s.ok(&["start", "once"]);
    let lines = s.wait_stdout_prefix("once", "root=", 2);
    assert_eq!(inodes(), first, "{kept:?}");
    assert_eq!(s.trashed_layers("once"), Vec::<String>::new());
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.split(' ').collect()).collect();
    assert_eq!([fields[0][0], fields[1][0]], ["root=755"; 2], "{lines:?}");
    assert_ne!(fields[0][1], fields[1][1], "the same overlay: {lines:?}");
}

/// On layers of kennel's store (digest layers, never changed in place), a run that left
/// its writable layer empty also leaves its overlay: the next start mounts that one (the
/// same instance: its fsid, which a new overlay on a kept layer would not have, as the
/// uuid it is made from is removed then) on the same layers, and `/` there looks new (its
/// times were reset: the run before had set them to 2000).
#[test]
fn on_store_layers_a_run_that_wrote_nothing_leaves_its_overlay_to_the_next_start() {
    let s = Rig::new();
    s.import_layer("bb", busybox_layer());
    s.sh_oneshot_on(
        "once",
        "bb",
        "echo fsid=$(stat -f -c %i /) root=$(stat -c %a /) age=$(( $(date +%s) - $(stat -c %Y /) )); \
         touch -t 200001010000 /",
        "",
    );
    s.up();
    s.wait_state("once", "exited");
    let upper = s.layer_inodes("once", &["upper", "work"]);
    s.ok(&["start", "once"]);
    let lines = s.wait_stdout_prefix("once", "fsid=", 2);
    assert_eq!(s.layer_inodes("once", &["upper", "work"]), upper);
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.split(' ').collect()).collect();
    assert_eq!(fields[0][0], fields[1][0], "a new overlay: {lines:?}");
    for f in &fields {
        assert_eq!(f[1], "root=755", "{lines:?}");
        let age: i64 = f[2]
            .strip_prefix("age=")
            .and_then(|a| a.parse().ok())
            .unwrap_or(i64::MAX);
        assert!(age < 60, "/ is {age} s old: {lines:?}");
    }
}

/// A read-only rootfs (no writable layer) on store layers starts again on the overlay the
/// previous run handed back, read-only. (Which instance it is cannot be seen from inside:
/// an overlay without a writable layer has no fsid, and a new one may get the device
/// number the previous one let go.)
#[test]
fn a_read_only_rootfs_starts_again_read_only_on_the_overlay_handed_back() {
    let s = Rig::new();
    s.import_layer("bb", busybox_layer());
    s.sh_oneshot_on(
        "ro",
        "bb",
        "echo root=$(touch /x 2>/dev/null && echo writable || echo read-only) bin=$(ls /bin | wc -l)",
        "read_only = true\n",
    );
    s.up();
    s.wait_state("ro", "exited");
    for _ in 0..2 {
        s.ok(&["start", "ro"]);
    }
    let lines = s.wait_stdout_prefix("ro", "root=", 3);
    assert!(lines[0].starts_with("root=read-only bin="), "{lines:?}");
    assert!(lines.iter().all(|l| *l == lines[0]), "{lines:?}");
}

/// A run that left a file in its writable layer: the next start mounts a new overlay on a
/// new writable layer, though the run handed its overlay back.
#[test]
fn a_run_that_left_a_file_gets_a_new_overlay_and_layer() {
    let s = Rig::new();
    s.import_layer("bb", busybox_layer());
    s.sh_oneshot_on(
        "once",
        "bb",
        "[ -e /left ] && seen=yes || seen=no; touch /left; echo fsid=$(stat -f -c %i /) seen=$seen",
        "",
    );
    s.up();
    s.wait_state("once", "exited");
    let upper = s.layer_inodes("once", &["upper"]);
    s.ok(&["start", "once"]);
    let lines = s.wait_stdout_prefix("once", "fsid=", 2);
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.split(' ').collect()).collect();
    assert_eq!([fields[0][1], fields[1][1]], ["seen=no"; 2], "{lines:?}");
    assert_ne!(fields[0][0], fields[1][0], "the same overlay: {lines:?}");
    assert_ne!(s.layer_inodes("once", &["upper"]), upper, "the same upper");
}

/// A layer name pointed at another layer between two runs (`kennel layer import` again
/// under the same name): the next start is on the new layer, not through the overlay of
/// the old one.
#[test]
fn a_layer_name_imported_again_is_seen_at_the_next_start() {
    let s = Rig::new();
    s.import_layer("bb", busybox_layer());
    s.sh_oneshot_on(
        "once",
        "bb",
        "echo version=$(cat /version 2>/dev/null || echo none)",
        "",
    );
    s.up();
    s.wait_state("once", "exited");
    let v2 = s.path("bb-v2");
    let out = Command::new("cp")
        .arg("-a")
        .arg(busybox_layer())
        .arg(&v2)
        .output()
        .expect("cp -a");
    assert!(out.status.success(), "cp -a: {out:?}");
    fs::write(v2.join("version"), "2\n").expect("write version");
    s.import_layer("bb", &v2);
    s.ok(&["start", "once"]);
    assert_eq!(
        s.wait_stdout_prefix("once", "version=", 2),
        ["version=none", "version=2"]
    );
}

/// A plain directory layer changed between two runs (a file replaced, one added): the
/// next start sees it as it is now.
#[test]
fn a_plain_directory_layer_changed_between_runs_is_seen_as_it_is_now() {
    let s = Rig::new();
    let site = s.path("site");
    fs::create_dir_all(&site).expect("mkdir site");
    fs::write(site.join("page"), "1\n").expect("write page");
    s.unit(
        "once",
        &format!(
            "[service]\ncommand = [\"/bin/sh\", \"-c\", \"echo page=$(cat /page) new=$(cat /new 2>/dev/null || echo none)\"]\n\
             type = \"oneshot\"\n[container]\nrootfs = [\"busybox\", \"{}\"]\n",
            site.display()
        ),
    );
    s.up();
    s.wait_state("once", "exited");
    let tmp = site.join("page.tmp");
    fs::write(&tmp, "2\n").expect("write page.tmp");
    fs::rename(&tmp, site.join("page")).expect("rename page");
    fs::write(site.join("new"), "yes\n").expect("write new");
    s.ok(&["start", "once"]);
    assert_eq!(
        s.wait_stdout_prefix("once", "page=", 2),
        ["page=1 new=none", "page=2 new=yes"]
    );
}

/// A run that changed `/` itself (its mode, which is the writable layer's root directory's)
/// left that directory empty but not as new: the next start makes a new one.
#[test]
fn a_root_whose_mode_a_run_changed_is_new_at_the_next_start() {
    let s = Rig::new();
    s.sh_oneshot("once", "echo root=$(stat -c %a /); chmod 700 /", "");
    s.up();
    s.wait_state("once", "exited");
    let upper = s.state.join("containers/once/upper");
    let ino = || fs::symlink_metadata(&upper).map(|m| m.ino()).ok();
    let first = ino();
    s.ok(&["start", "once"]);
    assert_eq!(
        s.wait_stdout_prefix("once", "root=", 2),
        ["root=755", "root=755"]
    );
    assert_ne!(ino(), first, "the writable layer was kept");
}

/// The init layer is kept only while it holds what a start writes: a hostname changed
/// between two starts is seen by the second.
#[test]
fn a_hostname_changed_between_starts_is_seen_at_the_next_start() {
    let s = Rig::new();
    let script = "echo host=$(cat /etc/hostname) $(grep 127.0.1.1 /etc/hosts | cut -f2)";
    s.sh_oneshot("once", script, "hostname = \"a.example\"\n");
    s.up();
    s.wait_state("once", "exited");
    s.sh_oneshot("once", script, "hostname = \"b.example\"\n");
    s.ok(&["reload"]);
    s.ok(&["start", "once"]);
    let lines = s.wait_stdout_prefix("once", "host=", 2);
    assert_eq!(lines[0], "host=a.example a.example", "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("host=b.example b.example"),
        "{lines:?}"
    );
}

#[test]
fn volumes_bind_read_only_bind_read_write_tmpfs_and_named() {
    let s = Rig::new();
    fs::create_dir_all(s.path("site")).unwrap();
    fs::write(s.path("site/index.html"), "hello\n").unwrap();
    fs::create_dir_all(s.path("out")).unwrap();
    let script = "echo x > /www/index.html 2>/dev/null && echo ro=writable || echo ro=refused; \
                  echo site=$(cat /www/index.html); \
                  echo from-inside > /out/file && echo rw=ok; \
                  echo $(grep ' /scratch ' /proc/mounts | cut -d' ' -f1,3); \
                  grep ' /scratch ' /proc/mounts | grep -q size=1024k && echo size=1024k; \
                  echo data=$(cat /data/runs 2>/dev/null); echo run >> /data/runs; \
                  echo mounted; exec sleep 100000";
    s.sh_container(
        "web",
        script,
        &format!(
            "volumes = [\n  {{ source = \"{}\", target = \"/www\", read_only = true }},\n  \
             {{ source = \"{}\", target = \"/out\" }},\n  \
             {{ type = \"tmpfs\", target = \"/scratch\", size = \"1M\" }},\n  \
             {{ type = \"volume\", name = \"data\", target = \"/data\" }},\n]\n",
            s.p("site"),
            s.p("out")
        ),
    );
    s.up();
    let out = s.wait_stdout("web", "mounted", 1);
    let expect = [
        "ro=refused",
        "site=hello",
        "rw=ok",
        "tmpfs tmpfs",
        "size=1024k",
        "data=",
    ];
    for line in expect {
        assert!(out.contains(&line.to_string()), "{line:?} in {out:?}");
    }
    assert_eq!(s.read("site/index.html").as_deref(), Some("hello\n"));
    assert_eq!(s.read("out/file").as_deref(), Some("from-inside\n"));
    let named = s.state.join("volumes/data/runs");
    assert_eq!(fs::read_to_string(&named).unwrap(), "run\n");

    s.ok(&["restart", "web"]);
    let out = s.wait_stdout("web", "mounted", 2);
    assert!(out.contains(&"data=run".to_string()), "{out:?}");
    assert_eq!(fs::read_to_string(&named).unwrap(), "run\nrun\n");
}

#[test]
fn network_none_has_only_loopback() {
    let s = Rig::new();
    s.sh_container(
        "web",
        &format!("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo listed; {STAY}"),
        "network = \"none\"\n",
    );
    s.up();
    let out = s.wait_stdout("web", "listed", 1);
    assert_eq!(out, ["lo", "listed"]);
    let addr = s.exec_ok(&["web", "ip", "addr", "show", "lo"]);
    assert!(
        addr.contains("UP") && addr.contains("127.0.0.1/8"),
        "{addr}"
    );
}

#[test]
fn network_unit_joins_the_other_units_network_namespace() {
    let s = Rig::new();
    s.sh_container(
        "db",
        "echo pong > /var/www/ping; echo started; exec httpd -f -p 127.0.0.1:21001 -h /var/www",
        "",
    );
    s.sh_container(
        "web",
        &format!("echo started; {STAY}"),
        "network = \"unit:db\"\n",
    );
    s.up();
    s.wait_started("db");
    s.wait_started("web");
    let ns = |unit: &str| s.net_ns(unit);
    let (db, web) = (ns("db"), ns("web"));
    assert_eq!(db, web);
    assert_ne!(
        db.trim(),
        fs::read_link("/proc/self/ns/net")
            .unwrap()
            .display()
            .to_string()
    );
    s.wait_for("web to reach db's server on 127.0.0.1", || {
        s.exec(&[
            "web",
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:21001/ping",
        ])
        .stdout
            == b"pong\n"
    });
}

#[test]
fn masked_paths_are_hidden_and_proc_sys_is_read_only() {
    let s = Rig::new();
    s.sh_container("web", &format!("echo started; {STAY}"), "");
    s.up();
    s.wait_started("web");
    let sh = |script: &str| s.exec(&["web", "sh", "-c", script]);
    // /proc/kcore: absent on kernels without it, else masked (empty).
    let kcore = sh("[ ! -e /proc/kcore ] || [ ! -s /proc/kcore ] && [ -z \"$(head -c 1 /proc/kcore 2>/dev/null)\" ]");
    assert!(kcore.status.success(), "{kcore:?}");
    let timer = sh("cat /proc/timer_list | wc -c");
    assert_eq!(String::from_utf8_lossy(&timer.stdout).trim(), "0");
    let firmware = sh("ls -A /sys/firmware | wc -l");
    assert_eq!(String::from_utf8_lossy(&firmware.stdout).trim(), "0");
    // In the container's own UTS namespace this would only rename the container; it must
    // fail all the same.
    let write = sh("echo renamed > /proc/sys/kernel/hostname");
    assert!(!write.status.success(), "{write:?}");
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("Read-only"),
        "{write:?}"
    );
    assert_eq!(s.exec_ok(&["web", "hostname"]), "web\n");
}

#[test]
fn missing_layer_fails_the_start_with_one_line_and_the_restart_policy_applies() {
    let s = Rig::new();
    s.unit(
        "web",
        "[service]\ncommand = [\"/bin/true\"]\n[container]\nrootfs = [\"busybox\", \"nope\"]\n\
         [restart]\ndelay = \"50ms\"\nmax_delay = \"50ms\"\nburst = 2\ninterval = \"1m\"\n",
    );
    s.up();
    s.wait_state("web", "failed");
    let expect = format!(
        "layer \"nope\" not found: {} is not a directory",
        s.state.join("layers/nope").display()
    );
    s.wait_log("web", "kennel", &expect);
    let spawn_failures: Vec<String> = s
        .records("web")
        .into_iter()
        .filter(|r| r.stream == "kennel" && r.text.contains(&expect))
        .map(|r| r.text)
        .collect();
    assert!(spawn_failures.len() >= 2, "tried again: {spawn_failures:?}");
    assert!(spawn_failures.iter().all(|l| !l.contains('\n')));
    let st = s.status("web");
    assert!(
        st["detail"].as_str().unwrap_or("").contains("start limit"),
        "{st}"
    );
    assert!(
        s.sandbox_mounts(true).is_empty(),
        "{:?}",
        s.sandbox_mounts(true)
    );
}

#[test]
fn failed_bind_volume_names_its_source_and_leaves_nothing_mounted() {
    let s = Rig::new();
    let missing = s.p("no-such-dir");
    s.unit(
        "web",
        &format!(
            "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n\
             [container]\nrootfs = [\"busybox\"]\n\
             volumes = [{{ type = \"tmpfs\", target = \"/tmp\" }}, {{ source = \"{missing}\", target = \"/x\" }}]\n\
             [restart]\npolicy = \"no\"\n"
        ),
    );
    s.up();
    s.wait_state("web", "failed");
    let detail = s.detail("web");
    assert!(
        detail.contains("bind volume source") && detail.contains(&missing),
        "{detail}"
    );
    assert!(!detail.contains('\n'), "{detail:?}");
    s.wait_log("web", "kennel", &missing);
    // The overlay, /proc, /dev and the tmpfs were mounted before the failure: in the
    // container's own mount namespace, gone with it.
    assert!(
        s.sandbox_mounts(true).is_empty(),
        "{:?}",
        s.sandbox_mounts(true)
    );
}

/// The trash of a container whose unit is gone (its old layers, moved aside by a start)
/// is emptied at kennel's start, not only at that unit's next start, which never comes.
#[test]
fn trash_of_a_removed_unit_is_emptied_at_kennels_start() {
    let s = Rig::new();
    let trash = s.state.join("containers/gone/.trash");
    let old = trash.join("upper-1-2/etc");
    fs::create_dir_all(&old).expect("mkdir old layer");
    fs::write(old.join("hosts"), "old").expect("write old layer");
    s.sh_container("web", STAY, "");
    s.up();
    s.wait_for("the removed unit's trash to be emptied", || {
        fs::read_dir(&trash).is_ok_and(|mut d| d.next().is_none())
    });
}

/// Network namespaces come from the zygote's spare (spawn/zygote.rs) after the first one:
/// each run still gets its own, new, with `lo` up and nothing else, never one another
/// unit (or the host) has.
#[test]
fn every_run_gets_a_network_namespace_of_its_own_with_loopback_up() {
    let s = Rig::new();
    for unit in ["a", "b"] {
        s.sh_container(unit, &format!("echo started; {STAY}"), "");
    }
    s.up();
    s.wait_started("a");
    s.wait_started("b");
    let ns = |unit: &str| s.net_ns(unit);
    let host = fs::read_link("/proc/self/ns/net")
        .unwrap()
        .display()
        .to_string();
    let (a, b) = (ns("a"), ns("b"));
    assert_ne!(a, b);
    assert_ne!(a.trim(), host);
    assert_ne!(b.trim(), host);
    for _ in 0..3 {
        s.ok(&["restart", "a"]);
        s.wait_started("a");
        let again = ns("a");
        assert_ne!(again, b, "a's new run shares b's network namespace");
        assert_ne!(again.trim(), host);
        let devs = s.exec_ok(&[
            "a",
            "sh",
            "-c",
            "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
        ]);
        assert_eq!(devs.trim(), "lo");
        let addr = s.exec_ok(&["a", "ip", "addr", "show", "lo"]);
        assert!(
            addr.contains("UP") && addr.contains("127.0.0.1/8"),
            "{addr}"
        );
    }
}

/// A container's helper starts while kennel still makes its cgroup's v1 hierarchies
/// (`SpawnSpec::cgroup_later`, on hybrid hosts like this one); if that fails, the start
/// fails with the cgroup's error, before anything of the container ran, and the unit can
/// start once the cause is gone.
#[test]
fn a_cgroup_that_cannot_be_completed_fails_the_start_with_its_error() {
    let s = Rig::new();
    let v1_cpuset = std::path::Path::new("/sys/fs/cgroup/cpuset/cpuset.cpus").exists();
    // CPU 63 does not exist here: the cpuset write is refused.
    s.sh_oneshot(
        "bad",
        "echo kennel-test-it-ran",
        "[resources]\ncpuset = \"63\"\n[restart]\npolicy = \"no\"\n",
    );
    s.sh_oneshot("good", "echo ran", "");
    s.up();
    s.wait_state("bad", "failed");
    let detail = s.detail("bad");
    assert!(detail.contains("cpuset"), "{detail}");
    if v1_cpuset {
        assert!(detail.contains("create cgroup"), "{detail}");
    }
    let err = s.fails(&["start", "bad"], 1);
    assert!(err.contains("cpuset"), "{err}");
    assert!(
        !s.log("bad").contains("kennel-test-it-ran"),
        "{}",
        s.log("bad")
    );
    s.ok(&["start", "good"]);
}

/// The cgroup namespace is rooted at the unit's own cgroup in every hierarchy (also the v1
/// ones, which a container's helper joins only after creating its other namespaces on
/// hybrid hosts): inside, each line of /proc/self/cgroup names `/`.
#[test]
fn the_cgroup_namespace_is_rooted_at_the_units_cgroup_in_every_hierarchy() {
    let s = Rig::new();
    s.sh_container(
        "web",
        &format!("cat /proc/self/cgroup; echo listed; {STAY}"),
        "",
    );
    s.up();
    let out = s.wait_stdout("web", "listed", 1);
    let lines: Vec<&String> = out.iter().filter(|l| l.as_str() != "listed").collect();
    assert!(!lines.is_empty(), "{out:?}");
    for l in &lines {
        assert!(
            l.ends_with(":/"),
            "not rooted at the unit's cgroup: {l} (all: {out:?})"
        );
    }
    // And from the host: the service is in the unit's cgroup in every hierarchy.
    let pid = s.host_pid(s.pid("web"));
    let host = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("host view");
    for l in host.lines() {
        assert!(l.ends_with("/web"), "{l} (all: {host})");
    }
}
