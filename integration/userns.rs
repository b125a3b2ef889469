//! User namespaces (`namespaces = [..., "user"]`, docs/security.md): the container's root is
//! an unprivileged host id; the layers, the writable and init layers, the volumes and
//! `kennel exec` read the same ids as without a user namespace (idmapped mounts); the maps
//! come from the unit or from the `kennel` entries of /etc/subuid and /etc/subgid.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::ctr::Rig;

/// Keep a container's service running once its script is done.
const STAY: &str = "exec sleep 100000";

/// `[container]` keys for a user namespace mapping container ids 0..65536 to host ids
/// from `HOST_UID` (and groups from `HOST_GID`).
const HOST_UID: u32 = 1_300_000;
const HOST_GID: u32 = 1_400_000;

fn userns() -> String {
    format!(
        "namespaces = [\"pid\", \"mount\", \"uts\", \"ipc\", \"net\", \"cgroup\", \"user\"]\n\
         uid_map = [{{ container = 0, host = {HOST_UID}, size = 65536 }}]\n\
         gid_map = [\"0 {HOST_GID} 65536\"]\n"
    )
}

/// A `Uid:` or `Gid:` line of /proc/PID/status: the real id.
fn status_id(pid: i32, field: &str) -> u32 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    text.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{field} in {text}"))
}

#[test]
fn container_root_is_root_inside_and_an_unprivileged_id_on_the_host() {
    let s = Rig::new();
    let script = format!(
        "echo id=$(id -u):$(id -g); echo map $(cat /proc/self/uid_map); \
         echo gmap $(cat /proc/self/gid_map); \
         echo passwd=$(stat -c %u:%g /etc/passwd) hosts=$(stat -c %u:%g /etc/hosts); \
         echo new > /etc/new && echo wrote=$(stat -c %u:%g /etc/new); \
         echo appended >> /etc/passwd && echo appended=$(stat -c %u:%g /etc/passwd); \
         echo host=$(hostname); \
         echo started; {STAY}"
    );
    s.sh_container("web", &script, &userns());
    s.up();
    let out = s.wait_stdout("web", "started", 1);
    let want = [
        "id=0:0".to_string(),
        format!("map 0 {HOST_UID} 65536"),
        format!("gmap 0 {HOST_GID} 65536"),
        "passwd=0:0 hosts=0:0".to_string(),
        "wrote=0:0".to_string(),
        "appended=0:0".to_string(),
        "host=web".to_string(),
    ];
    for w in &want {
        assert!(
            out.contains(w),
            "{w:?} not in {out:?}\n{}",
            s.daemon_output()
        );
    }
    // On the host: the service runs as the mapped ids.
    let svc = s.find_process(&["sleep", "100000"]);
    assert_eq!(svc.len(), 1, "{svc:?}");
    assert_eq!(status_id(svc[0], "Uid:"), HOST_UID);
    assert_eq!(status_id(svc[0], "Gid:"), HOST_GID);
    // The writable layer keeps the container's ids on disk (idmapped), like without a user
    // namespace; the layer itself is unchanged.
    let upper = s.state.join("containers/web/upper/etc");
    let new = fs::metadata(upper.join("new")).expect("new file in the writable layer");
    assert_eq!((new.uid(), new.gid()), (0, 0));
    let layer = fs::metadata(s.state.join("layers/busybox/etc/passwd")).expect("layer passwd");
    assert_eq!((layer.uid(), layer.gid()), (0, 0));
    let text = fs::read_to_string(s.state.join("layers/busybox/etc/passwd")).expect("passwd");
    assert!(!text.contains("appended"));
}

#[test]
fn volumes_dev_and_exec_read_the_same_ids_as_without() {
    let s = Rig::new();
    let vol = s.path("vol");
    fs::create_dir_all(&vol).expect("mkdir vol");
    fs::write(vol.join("host-file"), "from the host\n").expect("write host-file");
    let ro = s.path("ro");
    fs::create_dir_all(&ro).expect("mkdir ro");
    let script = format!(
        "echo vol=$(stat -c %u:%g /data/host-file) $(cat /data/host-file); \
         echo x > /data/from-container && echo written; \
         echo named=$(stat -c %u:%g /cache) tmpfs=$(stat -c %u:%g /scratch) dev=$(stat -c %u:%g /dev /dev/null | tr '\\n' ' '); \
         touch /cache/c /scratch/s && echo touched; \
         touch /ro/x 2>/dev/null || echo ro-refused; \
         echo plain=$(stat -c %u:%g /plain/host-file); \
         echo started; {STAY}"
    );
    let volumes = format!(
        "volumes = [\n  {{ source = \"{}\", target = \"/data\" }},\n  {{ type = \"volume\", name = \"cache\", target = \"/cache\" }},\n  {{ type = \"tmpfs\", target = \"/scratch\" }},\n  {{ source = \"{}\", target = \"/ro\", read_only = true }},\n  {{ source = \"{}\", target = \"/plain\", idmap = false }},\n]\n",
        vol.display(),
        ro.display(),
        vol.display()
    );
    s.sh_container("web", &script, &format!("{}{volumes}", userns()));
    s.up();
    let out = s.wait_stdout("web", "started", 1);
    for w in [
        "vol=0:0 from the host",
        "written",
        "named=0:0 tmpfs=0:0 dev=0:0 0:0",
        "touched",
        "ro-refused",
        // Without idmap: the host's root is nobody inside.
        "plain=65534:65534",
    ] {
        assert!(
            out.iter().any(|l| l == w),
            "{w:?} not in {out:?}\n{}",
            s.daemon_output()
        );
    }
    // What the container wrote to the bind volume has its ids on the host too.
    let m = fs::metadata(vol.join("from-container")).expect("written through the volume");
    assert_eq!((m.uid(), m.gid()), (0, 0));
    assert!(!ro.join("x").exists());

    // kennel exec: root of the same user namespace, an unprivileged id on the host.
    assert_eq!(s.exec_ok(&["web", "id", "-u"]).trim(), "0");
    let map = s.exec_ok(&["web", "cat", "/proc/self/uid_map"]);
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", &HOST_UID.to_string(), "65536"]
    );
    assert_eq!(
        s.exec_ok(&["web", "stat", "-c", "%u:%g", "/data/from-container"])
            .trim(),
        "0:0"
    );
    let mut child = s.exec_child(&["web", "sleep", "100001"]);
    let mut found = Vec::new();
    s.wait_for("the exec'd sleep", || {
        found = s.find_process(&["sleep", "100001"]);
        !found.is_empty()
    });
    assert_eq!(status_id(found[0], "Uid:"), HOST_UID);
    let _ = child.kill();
    let _ = child.wait();
}

/// As without a user namespace (containers.rs): a run that wrote nothing leaves its
/// writable and init layers (mounted idmapped) as the next start keeps them, and the
/// container still sees a new layer: `/` its root's, with the usual mode, and a new
/// overlay instance.
#[test]
fn a_run_that_wrote_nothing_leaves_layers_the_next_start_keeps() {
    let s = Rig::new();
    let script = "echo root=$(stat -c %a:%u:%g /) fsid=$(stat -f -c %i /)";
    s.sh_oneshot("once", script, &userns());
    s.up();
    s.wait_state("once", "exited");
    let inodes = || s.layer_inodes("once", &["upper", "work", "init/etc/hostname"]);
    let first = inodes();
    s.ok(&["start", "once"]);
    let lines = s.wait_stdout_prefix("once", "root=", 2);
    assert_eq!(inodes(), first, "upper, work, init/etc/hostname");
    assert_eq!(s.trashed_layers("once"), Vec::<String>::new());
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.split(' ').collect()).collect();
    assert_eq!(
        [fields[0][0], fields[1][0]],
        ["root=755:0:0"; 2],
        "{lines:?}"
    );
    assert_ne!(fields[0][1], fields[1][1], "the same fsid: {lines:?}");
}

#[test]
fn container_root_binds_a_low_port_in_its_network_namespace() {
    let s = Rig::new();
    s.sh_container(
        "web",
        "mkdir -p /www && echo hello > /www/index.html && echo started && exec httpd -f -p 80 -h /www",
        &userns(),
    );
    s.up();
    s.wait_started("web");
    let mut body = String::new();
    s.wait_for("httpd on port 80", || {
        let out = s.exec(&["web", "wget", "-q", "-O", "-", "http://127.0.0.1:80/"]);
        body = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
    });
    assert_eq!(body, "hello\n");
}

#[test]
fn maps_default_to_the_kennel_entries_of_etc_subuid_and_subgid() {
    let s = Rig::new();
    s.cover("/etc/subuid", "alice:100000:65536\nkennel:1600000:65536\n");
    s.cover("/etc/subgid", "kennel:1700000:65536\n");
    s.sh_container(
        "web",
        &format!("echo started; {STAY}"),
        "namespaces = [\"pid\", \"mount\", \"net\", \"user\"]\n",
    );
    s.up();
    s.wait_started("web");
    let svc = s.find_process(&["sleep", "100000"]);
    assert_eq!(svc.len(), 1, "{svc:?}");
    assert_eq!(status_id(svc[0], "Uid:"), 1_600_000);
    assert_eq!(status_id(svc[0], "Gid:"), 1_700_000);
}

#[test]
fn without_maps_or_a_kennel_entry_the_start_fails_saying_what_to_add() {
    let s = Rig::new();
    s.cover("/etc/subuid", "alice:100000:65536\n");
    s.cover("/etc/subgid", "alice:100000:65536\n");
    let unit = |container: &str| {
        format!(
            "[service]\ncommand = [\"/bin/sh\", \"-c\", \"echo started; {STAY}\"]\n\
             [restart]\npolicy = \"no\"\n[container]\nrootfs = [\"busybox\"]\n{container}"
        )
    };
    s.unit(
        "web",
        &unit("namespaces = [\"pid\", \"mount\", \"net\", \"user\"]\n"),
    );
    s.up();
    s.wait_state("web", "failed");
    let detail = s.detail("web");
    assert!(
        detail.contains("/etc/subuid") && detail.contains("kennel:100000:65536"),
        "{detail}"
    );
    assert!(!detail.contains('\n'), "{detail:?}");
    // Fixed by maps in the unit: it starts.
    s.unit("web", &unit(&userns()));
    s.ok(&["reload"]);
    s.ok(&["start", "web"]);
    s.wait_started("web");
}

#[test]
fn a_terminal_session_works_in_a_user_namespaced_container() {
    let s = Rig::new();
    s.sh_container("web", &format!("echo started; {STAY}"), &userns());
    s.up();
    s.wait_started("web");
    let t = crate::ctr::Tmux::start(
        100,
        30,
        &format!(
            "KENNEL_SOCKET={} {} exec -it web sh; echo EXIT=$?; sleep 100000",
            s.socket.display(),
            crate::harness::KENNEL
        ),
    );
    t.wait_line("/ #");
    t.keys(&["echo id=$(id -u) size=$(stty size) tty=$(tty)", "Enter"]);
    // A terminal of the container's own devpts.
    t.wait_line("id=0 size=30 100 tty=/dev/pts/0");
    t.keys(&["exit 4", "Enter"]);
    t.wait_line("EXIT=4");
}

#[test]
fn notify_readiness_works_from_inside_a_user_namespace() {
    let s = Rig::new();
    let layer = crate::escape::attempts_layer();
    s.unit(
        "db",
        &format!(
            "[service]\ncommand = [\"/bin/sh\", \"-c\", \"/bin/attempts ready && echo sent; {STAY}\"]\n\
             [ready]\nnotify = true\ntimeout = \"20s\"\n\
             [container]\nrootfs = [\"busybox\", \"{}\"]\n{}",
            layer.display(),
            userns()
        ),
    );
    s.up();
    s.wait_stdout("db", "sent", 1);
    s.wait_state("db", "up");
}

/// Inside the user namespace /proc/self is not writable for the service (kennel's init
/// changed ids: not dumpable), so kennel sets them before joining it. (A negative score or a
/// raised hard limit would need CAP_SYS_RESOURCE, which this machine's root lacks.)
#[test]
fn limits_and_the_oom_score_apply_inside_a_user_namespace() {
    let s = Rig::new();
    s.sh_container(
        "web",
        &format!(
            "echo nofile=$(ulimit -n) oom=$(cat /proc/self/oom_score_adj); echo started; {STAY}"
        ),
        &format!(
            "{}limits = {{ nofile = 4096 }}\noom_score_adj = 500\n",
            userns()
        ),
    );
    s.up();
    let out = s.wait_stdout("web", "started", 1);
    assert!(
        out.iter().any(|l| l == "nofile=4096 oom=500"),
        "{out:?}\n{}",
        s.daemon_output()
    );
    let exec = s.exec_ok(&["web", "cat", "/proc/self/oom_score_adj"]);
    assert_eq!(exec.trim(), "500");
}

#[test]
fn stopped_by_sigterm_through_the_relay_it_says_killed_by_sigterm() {
    let s = Rig::new();
    s.sh_container("web", &format!("echo started; {STAY}"), &userns());
    s.up();
    s.wait_started("web");
    s.ok(&["stop", "web"]);
    s.wait_log("web", "kennel", "killed by SIGTERM; stopped");
    assert_eq!(
        s.status("web")["last_exit"],
        serde_json::json!({ "signal": libc::SIGTERM })
    );
}
