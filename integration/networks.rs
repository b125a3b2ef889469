//! Bridge networks (docs/networking.md), for real: kennel runs in a network namespace the
//! test made ([`Sandbox::with_net`]), where it makes its bridge, veths and the containers'
//! namespaces; the host's network is never touched. Traffic goes only between containers
//! of that namespace.

use std::fs;

use crate::ctr::Rig;
use crate::harness::Sandbox;

/// `ip -4 -o addr show eth0` inside, reduced to the address: `addr=10.89.0.2`.
const PRINT_ADDR: &str =
    "echo addr=$(ip -4 -o addr show eth0 | sed -n 's/.* inet \\([0-9.]*\\)\\/.*/\\1/p')";

/// Root, and `ip` (iproute2) for the test's own look into kennel's network namespace.
fn can_run() -> bool {
    if !crate::skip::need_root() {
        return false;
    }
    if !["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
    {
        crate::harness::skip(crate::harness::Missing::Provided, "needs iproute2 (ip)");
        return false;
    }
    true
}

/// The `kv-` veths in kennel's namespace.
fn veths(s: &Sandbox) -> Vec<String> {
    let out = s.in_net("ip -o link show");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with("kv-"))
        .collect()
}

/// The pinned namespaces (`STATE/netns/*`).
fn netns_files(s: &Sandbox) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(s.state.join("netns"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The leases of network `net`: unit -> address.
fn leases(s: &Sandbox, net: &str) -> serde_json::Map<String, serde_json::Value> {
    let text = s
        .read(&format!("state/networks/{net}/leases.json"))
        .unwrap_or_else(|| "{\"leases\":{}}".into());
    let v: serde_json::Value = serde_json::from_str(&text).expect("leases.json");
    v["leases"].as_object().cloned().unwrap_or_default()
}

/// The addresses a unit printed with [`PRINT_ADDR`], in order.
fn printed_addrs(r: &Rig, unit: &str, n: usize) -> Vec<String> {
    r.wait_stdout_prefix(unit, "addr=", n)
        .into_iter()
        .map(|l| l.trim_start_matches("addr=").to_string())
        .collect()
}

#[test]
fn two_containers_on_the_default_bridge_talk_by_address() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    r.sh_container(
        "web",
        &format!(
            "{PRINT_ADDR}; echo hello-from-web > /tmp/index.html; cat /etc/resolv.conf /etc/hosts; \
             echo started; exec httpd -f -p 80 -h /tmp"
        ),
        "network = \"bridge\"\n",
    );
    r.up();
    r.wait_started("web");
    let web = printed_addrs(&r, "web", 1).remove(0);
    assert!(web.starts_with("10.89."), "web's address: {web:?}");
    assert_eq!(leases(&r, "kennel")["web"], web.as_str());
    let st = r.status("web");
    assert_eq!(st["network"]["name"], "kennel", "{st}");
    assert_eq!(st["network"]["addresses"][0], web.as_str(), "{st}");
    let out = r.stdout("web");
    assert!(out.contains(&"search dns.kennel".to_string()), "{out:?}");
    assert!(out.contains(&"nameserver 10.89.0.1".to_string()), "{out:?}");
    assert!(out.contains(&format!("{web}\tweb")), "{out:?}");
    // The client is another container on the bridge, reaching web by its address.
    r.unit(
        "client",
        &format!(
            "[service]\ncommand = [\"/bin/sh\", \"-c\", \"{PRINT_ADDR}; printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc {web} 80\"]\n\
             type = \"oneshot\"\n[container]\nrootfs = [\"busybox\"]\nnetwork = \"bridge\"\n"
        )
        .replace('\\', "\\\\"),
    );
    r.ok(&["reload"]);
    r.wait_state("client", "exited");
    let out = r.stdout("client");
    assert!(
        out.contains(&"hello-from-web".to_string()),
        "{out:?}\n{}",
        r.daemon_output()
    );
    let client = printed_addrs(&r, "client", 1).remove(0);
    assert_ne!(client, web);
    // The client's run ended: its veth and namespace go (on a thread of the daemon's,
    // right after the exit), its lease stays.
    r.s.wait_for("the client's veth and namespace removed", || {
        veths(&r).len() == 1 && netns_files(&r) == ["web"]
    });
    assert_eq!(leases(&r, "kennel").len(), 2);
    // `kennel network inspect`: both leases, web running, client not.
    let text = r.ok(&["network", "inspect", "kennel", "--json"]);
    let n: serde_json::Value = serde_json::from_str(&text).expect("inspect json");
    assert_eq!(n["subnet"], "10.89.0.0/16", "{n}");
    assert_eq!(n["bridge"], "kennel0", "{n}");
    let l = n["leases"].as_array().expect("leases");
    let summary: Vec<(String, String, bool)> = l
        .iter()
        .map(|x| {
            (
                x["unit"].as_str().unwrap_or_default().to_string(),
                x["addresses"][0].as_str().unwrap_or_default().to_string(),
                x["running"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("client".to_string(), client, false),
            ("web".to_string(), web, true)
        ]
    );
    let ls = r.ok(&["network", "ls"]);
    assert!(
        ls.lines().any(|l| l.starts_with("kennel ")
            && l.contains("10.89.0.0/16")
            && l.contains("kennel0")),
        "{ls}"
    );
    let out = r.kennel(&["network", "inspect", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown network \"nope\""),
        "{out:?}"
    );
}

/// A unit keeps its address across its restarts and kennel's, even after a `kill -9` of
/// kennel; what that crash left (the pinned namespace files, a veth of kennel's, in either
/// of a unit's two slots: `UNIT` and `UNIT+1`, one run the one, the next the other) is
/// removed when kennel starts again.
#[test]
fn addresses_are_stable_across_restarts_and_a_crash_leaves_nothing() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    let script = format!("{PRINT_ADDR}; echo started; exec sleep 1000");
    r.sh_container("svc", &script, "network = \"bridge\"\n");
    r.sh_container("other", &script, "network = \"bridge\"\n");
    r.up();
    r.wait_started("svc");
    r.wait_started("other");
    let first = printed_addrs(&r, "svc", 1).remove(0);
    r.ok(&["restart", "svc"]);
    let addrs = printed_addrs(&r, "svc", 2);
    assert_eq!(addrs, [first.clone(), first.clone()]);
    // The restart has the other slot; the first run's veth and namespace go meanwhile.
    r.s.wait_for("the first run's veth and namespace removed", || {
        veths(&r).len() == 2 && netns_files(&r) == ["other", "svc+1"]
    });

    r.signal_daemon(libc::SIGKILL);
    r.wait_exit();
    // The files stay after a crash; so would the veths if kennel's mount namespace had
    // outlived it (here it ended with kennel, and the containers' namespaces with it): a
    // unit "ghost" is made to stand for them, its namespace file and its veth (named as
    // kennel names it: net/bridge.rs checks the name). A kv- veth of no namespace file
    // here is another kennel's and stays.
    assert_eq!(netns_files(&r), ["other", "svc+1"]);
    fs::write(r.state.join("netns/ghost"), "").unwrap();
    fs::write(r.state.join("netns/ghost+1"), "").unwrap();
    for (name, peer) in [
        ("kv-bff88ee6fed0", "kvtest-peer"),
        ("kv-7453b50db710", "kvtest-peer1"),
        ("kv-0123456789ab", "kvtest-other"),
    ] {
        let out = r.in_net(&format!("ip link add {name} type veth peer name {peer}"));
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(veths(&r).len(), 3, "{:?}", veths(&r));

    r.up();
    let addrs = printed_addrs(&r, "svc", 3);
    assert_eq!(addrs[2], first, "{addrs:?}");
    r.wait_state("other", "up");
    let left = veths(&r);
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(!left.contains(&"kv-bff88ee6fed0".to_string()), "{left:?}");
    assert!(!left.contains(&"kv-7453b50db710".to_string()), "{left:?}");
    assert!(left.contains(&"kv-0123456789ab".to_string()), "{left:?}");
    assert_eq!(netns_files(&r), ["other", "svc"]);
    let l = leases(&r, "kennel");
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l["svc"], first.as_str());
    let out = r.daemon_output();
    assert!(out.contains("removed network leftovers"), "{out}");
}

#[test]
fn a_static_address_is_used_and_kept_out_of_the_pool() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    let script = format!("{PRINT_ADDR}; echo started; exec sleep 1000");
    // `a` sorts first and would get 10.89.0.2 if the static address were not reserved.
    r.sh_container("a", &script, "network = \"bridge\"\n");
    r.sh_container(
        "b",
        &script,
        "network = \"bridge\"\naddress = \"10.89.0.2\"\n",
    );
    r.up();
    r.wait_started("a");
    r.wait_started("b");
    assert_eq!(printed_addrs(&r, "b", 1), ["10.89.0.2"]);
    assert_eq!(printed_addrs(&r, "a", 1), ["10.89.0.3"]);
}

/// 1,000 start/stop cycles of a container on the bridge, with a published port and an
/// alias, leave no veth, no namespace, no nftables rule, no name in kennel's DNS and one
/// lease, released when the unit is removed.
#[test]
fn start_stop_cycles_leave_nothing_behind() {
    if !can_run_nft() {
        return;
    }
    let r = Rig::with_net();
    r.unit(
        "once",
        "[service]\ncommand = [\"/bin/true\"]\ntype = \"oneshot\"\n[container]\nrootfs = [\"busybox\"]\nnetwork = \"bridge\"\nports = [\"18080:80\"]\naliases = [\"oncealias\"]\n",
    );
    r.sh_container(
        "keep",
        "echo started; exec sleep 1000",
        "network = \"bridge\"\n",
    );
    r.up();
    r.wait_started("keep");
    r.wait_state("once", "exited");
    for _ in 0..1000 {
        r.ok(&["start", "once"]);
    }
    // The last run's veth and namespace go right after its exit, on a thread of their own.
    r.s.wait_for("once's veth and namespace removed", || {
        veths(&r).len() == 1 && netns_files(&r) == ["keep"]
    });
    assert_eq!(leases(&r, "kennel").len(), 2);
    let rules = nft_rules(&r);
    assert!(!rules.contains("unit=once"), "{rules}");
    // The server answers (keep's own name), but no longer for once.
    let out = r.exec(&["keep", "nslookup", "keep"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Address: 10.89."),
        "{out:?}"
    );
    for name in ["once", "oncealias"] {
        let out = r.exec(&["keep", "nslookup", name]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("Address: 10.89."), "{name}: {out:?}");
    }
    r.ok(&["stop", "keep"]);
    r.s.wait_for("keep's veth and namespace removed", || {
        veths(&r).is_empty() && netns_files(&r).is_empty()
    });
    // A unit removed from the set gives its lease back.
    r.remove_unit("once");
    r.ok(&["reload"]);
    let l = leases(&r, "kennel");
    assert_eq!(l.keys().collect::<Vec<_>>(), ["keep"]);
}

#[test]
fn check_reports_network_problems_with_positions() {
    let s = Sandbox::new();
    let nets = s.path("networks");
    fs::create_dir_all(&nets).unwrap();
    fs::write(nets.join("back.toml"), "subnet = \"10.90.0.0/24\"\n").unwrap();
    fs::write(nets.join("bad.toml"), "subnet = \"10.91.0.0/33\"\n").unwrap();
    let unit = |c: &str| {
        format!("[service]\ncommand = [\"/bin/true\"]\n[container]\nrootfs = [\"busybox\"]\n{c}")
    };
    s.unit(
        "a",
        &unit("network = \"bridge:back\"\naddress = \"10.90.0.9\"\nports = [\"8080:80\"]\n"),
    );
    s.unit(
        "b",
        &unit(
            "network = \"bridge:back\"\naddress = \"10.90.0.9\"\nports = [\"127.0.0.1:8080:81\"]\n",
        ),
    );
    s.unit("c", &unit("network = \"bridge:nope\"\n"));
    s.unit("d", &unit("network = \"host\"\nports = [\"1:1\"]\n"));
    let out = std::process::Command::new(crate::harness::KENNEL)
        .arg("check")
        .arg("--networks")
        .arg(&nets)
        .arg(&s.units)
        .output()
        .expect("run kennel check");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let (n, u) = (nets.display(), s.units.display());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("{n}/bad.toml:1:10: subnet: invalid subnet \"10.91.0.0/33\": the prefix must be 8..=30"),
            format!("{u}/b.toml:6:11: container.address: 10.90.0.9 is already unit \"a\"'s on network \"back\"; pick another"),
            format!("{u}/b.toml:7:10: container.ports: host port 8080/tcp is already published by unit \"a\" (8080:80/tcp); pick another host port"),
            format!("{u}/c.toml:5:11: container.network: unknown network \"nope\"; define it in a file nope.toml of the networks directory (kennel --networks)"),
            format!("{u}/d.toml:6:9: container.ports: needs network = \"bridge\" or \"bridge:NAME\" (the container has no address of its own on a network kennel manages)"),
        ]
    );
}

/// A network of its own (`--networks`): its subnet, an IPv6 subnet beside it, its mtu and
/// bridge name; two containers talk over IPv6.
#[test]
fn a_network_of_its_own_with_ipv6_and_an_mtu() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    let nets = r.path("networks");
    fs::create_dir_all(&nets).unwrap();
    fs::write(
        nets.join("back.toml"),
        "subnet = \"10.90.0.0/24\"\nsubnet6 = \"fd89:90::/64\"\nmtu = 1400\nbridge = \"br-back\"\n",
    )
    .unwrap();
    r.sh_container(
        "web",
        "ip -o addr show eth0; ip -o link show eth0; echo hello-over-v6 > /tmp/index.html; \
         echo started; exec httpd -f -p 80 -h /tmp",
        "network = \"bridge:back\"\n",
    );
    r.s.up_with(&[
        "--cgroup-parent",
        &r.cgroup.name,
        "--networks",
        &nets.display().to_string(),
    ]);
    r.wait_started("web");
    let out = r.stdout("web").join("\n");
    assert!(out.contains("inet 10.90.0.2/24"), "{out}");
    assert!(out.contains("inet6 fd89:90::2/64"), "{out}");
    assert!(out.contains("mtu 1400"), "{out}");
    let host = String::from_utf8_lossy(&r.in_net("ip -o addr show br-back").stdout).to_string();
    assert!(
        host.contains("10.90.0.1/24") && host.contains("fd89:90::1/64"),
        "{host}"
    );
    r.unit(
        "client",
        "[service]\ncommand = [\"/bin/sh\", \"-c\", \"printf 'GET /index.html HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc fd89:90::2 80\"]\n\
         type = \"oneshot\"\n[container]\nrootfs = [\"busybox\"]\nnetwork = \"bridge:back\"\n",
    );
    r.ok(&["reload"]);
    r.wait_state("client", "exited");
    let out = r.stdout("client");
    assert!(
        out.contains(&"hello-over-v6".to_string()),
        "{out:?}\n{}",
        r.daemon_output()
    );
    assert!(r.path("state/networks/back/leases.json").exists());
    // The network's file removed (and its units): at the reload, its bridge and leases go.
    r.remove_unit("web");
    r.remove_unit("client");
    fs::remove_file(nets.join("back.toml")).unwrap();
    r.ok(&["reload"]);
    r.wait_for("the bridge of the removed network to go", || {
        !r.in_net("ip link show br-back").status.success()
    });
    assert!(!r.path("state/networks/back").exists());
}

/// `network = "unit:NAME"` joins a bridge container's namespace: same `eth0`, same address.
#[test]
fn a_unit_can_join_a_bridge_containers_network() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    r.sh_container(
        "web",
        &format!("{PRINT_ADDR}; echo started; exec sleep 1000"),
        "network = \"bridge\"\n",
    );
    r.sh_container(
        "side",
        &format!("{PRINT_ADDR}; echo started; exec sleep 1000"),
        "network = \"unit:web\"\n",
    );
    r.up();
    r.wait_started("side");
    let web = printed_addrs(&r, "web", 1);
    assert_eq!(printed_addrs(&r, "side", 1), web);
    // Only web has a namespace and a veth of its own.
    assert_eq!(netns_files(&r), ["web"]);
    assert_eq!(veths(&r).len(), 1);
}

/// A start that fails after its network was made (a seccomp profile that is not there,
/// read after the network; a command not found, in the helper) leaves no namespace and no
/// veth; the lease stays.
#[test]
fn a_failed_start_leaves_no_veth_or_namespace() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    r.unit(
        "profile",
        "[service]\ncommand = [\"/bin/true\"]\n[restart]\npolicy = \"no\"\n[container]\nrootfs = [\"busybox\"]\nnetwork = \"bridge\"\nseccomp = \"/nonexistent/profile.json\"\n",
    );
    r.unit(
        "nocmd",
        "[service]\ncommand = [\"/bin/no-such-command\"]\n[restart]\npolicy = \"no\"\n[container]\nrootfs = [\"busybox\"]\nnetwork = \"bridge\"\n",
    );
    r.up();
    r.wait_state("profile", "failed");
    r.wait_state("nocmd", "failed");
    assert!(
        r.detail("profile").contains("seccomp"),
        "{}",
        r.detail("profile")
    );
    r.s.wait_for("the failed starts' veths and namespaces removed", || {
        veths(&r).is_empty() && netns_files(&r).is_empty()
    });
    let l = leases(&r, "kennel");
    assert_eq!(l.len(), 2, "{l:?}");
}

/// The bridge is made once per network and not checked again at each start; one removed
/// by hand (`ip link del kennel0`) is noticed at the next start and made again, with its
/// address, and the container on it has its address and route.
#[test]
fn a_bridge_removed_by_hand_is_made_again_at_the_next_start() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    r.unit(
        "once",
        "[service]\ncommand = [\"/bin/sh\", \"-c\", \"ip route | grep -q 'default via 10.89.0.1'\"]\ntype = \"oneshot\"\n[restart]\npolicy = \"no\"\n[container]\nrootfs = [\"busybox\"]\nnetwork = \"bridge\"\n",
    );
    r.up();
    r.wait_state("once", "exited");
    r.ok(&["start", "once"]);
    let out = r.in_net("ip link del kennel0");
    assert!(out.status.success(), "{out:?}");
    assert!(!r.in_net("ip link show kennel0").status.success());
    r.ok(&["start", "once"]);
    r.wait_state("once", "exited");
    let out = r.in_net("ip -4 -o addr show kennel0");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("10.89.0.1/"), "{out:?}");
    r.s.wait_for("no veth or namespace left", || {
        veths(&r).is_empty() && netns_files(&r).is_empty()
    });
}

/// "Another host": a network namespace the test makes, joined to kennel's by a veth
/// `kt-host` (192.0.2.1/24, kennel's side: a host address) / `kt-other` (192.0.2.2/24).
/// Its holder process is killed (by its pid) when dropped; the namespace and the veth go
/// with it.
struct OtherHost {
    holder: std::process::Child,
}

impl OtherHost {
    const HOST: &'static str = "192.0.2.1";
    const OTHER: &'static str = "192.0.2.2";

    fn new(s: &Sandbox) -> OtherHost {
        let holder = std::process::Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec sleep infinity",
            ])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn unshare --net");
        let o = OtherHost { holder };
        let ours = fs::read_link("/proc/self/ns/net").unwrap();
        let pid = o.holder.id();
        s.wait_for("the other host's namespace", || {
            fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|n| n != ours)
        });
        let out = s.in_net(&format!(
            "ip link add kt-host type veth peer name kt-other netns /proc/{pid}/ns/net && \
             ip addr add {}/24 dev kt-host && ip link set kt-host up",
            Self::HOST
        ));
        assert!(out.status.success(), "{out:?}");
        let out = o.run(&format!(
            "ip addr add {}/24 dev kt-other && ip link set kt-other up",
            Self::OTHER
        ));
        assert!(out.status.success(), "{out:?}");
        o
    }

    /// `sh -c script` in the other host's namespace.
    fn run(&self, script: &str) -> std::process::Output {
        std::process::Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.holder.id()))
            .args(["--", "sh", "-c", script])
            .output()
            .expect("nsenter")
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A child of the test's, killed (by its pid) when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test layer of the published-port test: `/bin/udpecho` (integration/networks/
/// udpecho.c, `gcc -static`), built once per test process under the target's temporary
/// directory. Static, so the test's own namespaces run it too.
fn udpecho_layer() -> &'static std::path::Path {
    static LAYER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    LAYER.get_or_init(|| crate::ctr::c_layer("udpecho-layer", "networks/udpecho.c", "udpecho"))
}

/// Runs `sh -c SCRIPT` somewhere (a container, a namespace) and returns its output.
type Runner<'a> = dyn Fn(&str) -> std::process::Output + 'a;

/// `BIN ask ADDR PORT` run by `run` (BIN: udpecho, its path outside a container): the
/// answer ("NAME:PORT<-SOURCE"), or the error.
fn udp_ask(run: &Runner<'_>, bin: &str, addr: &str, port: u16) -> String {
    let out = run(&format!("{bin} ask {addr} {port} 2>&1"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `curl` of `url` (5 s at most) run by `run`; its body or the error.
fn fetch(run: impl Fn(&str) -> std::process::Output, url: &str) -> String {
    // curl: Debian's busybox wget crashes with -T.
    let out = run(&format!("curl -s -m 5 {url} 2>&1"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// kennel's nftables rules (`nft -j list table inet kennel` in its namespace), as text.
fn nft_rules(s: &Sandbox) -> String {
    let out = s.in_net("nft -j list table inet kennel 2>&1");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn can_run_nft() -> bool {
    if !can_run() {
        return false;
    }
    if !std::path::Path::new("/usr/sbin/nft").exists() {
        crate::harness::skip(crate::harness::Missing::Provided, "needs nftables (nft)");
        return false;
    }
    true
}

/// Names on a network: units resolve each other by name and alias (kennel's DNS server
/// on the gateway, over UDP and TCP), a unit started later too; units on another network
/// neither resolve nor reach them; an internal network has no way out but has names.
#[test]
fn units_find_each_other_by_name_on_their_network_only() {
    if !can_run_nft() {
        return;
    }
    let r = Rig::with_net();
    let other = OtherHost::new(&r.s);
    let other_web = other.run("mkdir -p /tmp/kt && echo from-other > /tmp/kt/x; exit 0");
    assert!(other_web.status.success());
    let nets = r.path("networks");
    fs::create_dir_all(&nets).unwrap();
    fs::write(nets.join("back.toml"), "subnet = \"10.91.0.0/24\"\n").unwrap();
    fs::write(
        nets.join("priv.toml"),
        "subnet = \"10.92.0.0/24\"\ninternal = true\n",
    )
    .unwrap();
    let serve = "echo hello-by-name > /tmp/index.html; echo started; exec httpd -f -p 80 -h /tmp";
    r.sh_container(
        "web",
        &format!("{PRINT_ADDR}; {serve}"),
        "network = \"bridge\"\naliases = [\"db\"]\n",
    );
    r.sh_container(
        "client",
        "echo started; exec sleep 1000",
        "network = \"bridge\"\n",
    );
    r.sh_container(
        "stranger",
        "echo started; exec sleep 1000",
        "network = \"bridge:back\"\n",
    );
    r.sh_container(
        "p1",
        &format!("{PRINT_ADDR}; {serve}"),
        "network = \"bridge:priv\"\n",
    );
    r.sh_container(
        "p2",
        "echo started; exec sleep 1000",
        "network = \"bridge:priv\"\n",
    );
    r.s.up_with(&[
        "--cgroup-parent",
        &r.cgroup.name,
        "--networks",
        &nets.display().to_string(),
    ]);
    for u in ["web", "client", "stranger", "p1", "p2"] {
        r.wait_started(u);
    }
    let web = printed_addrs(&r, "web", 1).remove(0);
    // By name and alias, bare and under dns.kennel (nslookup: UDP).
    for name in ["web", "db", "web.dns.kennel", "DB.dns.kennel"] {
        let out = r.exec(&["client", "nslookup", name]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("Address: {web}")),
            "{name}: {out:?}\n{}",
            r.daemon_output()
        );
    }
    // TCP to the name.
    let body = r.exec_ok(&[
        "client",
        "timeout",
        "5",
        "wget",
        "-q",
        "-O",
        "-",
        "http://db/index.html",
    ]);
    assert_eq!(body, "hello-by-name\n");
    // An unknown name of the domain: NXDOMAIN.
    let out = r.exec(&["client", "nslookup", "nobody.dns.kennel"]);
    assert!(!out.status.success(), "{out:?}");
    // A unit started later is resolved.
    r.sh_container(
        "late",
        &format!("{PRINT_ADDR}; echo started; exec sleep 1000"),
        "network = \"bridge\"\n",
    );
    r.ok(&["reload"]);
    r.wait_started("late");
    let late = printed_addrs(&r, "late", 1).remove(0);
    let text = r.exec_ok(&["client", "nslookup", "late"]);
    assert!(text.contains(&format!("Address: {late}")), "{text}");
    // Another network: neither the names nor the address.
    let out = r.exec(&["stranger", "nslookup", "web.dns.kennel"]);
    assert!(!out.status.success(), "{out:?}");
    let out = r.exec(&[
        "stranger",
        "timeout",
        "3",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{web}/index.html"),
    ]);
    assert!(!out.status.success(), "{out:?}");
    // The internal network: names and neighbours, but no way out.
    let p1 = printed_addrs(&r, "p1", 1).remove(0);
    let text = r.exec_ok(&["p2", "nslookup", "p1"]);
    assert!(text.contains(&format!("Address: {p1}")), "{text}");
    assert_eq!(
        r.exec_ok(&[
            "p2",
            "timeout",
            "5",
            "wget",
            "-q",
            "-O",
            "-",
            "http://p1/index.html"
        ]),
        "hello-by-name\n"
    );
    let out = other.run("busybox httpd -p 8000 -h /tmp/kt");
    assert!(out.status.success(), "{out:?}");
    let url = format!("http://{}:8000/x", OtherHost::OTHER);
    assert_eq!(
        r.exec_ok(&["client", "timeout", "5", "wget", "-q", "-O", "-", &url]),
        "from-other\n"
    );
    let out = r.exec(&["p2", "timeout", "3", "wget", "-q", "-O", "-", &url]);
    assert!(!out.status.success(), "{out:?}");
    // Stopped: its name is gone.
    r.ok(&["stop", "web"]);
    r.wait_state("web", "inactive");
    let out = r.exec(&["client", "nslookup", "db.dns.kennel"]);
    assert!(!out.status.success(), "{out:?}");
}

/// Published ports, TCP and UDP: from another host, from kennel's namespace through
/// 127.0.0.1 and the host address, hairpin (a container to its own port and to a
/// neighbour's through the host address), a range (same ports and shifted); a port taken
/// on the host fails the start; no rule of a unit is left after its stop, or after a
/// `kill -9` of kennel and its next start.
#[test]
fn published_ports_are_reachable_and_cleaned_up() {
    if !can_run_nft() {
        return;
    }
    let r = Rig::with_net();
    let other = OtherHost::new(&r.s);
    let layer = udpecho_layer().display().to_string();
    r.unit(
        "web",
        &format!(
            "[service]\ncommand = [\"/bin/sh\", \"-c\", \"{PRINT_ADDR}; echo published > /tmp/index.html; \
             httpd -p 9000 -h /tmp; httpd -p 9001 -h /tmp; udpecho serve 53 web & \
             echo started; exec httpd -f -p 80 -h /tmp\"]\n\
             [container]\nrootfs = [\"busybox\", \"{layer}\"]\nnetwork = \"bridge\"\n\
             ports = [\"8080:80\", \"9000-9001:9000-9001\", \"9100-9101:9000-9001\", \"5353:53/udp\"]\n"
        )
        .replace('\\', "\\\\"),
    );
    // A neighbour on the same network, publishing nothing.
    r.unit(
        "peer",
        &format!(
            "[service]\ncommand = [\"/bin/sh\", \"-c\", \"{PRINT_ADDR}; echo started; exec sleep 1000\"]\n\
             [container]\nrootfs = [\"busybox\", \"{layer}\"]\nnetwork = \"bridge\"\n"
        )
        .replace('\\', "\\\\"),
    );
    // A port taken by something else in kennel's namespace.
    let ns = r.s.netns().unwrap();
    let squatter = Killed(
        std::process::Command::new("nsenter")
            .arg(format!("--net={ns}"))
            .args(["--", "busybox", "nc", "-l", "-p", "7070"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    r.s.wait_for("the squatter's port", || {
        String::from_utf8_lossy(&r.in_net("cat /proc/net/tcp /proc/net/tcp6").stdout)
            .contains(":1B9E ")
    });
    r.unit(
        "taken",
        "[service]\ncommand = [\"/bin/true\"]\n[restart]\npolicy = \"no\"\n[container]\nrootfs = [\"busybox\"]\nnetwork = \"bridge\"\nports = [\"7070:80\"]\n",
    );
    r.up();
    r.wait_started("web");
    r.wait_started("peer");
    let web = printed_addrs(&r, "web", 1).remove(0);
    let peer = printed_addrs(&r, "peer", 1).remove(0);
    let h = OtherHost::HOST;
    for url in [
        format!("http://{h}:8080/index.html"),
        format!("http://{h}:9001/index.html"),
        format!("http://{h}:9100/index.html"),
        format!("http://{h}:9101/index.html"),
    ] {
        assert_eq!(
            fetch(|s| other.run(s), &url),
            "published\n",
            "{url}\n{}",
            nft_rules(&r)
        );
    }
    for url in [
        "http://127.0.0.1:8080/index.html".to_string(),
        format!("http://{h}:8080/index.html"),
        "http://127.0.0.1:9000/index.html".to_string(),
    ] {
        assert_eq!(fetch(|s| r.in_net(s), &url), "published\n", "{url}");
    }
    // Hairpin: web reaches its own published port through the host address, and so
    // does its neighbour; the connection comes from the gateway (masqueraded, so that the
    // reply goes back through the host to be un-NATed).
    let in_web = |script: &str| r.exec(&["web", "sh", "-c", script]);
    let in_peer = |script: &str| r.exec(&["peer", "sh", "-c", script]);
    let runs: [(&str, &Runner<'_>); 2] = [("web", &in_web), ("peer", &in_peer)];
    for (who, run) in runs {
        for url in [
            format!("http://{h}:8080/index.html"),
            format!("http://{h}:9101/index.html"),
        ] {
            let got = run(&format!("timeout 5 wget -q -O - {url} 2>&1"));
            assert_eq!(
                String::from_utf8_lossy(&got.stdout),
                "published\n",
                "{who} -> {url}: {got:?}\n{}",
                nft_rules(&r)
            );
        }
    }
    // UDP: from the other host (its own address kept), from kennel's namespace through
    // 127.0.0.1 (masqueraded to the gateway) and the host address, hairpin from web
    // itself and from its neighbour (masqueraded to the gateway).
    let bin = udpecho_layer().join("bin/udpecho").display().to_string();
    assert_eq!(
        udp_ask(&|s| other.run(s), &bin, h, 5353),
        format!("web:53<-{}", OtherHost::OTHER),
        "{}",
        nft_rules(&r)
    );
    let in_kennel = |s: &str| r.in_net(s);
    assert_eq!(
        udp_ask(&in_kennel, &bin, "127.0.0.1", 5353),
        "web:53<-10.89.0.1"
    );
    assert_eq!(udp_ask(&in_kennel, &bin, h, 5353), format!("web:53<-{h}"));
    assert_eq!(udp_ask(&in_web, "udpecho", h, 5353), "web:53<-10.89.0.1");
    assert_eq!(udp_ask(&in_peer, "udpecho", h, 5353), "web:53<-10.89.0.1");
    // Directly, by its address, a neighbour is not masqueraded.
    assert_eq!(
        udp_ask(&in_peer, "udpecho", &web, 53),
        format!("web:53<-{peer}")
    );
    // Without br_netfilter (a host that has not loaded it; the sysctl is per network
    // namespace, this is kennel's): the hairpin is routed by the host rather than bridged,
    // and works the same.
    let brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if r.in_net(&format!("test -e {brnf}")).status.success() {
        let out = r.in_net(&format!("echo 0 > {brnf}"));
        assert!(out.status.success(), "{out:?}");
        for run in [&in_web as &Runner<'_>, &in_peer] {
            let got = run(&format!(
                "timeout 5 wget -q -O - http://{h}:8080/index.html 2>&1"
            ));
            assert_eq!(
                String::from_utf8_lossy(&got.stdout),
                "published\n",
                "{got:?}"
            );
            assert_eq!(udp_ask(run, "udpecho", h, 5353), "web:53<-10.89.0.1");
        }
        let out = r.in_net(&format!("echo 1 > {brnf}"));
        assert!(out.status.success(), "{out:?}");
    }
    // Held while it runs: nobody else can listen on a published port.
    let out = r.in_net("busybox nc -l -p 8080 -w 1 2>&1");
    assert!(!out.status.success(), "{out:?}");
    // The taken port.
    r.wait_state("taken", "failed");
    let detail = r.detail("taken");
    assert!(
        detail.contains("unit taken: published port 7070/tcp is taken on this host"),
        "{detail}"
    );
    assert!(!nft_rules(&r).contains("unit=taken"), "{}", nft_rules(&r));
    drop(squatter);
    // Stopped: no rule, the port is free.
    assert!(
        nft_rules(&r).contains("kennel unit=web"),
        "{}",
        nft_rules(&r)
    );
    r.ok(&["stop", "web"]);
    r.wait_state("web", "inactive");
    assert!(!nft_rules(&r).contains("unit=web"), "{}", nft_rules(&r));
    assert_ne!(
        fetch(|s| other.run(s), &format!("http://{h}:8080/index.html")),
        "published\n"
    );
    // After a kill -9 with web running: its rules stay until kennel's next start, which
    // removes them (web is no unit any more).
    r.ok(&["start", "web"]);
    r.wait_stdout("web", "started", 2);
    r.wait_state("web", "up");
    assert!(
        nft_rules(&r).contains("kennel unit=web"),
        "{}",
        nft_rules(&r)
    );
    r.signal_daemon(libc::SIGKILL);
    r.wait_exit();
    assert!(
        nft_rules(&r).contains("kennel unit=web"),
        "{}",
        nft_rules(&r)
    );
    r.s.remove_unit("web");
    r.s.remove_unit("taken");
    r.up();
    r.s.wait_for("the leftover rules removed", || {
        !nft_rules(&r).contains("unit=web")
    });
    let out = r.daemon_output();
    assert!(
        out.contains("removed firewall leftovers: ports of web"),
        "{out}"
    );
}

/// What a bridge network adds to a oneshot's `kennel start` (the reply comes once the
/// oneshot has exited), beside the same oneshot with `network = "none"`, interleaved.
/// The times are printed (`--nocapture`), never asserted: a benchmark is no test assert
/// (bench/net.py measures it with the release build). What is asserted: every start
/// succeeds, the bridge unit's address stays the same, and no veth or namespace is left.
#[test]
fn a_bridge_oneshot_start_timed_beside_none() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    let oneshot = |name: &str, network: &str| {
        r.unit(
            name,
            &format!(
                "[service]\ncommand = [\"/bin/true\"]\ntype = \"oneshot\"\n[container]\nrootfs = [\"busybox\"]\nnetwork = \"{network}\"\n"
            ),
        );
    };
    oneshot("none1", "none");
    oneshot("bridge1", "bridge");
    r.up();
    r.wait_state("none1", "exited");
    r.wait_state("bridge1", "exited");
    let rounds = 40;
    let (mut none, mut bridge) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for (unit, times) in [("none1", &mut none), ("bridge1", &mut bridge)] {
            // The client run directly (the harness's runner polls its child).
            let t = std::time::Instant::now();
            let out = std::process::Command::new(crate::harness::KENNEL)
                .args(["start", unit])
                .env("KENNEL_SOCKET", &r.socket)
                .output()
                .expect("run kennel start");
            times.push(t.elapsed());
            assert!(out.status.success(), "{out:?}\n{}", r.daemon_output());
        }
    }
    let pct = |v: &mut Vec<std::time::Duration>, p: usize| {
        v.sort();
        v[(v.len() - 1) * p / 100].as_secs_f64() * 1000.0
    };
    let (n50, b50) = (pct(&mut none, 50), pct(&mut bridge, 50));
    println!(
        "kennel start of a oneshot, {rounds} rounds (ms): none p10 {:.2} p50 {n50:.2} p90 {:.2}; \
         bridge p10 {:.2} p50 {b50:.2} p90 {:.2}; bridge - none at p50: {:.2}",
        pct(&mut none, 10),
        pct(&mut none, 90),
        pct(&mut bridge, 10),
        pct(&mut bridge, 90),
        b50 - n50
    );
    // The attach itself (lease, namespace, veth), from the daemon's debug log: `network
    // kennel: 10.89.0.2 in 1.234ms`.
    let mut attach: Vec<std::time::Duration> = r
        .daemon_output()
        .lines()
        .filter(|l| l.contains("network kennel: 10.89."))
        .filter_map(|l| l.rsplit(" in ").next()?.split_whitespace().next())
        .filter_map(|d| {
            let (n, unit) = match d.find(|c: char| c.is_alphabetic() || c == 'µ') {
                Some(i) => d.split_at(i),
                None => return None,
            };
            let n: f64 = n.parse().ok()?;
            let ms = match unit.trim() {
                "ms" => n,
                "µs" => n / 1000.0,
                "s" => n * 1000.0,
                _ => return None,
            };
            Some(std::time::Duration::from_secs_f64(ms / 1000.0))
        })
        .collect();
    if attach.is_empty() {
        let out = r.daemon_output();
        let sample = out.lines().find(|l| l.contains("network kennel"));
        println!("no attach times in the daemon's log: {sample:?}");
    } else {
        println!(
            "the attach in the daemon ({} of them, ms): p10 {:.2} p50 {:.2} p90 {:.2}",
            attach.len(),
            pct(&mut attach, 10),
            pct(&mut attach, 50),
            pct(&mut attach, 90)
        );
    }
    assert_eq!(leases(&r, "kennel").len(), 1);
    r.s.wait_for("no veth or namespace left", || {
        veths(&r).is_empty() && netns_files(&r).is_empty()
    });
}

/// A real server from Debian's packages (lighttpd, in a `debootstrap --include=lighttpd`
/// Debian 12 rootfs, run as Debian configures it) on the bridge, reached from the "other
/// host" through a published port.
#[test]
fn a_debian_lighttpd_is_reached_through_a_published_port() {
    if !can_run_nft() {
        return;
    }
    let Some(tar) = crate::podman_images::cached_debootstrap(
        "debian-bookworm-minbase-lighttpd.tar",
        &["lighttpd"],
    ) else {
        return;
    };
    let r = Rig::with_net();
    let other = OtherHost::new(&r.s);
    let root = r.path("debian");
    fs::create_dir_all(&root).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "-xf"])
        .arg(&tar)
        .output()
        .expect("run tar");
    assert!(out.status.success(), "tar -xf {}: {out:?}", tar.display());
    let www = r.path("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("index.html"), "from debian's lighttpd\n").unwrap();
    r.unit(
        "web",
        &format!(
            "[service]\ncommand = [\"/usr/sbin/lighttpd\", \"-D\", \"-f\", \"/etc/lighttpd/lighttpd.conf\"]\n\
             [container]\nrootfs = [\"{}\"]\nnetwork = \"bridge\"\nports = [\"8080:80\"]\n\
             volumes = [{{ source = \"{}\", target = \"/var/www/html\", read_only = true }}]\n",
            root.display(),
            www.display()
        ),
    );
    r.up();
    r.wait_state("web", "up");
    let url = format!("http://{}:8080/index.html", OtherHost::HOST);
    let mut got = String::new();
    for _ in 0..100 {
        got = fetch(|s| other.run(s), &url);
        if got == "from debian's lighttpd\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        got,
        "from debian's lighttpd\n",
        "{url}\n{}\n{}",
        nft_rules(&r),
        r.daemon_output()
    );
    r.ok(&["stop", "web"]);
    r.wait_state("web", "inactive");
    assert!(!nft_rules(&r).contains("unit=web"), "{}", nft_rules(&r));
}
