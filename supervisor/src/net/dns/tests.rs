//! The server on real sockets, each test in a network namespace of its own (a thread that
//! unshares its network namespace and runs a current_thread runtime there, `lo` up, the
//! addresses of 127.0.0.0/8): nothing reaches the host's network. Upstreams are small
//! responders the test runs in the same namespace.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use simple_dns::rdata::{RData, A};
use simple_dns::{Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, RCODE, TYPE};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::forward::read_message;
use super::Dns;

#[path = "../../../../integration/skip.rs"]
mod skip;

/// Network "front": served on 127.0.10.1, its clients 127.0.0.0/16 (127.0.0.1, the source
/// the kernel picks on lo, included).
const FRONT: &str = "127.0.10.1";
/// Network "back": served on 127.20.0.1, its clients 127.20.0.0/16.
const BACK: &str = "127.20.0.1";
const FRONT_CLIENT: &str = "127.0.10.5";
const BACK_CLIENT: &str = "127.20.0.5";
/// In no network's subnets.
const STRANGER: &str = "127.30.0.5";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn at(s: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(s), port)
}

/// Runs `test` on a current_thread runtime in a new network namespace (lo up).
fn in_netns<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    if !skip::need_root() {
        return;
    }
    let name = std::thread::current().name().unwrap_or("dns").to_string();
    let t = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET)");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (conn, handle, _) = rtnetlink::new_connection().unwrap();
                tokio::spawn(conn);
                // lo is link 1 in every network namespace.
                handle
                    .link()
                    .set(rtnetlink::LinkUnspec::new_with_index(1).up().build())
                    .execute()
                    .await
                    .expect("lo up");
                test().await
            });
        })
        .unwrap();
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Two networks served on port 53, "web" (and its alias "www") on front.
async fn two_networks(upstreams: Vec<SocketAddr>) -> Dns {
    let mut dns = Dns::new(upstreams);
    dns.serve_network("front", ip(FRONT), 53, vec![(ip("127.0.0.0"), 16)])
        .await
        .unwrap();
    dns.serve_network("back", ip(BACK), 53, vec![(ip("127.20.0.0"), 16)])
        .await
        .unwrap();
    for name in ["web", "www"] {
        dns.set("front", name, vec![ip("10.89.0.2"), ip("fd00:89::2")]);
    }
    dns
}

/// What a reply said.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    rcode: RCODE,
    addrs: Vec<String>,
    truncated: bool,
}

fn ok(addrs: &[&str]) -> Answer {
    Answer {
        rcode: RCODE::NoError,
        addrs: addrs.iter().map(|s| s.to_string()).collect(),
        truncated: false,
    }
}

fn rcode(rcode: RCODE) -> Answer {
    Answer {
        rcode,
        addrs: vec![],
        truncated: false,
    }
}

fn query(id: u16, name: &str, qtype: TYPE) -> Vec<u8> {
    let mut q = Packet::new_query(id);
    q.set_flags(PacketFlag::RECURSION_DESIRED);
    q.questions.push(Question::new(
        Name::new_unchecked(name),
        qtype.into(),
        CLASS::IN.into(),
        false,
    ));
    q.build_bytes_vec().unwrap()
}

fn parse(id: u16, bytes: &[u8]) -> Answer {
    let p = Packet::parse(bytes).unwrap();
    assert_eq!(p.id(), id);
    Answer {
        rcode: p.rcode(),
        addrs: p
            .answers
            .iter()
            .map(|rr| match &rr.rdata {
                RData::A(a) => Ipv4Addr::from(a.address).to_string(),
                RData::AAAA(a) => Ipv6Addr::from(a.address).to_string(),
                RData::PTR(p) => p.0.to_string(),
                other => format!("{other:?}"),
            })
            .collect(),
        truncated: p.has_flags(PacketFlag::TRUNCATION),
    }
}

/// Asks `server` over UDP from `from`; None when no reply came within 3 s.
async fn ask_udp(from: &str, server: &str, name: &str, qtype: TYPE) -> Option<Answer> {
    let sock = UdpSocket::bind(at(from, 0)).await.unwrap();
    sock.send_to(&query(0x5a5a, name, qtype), at(server, 53))
        .await
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(parse(0x5a5a, &buf[..n]))
}

async fn udp(from: &str, server: &str, name: &str, qtype: TYPE) -> Answer {
    ask_udp(from, server, name, qtype)
        .await
        .unwrap_or_else(|| panic!("no reply from {server} to {name}"))
}

async fn tcp(server: &str, name: &str, qtype: TYPE) -> Answer {
    let mut conn = TcpStream::connect(at(server, 53)).await.unwrap();
    let q = query(0x7b7b, name, qtype);
    let mut msg = (q.len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(&q);
    conn.write_all(&msg).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(3), read_message(&mut conn))
        .await
        .expect("tcp reply in time")
        .unwrap();
    parse(0x7b7b, &reply)
}

#[test]
fn names_and_aliases_follow_set_and_remove() {
    in_netns(|| async {
        let mut dns = two_networks(vec![]).await;
        let c = FRONT_CLIENT;
        assert_eq!(udp(c, FRONT, "web", TYPE::A).await, ok(&["10.89.0.2"]));
        assert_eq!(udp(c, FRONT, "www", TYPE::AAAA).await, ok(&["fd00:89::2"]));
        assert_eq!(
            udp(c, FRONT, "web.dns.kennel", TYPE::A).await,
            ok(&["10.89.0.2"])
        );
        assert_eq!(
            udp(c, FRONT, "WwW.DNS.Kennel.", TYPE::A).await,
            ok(&["10.89.0.2"])
        );
        assert_eq!(tcp(FRONT, "WEB", TYPE::AAAA).await, ok(&["fd00:89::2"]));
        assert_eq!(
            udp(c, FRONT, "2.0.89.10.in-addr.arpa", TYPE::PTR).await,
            ok(&["web.dns.kennel"])
        );
        // A unit started after the first query.
        assert_eq!(
            udp(c, FRONT, "db.dns.kennel", TYPE::A).await,
            rcode(RCODE::NameError)
        );
        dns.set("front", "db", vec![ip("10.89.0.3")]);
        assert_eq!(
            udp(c, FRONT, "db.dns.kennel", TYPE::A).await,
            ok(&["10.89.0.3"])
        );
        assert_eq!(udp(c, FRONT, "db", TYPE::AAAA).await, ok(&[]));
        // It moves.
        dns.set("front", "db", vec![ip("10.89.0.7")]);
        assert_eq!(udp(c, FRONT, "db", TYPE::A).await, ok(&["10.89.0.7"]));
        // It goes.
        dns.remove("front", "db");
        assert_eq!(
            udp(c, FRONT, "db.dns.kennel", TYPE::A).await,
            rcode(RCODE::NameError)
        );
    });
}

#[test]
fn networks_do_not_see_each_other_and_strangers_are_refused() {
    in_netns(|| async {
        let mut dns = two_networks(vec![]).await;
        dns.set("back", "api", vec![ip("10.90.0.2")]);
        assert_eq!(
            udp(BACK_CLIENT, BACK, "api", TYPE::A).await,
            ok(&["10.90.0.2"])
        );
        assert_eq!(
            udp(BACK_CLIENT, BACK, "web.dns.kennel", TYPE::A).await,
            rcode(RCODE::NameError)
        );
        assert_eq!(
            udp(FRONT_CLIENT, FRONT, "api.dns.kennel", TYPE::A).await,
            rcode(RCODE::NameError)
        );
        // Another network's client, and one of no network, on UDP and TCP.
        assert_eq!(
            udp(BACK_CLIENT, FRONT, "web", TYPE::A).await,
            rcode(RCODE::Refused)
        );
        assert_eq!(
            udp(STRANGER, FRONT, "web", TYPE::A).await,
            rcode(RCODE::Refused)
        );
        dns.serve_network("front", ip(FRONT), 53, vec![(ip("127.99.0.0"), 16)])
            .await
            .unwrap();
        assert_eq!(tcp(FRONT, "web", TYPE::A).await, rcode(RCODE::Refused));
    });
}

#[test]
fn a_network_is_served_on_ipv6_too() {
    in_netns(|| async {
        let mut dns = two_networks(vec![]).await;
        dns.serve_network(
            "front",
            ip("::1"),
            53,
            vec![(ip("127.0.0.0"), 16), (ip("::1"), 128)],
        )
        .await
        .unwrap();
        assert_eq!(dns.listen_addrs("front").len(), 2);
        assert_eq!(
            udp("::1", "::1", "web", TYPE::AAAA).await,
            ok(&["fd00:89::2"])
        );
        assert_eq!(
            tcp("::1", "www.dns.kennel", TYPE::A).await,
            ok(&["10.89.0.2"])
        );
        // Both addresses read the same table.
        dns.set("front", "web", vec![ip("fd00:89::9")]);
        assert_eq!(
            udp("::1", "::1", "web", TYPE::AAAA).await,
            ok(&["fd00:89::9"])
        );
        assert_eq!(
            udp(FRONT_CLIENT, FRONT, "web", TYPE::AAAA).await,
            ok(&["fd00:89::9"])
        );
    });
}

#[test]
fn a_network_is_served_before_its_address_exists() {
    in_netns(|| async {
        let mut dns = Dns::new(vec![]);
        let (v4, v6) = (ip("10.1.2.3"), ip("fd00:dead::1"));
        let subnets = vec![(ip("10.1.2.0"), 24), (ip("fd00:dead::"), 64)];
        dns.serve_network("late", v4, 53, subnets.clone())
            .await
            .unwrap();
        dns.serve_network("late", v6, 53, subnets).await.unwrap();
        dns.set("late", "web", vec![ip("10.1.2.7")]);
        let (conn, handle, _) = rtnetlink::new_connection().unwrap();
        tokio::spawn(conn);
        for (addr, len) in [(v4, 32), (v6, 128)] {
            handle.address().add(1, addr, len).execute().await.unwrap();
        }
        let (v4, v6) = ("10.1.2.3", "fd00:dead::1");
        // An IPv6 address is tentative for a moment even on lo: the client waits until it
        // can bind it (the server could before).
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::UdpSocket::bind(at(v6, 0)).is_err() {
            assert!(Instant::now() < deadline, "{v6} never became usable");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(udp(v4, v4, "web", TYPE::A).await, ok(&["10.1.2.7"]));
        assert_eq!(udp(v6, v6, "web", TYPE::A).await, ok(&["10.1.2.7"]));
        assert_eq!(tcp(v6, "web", TYPE::A).await, ok(&["10.1.2.7"]));
    });
}

#[test]
fn a_stopped_network_is_silent_and_can_be_served_again() {
    in_netns(|| async {
        let mut dns = two_networks(vec![]).await;
        dns.stop_network("front");
        assert_eq!(dns.listen_addrs("front"), vec![]);
        // The server's sockets are closed before the next bind, which then succeeds. A
        // test running beside this one in the same process may be between a fork and its
        // exec just then, holding a copy of every descriptor (O_CLOEXEC closes them only
        // at the exec): for that moment the address stays taken, so a few tries.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match dns
                .serve_network("front", ip(FRONT), 53, vec![(ip("127.0.0.0"), 16)])
                .await
            {
                Ok(()) => break,
                Err(super::DnsError::Bind { source, .. })
                    if source.kind() == std::io::ErrorKind::AddrInUse
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("serve front again: {e}"),
            }
        }
        assert_eq!(
            udp(FRONT_CLIENT, FRONT, "web.dns.kennel", TYPE::A).await,
            rcode(RCODE::NameError),
            "a stopped network's names are gone"
        );
        dns.stop_network("front");
        tokio::task::yield_now().await;
        assert_eq!(ask_udp(FRONT_CLIENT, FRONT, "web", TYPE::A).await, None);
        assert_eq!(
            udp(BACK_CLIENT, BACK, "nothing.dns.kennel", TYPE::A).await,
            rcode(RCODE::NameError)
        );
    });
}

/// A fake upstream on `addr` (UDP and TCP): `example.test` is 192.0.2.1; `big.test` is
/// three addresses over TCP and truncated over UDP; anything else NXDOMAIN.
async fn fake_upstream(addr: SocketAddr) {
    fn reply(query: &[u8], tcp: bool) -> Vec<u8> {
        let q = Packet::parse(query).unwrap();
        let question = &q.questions[0];
        let mut r = Packet::new_reply(q.id());
        r.questions.push(question.clone());
        let a = |last| {
            ResourceRecord::new(
                question.qname.clone(),
                CLASS::IN,
                60,
                RData::A(A::from(Ipv4Addr::new(192, 0, 2, last))),
            )
        };
        match question.qname.to_string().as_str() {
            "example.test" => r.answers.push(a(1)),
            "big.test" if tcp => r.answers.extend([a(1), a(2), a(3)]),
            "big.test" => r.set_flags(PacketFlag::TRUNCATION),
            _ => *r.rcode_mut() = RCODE::NameError,
        }
        r.build_bytes_vec().unwrap()
    }
    let udp = UdpSocket::bind(addr).await.unwrap();
    let tcp = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, from) = udp.recv_from(&mut buf).await.unwrap();
            udp.send_to(&reply(&buf[..n], false), from).await.unwrap();
        }
    });
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = tcp.accept().await.unwrap();
            tokio::spawn(async move {
                while let Ok(q) = read_message(&mut conn).await {
                    let r = reply(&q, true);
                    let mut msg = (r.len() as u16).to_be_bytes().to_vec();
                    msg.extend_from_slice(&r);
                    conn.write_all(&msg).await.unwrap();
                }
            });
        }
    });
}

/// An upstream that takes UDP and TCP queries and never answers (no ICMP error either).
async fn silent_upstream(addr: SocketAddr) -> (UdpSocket, TcpListener) {
    (
        UdpSocket::bind(addr).await.unwrap(),
        TcpListener::bind(addr).await.unwrap(),
    )
}

#[test]
fn other_names_are_forwarded_past_a_silent_upstream() {
    in_netns(|| async {
        let (silent, good) = (at("127.0.99.2", 53), at("127.0.99.1", 53));
        let _held = silent_upstream(silent).await;
        fake_upstream(good).await;
        let mut dns = two_networks(vec![silent, good]).await;
        dns.set_timeout(Duration::from_millis(300));
        let c = FRONT_CLIENT;
        assert_eq!(
            udp(c, FRONT, "example.test", TYPE::A).await.addrs,
            ["192.0.2.1"]
        );
        // Truncated over UDP: asked again over TCP; three A records fit 512 bytes.
        assert_eq!(
            udp(c, FRONT, "big.test", TYPE::A).await,
            ok(&["192.0.2.1", "192.0.2.2", "192.0.2.3"])
        );
        // A TCP client is forwarded over TCP.
        assert_eq!(
            tcp(FRONT, "big.test", TYPE::A).await,
            ok(&["192.0.2.1", "192.0.2.2", "192.0.2.3"])
        );
        // An unknown single label is the upstreams' to answer.
        assert_eq!(
            udp(c, FRONT, "nosuchhost", TYPE::A).await,
            rcode(RCODE::NameError)
        );
        // A stranger is refused, not forwarded.
        assert_eq!(
            udp(STRANGER, FRONT, "example.test", TYPE::A).await,
            rcode(RCODE::Refused)
        );
    });
}

#[test]
fn servfail_when_no_upstream_answers() {
    in_netns(|| async {
        let silent = at("127.0.99.2", 53);
        let _held = silent_upstream(silent).await;
        // 127.0.99.3: nothing listens (a refused connection, at once).
        let mut dns = two_networks(vec![silent, at("127.0.99.3", 53)]).await;
        dns.set_timeout(Duration::from_millis(200));
        assert_eq!(
            udp(FRONT_CLIENT, FRONT, "example.test", TYPE::A).await,
            rcode(RCODE::ServerFailure)
        );
        assert_eq!(
            tcp(FRONT, "example.test", TYPE::A).await,
            rcode(RCODE::ServerFailure)
        );
        // New upstreams are seen by the next query.
        fake_upstream(at("127.0.99.1", 53)).await;
        dns.set_upstreams(vec![at("127.0.99.1", 53)]);
        assert_eq!(
            udp(FRONT_CLIENT, FRONT, "example.test", TYPE::A)
                .await
                .addrs,
            ["192.0.2.1"]
        );
    });
}

/// Runs a program in the test's network namespace (from a thread it spawns, which shares
/// the namespace) while the runtime keeps serving.
async fn run(argv: &[&str]) -> std::process::Output {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output();
        let _ = tx.send(out);
    });
    rx.await.unwrap().expect("run the program")
}

#[test]
fn busybox_nslookup_resolves_names() {
    if !std::path::Path::new("/bin/busybox").exists() {
        skip::skip(skip::Missing::Provided, "needs busybox (busybox-static)");
        return;
    }
    in_netns(|| async {
        let good = at("127.0.99.1", 53);
        fake_upstream(good).await;
        let _dns = two_networks(vec![good]).await;
        for name in ["web", "www.dns.kennel", "example.test"] {
            let out = run(&["/bin/busybox", "nslookup", name, FRONT]).await;
            let text = String::from_utf8_lossy(&out.stdout);
            println!("nslookup {name} {FRONT}:\n{text}");
            let want = if name == "example.test" {
                "192.0.2.1"
            } else {
                "10.89.0.2"
            };
            assert!(text.contains(want), "nslookup {name}: {text}");
            if name != "example.test" {
                assert!(text.contains("fd00:89::2"), "nslookup {name}: {text}");
            }
        }
        let out = run(&["/bin/busybox", "nslookup", "nope.dns.kennel", FRONT]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("NXDOMAIN"),
            "nslookup nope.dns.kennel: {text}"
        );
    });
}

#[test]
fn glibc_resolves_through_the_search_domain() {
    if !std::path::Path::new("/usr/bin/unshare").exists() {
        skip::skip(skip::Missing::Provided, "needs unshare (util-linux)");
        return;
    }
    in_netns(|| async {
        let _dns = two_networks(vec![]).await;
        // What a container of the network gets in its /etc/resolv.conf, bind-mounted on
        // /etc/resolv.conf in a mount namespace of getent's own (private propagation).
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("resolv.conf");
        std::fs::write(&conf, format!("nameserver {FRONT}\nsearch dns.kennel\n")).unwrap();
        let script = format!(
            "mount --bind {} /etc/resolv.conf && exec getent ahosts web",
            conf.display()
        );
        let out = run(&[
            "/usr/bin/unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "getent ahosts web: {out:?}");
        assert!(text.contains("10.89.0.2"), "getent ahosts web: {text}");
        assert!(text.contains("fd00:89::2"), "getent ahosts web: {text}");
        assert!(text.contains("web.dns.kennel"), "the search domain: {text}");
        let out = run(&[
            "/usr/bin/unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &format!(
                "mount --bind {} /etc/resolv.conf && exec getent hosts nope",
                conf.display()
            ),
        ])
        .await;
        assert_eq!(out.status.code(), Some(2), "getent hosts nope: {out:?}");
    });
}

/// The round trip of one unit-name lookup over UDP on lo (client and server on one
/// runtime): printed, not asserted. `cargo test -p kennel --bin kennel -- net::dns::tests::lookup_latency --nocapture`
#[test]
fn lookup_latency() {
    in_netns(|| async {
        let _dns = two_networks(vec![]).await;
        let sock = UdpSocket::bind(at(FRONT_CLIENT, 0)).await.unwrap();
        sock.connect(at(FRONT, 53)).await.unwrap();
        let q = query(1, "web", TYPE::A);
        let mut buf = vec![0u8; 1500];
        let mut times = Vec::new();
        for i in 0..5000 {
            let t = Instant::now();
            sock.send(&q).await.unwrap();
            let n = sock.recv(&mut buf).await.unwrap();
            if i >= 500 {
                times.push(t.elapsed());
            }
            assert_eq!(parse(1, &buf[..n]).addrs, ["10.89.0.2"]);
        }
        times.sort();
        let pct = |p: usize| times[times.len() * p / 100];
        println!(
            "dns lookup of a unit name over udp: median {:?}, p90 {:?}, p99 {:?} ({} queries)",
            pct(50),
            pct(90),
            pct(99),
            times.len()
        );
    });
}
