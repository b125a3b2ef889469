//! The network at boot, for real: `kennel net-up` (the code `kennel boot` runs before the
//! units) in a network, pid, mount and UTS namespace the test creates, joined by a veth to
//! a second network namespace where busybox udhcpd serves leases. The kernel command line
//! (/proc/cmdline) and /etc (boot.toml, resolv.conf) are files of the test bind-mounted in
//! kennel's private mount namespace: the host's network, /etc and /run are never touched.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::harness::{children, skip, Missing, KENNEL, PATIENCE};

const BUSYBOX: &str = "/bin/busybox";

/// What the shell around `kennel net-up` prints before its exit code.
const EXIT: &str = "kennel-net-up-exit=";

/// Two network namespaces: the server's (a holder process; udhcpd when a test starts it)
/// and kennel's, the veth between them made by the test.
struct Rig {
    dir: tempfile::TempDir,
    /// `unshare --net ... sleep`: holds the server's namespace.
    server: Child,
    /// `unshare` running `kennel net-up` in its own namespaces.
    client: Option<Child>,
    udhcpd: Option<Child>,
}

/// Whether this machine can run these tests (root, busybox); says why not.
fn can_run() -> bool {
    if !crate::skip::need_root() {
        return false;
    }
    if !Path::new(BUSYBOX).exists() {
        skip(Missing::Provided, "needs busybox-static (/bin/busybox)");
        return false;
    }
    true
}

/// Wait until `pid` is in a network namespace other than this process's.
fn wait_own_netns(pid: u32) {
    let ours = fs::read_link("/proc/self/ns/net").expect("our netns");
    let deadline = Instant::now() + PATIENCE;
    while fs::read_link(format!("/proc/{pid}/ns/net")).ok().as_ref() == Some(&ours) {
        assert!(
            Instant::now() < deadline,
            "{pid} never entered its own netns"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::Builder::new()
            .prefix("kennel-net-")
            .tempdir()
            .expect("tempdir");
        fs::create_dir_all(dir.path().join("etc/kennel")).expect("mkdir etc");
        let server = Command::new("unshare")
            .args(["--net", "--pid", "--fork", "--kill-child", "--", BUSYBOX])
            .args(["sleep", "100000"])
            .spawn()
            .expect("spawn the server's namespace");
        wait_own_netns(server.id());
        Rig {
            dir,
            server,
            client: None,
            udhcpd: None,
        }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    fn client_pid(&self) -> u32 {
        self.client.as_ref().expect("kennel started").id()
    }

    /// Run a command in the server's network namespace; it must succeed.
    fn in_server(&self, args: &[&str]) -> String {
        run_in(&format!("--net=/proc/{}/ns/net", self.server.id()), args)
    }

    /// Run a command in kennel's network namespace; it must succeed.
    fn in_client(&self, args: &[&str]) -> String {
        run_in(&format!("--net=/proc/{}/ns/net", self.client_pid()), args)
    }

    /// Start `kennel net-up` with `cmdline` as /proc/cmdline and the test's `etc/` as /etc,
    /// after the shell commands `mounts`; with `gate`, it waits for [`Rig::release`]. The
    /// namespaces outlive kennel (the shell waits on its stdin) so that the test can look.
    fn start(&mut self, cmdline: &str, mounts: &str, gate: bool) {
        let d = self.dir.path().display().to_string();
        fs::write(self.path("cmdline"), format!("{cmdline}\n")).expect("write cmdline");
        let script = format!(
            "set -e; mount -t proc proc /proc; mount -t tmpfs tmpfs /run; \
             mount --bind {d}/etc /etc; mount --bind {d}/cmdline /proc/cmdline; {mounts} \
             {} set +e; {KENNEL} net-up; echo {EXIT}$?; read end",
            if gate { "read go;" } else { "" }
        );
        let out = fs::File::create(self.path("console")).expect("console file");
        let child = Command::new("unshare")
            .args([
                "--net",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--uts",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::piped())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn kennel net-up");
        wait_own_netns(child.id());
        self.client = Some(child);
    }

    fn release(&mut self) {
        let stdin = self.client.as_mut().and_then(|c| c.stdin.as_mut());
        stdin.expect("gated").write_all(b"go\n").expect("release");
    }

    /// A veth: `v0` (ADDRESS on it, up) in the server's namespace, `eth0` in kennel's.
    fn veth(&self, server_address: &str) {
        let client = self.client_pid().to_string();
        self.in_server(&[
            "ip", "link", "add", "v0", "type", "veth", "peer", "name", "eth0", "netns", &client,
        ]);
        self.in_server(&["ip", "addr", "add", server_address, "dev", "v0"]);
        self.in_server(&["ip", "link", "set", "v0", "up"]);
    }

    /// busybox udhcpd on `v0`: leases of 10.99.0.100-110/24, router 10.99.0.1, name server
    /// 10.99.0.53, domain test.example.
    fn udhcpd(&mut self) {
        let d = self.dir.path().display().to_string();
        fs::write(self.path("leases"), "").expect("leases");
        let conf = format!(
            "start 10.99.0.100\nend 10.99.0.110\ninterface v0\nlease_file {d}/leases\n\
             pidfile {d}/udhcpd.pid\nopt subnet 255.255.255.0\nopt router 10.99.0.1\n\
             opt dns 10.99.0.53\nopt domain test.example\nopt lease 600\n"
        );
        fs::write(self.path("udhcpd.conf"), conf).expect("udhcpd.conf");
        let log = fs::File::create(self.path("udhcpd.log")).expect("udhcpd.log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.server.id()))
            .args([BUSYBOX, "udhcpd", "-f"])
            .arg(self.path("udhcpd.conf"))
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn udhcpd");
        self.udhcpd = Some(child);
    }

    fn console(&self) -> String {
        fs::read_to_string(self.path("console")).unwrap_or_default()
    }

    /// Wait until `cond` holds, polling; panics with `what` and the console at the deadline.
    fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; kennel said:\n{}",
                self.console()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn wait_console(&self, line: &str) {
        self.wait_for(&format!("{line:?} on the console"), || {
            self.console().lines().any(|l| l.contains(line))
        });
    }

    /// Wait for `kennel net-up` to end (a static configuration: no client to hold); its
    /// exit code.
    fn wait_exit(&self) -> i32 {
        self.wait_console(EXIT);
        let console = self.console();
        let code = console
            .lines()
            .find_map(|l| l.strip_prefix(EXIT))
            .and_then(|c| c.trim().parse().ok());
        code.unwrap_or_else(|| panic!("no exit code in:\n{console}"))
    }

    /// The IPv4 addresses of kennel's eth0 (`10.99.0.100/24` ...).
    fn addresses(&self) -> Vec<String> {
        self.in_client(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                w.position(|x| x == "inet")?;
                w.next().map(str::to_string)
            })
            .collect()
    }

    fn default_route(&self) -> String {
        self.in_client(&["ip", "-4", "route", "show", "default"])
            .trim()
            .to_string()
    }

    fn resolv_conf(&self) -> Option<String> {
        fs::read_to_string(self.path("etc/resolv.conf")).ok()
    }
}

/// Every descendant of `pid`.
fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children(p) {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

fn run_in(ns: &str, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(ns)
        .args(args)
        .output()
        .expect("run nsenter");
    assert!(
        out.status.success(),
        "{args:?} in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Rig {
    fn drop(&mut self) {
        // unshare --kill-child takes each pid namespace (kennel and its udhcpc) down.
        for c in [
            self.udhcpd.as_mut(),
            self.client.as_mut(),
            Some(&mut self.server),
        ]
        .into_iter()
        .flatten()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn ip_dhcp_gets_a_lease_from_udhcpd_and_renews_releases_and_rebinds() {
    if !can_run() {
        return;
    }
    let mut r = Rig::new();
    // No device named: the first Ethernet interface, which appears only after kennel
    // started (a driver still loading): it waits.
    // A name server on the command line replaces the lease's.
    r.start("root=/dev/vda ro ip=::::::dhcp:10.99.0.54", "", false);
    r.veth("10.99.0.1/24");
    r.udhcpd();
    r.wait_console("net: /etc/resolv.conf");
    let console = r.console();
    let line = console
        .lines()
        .find(|l| l.contains("net eth0: 10.99.0."))
        .unwrap_or_default();
    let address = line
        .split_whitespace()
        .nth(3)
        .expect("an address on the line")
        .to_string();
    assert!(
        line.ends_with(&format!(
            "net eth0: {address} via 10.99.0.1 (DHCP from 10.99.0.1, lease 600s; ip= on the command line)"
        )),
        "{console}"
    );
    assert!(
        address.starts_with("10.99.0.1") && address.ends_with("/24"),
        "{address}"
    );
    assert_eq!(r.addresses(), std::slice::from_ref(&address));
    assert_eq!(
        r.default_route(),
        "default via 10.99.0.1 dev eth0 proto dhcp"
    );
    assert_eq!(
        r.resolv_conf().as_deref(),
        Some(
            "# written by kennel at boot (ip= on the command line, DHCP on eth0)\nsearch test.example\nnameserver 10.99.0.54\n"
        )
    );
    assert!(console.contains("kennel: net: /etc/resolv.conf: nameserver 10.99.0.54\n"));

    // The client keeps running, a child of kennel: a release (SIGUSR2) runs the script's
    // deconfig, which takes exactly the lease's address off; a renew (SIGUSR1) binds again.
    let udhcpc: Vec<i32> = descendants(r.client_pid() as i32)
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.contains("udhcpc"))
        })
        .collect();
    assert_eq!(udhcpc.len(), 1, "one DHCP client: {udhcpc:?}");
    let parent = crate::harness::proc_status_field(udhcpc[0], "PPid").unwrap_or_default();
    let parent_cmd =
        fs::read_to_string(format!("/proc/{}/cmdline", parent.trim())).unwrap_or_default();
    assert!(
        parent_cmd.contains("net-up"),
        "kennel holds udhcpc: {parent_cmd:?}"
    );
    // SAFETY: kill(2) on the udhcpc this test's kennel started.
    unsafe { libc::kill(udhcpc[0], libc::SIGUSR2) };
    r.wait_console(&format!(
        "net eth0: DHCP lease of {address} ended: address removed"
    ));
    r.wait_for("the address to go", || r.addresses().is_empty());
    // SAFETY: as above.
    unsafe { libc::kill(udhcpc[0], libc::SIGUSR1) };
    r.wait_for("a second lease", || {
        r.console().matches("(DHCP from 10.99.0.1").count() == 2
    });
    r.wait_for("the address back", || r.addresses().len() == 1);
    assert_eq!(
        r.default_route(),
        "default via 10.99.0.1 dev eth0 proto dhcp"
    );
}

#[test]
fn static_ip_wins_over_boot_toml_and_finds_the_address_already_set() {
    if !can_run() {
        return;
    }
    let mut r = Rig::new();
    fs::write(
        r.path("etc/kennel/boot.toml"),
        "[[network]]\ninterface = \"eth0\"\ndhcp = true\n",
    )
    .expect("boot.toml");
    r.start(
        "ro ip=10.99.1.2::10.99.1.1:255.255.255.0:netvm:eth0:off:10.99.1.53 quiet",
        "",
        true,
    );
    r.veth("10.99.1.1/24");
    // What Debian's initramfs does when it booted with ip= (an NFS root): the address is
    // there before init runs.
    r.in_client(&["ip", "addr", "add", "10.99.1.2/24", "dev", "eth0"]);
    r.release();
    let code = r.wait_exit();
    let console = r.console();
    assert_eq!(code, 0, "{console}");
    for line in [
        "kennel: net: ip= on the command line wins: /etc/kennel/boot.toml's [[network]] (eth0) not applied",
        "kennel: hostname netvm (ip= on the command line)",
        "kennel: net eth0: 10.99.1.2/24 via 10.99.1.1 (ip= on the command line; the address was already set)",
        "kennel: net: /etc/resolv.conf: nameserver 10.99.1.53",
    ] {
        assert!(console.lines().any(|l| l == line), "{line:?} not in:\n{console}");
    }
    assert!(!console.contains("udhcpc"), "no DHCP: {console}");
    assert_eq!(r.addresses(), ["10.99.1.2/24"]);
    assert_eq!(
        r.default_route(),
        "default via 10.99.1.1 dev eth0 proto static"
    );
    assert_eq!(
        run_in(
            &format!("--uts=/proc/{}/ns/uts", r.client_pid()),
            &["hostname"]
        )
        .trim(),
        "netvm"
    );
    assert_eq!(
        r.resolv_conf().as_deref(),
        Some("# written by kennel at boot (ip= on the command line)\nnameserver 10.99.1.53\n")
    );
}

#[test]
fn boot_toml_network_on_a_read_only_root_with_a_gateway_on_the_link_says_resolv_conf_is_not_written(
) {
    if !can_run() {
        return;
    }
    let mut r = Rig::new();
    fs::write(
        r.path("etc/kennel/boot.toml"),
        "modules = []\n\n[[network]]\ninterface = \"eth0\"\naddress = \"10.99.2.2/32\"\n\
         gateway = \"10.99.2.1\"\ndns = [\"10.99.2.53\"]\n",
    )
    .expect("boot.toml");
    r.start("root=/dev/vda ro", "mount -o remount,bind,ro /etc;", false);
    r.veth("10.99.2.1/24");
    let code = r.wait_exit();
    let console = r.console();
    assert_eq!(code, 0, "{console}");
    for line in [
        "kennel: net eth0: 10.99.2.2/32 via 10.99.2.1 (/etc/kennel/boot.toml)",
        "kennel: net: name servers 10.99.2.53 not written: /etc/resolv.conf: the file system is read-only: not written",
    ] {
        assert!(console.lines().any(|l| l == line), "{line:?} not in:\n{console}");
    }
    assert_eq!(r.addresses(), ["10.99.2.2/32"]);
    // A gateway outside the address's network (a /32, as clouds give): on the link.
    assert_eq!(
        r.default_route(),
        "default via 10.99.2.1 dev eth0 proto static onlink"
    );
    assert_eq!(r.resolv_conf(), None);
}

#[test]
fn dhcp_without_a_client_installed_is_said_and_boot_goes_on() {
    if !can_run() {
        return;
    }
    let mut r = Rig::new();
    // Every directory kennel looks for a client in, emptied (/bin and /sbin are /usr's on
    // Debian 12; mount itself is in /usr/bin, emptied last).
    let hide = "for d in /usr/local/sbin /usr/local/bin /usr/sbin /sbin /bin; do \
                [ -L $d ] || mount -t tmpfs tmpfs $d; done; mount -t tmpfs tmpfs /usr/bin;";
    r.start("ip=:::::eth0:dhcp", hide, false);
    r.veth("10.99.3.1/24");
    let code = r.wait_exit();
    let console = r.console();
    assert_eq!(code, 0, "{console}");
    assert!(
        console.lines().any(|l| l
            == "kennel: net eth0: DHCP asked for (ip= on the command line) but no DHCP client \
                installed (looked for udhcpc, busybox with udhcpc, dhclient in \
                /sbin:/usr/sbin:/bin:/usr/bin:/usr/local/sbin:/usr/local/bin): not configured"),
        "{console}"
    );
    assert_eq!(r.addresses(), Vec::<String>::new());
}

#[test]
fn an_interface_that_never_appears_is_said_after_its_wait() {
    if !can_run() {
        return;
    }
    let mut r = Rig::new();
    fs::write(
        r.path("etc/kennel/boot.toml"),
        "[[network]]\ninterface = \"eth7\"\naddress = \"10.99.4.2/24\"\nwait = \"300ms\"\n",
    )
    .expect("boot.toml");
    r.start("ro", "", false);
    let code = r.wait_exit();
    let console = r.console();
    assert_eq!(code, 0, "{console}");
    assert!(
        console
            .lines()
            .any(|l| l == "kennel: net eth7: no such interface after 300ms: not configured"),
        "{console}"
    );
}
