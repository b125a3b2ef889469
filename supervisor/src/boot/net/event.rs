//! What a DHCP client tells its script, read into one [`Event`]: busybox udhcpc's
//! (`SCRIPT deconfig|bound|renew|leasefail|nak`, the lease in `ip`, `mask`/`subnet`, `router`,
//! `dns`, `domain`, `serverid`, `lease`) and ISC dhclient's (`reason=BOUND|RENEW|...`, the
//! lease in `new_ip_address`, `new_subnet_mask`, `new_routers`, ...). Pure.

use std::net::Ipv4Addr;

use super::cidr::{mask_prefix, Cidr};

/// A lease: what the interface gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    pub address: Cidr,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    /// The DHCP server that gave it.
    pub server: Option<Ipv4Addr>,
    /// Its length, in seconds.
    pub seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Put this lease on the interface (`renew`: a renewal of a lease it may already have).
    Bound {
        interface: String,
        lease: Lease,
        renew: bool,
    },
    /// The lease is gone: take its address off; the interface stays up.
    Deconfig { interface: String },
    /// Nothing to change (`leasefail`, `nak`, dhclient's `PREINIT`, IPv6 reasons ...).
    Nothing { interface: String, what: String },
}

/// A call kennel cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("no interface in the environment (udhcpc sets $interface, dhclient too)")]
    NoInterface,
    #[error("neither an action argument (udhcpc) nor $reason (dhclient)")]
    NoAction,
    #[error("{what}: {key}={value:?} is not {expected}")]
    Bad {
        what: String,
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{what}: no {key} in the environment")]
    Missing { what: String, key: &'static str },
}

/// Read the event from the script's first argument and its environment (`env(NAME)`).
pub fn read(arg: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Event, EventError> {
    let interface = env("interface")
        .filter(|i| !i.is_empty())
        .ok_or(EventError::NoInterface)?;
    if let Some(reason) = env("reason") {
        return dhclient(&reason, interface, env);
    }
    let what = arg.ok_or(EventError::NoAction)?.to_string();
    match what.as_str() {
        "deconfig" => Ok(Event::Deconfig { interface }),
        "bound" | "renew" => {
            let keys = Keys {
                ip: "ip",
                mask: Some("mask"),
                subnet: "subnet",
                router: "router",
                dns: "dns",
                domain: "domain",
                server: "serverid",
                lease: "lease",
            };
            Ok(Event::Bound {
                interface,
                lease: lease(&what, &keys, env)?,
                renew: what == "renew",
            })
        }
        _ => Ok(Event::Nothing { interface, what }),
    }
}

fn dhclient(
    reason: &str,
    interface: String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Event, EventError> {
    let what = reason.to_string();
    match reason {
        "BOUND" | "RENEW" | "REBIND" | "REBOOT" | "TIMEOUT" => {
            let keys = Keys {
                ip: "new_ip_address",
                mask: None,
                subnet: "new_subnet_mask",
                router: "new_routers",
                dns: "new_domain_name_servers",
                domain: "new_domain_name",
                server: "new_dhcp_server_identifier",
                lease: "new_dhcp_lease_time",
            };
            Ok(Event::Bound {
                interface,
                lease: lease(&what, &keys, env)?,
                renew: matches!(reason, "RENEW" | "REBIND"),
            })
        }
        "EXPIRE" | "FAIL" | "RELEASE" | "STOP" => Ok(Event::Deconfig { interface }),
        _ => Ok(Event::Nothing { interface, what }),
    }
}

/// The environment names of a client's lease.
struct Keys {
    ip: &'static str,
    /// A prefix length (udhcpc's `mask`), preferred to the dotted `subnet`.
    mask: Option<&'static str>,
    subnet: &'static str,
    router: &'static str,
    dns: &'static str,
    domain: &'static str,
    server: &'static str,
    lease: &'static str,
}

fn lease(what: &str, k: &Keys, env: &dyn Fn(&str) -> Option<String>) -> Result<Lease, EventError> {
    let bad = |key: &'static str, value: &str, expected: &'static str| EventError::Bad {
        what: what.to_string(),
        key,
        value: value.to_string(),
        expected,
    };
    let ipv4 = |key: &'static str, v: &str| -> Result<Ipv4Addr, EventError> {
        v.parse().map_err(|_| bad(key, v, "an IPv4 address"))
    };
    let ip_text = env(k.ip).ok_or(EventError::Missing {
        what: what.to_string(),
        key: k.ip,
    })?;
    let addr = ipv4(k.ip, &ip_text)?;
    let prefix = match k.mask.and_then(|m| env(m).map(|v| (m, v))) {
        Some((key, v)) => v
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| bad(key, &v, "a prefix length"))?,
        None => match env(k.subnet) {
            Some(v) => {
                mask_prefix(ipv4(k.subnet, &v)?).map_err(|_| bad(k.subnet, &v, "a netmask"))?
            }
            None => super::cidr::class_prefix(addr),
        },
    };
    let list = |key: &'static str| -> Result<Vec<Ipv4Addr>, EventError> {
        env(key)
            .unwrap_or_default()
            .split_whitespace()
            .map(|v| ipv4(key, v))
            .collect()
    };
    let router = list(k.router)?.into_iter().next();
    let dns = list(k.dns)?;
    let server = match env(k.server) {
        Some(v) if !v.is_empty() => Some(ipv4(k.server, &v)?),
        _ => None,
    };
    let seconds = match env(k.lease) {
        Some(v) if !v.is_empty() => Some(
            v.parse::<u64>()
                .map_err(|_| bad(k.lease, &v, "a number of seconds"))?,
        ),
        _ => None,
    };
    Ok(Lease {
        address: Cidr { addr, prefix },
        router,
        dns,
        domain: env(k.domain).filter(|d| !d.trim().is_empty()),
        server,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn udhcpc_bound_renew_deconfig() {
        let e = env(&[
            ("interface", "eth0"),
            ("ip", "10.0.2.15"),
            ("subnet", "255.255.255.0"),
            ("mask", "24"),
            ("router", "10.0.2.2 10.0.2.1"),
            ("dns", "10.0.2.3 1.1.1.1"),
            ("domain", "example.org"),
            ("serverid", "10.0.2.2"),
            ("lease", "86400"),
        ]);
        let lease = Lease {
            address: "10.0.2.15/24".parse().unwrap(),
            router: Some(ip("10.0.2.2")),
            dns: vec![ip("10.0.2.3"), ip("1.1.1.1")],
            domain: Some("example.org".into()),
            server: Some(ip("10.0.2.2")),
            seconds: Some(86400),
        };
        assert_eq!(
            read(Some("bound"), &e).unwrap(),
            Event::Bound {
                interface: "eth0".into(),
                lease: lease.clone(),
                renew: false
            }
        );
        assert_eq!(
            read(Some("renew"), &e).unwrap(),
            Event::Bound {
                interface: "eth0".into(),
                lease,
                renew: true
            }
        );
        assert_eq!(
            read(Some("deconfig"), &e).unwrap(),
            Event::Deconfig {
                interface: "eth0".into()
            }
        );
        assert_eq!(
            read(Some("leasefail"), &e).unwrap(),
            Event::Nothing {
                interface: "eth0".into(),
                what: "leasefail".into()
            }
        );
        // An older udhcpc without $mask: the dotted subnet.
        let e = env(&[
            ("interface", "eth0"),
            ("ip", "10.0.2.15"),
            ("subnet", "255.255.0.0"),
        ]);
        let Event::Bound { lease, .. } = read(Some("bound"), &e).unwrap() else {
            panic!("not bound")
        };
        assert_eq!(lease.address.to_string(), "10.0.2.15/16");
        assert_eq!(lease.router, None);
        assert!(lease.dns.is_empty());
    }

    #[test]
    fn dhclient_reasons() {
        let e = env(&[
            ("reason", "BOUND"),
            ("interface", "ens3"),
            ("new_ip_address", "192.168.1.20"),
            ("new_subnet_mask", "255.255.255.0"),
            ("new_routers", "192.168.1.1"),
            ("new_domain_name_servers", "192.168.1.1"),
            ("new_dhcp_lease_time", "600"),
        ]);
        let Event::Bound {
            interface,
            lease,
            renew,
        } = read(None, &e).unwrap()
        else {
            panic!("not bound")
        };
        assert_eq!(interface, "ens3");
        assert!(!renew);
        assert_eq!(lease.address.to_string(), "192.168.1.20/24");
        assert_eq!(lease.router, Some(ip("192.168.1.1")));
        assert_eq!(lease.seconds, Some(600));
        for (reason, want) in [("EXPIRE", true), ("STOP", true), ("PREINIT", false)] {
            let e = env(&[("reason", reason), ("interface", "ens3")]);
            assert_eq!(
                matches!(read(None, &e).unwrap(), Event::Deconfig { .. }),
                want,
                "{reason}"
            );
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            read(Some("bound"), &env(&[])).unwrap_err(),
            EventError::NoInterface
        );
        assert_eq!(
            read(None, &env(&[("interface", "eth0")])).unwrap_err(),
            EventError::NoAction
        );
        assert_eq!(
            read(Some("bound"), &env(&[("interface", "eth0")]))
                .unwrap_err()
                .to_string(),
            "bound: no ip in the environment"
        );
        assert_eq!(
            read(
                Some("bound"),
                &env(&[("interface", "eth0"), ("ip", "10.0.2.15"), ("mask", "40")])
            )
            .unwrap_err()
            .to_string(),
            "bound: mask=\"40\" is not a prefix length"
        );
        assert!(read(
            Some("bound"),
            &env(&[
                ("interface", "eth0"),
                ("ip", "10.0.2.15"),
                ("dns", "10.0.2.3 x")
            ])
        )
        .is_err());
    }
}
