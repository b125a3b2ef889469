//! kennel as its DHCP client's script: the client (udhcpc, dhclient) runs
//! `/run/kennel/net/kennel-dhcp-script`, a symlink to kennel, on each event; kennel reads the
//! event and applies the lease with its own netlink code, writes /etc/resolv.conf, keeps the
//! lease in `/run/kennel/net/IFACE.lease` (to take exactly that address off when it
//! changes or goes) and tells boot, waiting on `IFACE.sock`, that the interface is bound.

use std::net::Ipv4Addr;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use rtnetlink::packet_route::route::RouteProtocol;

use super::apply;
use super::event::{self, Event, Lease};
use super::link::{Link, Netlink, NetlinkError};
use crate::boot::console;

/// The name kennel is called by as the script (the symlink's); `main.rs` dispatches on it.
pub const SCRIPT_NAME: &str = "kennel-dhcp-script";

/// Where the script, its settings, the leases and boot's sockets live.
pub const RUN_DIR: &str = "/run/kennel/net";

/// What boot tells the script, in `IFACE.json` (the clients pass no environment of
/// kennel's to their script: dhclient gives it a fresh one).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScriptConfig {
    /// Name servers that replace the lease's (from `ip=` or boot.toml).
    pub dns: Vec<Ipv4Addr>,
    /// Where the request for DHCP came from (`ip= on the command line`, the file).
    pub from: String,
}

pub fn path(interface: &str, ext: &str) -> PathBuf {
    PathBuf::from(RUN_DIR).join(format!("{interface}.{ext}"))
}

fn read_json<T: serde::de::DeserializeOwned>(interface: &str, ext: &str) -> Option<T> {
    let text = std::fs::read_to_string(path(interface, ext)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Run as the script; exits 0 when the event was applied.
pub fn main() -> ! {
    let arg = std::env::args().nth(1);
    let code = match event::read(arg.as_deref(), &|k| std::env::var(k).ok()) {
        Ok(ev) => match handle(&ev) {
            Ok(()) => 0,
            Err(e) => {
                console::line(&format!("net: DHCP: {e}"));
                1
            }
        },
        Err(e) => {
            console::line(&format!("net: DHCP script: {e}"));
            1
        }
    };
    std::process::exit(code)
}

fn find(nl: &Netlink, interface: &str) -> Result<Link, NetlinkError> {
    nl.links()?
        .into_iter()
        .find(|l| l.name == interface)
        .ok_or_else(|| NetlinkError::NoLink(interface.to_string()))
}

fn handle(ev: &Event) -> Result<(), NetlinkError> {
    match ev {
        Event::Nothing { interface, what } => {
            if what == "PREINIT" {
                let nl = Netlink::open()?;
                nl.set_up(&find(&nl, interface)?)?;
            }
            Ok(())
        }
        Event::Deconfig { interface } => {
            let nl = Netlink::open()?;
            let link = find(&nl, interface)?;
            nl.set_up(&link)?;
            if let Some(old) = read_json::<Lease>(interface, "lease") {
                nl.del_address(&link, old.address)?;
                let _ = std::fs::remove_file(path(interface, "lease"));
                console::line(&format!(
                    "net {interface}: DHCP lease of {} ended: address removed",
                    old.address
                ));
            }
            Ok(())
        }
        Event::Bound {
            interface,
            lease,
            renew,
        } => {
            let r = bound(interface, lease, *renew);
            let _ = UnixDatagram::unbound().and_then(|s| {
                let msg = match &r {
                    Ok(()) => "bound".to_string(),
                    Err(e) => format!("failed: {e}"),
                };
                s.send_to(msg.as_bytes(), path(interface, "sock"))
            });
            r
        }
    }
}

fn bound(interface: &str, lease: &Lease, renew: bool) -> Result<(), NetlinkError> {
    let cfg: ScriptConfig = read_json(interface, "json").unwrap_or_default();
    let old: Option<Lease> = read_json(interface, "lease");
    let nl = Netlink::open()?;
    let link = find(&nl, interface)?;
    if let Some(old) = &old {
        if old.address != lease.address {
            nl.del_address(&link, old.address)?;
        }
    }
    let done = apply::configure(&nl, &link, lease.address, lease.router, RouteProtocol::Dhcp)?;
    let changed = old.as_ref() != Some(lease);
    if !renew || changed {
        let mut from = match lease.server {
            Some(s) => format!("DHCP from {s}"),
            None => "DHCP".to_string(),
        };
        if let Some(secs) = lease.seconds {
            from.push_str(&format!(", lease {secs}s"));
        }
        if !cfg.from.is_empty() {
            from.push_str(&format!("; {}", cfg.from));
        }
        if done.already && old.is_none() {
            from.push_str("; the address was already set");
        }
        console::line(&apply::describe(
            interface,
            lease.address,
            lease.router,
            &from,
        ));
    }
    let (dns, dns_from) = if cfg.dns.is_empty() {
        (&lease.dns, format!("DHCP on {interface}"))
    } else {
        (&cfg.dns, format!("{}, DHCP on {interface}", cfg.from))
    };
    if let Some(l) = apply::resolv_conf(dns, lease.domain.as_deref(), &dns_from) {
        if !renew || !l.ends_with("(unchanged)") {
            console::line(&l);
        }
    }
    if let Ok(text) = serde_json::to_string(lease) {
        let _ = std::fs::write(path(interface, "lease"), text);
    }
    Ok(())
}
