//! `network = "cni:NAME"` under `kennel up` (docs/networking.md "CNI"), for real with
//! Debian's containernetworking-plugins (bridge, host-local, portmap): kennel runs in a
//! network namespace the test made ([`crate::ctr::Rig::with_net`]), the plugins make their
//! bridge, veths and iptables rules there, the conflists and host-local's leases live in the
//! sandbox. The host's network is never touched.

use std::fs;
use std::path::{Path, PathBuf};

use crate::ctr::Rig;
use crate::harness::{skip, Missing};

const SUBNET: &str = "10.78.0";

/// `ip -4 -o addr show eth0` inside, reduced to the address: `addr=10.78.0.2`.
const PRINT_ADDR: &str =
    "echo addr=$(ip -4 -o addr show eth0 | sed -n 's/.* inet \\([0-9.]*\\)\\/.*/\\1/p')";

fn can_run() -> bool {
    if !crate::skip::need_root() {
        return false;
    }
    for (path, why) in [
        (
            "/usr/lib/cni/bridge",
            "needs containernetworking-plugins (/usr/lib/cni)",
        ),
        (
            "/usr/sbin/iptables",
            "needs iptables (the portmap plugin runs it)",
        ),
        ("/usr/sbin/ip", "needs iproute2 (ip)"),
    ] {
        if !Path::new(path).exists() {
            skip(Missing::Provided, why);
            return false;
        }
    }
    true
}

/// The sandbox's CNI directories: (conf dir, host-local's data dir).
fn cni_dirs(r: &Rig) -> (PathBuf, PathBuf) {
    let conf = r.state.parent().expect("sandbox").join("cni-conf");
    let ipam = r.state.parent().expect("sandbox").join("cni-ipam");
    fs::create_dir_all(&conf).unwrap();
    (conf, ipam)
}

/// `net1.conflist`: bridge + host-local (+ portmap).
fn write_conflist(r: &Rig) -> (PathBuf, PathBuf) {
    let (conf, ipam) = cni_dirs(r);
    let text = format!(
        r#"{{"cniVersion":"1.0.0","name":"net1","plugins":[
  {{"type":"bridge","bridge":"kcni1","isGateway":true,"ipMasq":false,
    "ipam":{{"type":"host-local","ranges":[[{{"subnet":"{SUBNET}.0/24"}}]],
             "dataDir":"{}"}}}},
  {{"type":"portmap","capabilities":{{"portMappings":true}}}}]}}"#,
        ipam.display()
    );
    fs::write(conf.join("net1.conflist"), text).unwrap();
    (conf, ipam)
}

fn up(r: &Rig, conf: &Path) {
    r.up_extra(&["--cni-conf-dir", conf.to_str().unwrap()]);
}

/// The veths in kennel's namespace (the bridge plugin's are `veth…`).
fn veths(r: &Rig) -> Vec<String> {
    let out = r.in_net("ip -o link show type veth");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// host-local's lease files (addresses) of net1.
fn leases(ipam: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(ipam.join("net1"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(SUBNET))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The CNI cache's records (STATE/cni).
fn cached(r: &Rig) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![r.state.join("cni")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                v.push(e.path().display().to_string());
            }
        }
    }
    v
}

fn printed_addr(r: &Rig, unit: &str) -> String {
    r.wait_stdout_prefix(unit, "addr=", 1)
        .remove(0)
        .trim_start_matches("addr=")
        .to_string()
}

/// Two units on a CNI network talk over TCP by address; status and /etc/hosts show the
/// result's address; a published port reaches the container through portmap from
/// kennel's namespace; stop removes the veth, the lease and the cache record.
#[test]
fn cni_units_talk_publish_and_stop_cleanly() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    let (conf, ipam) = write_conflist(&r);
    r.sh_container(
        "web",
        &format!(
            "{PRINT_ADDR}; echo hello-from-web > /tmp/index.html; cat /etc/hosts; \
             echo started; exec httpd -f -p 80 -h /tmp"
        ),
        "network = \"cni:net1\"\nports = [\"8080:80\"]\n",
    );
    up(&r, &conf);
    r.wait_started("web");
    let web = printed_addr(&r, "web");
    assert!(web.starts_with(SUBNET), "web's address: {web:?}");
    let st = r.status("web");
    assert_eq!(st["network"]["name"], "cni:net1", "{st}");
    assert_eq!(st["network"]["addresses"][0], web.as_str(), "{st}");
    assert!(r.stdout("web").contains(&format!("{web}\tweb")));
    assert_eq!(leases(&ipam), [web.as_str()]);
    assert_eq!(cached(&r).len(), 1, "{:?}", cached(&r));
    assert_eq!(veths(&r).len(), 1, "{:?}", veths(&r));

    r.unit(
        "client",
        &format!(
            "[service]\ncommand = [\"/bin/sh\", \"-c\", \"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc {web} 80\"]\n\
             type = \"oneshot\"\n[container]\nrootfs = [\"busybox\"]\nnetwork = \"cni:net1\"\n"
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
    // The client's run ended: its veth, lease and cache record went.
    assert_eq!(leases(&ipam), [web.as_str()]);
    assert_eq!(cached(&r).len(), 1, "{:?}", cached(&r));
    assert_eq!(veths(&r).len(), 1, "{:?}", veths(&r));

    // The published port, from kennel's namespace through the bridge's address.
    let busybox = r.state.join("layers/busybox/bin/busybox");
    let get = r.in_net(&format!(
        "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | {} nc {SUBNET}.1 8080",
        busybox.display()
    ));
    assert!(
        String::from_utf8_lossy(&get.stdout).contains("hello-from-web"),
        "{get:?}"
    );

    r.ok(&["stop", "web"]);
    r.wait_state("web", "inactive");
    assert_eq!(leases(&ipam), Vec::<String>::new());
    assert_eq!(cached(&r), Vec::<String>::new());
    assert_eq!(veths(&r), Vec::<String>::new());
    let nat = r.in_net("iptables -t nat -S");
    assert!(
        !String::from_utf8_lossy(&nat.stdout).contains("--to-destination"),
        "a DNAT rule stays: {nat:?}"
    );
}

/// After a `kill -9` of kennel, the next start DELs what the cache holds of units that do
/// not run: the lease and the cache record go.
#[test]
fn cni_leftovers_of_a_crash_are_deleted() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    let (conf, ipam) = write_conflist(&r);
    r.sh_container(
        "svc",
        &format!("{PRINT_ADDR}; echo started; exec sleep 1000"),
        "network = \"cni:net1\"\n",
    );
    up(&r, &conf);
    r.wait_started("svc");
    let first = printed_addr(&r, "svc");
    assert_eq!(leases(&ipam), [first.as_str()]);
    r.signal_daemon(libc::SIGKILL);
    r.wait_exit();
    assert_eq!(cached(&r).len(), 1);
    // The unit is gone from the unit set: nothing starts it again.
    fs::remove_file(r.units.join("svc.toml")).unwrap();
    up(&r, &conf);
    // The record goes in the DEL's process, the log line follows in the daemon's.
    r.wait_for("the leftover's DEL", || {
        r.daemon_output()
            .contains("removed CNI leftover: kennel-svc")
    });
    assert!(cached(&r).is_empty(), "{:?}", cached(&r));
    assert_eq!(leases(&ipam), Vec::<String>::new());
}

/// A unit on a CNI network with no configuration fails its start, naming the network and
/// the directory; nothing is left.
#[test]
fn cni_missing_conflist_fails_the_start_clearly() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    let (conf, _) = cni_dirs(&r);
    r.unit(
        "c",
        "[service]\ncommand = [\"/bin/true\"]\n[restart]\npolicy = \"no\"\n[container]\nrootfs = [\"busybox\"]\nnetwork = \"cni:mynet\"\n",
    );
    up(&r, &conf);
    r.wait_state("c", "failed");
    let detail = r.detail("c");
    assert!(
        detail.contains("network cni:mynet: no CNI network named \"mynet\""),
        "{detail}"
    );
    assert!(detail.contains(conf.to_str().unwrap()), "{detail}");
    assert!(!r.state.join("netns/c").exists());
    assert!(cached(&r).is_empty());
    // `kennel check` says so, at the value's position, and passes once the file exists.
    let check = |conf: &Path| {
        r.kennel(&[
            "check",
            "--networks",
            r.state.join("none").to_str().unwrap(),
            "--cni-conf-dir",
            conf.to_str().unwrap(),
            r.units.to_str().unwrap(),
        ])
    };
    let out = check(&conf);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "{}:7:11: container.network: CNI network \"mynet\": no CNI network named \"mynet\" in {}",
        r.units.join("c.toml").display(),
        conf.display()
    );
    assert!(text.contains(&want), "{text}");
    assert!(text.contains("add mynet.conflist there"), "{text}");
    let (conf, _) = write_conflist(&r);
    fs::rename(conf.join("net1.conflist"), conf.join("mynet.conflist")).unwrap();
    let text = fs::read_to_string(conf.join("mynet.conflist")).unwrap();
    fs::write(
        conf.join("mynet.conflist"),
        text.replace("\"net1\"", "\"mynet\""),
    )
    .unwrap();
    let out = check(&conf);
    assert!(out.status.success(), "{out:?}");
}

/// The host pid of the process whose command line is exactly `argv`, in another network
/// namespace than the test's (a container's).
fn host_pid_of(argv: &[&str]) -> Option<u32> {
    let want: String = argv.iter().map(|a| format!("{a}\0")).collect();
    let ours = fs::read_link("/proc/self/ns/net").ok()?;
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let ns = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
        (cmd == want.as_bytes() && ns != ours).then_some(pid)
    })
}

/// `kennel status --check` runs CNI's CHECK: it passes, then fails (naming the plugin)
/// once the container's eth0 is gone.
#[test]
fn cni_status_check_passes_then_fails_without_eth0() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    let (conf, _) = write_conflist(&r);
    r.sh_container(
        "svc",
        "echo started; exec sleep 4711",
        "network = \"cni:net1\"\n",
    );
    up(&r, &conf);
    r.wait_started("svc");
    let out = r.ok(&["status", "--check"]);
    assert_eq!(out, "svc\tcni:net1\tok\n");
    let mut pid = None;
    r.wait_for("the container's sleep", || {
        pid = host_pid_of(&["sleep", "4711"]);
        pid.is_some()
    });
    let pid = pid.unwrap();
    let del = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["ip", "link", "del", "eth0"])
        .output()
        .unwrap();
    assert!(del.status.success(), "{del:?}");
    let out = r.kennel(&["status", "--check", "svc"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("svc\tcni:net1\tFAILED: "), "{text}");
    assert!(text.contains("plugin bridge: CHECK"), "{text}");
}

/// `cni_args` reach the plugins as CNI_ARGS: host-local's `IP` picks the address.
#[test]
fn cni_args_of_a_unit_reach_the_plugins() {
    if !can_run() {
        return;
    }
    let r = Rig::with_net();
    let (conf, ipam) = write_conflist(&r);
    r.sh_container(
        "fixed",
        &format!("{PRINT_ADDR}; echo started; exec sleep 1000"),
        &format!("network = \"cni:net1\"\ncni_args = {{ IP = \"{SUBNET}.50\" }}\n"),
    );
    up(&r, &conf);
    r.wait_started("fixed");
    assert_eq!(printed_addr(&r, "fixed"), format!("{SUBNET}.50"));
    assert_eq!(leases(&ipam), [format!("{SUBNET}.50")]);
    r.ok(&["stop", "fixed"]);
    r.wait_state("fixed", "inactive");
    assert_eq!(leases(&ipam), Vec::<String>::new());
}
