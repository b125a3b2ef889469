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
