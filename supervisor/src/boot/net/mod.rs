//! The network at boot, before units start: the kernel command line's `ip=` or the
//! `[[network]]` tables of /etc/kennel/boot.toml ([`plan`]), applied through netlink
//! ([`link`], [`apply`]) or by a DHCP client ([`dhcp`]) whose script is kennel
//! ([`script`]); name servers into /etc/resolv.conf ([`resolv`]). Every step is one console
//! line; nothing here fails the boot.

mod apply;
mod cidr;
mod config;
mod dhcp;
mod event;
mod ip_arg;
mod link;
mod plan;
mod resolv;
pub mod script;

use std::path::Path;
use std::process::Child;
use std::time::Instant;

use rtnetlink::packet_route::route::RouteProtocol;

use super::console;
use super::Cmdline;
use config::Addressing;

/// The file with the `[[network]]` tables.
pub const BOOT_TOML: &str = "/etc/kennel/boot.toml";

/// Configure the network as the command line and boot.toml say; returns the DHCP clients
/// started (they keep running, for renewals, as children of this process).
pub fn up(cmd: &Cmdline) -> Vec<Child> {
    let text = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let path = Path::new(BOOT_TOML);
    let p = plan::plan(ip_arg::find(&text), config::read(path), path);
    for n in &p.notes {
        console::line(n);
    }
    if p.ifaces.is_empty() {
        return Vec::new();
    }
    if let (Some(name), None) = (&p.hostname, &cmd.hostname) {
        match nix::unistd::sethostname(name) {
            Ok(()) => console::line(&format!("hostname {name} ({})", p.from)),
            Err(e) => console::line(&format!("sethostname {name}: {e}")),
        }
    }
    let nl = match link::Netlink::open() {
        Ok(nl) => nl,
        Err(e) => {
            console::line(&format!("net: {e}: network not configured"));
            return Vec::new();
        }
    };
    let mut clients = Vec::new();
    for iface in &p.ifaces {
        let deadline = Instant::now() + iface.wait;
        let link = match nl.wait_link(iface.name.as_deref(), deadline) {
            Ok(l) => l,
            Err(e) => {
                let wait = kennel_units::format_duration(iface.wait);
                console::line(&match (&e, &iface.name) {
                    (link::NetlinkError::NoLink(_), Some(name)) => {
                        format!("net {name}: no such interface after {wait}: not configured")
                    }
                    (link::NetlinkError::NoLink(_), None) => {
                        format!("net: no Ethernet interface after {wait}: not configured")
                    }
                    (e, name) => {
                        format!("net {}: {e}: not configured", name.as_deref().unwrap_or(""))
                    }
                });
                continue;
            }
        };
        match &iface.addressing {
            Addressing::Static { address, gateway } => {
                match apply::configure(&nl, &link, *address, *gateway, RouteProtocol::Static) {
                    Ok(done) => {
                        let from = if done.already {
                            format!("{}; the address was already set", p.from)
                        } else {
                            p.from.clone()
                        };
                        console::line(&apply::describe(&link.name, *address, *gateway, &from));
                        if let Some(l) = apply::resolv_conf(&iface.dns, None, &p.from) {
                            console::line(&l);
                        }
                    }
                    Err(e) => console::line(&format!("net {}: {e}", link.name)),
                }
            }
            Addressing::Dhcp => {
                if let Some(child) = dhcp_up(&nl, &link, iface, &p.from, deadline) {
                    clients.push(child);
                }
            }
        }
    }
    clients
}

/// Start the DHCP client on `link`, wait for its first lease until `deadline`, say what
/// came of it.
fn dhcp_up(
    nl: &link::Netlink,
    link: &link::Link,
    iface: &plan::Iface,
    from: &str,
    deadline: Instant,
) -> Option<Child> {
    let name = &link.name;
    let dirs: Vec<_> = dhcp::DIRS.iter().map(std::path::PathBuf::from).collect();
    let Some(client) = dhcp::find_in(&dirs, dhcp::busybox_has_udhcpc) else {
        console::line(&format!(
            "net {name}: DHCP asked for ({from}) but {}: not configured",
            dhcp::DhcpError::NoClient
        ));
        return None;
    };
    if let Err(e) = nl.set_up(link) {
        console::line(&format!("net {name}: {e}"));
    }
    let cfg = script::ScriptConfig {
        dns: iface.dns.clone(),
        from: from.to_string(),
    };
    match dhcp::start(&client, name, &cfg, deadline) {
        Ok((child, outcome)) => {
            let client = client.name();
            match outcome {
                // The script said it on the console.
                dhcp::Outcome::Bound => {}
                dhcp::Outcome::Failed(why) => console::line(&format!(
                    "net {name}: the lease could not be applied ({why}); {client} keeps running"
                )),
                dhcp::Outcome::NotYet => console::line(&format!(
                    "net {name}: no DHCP lease after {}; {client} keeps trying",
                    kennel_units::format_duration(iface.wait)
                )),
                dhcp::Outcome::Exited(status) => {
                    console::line(&format!("net {name}: {client} ended ({status}): no DHCP"));
                    return None;
                }
            }
            Some(child)
        }
        Err(e) => {
            console::line(&format!("net {name}: DHCP: {e}"));
            None
        }
    }
}

/// `kennel net-up` (hidden, for the tests): what boot does for the network, then wait
/// for the DHCP clients (there are none with a static configuration).
pub fn up_and_hold(cmd: &Cmdline) -> i32 {
    for mut c in up(cmd) {
        let _ = c.wait();
    }
    0
}
