//! The kernel command line's `ip=` (and its old name `nfsaddrs=`), in the kernel's format
//! (Documentation/admin-guide/nfs/nfsroot.rst):
//! `ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0-ip>:<dns1-ip>:<ntp0-ip>`
//! and the short forms `ip=dhcp`, `ip=on`, `ip=any`, `ip=off`, `ip=none`. Pure.

use std::net::Ipv4Addr;

use super::cidr::{class_prefix, mask_prefix, Cidr};

/// What `ip=` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpArg {
    /// The interface; `None`: the first Ethernet interface the machine has.
    pub device: Option<String>,
    /// The machine's name (the kernel sets it; so does kennel, unless `kennel.hostname=`).
    pub hostname: Option<String>,
    pub method: Method,
    /// Name servers for /etc/resolv.conf (with DHCP: instead of the lease's).
    pub dns: Vec<Ipv4Addr>,
    /// The NTP server: read, not used (kennel sets no clock from the network).
    pub ntp: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `ip=off`, `ip=none`, or no client address with autoconf `off`: configure nothing.
    Off,
    /// No client address and autoconf `dhcp`, `on`, `any` or empty.
    Dhcp,
    /// A client address: configured as given, whatever autoconf says (the kernel, too,
    /// reads `off` there as "static").
    Static {
        address: Cidr,
        gateway: Option<Ipv4Addr>,
    },
}

/// An `ip=` kennel cannot follow; each names the whole argument and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpArgError {
    #[error("ip={arg}: {field} {value:?} is not an IPv4 address")]
    Address {
        arg: String,
        field: &'static str,
        value: String,
    },
    #[error("ip={arg}: netmask {value:?} is not a netmask (contiguous ones, e.g. 255.255.255.0)")]
    Netmask { arg: String, value: String },
    #[error("ip={arg}: device {value:?} is not an interface name (1 to 15 characters, no '/' or spaces)")]
    Device { arg: String, value: String },
    #[error("ip={arg}: autoconf {value:?} is not supported: kennel configures by DHCP (dhcp, on, any) or statically (off, none)")]
    Unsupported { arg: String, value: String },
    #[error("ip={arg}: unknown autoconf {value:?} (off, none, on, any, dhcp)")]
    Autoconf { arg: String, value: String },
    #[error("ip={arg}: {count} fields, at most 10 (client-ip:server-ip:gw-ip:netmask:hostname:device:autoconf:dns0-ip:dns1-ip:ntp0-ip)")]
    Fields { arg: String, count: usize },
}

/// The value of the last `ip=` (or `nfsaddrs=`) of the command line, as the kernel takes the
/// last one; `None` when there is none.
pub fn find(cmdline: &str) -> Option<&str> {
    cmdline.split_whitespace().rev().find_map(|w| {
        w.strip_prefix("ip=")
            .or_else(|| w.strip_prefix("nfsaddrs="))
    })
}

/// Whether `name` can be a Linux interface name (IFNAMSIZ 16 with the NUL).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
}

enum Autoconf {
    Off,
    Dhcp,
}

fn autoconf(arg: &str, value: &str) -> Result<Autoconf, IpArgError> {
    match value {
        "off" | "none" => Ok(Autoconf::Off),
        "" | "on" | "any" | "dhcp" => Ok(Autoconf::Dhcp),
        "bootp" | "rarp" | "both" => Err(IpArgError::Unsupported {
            arg: arg.to_string(),
            value: value.to_string(),
        }),
        _ => Err(IpArgError::Autoconf {
            arg: arg.to_string(),
            value: value.to_string(),
        }),
    }
}

/// Parse the value of `ip=` (what follows the `=`).
pub fn parse(arg: &str) -> Result<IpArg, IpArgError> {
    let fields: Vec<&str> = arg.split(':').collect();
    if fields.len() > 10 {
        return Err(IpArgError::Fields {
            arg: arg.to_string(),
            count: fields.len(),
        });
    }
    if fields.len() == 1 {
        let method = match autoconf(arg, arg)? {
            Autoconf::Off => Method::Off,
            Autoconf::Dhcp => Method::Dhcp,
        };
        return Ok(IpArg {
            device: None,
            hostname: None,
            method,
            dns: Vec::new(),
            ntp: None,
        });
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or("");
    let ip = |i: usize, name: &'static str| -> Result<Option<Ipv4Addr>, IpArgError> {
        let v = field(i);
        if v.is_empty() {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| IpArgError::Address {
            arg: arg.to_string(),
            field: name,
            value: v.to_string(),
        })
    };
    let client = ip(0, "client-ip")?;
    let _server = ip(1, "server-ip")?;
    let gateway = ip(2, "gw-ip")?;
    let netmask = ip(3, "netmask")?;
    let hostname = Some(field(4)).filter(|h| !h.is_empty()).map(str::to_string);
    let device = match field(5) {
        "" => None,
        d if valid_ifname(d) => Some(d.to_string()),
        d => {
            return Err(IpArgError::Device {
                arg: arg.to_string(),
                value: d.to_string(),
            })
        }
    };
    let auto = autoconf(arg, field(6))?;
    let dns: Vec<Ipv4Addr> = [ip(7, "dns0-ip")?, ip(8, "dns1-ip")?]
        .into_iter()
        .flatten()
        .collect();
    let ntp = ip(9, "ntp0-ip")?;
    let method = match (client, auto) {
        (Some(addr), _) => {
            let prefix = match netmask {
                Some(m) => mask_prefix(m).map_err(|_| IpArgError::Netmask {
                    arg: arg.to_string(),
                    value: m.to_string(),
                })?,
                None => class_prefix(addr),
            };
            Method::Static {
                address: Cidr { addr, prefix },
                gateway,
            }
        }
        (None, Autoconf::Off) => Method::Off,
        (None, Autoconf::Dhcp) => Method::Dhcp,
    };
    Ok(IpArg {
        device,
        hostname,
        method,
        dns,
        ntp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn short_forms() {
        for (s, m) in [
            ("dhcp", Method::Dhcp),
            ("on", Method::Dhcp),
            ("any", Method::Dhcp),
            ("off", Method::Off),
            ("none", Method::Off),
        ] {
            let a = parse(s).unwrap();
            assert_eq!(a.method, m, "{s}");
            assert_eq!(a.device, None);
        }
        assert!(matches!(
            parse("rarp").unwrap_err(),
            IpArgError::Unsupported { .. }
        ));
        assert_eq!(
            parse("dhcpp").unwrap_err().to_string(),
            "ip=dhcpp: unknown autoconf \"dhcpp\" (off, none, on, any, dhcp)"
        );
    }

    #[test]
    fn full_static_form() {
        let a = parse("10.0.2.15::10.0.2.2:255.255.255.0:vm1:eth0:off:10.0.2.3:1.1.1.1:10.0.2.4")
            .unwrap();
        assert_eq!(
            a,
            IpArg {
                device: Some("eth0".into()),
                hostname: Some("vm1".into()),
                method: Method::Static {
                    address: "10.0.2.15/24".parse().unwrap(),
                    gateway: Some(ip("10.0.2.2")),
                },
                dns: vec![ip("10.0.2.3"), ip("1.1.1.1")],
                ntp: Some(ip("10.0.2.4")),
            }
        );
    }

    #[test]
    fn fields_may_be_empty_or_missing() {
        // No netmask: the class's (10/8); no device; autoconf empty but a client address.
        let a = parse("10.0.2.15:::").unwrap();
        assert_eq!(
            a.method,
            Method::Static {
                address: "10.0.2.15/8".parse().unwrap(),
                gateway: None
            }
        );
        // What initramfs-tools users write for DHCP on one interface.
        let a = parse(":::::eth1:dhcp").unwrap();
        assert_eq!(a.method, Method::Dhcp);
        assert_eq!(a.device.as_deref(), Some("eth1"));
        // No client address, autoconf empty: autoconfiguration (DHCP).
        assert_eq!(parse("::::::").unwrap().method, Method::Dhcp);
        // No client address, autoconf off: nothing.
        assert_eq!(parse(":::::eth0:off").unwrap().method, Method::Off);
        // DHCP with name servers given: kept (they replace the lease's).
        let a = parse(":::::eth0:dhcp:9.9.9.9").unwrap();
        assert_eq!(a.dns, [ip("9.9.9.9")]);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            parse("10.0.2:::").unwrap_err().to_string(),
            "ip=10.0.2:::: client-ip \"10.0.2\" is not an IPv4 address"
        );
        assert!(matches!(
            parse("10.0.2.15::x").unwrap_err(),
            IpArgError::Address { field: "gw-ip", .. }
        ));
        assert!(matches!(
            parse("10.0.2.15:::255.0.255.0").unwrap_err(),
            IpArgError::Netmask { .. }
        ));
        assert!(matches!(
            parse(":::::a/b:dhcp").unwrap_err(),
            IpArgError::Device { .. }
        ));
        assert!(matches!(
            parse(":::::averyveryverylongname:dhcp").unwrap_err(),
            IpArgError::Device { .. }
        ));
        assert!(matches!(
            parse(":::::eth0:bootp").unwrap_err(),
            IpArgError::Unsupported { .. }
        ));
        assert!(matches!(
            parse(":::::::::::").unwrap_err(),
            IpArgError::Fields { count: 12, .. }
        ));
        assert!(matches!(
            parse("fe80::1::::::").unwrap_err(),
            IpArgError::Address { .. }
        ));
    }

    #[test]
    fn the_last_ip_of_the_command_line() {
        assert_eq!(find("ro quiet"), None);
        assert_eq!(find("ip=dhcp root=/dev/vda ip=off"), Some("off"));
        assert_eq!(find("nfsaddrs=10.0.0.2:::"), Some("10.0.0.2:::"));
        assert_eq!(find("kennel.ip=x noip=y"), None);
    }
}
