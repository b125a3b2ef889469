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

fn can_run() -> bool {
    crate::skip::need_root()
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
    // The client's run ended: its veth and namespace are gone, its lease stays.
    assert_eq!(veths(&r).len(), 1, "{:?}", veths(&r));
    assert_eq!(netns_files(&r), ["web"]);
    assert_eq!(leases(&r, "kennel").len(), 2);
}
