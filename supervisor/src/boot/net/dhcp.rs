//! DHCP through a client the distribution ships, never hand-rolled packets: busybox
//! `udhcpc` first (an `udhcpc` command, or busybox's applet), ISC `dhclient` otherwise. Its
//! script is kennel itself ([`super::script`]); boot starts the client, waits (bounded) for
//! the first lease, and leaves it running for renewals, a child of PID 1 that the supervisor
//! reaps and the power-off stops.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::script::{self, ScriptConfig, RUN_DIR, SCRIPT_NAME};

/// Where clients are looked for (the kernel gives init no PATH).
pub const DIRS: &[&str] = &[
    "/sbin",
    "/usr/sbin",
    "/bin",
    "/usr/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
];

/// The DHCP client kennel runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// busybox udhcpc: `program` is `udhcpc` itself, or busybox with the applet.
    Udhcpc {
        program: PathBuf,
        applet: bool,
    },
    Dhclient(PathBuf),
}

impl Client {
    pub fn name(&self) -> String {
        match self {
            Client::Udhcpc {
                program,
                applet: true,
            } => format!("{} udhcpc", program.display()),
            Client::Udhcpc { program, .. } | Client::Dhclient(program) => {
                program.display().to_string()
            }
        }
    }

    /// The command line: in the foreground (so that kennel holds it), on one interface, with
    /// kennel as its script; it retries for ever and renews the lease.
    pub fn args(&self, interface: &str, script: &Path) -> Vec<String> {
        let script = script.display().to_string();
        match self {
            Client::Udhcpc { program, applet } => {
                let mut a = vec![program.display().to_string()];
                if *applet {
                    a.push("udhcpc".into());
                }
                a.extend(["-f", "-i", interface, "-s", &script].map(String::from));
                a
            }
            Client::Dhclient(program) => vec![
                program.display().to_string(),
                "-d".into(),
                "-sf".into(),
                script,
                "-pf".into(),
                script::path(interface, "dhclient.pid")
                    .display()
                    .to_string(),
                "-lf".into(),
                script::path(interface, "dhclient.leases")
                    .display()
                    .to_string(),
                interface.into(),
            ],
        }
    }
}

fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The client to use, looking in `dirs`: `udhcpc`, then `busybox` when
/// `has_udhcpc(busybox)` says it has the applet, then `dhclient`.
pub fn find_in(dirs: &[PathBuf], has_udhcpc: impl Fn(&Path) -> bool) -> Option<Client> {
    let exe = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| executable(p));
    if let Some(program) = exe("udhcpc") {
        return Some(Client::Udhcpc {
            program,
            applet: false,
        });
    }
    if let Some(program) = exe("busybox").filter(|b| has_udhcpc(b)) {
        return Some(Client::Udhcpc {
            program,
            applet: true,
        });
    }
    exe("dhclient").map(Client::Dhclient)
}

/// Whether this busybox has the udhcpc applet (`busybox --list`).
pub fn busybox_has_udhcpc(busybox: &Path) -> bool {
    Command::new(busybox)
        .arg("--list")
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "udhcpc")
        })
}

/// What came of waiting for the first lease.
#[derive(Debug)]
pub enum Outcome {
    /// The script applied a lease.
    Bound,
    /// The script could not apply it (it said why on the console).
    Failed(String),
    /// No lease before the deadline; the client keeps trying.
    NotYet,
    /// The client ended.
    Exited(ExitStatus),
}

/// Why no client runs.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("no DHCP client installed (looked for udhcpc, busybox with udhcpc, dhclient in {})", DIRS.join(":"))]
    NoClient,
    #[error("{what}: {source}")]
    Setup {
        what: String,
        source: std::io::Error,
    },
    #[error("start {client}: {source}")]
    Spawn {
        client: String,
        source: std::io::Error,
    },
}

fn setup(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DhcpError {
    let what = what.into();
    move |source| DhcpError::Setup { what, source }
}

/// Start `client` on `interface` and wait, until `deadline`, for its first lease.
pub fn start(
    client: &Client,
    interface: &str,
    cfg: &ScriptConfig,
    deadline: Instant,
) -> Result<(Child, Outcome), DhcpError> {
    std::fs::create_dir_all(RUN_DIR).map_err(setup(format!("create {RUN_DIR}")))?;
    let script = Path::new(RUN_DIR).join(SCRIPT_NAME);
    let exe = std::env::current_exe().map_err(setup("find kennel's own binary"))?;
    let _ = std::fs::remove_file(&script);
    std::os::unix::fs::symlink(&exe, &script).map_err(setup(format!(
        "symlink {} to {}",
        script.display(),
        exe.display()
    )))?;
    let json = script::path(interface, "json");
    let text = serde_json::to_string(cfg).map_err(|e| DhcpError::Setup {
        what: "encode the script's settings".into(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&json, text).map_err(setup(format!("write {}", json.display())))?;
    let sock_path = script::path(interface, "sock");
    let _ = std::fs::remove_file(&sock_path);
    let sock =
        UnixDatagram::bind(&sock_path).map_err(setup(format!("bind {}", sock_path.display())))?;

    let args = client.args(interface, &script);
    let mut child = Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| DhcpError::Spawn {
            client: client.name(),
            source,
        })?;
    let outcome = wait(&mut child, &sock, deadline);
    let _ = std::fs::remove_file(&sock_path);
    Ok((child, outcome))
}

fn wait(child: &mut Child, sock: &UnixDatagram, deadline: Instant) -> Outcome {
    let mut buf = [0u8; 512];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Outcome::NotYet;
        }
        let step = (deadline - now).min(Duration::from_millis(100));
        let _ = sock.set_read_timeout(Some(step.max(Duration::from_millis(1))));
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            return match msg.as_str() {
                "bound" => Outcome::Bound,
                _ => Outcome::Failed(msg),
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Outcome::Exited(status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(dir: &Path, name: &str) {
        let p = dir.join(name);
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn udhcpc_first_then_busybox_then_dhclient() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(find_in(&dirs, |_| true), None);
        exe(b.path(), "dhclient");
        assert_eq!(
            find_in(&dirs, |_| true),
            Some(Client::Dhclient(b.path().join("dhclient")))
        );
        exe(a.path(), "busybox");
        assert_eq!(
            find_in(&dirs, |_| false),
            Some(Client::Dhclient(b.path().join("dhclient"))),
            "a busybox without the applet is passed over"
        );
        let bb = find_in(&dirs, |_| true).unwrap();
        assert_eq!(
            bb,
            Client::Udhcpc {
                program: a.path().join("busybox"),
                applet: true
            }
        );
        assert_eq!(
            bb.args("eth0", Path::new("/run/kennel/net/kennel-dhcp-script"))[1..],
            [
                "udhcpc",
                "-f",
                "-i",
                "eth0",
                "-s",
                "/run/kennel/net/kennel-dhcp-script"
            ]
        );
        // Not executable: not a client.
        std::fs::write(b.path().join("udhcpc"), "").unwrap();
        assert!(matches!(
            find_in(&dirs, |_| true),
            Some(Client::Udhcpc { applet: true, .. })
        ));
        exe(b.path(), "udhcpc");
        assert_eq!(
            find_in(&dirs, |_| true),
            Some(Client::Udhcpc {
                program: b.path().join("udhcpc"),
                applet: false
            })
        );
    }

    #[test]
    fn dhclient_in_the_foreground_with_kennel_as_script() {
        let c = Client::Dhclient("/sbin/dhclient".into());
        assert_eq!(
            c.args("ens3", Path::new("/s")),
            [
                "/sbin/dhclient",
                "-d",
                "-sf",
                "/s",
                "-pf",
                "/run/kennel/net/ens3.dhclient.pid",
                "-lf",
                "/run/kennel/net/ens3.dhclient.leases",
                "ens3"
            ]
        );
    }
}
