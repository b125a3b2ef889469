//! kennel's rules with real traffic, in network namespaces the test makes (never the
//! machine's): a "host" namespace (the test thread's own, after unshare(CLONE_NEWNET)) with
//! three bridges, containers attached by veths, and an "other host" joined by a veth.
//! Servers and clients are threads that setns() into those namespaces; `ip` and `nft` run
//! as children of the host thread, so they act in the host namespace.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::{setns, unshare, CloneFlags};

use super::*;

/// A namespace of its own, kept alive by a sleeping busybox made with `unshare --net`.
struct Node {
    // Named where it is made, for whoever reads the test; nothing reads it back.
    #[allow(dead_code)]
    name: &'static str,
    child: Child,
}

impl Node {
    fn new(name: &'static str) -> Node {
        let mut child = Command::new("unshare")
            .args([
                "--net",
                "--",
                "/bin/busybox",
                "sh",
                "-c",
                "echo ready; exec /bin/busybox sleep 1000",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare --net (util-linux)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "{name}: the namespace's process did not start"
        );
        Node { name, child }
    }

    fn ns_path(&self) -> String {
        format!("/proc/{}/ns/net", self.child.id())
    }

    /// Runs `ip ARGS` inside the node.
    fn ip(&self, args: &str) {
        let mut a = vec![
            format!("--net={}", self.ns_path()),
            "--".into(),
            "ip".into(),
        ];
        a.extend(args.split_whitespace().map(String::from));
        run("nsenter", &a);
    }

    /// Runs `f` on a thread in this node's namespace.
    fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = File::open(self.ns_path()).unwrap();
        std::thread::spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &str, args: &[String]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip ARGS` in the host namespace (the test thread's).
fn ip(args: &str) {
    run(
        "ip",
        &args
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>(),
    );
}

fn nft(args: &str) -> String {
    run(
        "nft",
        &args
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>(),
    )
}

/// The comments of kennel's rules, from `nft -j list table inet kennel`.
fn rule_comments() -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&nft("-j list table inet kennel")).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule"))
        .map(|r| r["comment"].as_str().unwrap_or("").to_string())
        .collect()
}

fn count(comments: &[String], c: &str) -> usize {
    comments.iter().filter(|x| *x == c).count()
}

/// Servers answering `NAME:PORT<-PEER` over TCP and UDP, until dropped.
struct Servers(Arc<AtomicBool>);

impl Drop for Servers {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn serve(ns: String, name: &'static str, tcp: Vec<u16>, udp: Vec<u16>) -> Servers {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    for (port, is_udp) in tcp
        .iter()
        .map(|p| (*p, false))
        .chain(udp.iter().map(|p| (*p, true)))
    {
        let (ns, stop, ready) = (File::open(&ns).unwrap(), stop.clone(), ready_tx.clone());
        std::thread::spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
            let any: SocketAddr = ([0, 0, 0, 0], port).into();
            if is_udp {
                let s = UdpSocket::bind(any).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                ready.send(()).unwrap();
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((_, peer)) = s.recv_from(&mut buf) {
                        let _ = s.send_to(format!("{name}:{port}<-{}", peer.ip()).as_bytes(), peer);
                    }
                }
            } else {
                let l = TcpListener::bind(any).unwrap();
                l.set_nonblocking(true).unwrap();
                ready.send(()).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    match l.accept() {
                        Ok((mut c, peer)) => {
                            let _ = c.write_all(format!("{name}:{port}<-{}", peer.ip()).as_bytes());
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }
        });
    }
    for _ in 0..tcp.len() + udp.len() {
        ready_rx.recv().unwrap();
    }
    Servers(stop)
}

/// A TCP server on [::]:PORT (for the IPv6 checks; it would take IPv4 too).
fn serve6(ns: String, name: &'static str, port: u16) -> Servers {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (ns, stop2) = (File::open(&ns).unwrap(), stop.clone());
    std::thread::spawn(move || {
        setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
        let l = TcpListener::bind(("::", port)).unwrap();
        l.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        while !stop2.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((mut c, peer)) => {
                    let _ = c.write_all(format!("{name}:{port}<-{}", peer.ip()).as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    ready_rx.recv().unwrap();
    Servers(stop)
}

/// What a TCP server at `to` answers, or None (refused, dropped: 1 s).
fn tcp(to: &str) -> Option<String> {
    let addr: SocketAddr = to.parse().unwrap();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn udp(to: &str) -> Option<String> {
    let addr: SocketAddr = to.parse().unwrap();
    let s = UdpSocket::bind(("0.0.0.0", 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.send_to(b"hi", addr).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn from(node: &Node, f: fn(&str) -> Option<String>, to: &'static str) -> Option<String> {
    node.within(move || f(to))
}

/// Runs `f` on a thread in a brand-new network namespace, after checking it is new.
fn in_new_netns(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        let before = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        unshare(CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET): the firewall tests need root");
        let now = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        let leader = std::fs::metadata(format!("/proc/{}/ns/net", std::process::id()))
            .unwrap()
            .ino();
        assert!(
            now != before && now != leader,
            "not in a new network namespace: refusing to touch the network"
        );
        f()
    })
    .join()
    .unwrap();
}

fn container(name: &'static str, bridge: &str, addr: &str, gw: &str) -> Node {
    let n = Node::new(name);
    ip(&format!(
        "link add vh-{name} type veth peer name eth0 netns {}",
        n.child.id()
    ));
    ip(&format!("link set vh-{name} master {bridge} up"));
    // As the bridge code does for every port: with br_netfilter (bridged traffic through
    // the inet hooks), a container reaching itself through a published port needs it.
    ip(&format!("link set vh-{name} type bridge_slave hairpin on"));
    n.ip(&format!("addr add {addr} dev eth0"));
    n.ip("link set eth0 up");
    n.ip("link set lo up");
    n.ip(&format!("route add default via {gw}"));
    n
}

fn net(name: &str, bridge: &str, subnet: &str, internal: bool) -> NetworkRules {
    NetworkRules {
        name: name.into(),
        bridge: bridge.into(),
        subnets: vec![(subnet.parse().unwrap(), 24)],
        internal,
    }
}

fn port(
    proto: Proto,
    host_port: u16,
    count: u16,
    container_ip: &str,
    container_port: u16,
) -> PortRule {
    PortRule {
        proto,
        host_ip: None,
        host_port,
        count,
        container_ip: container_ip.parse().unwrap(),
        container_port,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn firewall_rules_with_real_traffic() {
    if !nix::unistd::Uid::effective().is_root() {
        panic!("firewall_rules_with_real_traffic needs root (unshare, nftables)");
    }
    in_new_netns(|| {
        // Someone else's table, which kennel must leave alone.
        nft("add table inet foreign");
        nft("add chain inet foreign c");
        nft("add rule inet foreign c counter comment \"not kennel's\"");

        ip("link set lo up");
        for (br, addr) in [
            ("kbr0", "10.201.0.1/24"),
            ("kbr1", "10.202.0.1/24"),
            ("kbr2", "10.203.0.1/24"),
        ] {
            ip(&format!("link add {br} type bridge"));
            ip(&format!("addr add {addr} dev {br}"));
            ip(&format!("link set {br} up"));
        }
        let other = Node::new("other");
        ip(&format!(
            "link add up0 type veth peer name eth0 netns {}",
            other.child.id()
        ));
        ip("addr add 192.0.2.1/24 dev up0");
        ip("addr add fd00:2::1/64 dev up0 nodad");
        ip("addr add fd89::1/64 dev kbr0 nodad");
        ip("link set up0 up");
        other.ip("addr add 192.0.2.2/24 dev eth0");
        other.ip("addr add fd00:2::2/64 dev eth0 nodad");
        other.ip("link set eth0 up");
        let c1 = container("c1", "kbr0", "10.201.0.2/24", "10.201.0.1");
        c1.ip("addr add fd89::2/64 dev eth0 nodad");
        c1.ip("route add default via fd89::1");
        let c2 = container("c2", "kbr0", "10.201.0.3/24", "10.201.0.1");
        let c3 = container("c3", "kbr1", "10.202.0.2/24", "10.202.0.1");
        let c4 = container("c4", "kbr2", "10.203.0.2/24", "10.203.0.1");
        let _s = [
            serve(other.ns_path(), "other", vec![9999], vec![]),
            serve6(other.ns_path(), "other6", 9998),
            serve6(c1.ns_path(), "c1v6", 8600),
            serve(
                c1.ns_path(),
                "c1",
                vec![80, 9000, 9001, 9002, 8000, 8001],
                vec![53],
            ),
            serve(c2.ns_path(), "c2", vec![80], vec![]),
            serve(c3.ns_path(), "c3", vec![80], vec![]),
        ];
        let mut a = net("a", "kbr0", "10.201.0.0", false);
        a.subnets.push(("fd89::".parse().unwrap(), 64));
        let (b, i) = (
            net("b", "kbr1", "10.202.0.0", false),
            net("i", "kbr2", "10.203.0.0", true),
        );

        let mut fw = Firewall::open().unwrap();
        let t = Instant::now();
        fw.ensure_network(&a).unwrap();
        let first = t.elapsed();
        fw.ensure_network(&b).unwrap();
        fw.ensure_network(&i).unwrap();
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim(),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/conf/kbr0/route_localnet")
                .unwrap()
                .trim(),
            "1"
        );
        let before = rule_comments();
        let mut again = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            fw.ensure_network(&a).unwrap();
            again.push(t.elapsed());
        }
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(rule_comments()),
            sorted(before),
            "ensure_network is idempotent"
        );

        // Masquerade out: `other` has no route to 10.201.0.0/24, so only a masqueraded
        // connection gets its answer back; the server sees the host's address.
        assert_eq!(
            from(&c1, tcp, "192.0.2.2:9999").as_deref(),
            Some("other:9999<-192.0.2.1")
        );
        assert_eq!(
            from(&c3, tcp, "192.0.2.2:9999").as_deref(),
            Some("other:9999<-192.0.2.1")
        );
        // Internal: no way out, not to another network either.
        assert_eq!(
            from(&c4, tcp, "192.0.2.2:9999"),
            None,
            "an internal network reached another host"
        );
        assert_eq!(
            from(&c4, tcp, "10.201.0.2:80"),
            None,
            "an internal network reached another network"
        );
        // Isolation between a and b, both ways.
        assert_eq!(
            from(&c3, tcp, "10.201.0.2:80"),
            None,
            "network b reached network a"
        );
        assert_eq!(
            from(&c1, tcp, "10.202.0.2:80"),
            None,
            "network a reached network b"
        );
        // Same network: direct.
        assert_eq!(
            from(&c2, tcp, "10.201.0.2:80").as_deref(),
            Some("c1:80<-10.201.0.3")
        );
        // Nothing published yet.
        assert_eq!(from(&other, tcp, "192.0.2.1:8080"), None);

        let web1 = [
            port(Proto::Tcp, 8080, 1, "10.201.0.2", 80),
            port(Proto::Udp, 5353, 1, "10.201.0.2", 53),
            port(Proto::Tcp, 9000, 3, "10.201.0.2", 9000),
            port(Proto::Tcp, 7000, 2, "10.201.0.2", 8000),
        ];
        let t = Instant::now();
        fw.publish("web1", "a", &web1).unwrap();
        let publish_first = t.elapsed();
        fw.publish("web2", "a", &[port(Proto::Tcp, 8081, 1, "10.201.0.3", 80)])
            .unwrap();
        assert!(
            fw.publish("web3", "nope", &web1).is_err(),
            "publishing on a network without rules"
        );
        fw.publish("web6", "a", &[port(Proto::Tcp, 8080, 1, "fd89::2", 8600)])
            .unwrap();
        let mut on_v6_localhost = port(Proto::Tcp, 8090, 1, "fd89::2", 8600);
        on_v6_localhost.host_ip = Some("::1".parse().unwrap());
        let err = fw.publish("web6", "a", &[on_v6_localhost]);
        assert!(
            matches!(err, Err(FirewallError::NotSupported(_))),
            "{err:?}"
        );

        // From another host (DNAT in prerouting): TCP, UDP, a range, a shifted range.
        assert_eq!(
            from(&other, tcp, "192.0.2.1:8080").as_deref(),
            Some("c1:80<-192.0.2.2")
        );
        assert_eq!(
            from(&other, udp, "192.0.2.1:5353").as_deref(),
            Some("c1:53<-192.0.2.2")
        );
        assert_eq!(
            from(&other, tcp, "192.0.2.1:9001").as_deref(),
            Some("c1:9001<-192.0.2.2")
        );
        assert_eq!(
            from(&other, tcp, "192.0.2.1:9002").as_deref(),
            Some("c1:9002<-192.0.2.2")
        );
        assert_eq!(
            from(&other, tcp, "192.0.2.1:7001").as_deref(),
            Some("c1:8001<-192.0.2.2")
        );
        assert_eq!(from(&other, tcp, "192.0.2.1:9003"), None, "past the range");
        // IPv6: from another host, from the host, hairpin.
        assert_eq!(
            from(&other, tcp, "[fd00:2::1]:8080").as_deref(),
            Some("c1v6:8600<-fd00:2::2")
        );
        assert_eq!(
            tcp("[fd00:2::1]:8080").as_deref(),
            Some("c1v6:8600<-fd00:2::1")
        );
        assert_eq!(
            from(&c1, tcp, "[fd00:2::1]:8080").as_deref(),
            Some("c1v6:8600<-fd89::1")
        );
        // From the host itself (output chain): 127.0.0.1 (route_localnet + masquerade)
        // and the host's address.
        assert_eq!(tcp("127.0.0.1:8080").as_deref(), Some("c1:80<-10.201.0.1"));
        assert_eq!(udp("127.0.0.1:5353").as_deref(), Some("c1:53<-10.201.0.1"));
        assert_eq!(tcp("192.0.2.1:8081").as_deref(), Some("c2:80<-192.0.2.1"));
        // On one host address only: 127.0.0.1, so not from the other host.
        let mut local_only = port(Proto::Tcp, 8083, 1, "10.201.0.2", 80);
        local_only.host_ip = Some("127.0.0.1".parse().unwrap());
        fw.publish("local", "a", &[local_only]).unwrap();
        assert_eq!(tcp("127.0.0.1:8083").as_deref(), Some("c1:80<-10.201.0.1"));
        assert_eq!(tcp("192.0.2.1:8083"), None, "published on 127.0.0.1 only");
        assert_eq!(
            from(&other, tcp, "192.0.2.1:8083"),
            None,
            "published on 127.0.0.1 only"
        );
        fw.unpublish("local").unwrap();
        // Hairpin: a container through a host address, to itself and to a neighbour.
        assert_eq!(
            from(&c1, tcp, "192.0.2.1:8080").as_deref(),
            Some("c1:80<-10.201.0.1")
        );
        assert_eq!(
            from(&c2, tcp, "10.201.0.1:8080").as_deref(),
            Some("c1:80<-10.201.0.1")
        );
        assert_eq!(
            from(&c1, tcp, "192.0.2.1:8081").as_deref(),
            Some("c2:80<-10.201.0.1")
        );
        // Another network reaches a published port through the host address (masqueraded
        // as it leaves its own bridge, like any outbound traffic); an internal one does not.
        assert_eq!(
            from(&c3, tcp, "192.0.2.1:8080").as_deref(),
            Some("c1:80<-10.201.0.1")
        );
        assert_eq!(
            from(&c4, tcp, "10.203.0.1:8080"),
            None,
            "an internal network reached a published port"
        );

        // What kennel finds after a crash, from a new handle.
        drop(fw);
        let mut fw = Firewall::open().unwrap();
        assert_eq!(fw.published().unwrap(), ["web1", "web2", "web6"]);
        assert_eq!(fw.networks().unwrap(), ["a", "b", "i"]);

        // Used from another namespace's thread: refused.
        let (fw_there, other_ns) = (&mut fw, other.ns_path());
        let err = std::thread::scope(|s| {
            s.spawn(move || {
                setns(File::open(other_ns).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
                fw_there.published().and(fw_there.unpublish("web1"))
            })
            .join()
            .unwrap()
        });
        assert!(matches!(err, Err(FirewallError::OtherNamespace)), "{err:?}");

        // unpublish removes exactly the unit's rules.
        let before = rule_comments();
        assert_eq!(count(&before, "kennel unit=web1"), 5);
        let t = Instant::now();
        fw.unpublish("web1").unwrap();
        let unpublish_first = t.elapsed();
        let after = rule_comments();
        assert_eq!(count(&after, "kennel unit=web1"), 0);
        let mut expected = before.clone();
        expected.retain(|c| c != "kennel unit=web1");
        assert_eq!(after, expected, "unpublish removed other rules too");
        assert_eq!(from(&other, tcp, "192.0.2.1:8080"), None);
        assert_eq!(
            from(&other, tcp, "192.0.2.1:8081").as_deref(),
            Some("c2:80<-192.0.2.2")
        );
        fw.unpublish("web1").unwrap();
        assert_eq!(fw.published().unwrap(), ["web2", "web6"]);

        // publish replaces the unit's earlier rules.
        fw.publish("web2", "a", &[port(Proto::Tcp, 8082, 1, "10.201.0.3", 80)])
            .unwrap();
        assert_eq!(count(&rule_comments(), "kennel unit=web2"), 1);
        assert_eq!(from(&other, tcp, "192.0.2.1:8081"), None);
        assert_eq!(
            from(&other, tcp, "192.0.2.1:8082").as_deref(),
            Some("c2:80<-192.0.2.2")
        );

        // remove_network: b's rules go (no more masquerade out of b), a's stay.
        fw.remove_network("b").unwrap();
        assert_eq!(count(&rule_comments(), "kennel network=b"), 0);
        assert_eq!(fw.networks().unwrap(), ["a", "i"]);
        assert_eq!(
            from(&c3, tcp, "192.0.2.2:9999"),
            None,
            "b still masqueraded after remove_network"
        );
        assert_eq!(
            from(&c1, tcp, "192.0.2.2:9999").as_deref(),
            Some("other:9999<-192.0.2.1")
        );

        // The cost, measured (not asserted): see the report in docs/networking.md.
        let (mut pubs, mut unpubs) = (Vec::new(), Vec::new());
        for _ in 0..50 {
            let t = Instant::now();
            fw.publish("bench", "a", &[port(Proto::Tcp, 6000, 1, "10.201.0.2", 80)])
                .unwrap();
            pubs.push(t.elapsed());
            let t = Instant::now();
            fw.unpublish("bench").unwrap();
            unpubs.push(t.elapsed());
        }
        eprintln!(
            "firewall cost: ensure_network first {first:?}, again median {:?}; publish first {publish_first:?}, median {:?}; unpublish first {unpublish_first:?}, median {:?}",
            median(again),
            median(pubs),
            median(unpubs)
        );

        // With 500 units' rules in the table (publish reads the table first).
        for n in 0..500u16 {
            let name = format!("many{n}");
            fw.publish(
                &name,
                "a",
                &[port(Proto::Tcp, 40000 + n, 1, "10.201.0.2", 80)],
            )
            .unwrap();
        }
        let (mut pubs, mut unpubs) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            let t = Instant::now();
            fw.publish("bench", "a", &[port(Proto::Tcp, 6000, 1, "10.201.0.2", 80)])
                .unwrap();
            pubs.push(t.elapsed());
            let t = Instant::now();
            fw.unpublish("bench").unwrap();
            unpubs.push(t.elapsed());
        }
        eprintln!(
            "firewall cost with 500 units published: publish median {:?}, unpublish median {:?}",
            median(pubs),
            median(unpubs)
        );
        for n in 0..500u16 {
            fw.unpublish(&format!("many{n}")).unwrap();
        }

        // A large shifted range: one rule a port, in several transactions.
        let t = Instant::now();
        fw.publish(
            "big",
            "a",
            &[port(Proto::Udp, 20000, 2000, "10.201.0.2", 30000)],
        )
        .unwrap();
        eprintln!(
            "firewall cost: publish of a 2000-port shifted range {:?}",
            t.elapsed()
        );
        assert_eq!(count(&rule_comments(), "kennel unit=big"), 2000);
        fw.unpublish("big").unwrap();
        assert_eq!(
            count(&rule_comments(), "kennel unit=big"),
            0,
            "a dump of 2,000 rules read whole"
        );

        // remove_all: kennel's table goes, the foreign one stays as it was.
        fw.remove_all().unwrap();
        fw.remove_all().unwrap();
        let all = nft("-j list ruleset");
        assert!(!all.contains("\"name\": \"kennel\""), "{all}");
        assert!(
            all.contains("not kennel's"),
            "the foreign table lost its rule: {all}"
        );
        assert!(fw.published().unwrap().is_empty());
        // And it comes back on the next ensure_network.
        fw.ensure_network(&a).unwrap();
        assert_eq!(
            from(&c1, tcp, "192.0.2.2:9999").as_deref(),
            Some("other:9999<-192.0.2.1")
        );
        drop((c1, c2, c3, c4, other));
    });
}
