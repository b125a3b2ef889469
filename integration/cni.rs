//! CNI for real (`kennel cni add|check|del`, docs/networking.md "CNI") with Debian's
//! containernetworking-plugins (bridge, host-local, portmap, firewall). Each test makes a
//! "host" network namespace (an `unshare --net` holder process) where kennel and the plugins
//! run, and container namespaces (nsfs files in its tempdir, `unshare --net=FILE`); every
//! kennel call goes through a shell that refuses to run unless it is in the test's host
//! namespace. The machine's own network is never touched: bridges, veths, iptables rules and
//! leases exist only in those namespaces and the tempdir.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{skip, Missing, KENNEL, PATIENCE};

const BUSYBOX: &str = "/bin/busybox";
const PLUGINS: &str = "/usr/lib/cni";
const SUBNET: &str = "10.77.0";

/// The test's namespaces and files.
struct Rig {
    dir: tempfile::TempDir,
    /// Holds the "host" network namespace.
    holder: Child,
    /// `readlink /proc/HOLDER/ns/net`: what a kennel call checks it is in.
    host_ns: String,
    /// Container namespace files (bind mounts) to unmount at the end.
    netns: Vec<PathBuf>,
}

fn can_run() -> bool {
    if !crate::skip::need_root() {
        return false;
    }
    for (path, why) in [
        (BUSYBOX, "needs busybox-static (/bin/busybox)"),
        (
            "/usr/lib/cni/bridge",
            "needs containernetworking-plugins (/usr/lib/cni)",
        ),
        (
            "/usr/sbin/iptables",
            "needs iptables (the portmap and firewall plugins run it)",
        ),
    ] {
        if !Path::new(path).exists() {
            skip(Missing::Provided, why);
            return false;
        }
    }
    true
}

/// A conflist of the bridge plugin with host-local IPAM (leases in the tempdir), then `more`.
fn conflist(dir: &Path, name: &str, version: &str, more: &str) -> String {
    format!(
        r#"{{"cniVersion":"{version}","name":"{name}","plugins":[
  {{"type":"bridge","bridge":"kcni0","isGateway":true,"ipMasq":false,
    "ipam":{{"type":"host-local","ranges":[[{{"subnet":"{SUBNET}.0/24"}}]],
             "dataDir":"{}"}}}}{more}]}}"#,
        dir.join("ipam").display()
    )
}

const PORTMAP_FIREWALL: &str =
    r#",{"type":"portmap","capabilities":{"portMappings":true}},{"type":"firewall"}"#;

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::Builder::new()
            .prefix("kennel-cni-")
            .tempdir()
            .expect("tempdir");
        fs::create_dir_all(dir.path().join("conf")).expect("mkdir conf");
        let holder = Command::new("unshare")
            .args(["--net", "--pid", "--fork", "--kill-child", "--", BUSYBOX])
            .args(["sleep", "100000"])
            .spawn()
            .expect("spawn the host namespace's holder");
        let ours = fs::read_link("/proc/self/ns/net").expect("our netns");
        let deadline = Instant::now() + PATIENCE;
        let host_ns = loop {
            let ns = fs::read_link(format!("/proc/{}/ns/net", holder.id())).expect("holder's ns");
            if ns != ours {
                break ns.to_string_lossy().into_owned();
            }
            assert!(Instant::now() < deadline, "the holder never left our netns");
            std::thread::sleep(Duration::from_millis(10));
        };
        let init = fs::read_link("/proc/1/ns/net").map(|p| p.to_string_lossy().into_owned());
        assert_ne!(
            Some(&host_ns),
            init.ok().as_ref(),
            "the holder is in PID 1's netns"
        );
        let rig = Rig {
            dir,
            holder,
            host_ns,
            netns: Vec::new(),
        };
        rig.host(&[BUSYBOX, "ip", "link", "set", "lo", "up"]);
        rig
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write_conf(&self, file: &str, text: &str) {
        fs::write(self.path("conf").join(file), text).expect("write the conflist");
    }

    /// A command run in the test's host netns, after a check that it is there.
    fn host_cmd(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/proc/{}/ns/net", self.holder.id()))
            .args(["--", BUSYBOX, "sh", "-c"])
            .arg(
                r#"[ "$(readlink /proc/self/ns/net)" = "$0" ] || { echo "not in the test's netns" >&2; exit 99; }; exec "$@""#,
            )
            .arg(&self.host_ns)
            .args(argv);
        c
    }

    fn host(&self, argv: &[&str]) -> Output {
        let out = self.host_cmd(argv).output().expect("nsenter");
        assert_ne!(out.status.code(), Some(99), "not in the test's netns");
        out
    }

    /// A new container netns (a file in the tempdir) with `lo` up.
    fn container(&mut self, name: &str) -> PathBuf {
        let file = self.path(name);
        fs::write(&file, "").expect("netns file");
        let ok = Command::new("unshare")
            .arg(format!("--net={}", file.display()))
            .arg("true")
            .status()
            .expect("unshare --net=FILE");
        assert!(ok.success(), "unshare --net={}", file.display());
        self.netns.push(file.clone());
        let out = in_ns(&file, &["ip", "link", "set", "lo", "up"]);
        assert!(out.status.success(), "lo up in {name}");
        file
    }

    /// `kennel cni OP` in the host netns, on network `net` for `container`.
    fn cni(&self, op: &str, net: &str, container: &str, extra: &[&str]) -> Output {
        let netns = self.path(container);
        let conf = self.path("conf");
        let cache = self.path("cache");
        let mut argv = vec![
            KENNEL,
            "cni",
            op,
            "--network",
            net,
            "--container-id",
            container,
        ];
        let (netns, conf, cache) = (
            netns.to_str().unwrap(),
            conf.to_str().unwrap(),
            cache.to_str().unwrap(),
        );
        argv.extend(["--netns", netns, "--conf-dir", conf, "--cache-dir", cache]);
        argv.extend(["--plugin-dir", PLUGINS]);
        argv.extend(extra);
        self.host(&argv)
    }

    /// `kennel cni add` that must succeed: its result.
    fn add(&self, net: &str, container: &str, extra: &[&str]) -> serde_json::Value {
        let out = self.cni("add", net, container, extra);
        assert!(out.status.success(), "cni add {container}: {}", text(&out));
        serde_json::from_slice(&out.stdout).expect("the result is JSON")
    }

    fn ok(&self, op: &str, net: &str, container: &str) {
        let out = self.cni(op, net, container, &[]);
        assert!(out.status.success(), "cni {op} {container}: {}", text(&out));
    }

    /// The veths in the host netns.
    fn veths(&self) -> Vec<String> {
        let out = self.host(&[BUSYBOX, "ip", "-o", "link", "show"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .filter(|n| n.starts_with("veth"))
            .map(str::to_string)
            .collect()
    }

    /// host-local's lease files (one per address) of network `net`.
    fn leases(&self, net: &str) -> Vec<String> {
        let Ok(dir) = fs::read_dir(self.path("ipam").join(net)) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(SUBNET))
            .collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for f in &self.netns {
            let _ = nix::mount::umount2(f, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// busybox APPLET ARGS in the container namespace `file`.
fn in_ns(file: &Path, argv: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net={}", file.display()))
        .args(["--", BUSYBOX])
        .args(argv)
        .output()
        .expect("nsenter")
}

/// The container's address as the ADD result names it (on eth0).
fn result_address(result: &serde_json::Value) -> String {
    let ifaces = result["interfaces"].as_array().expect("interfaces");
    let ip = result["ips"]
        .as_array()
        .expect("ips")
        .iter()
        .find(|ip| {
            let i = ip["interface"].as_u64().expect("interface index") as usize;
            ifaces[i]["name"] == "eth0"
        })
        .expect("an address on eth0");
    ip["address"].as_str().expect("address").to_string()
}

/// The addresses of eth0 in the container namespace `file`.
fn eth0_addresses(file: &Path) -> String {
    let out = in_ns(file, &["ip", "-o", "addr", "show", "eth0"]);
    assert!(out.status.success(), "ip addr show eth0: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nc -l -p PORT -e echo pong` in namespace `file` (kept until the returned child ends).
fn pong_server(file: &Path, port: u16) -> Child {
    Command::new("nsenter")
        .arg(format!("--net={}", file.display()))
        .args(["--", BUSYBOX, "nc", "-l", "-p", &port.to_string()])
        .args(["-e", BUSYBOX, "echo", "pong"])
        .stdout(Stdio::null())
        .spawn()
        .expect("nc -l")
}

/// Connects with `client` (a command ending in `nc IP PORT`) until it reads "pong" (the
/// server may not listen yet).
fn expect_pong(mut client: impl FnMut() -> Command) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let out = client().stdin(Stdio::null()).output().expect("nc client");
        if String::from_utf8_lossy(&out.stdout).contains("pong") {
            return;
        }
        assert!(Instant::now() < deadline, "no pong: {}", text(&out));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cni_add_gives_eth0_the_result_address_and_containers_talk() {
    if !can_run() {
        return;
    }
    let mut rig = Rig::new();
    // tuning sets eth0's MTU.
    let more = format!(r#"{PORTMAP_FIREWALL},{{"type":"tuning","mtu":1400}}"#);
    rig.write_conf(
        "net1.conflist",
        &conflist(rig.dir.path(), "net1", "1.0.0", &more),
    );
    let (a, b) = (rig.container("a"), rig.container("b"));
    let ra = rig.add("net1", "a", &[]);
    let rb = rig.add("net1", "b", &[]);
    let (ia, ib) = (result_address(&ra), result_address(&rb));
    assert!(ia.starts_with(SUBNET), "{ra}");
    assert_ne!(ia, ib);
    assert!(eth0_addresses(&a).contains(&ia), "{}", eth0_addresses(&a));
    assert!(eth0_addresses(&b).contains(&ib));
    let link = in_ns(&a, &["ip", "link", "show", "eth0"]);
    assert!(
        String::from_utf8_lossy(&link.stdout).contains("mtu 1400"),
        "{}",
        text(&link)
    );
    let ip_b = ib.split('/').next().unwrap().to_string();
    let ping = in_ns(&a, &["ping", "-c", "1", "-W", "5", &ip_b]);
    assert!(ping.status.success(), "ping a -> b: {}", text(&ping));
    let mut server = pong_server(&b, 7000);
    expect_pong(|| {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", a.display()))
            .args(["--", BUSYBOX, "nc", &ip_b, "7000"]);
        c
    });
    let _ = server.kill();
    let _ = server.wait();
    rig.ok("del", "net1", "a");
    rig.ok("del", "net1", "b");
}

#[test]
fn cni_check_passes_then_says_what_broke() {
    if !can_run() {
        return;
    }
    let mut rig = Rig::new();
    rig.write_conf(
        "net1.conflist",
        &conflist(rig.dir.path(), "net1", "1.0.0", PORTMAP_FIREWALL),
    );
    let c = rig.container("c");
    rig.add("net1", "c", &[]);
    rig.ok("check", "net1", "c");
    let del = in_ns(&c, &["ip", "link", "del", "eth0"]);
    assert!(del.status.success(), "{}", text(&del));
    let out = rig.cni("check", "net1", "c", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "CHECK passed without eth0: {}",
        text(&out)
    );
    assert!(
        err.contains("network net1 (") && err.contains("net1.conflist): plugin bridge: CHECK:"),
        "{err}"
    );
    assert!(err.contains("eth0"), "{err}");
    // CHECK of what was never added names the missing ADD.
    rig.container("d");
    let out = rig.cni("check", "net1", "d", &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no result of an ADD of container d"),
        "{}",
        text(&out)
    );
    rig.ok("del", "net1", "c");
}

#[test]
fn cni_del_removes_the_veth_and_the_lease_and_again_is_fine() {
    if !can_run() {
        return;
    }
    let mut rig = Rig::new();
    rig.write_conf(
        "net1.conflist",
        &conflist(rig.dir.path(), "net1", "1.0.0", PORTMAP_FIREWALL),
    );
    rig.container("c");
    let r = rig.add("net1", "c", &[]);
    let ip = result_address(&r);
    assert_eq!(rig.veths().len(), 1, "{:?}", rig.veths());
    assert_eq!(
        rig.leases("net1"),
        vec![ip.split('/').next().unwrap().to_string()]
    );
    assert!(rig.path("cache/net1/c/eth0.json").exists());
    rig.ok("del", "net1", "c");
    assert_eq!(rig.veths(), Vec::<String>::new());
    assert_eq!(rig.leases("net1"), Vec::<String>::new());
    assert!(!rig.path("cache/net1").exists(), "the cache record stays");
    rig.ok("del", "net1", "c");
    // Never added at all: nothing to do, no error.
    rig.ok("del", "net1", "never");
}

#[test]
fn cni_del_after_the_conflist_and_the_netns_are_gone_uses_the_cache() {
    if !can_run() {
        return;
    }
    let mut rig = Rig::new();
    rig.write_conf(
        "net1.conflist",
        &conflist(rig.dir.path(), "net1", "0.4.0", PORTMAP_FIREWALL),
    );
    rig.container("c");
    rig.add("net1", "c", &[]);
    assert_eq!(rig.leases("net1").len(), 1);
    fs::remove_file(rig.path("conf/net1.conflist")).expect("rm conflist");
    let out = rig.cni("add", "net1", "c", &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no CNI network named \"net1\""),
        "{}",
        text(&out)
    );
    // As after a crash: the container's namespace is gone too (unmounted, its file removed).
    let c = rig.path("c");
    nix::mount::umount2(&c, nix::mount::MntFlags::MNT_DETACH).expect("umount the netns");
    fs::remove_file(&c).expect("rm the netns file");
    rig.ok("del", "net1", "c");
    assert_eq!(rig.veths(), Vec::<String>::new());
    assert_eq!(rig.leases("net1"), Vec::<String>::new());
    assert!(!rig.path("cache/net1").exists());
}

#[test]
fn cni_args_reach_the_plugin() {
    if !can_run() {
        return;
    }
    let mut rig = Rig::new();
    // A single .conf (0.3.1) found by its "name", not its file name.
    let conf = format!(
        r#"{{"cniVersion":"0.3.1","name":"net2","type":"bridge","bridge":"kcni1","isGateway":true,
            "ipam":{{"type":"host-local","subnet":"{SUBNET}.0/24","dataDir":"{}"}}}}"#,
        rig.path("ipam").display()
    );
    rig.write_conf("10-other.conf", &conf);
    let c = rig.container("c");
    // IgnoreUnknown=1: the bridge plugin itself refuses args it does not know (IP is
    // host-local's), as Kubernetes runtimes know.
    let ip = format!("IP={SUBNET}.50");
    let r = rig.add("net2", "c", &["--arg", "IgnoreUnknown=1", "--arg", &ip]);
    assert_eq!(result_address(&r), format!("{SUBNET}.50/24"), "{r}");
    assert_eq!(r["cniVersion"], "1.0.0", "printed in the 1.0.0 shape");
    assert!(eth0_addresses(&c).contains(&format!("{SUBNET}.50/24")));
    // 0.3.1 has no CHECK.
    let out = rig.cni("check", "net2", "c", &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cniVersion 0.3.1 has no CHECK"),
        "{}",
        text(&out)
    );
    rig.ok("del", "net2", "c");
    assert_eq!(rig.leases("net2"), Vec::<String>::new());
}

#[test]
fn cni_missing_plugin_and_bad_conflist_are_named() {
    if !can_run() {
        return;
    }
    let mut rig = Rig::new();
    rig.write_conf(
        "net1.conflist",
        &conflist(
            rig.dir.path(),
            "net1",
            "1.0.0",
            r#",{"type":"nosuchplugin"}"#,
        ),
    );
    rig.container("c");
    let out = rig.cni("add", "net1", "c", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("net1.conflist): plugin \"nosuchplugin\" not found in /usr/lib/cni"),
        "{err}"
    );
    // The bridge's ADD was undone, the cache record removed.
    assert_eq!(rig.veths(), Vec::<String>::new());
    assert_eq!(rig.leases("net1"), Vec::<String>::new());
    assert!(!rig.path("cache/net1").exists());
    rig.write_conf(
        "bad.conflist",
        r#"{"cniVersion":"1.0.0","name":"bad","plugins":[{"type":"bridge"},{"bridge":"x"}]}"#,
    );
    let out = rig.cni("add", "bad", "c", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.conflist: field \"plugins[1].type\": missing"),
        "{err}"
    );
    // A plugin's own error (code, msg) comes with its name and the file.
    rig.write_conf(
        "net3.conflist",
        r#"{"cniVersion":"1.0.0","name":"net3","plugins":[{"type":"bridge","ipam":{"type":"host-local"}}]}"#,
    );
    let out = rig.cni("add", "net3", "c", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("net3.conflist): plugin bridge: ADD: error"),
        "{err}"
    );
}

#[test]
fn cni_portmap_publishes_a_port_to_the_host() {
    if !can_run() {
        return;
    }
    let mut rig = Rig::new();
    rig.write_conf(
        "net1.conflist",
        &conflist(rig.dir.path(), "net1", "1.0.0", PORTMAP_FIREWALL),
    );
    let c = rig.container("c");
    let caps = r#"{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}"#;
    rig.add("net1", "c", &["--capability-args", caps]);
    let mut server = pong_server(&c, 80);
    // The host's own address on the bridge (the gateway), port 8080.
    expect_pong(|| rig.host_cmd(&[BUSYBOX, "nc", &format!("{SUBNET}.1"), "8080"]));
    let _ = server.kill();
    let _ = server.wait();
    // And through 127.0.0.1 (portmap's "snat", on by default, with route_localnet).
    let mut server = pong_server(&c, 80);
    expect_pong(|| rig.host_cmd(&[BUSYBOX, "nc", "127.0.0.1", "8080"]));
    let _ = server.kill();
    let _ = server.wait();
    rig.ok("del", "net1", "c");
    let nat = rig.host(&["iptables", "-t", "nat", "-S"]);
    assert!(
        !String::from_utf8_lossy(&nat.stdout).contains("--to-destination"),
        "a DNAT rule stays: {}",
        text(&nat)
    );
}

/// What ADD + DEL of bridge + host-local + portmap costs, `kennel cni` process included
/// (printed, not asserted).
#[test]
fn cni_add_del_cost_is_printed() {
    if !can_run() {
        return;
    }
    let mut rig = Rig::new();
    let portmap = r#",{"type":"portmap","capabilities":{"portMappings":true}}"#;
    rig.write_conf(
        "net1.conflist",
        &conflist(rig.dir.path(), "net1", "1.0.0", portmap),
    );
    rig.container("c");
    let caps = r#"{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}"#;
    let (mut adds, mut dels) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        let t = Instant::now();
        rig.add("net1", "c", &["--capability-args", caps]);
        adds.push(t.elapsed());
        let t = Instant::now();
        rig.ok("del", "net1", "c");
        dels.push(t.elapsed());
    }
    adds.sort();
    dels.sort();
    let line = format!(
        "CNI bridge+host-local+portmap: ADD median {:?} (min {:?}), DEL median {:?} (min {:?}), 10 runs\n",
        adds[5], adds[0], dels[5], dels[0]
    );
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
