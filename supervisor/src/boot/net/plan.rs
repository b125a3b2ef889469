//! What to configure: the command line's `ip=` wins over boot.toml's `[[network]]` (said on
//! the console); an unreadable `ip=` is said and the file used. Pure.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use super::config::{Addressing, ConfigError, Network, DEFAULT_WAIT};
use super::ip_arg::{self, Method};

/// One interface to configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    /// `None`: the first Ethernet interface.
    pub name: Option<String>,
    pub addressing: Addressing,
    pub dns: Vec<Ipv4Addr>,
    pub wait: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Where the configuration comes from, for the console.
    pub from: String,
    pub ifaces: Vec<Iface>,
    /// `ip=`'s hostname.
    pub hostname: Option<String>,
    /// Console lines: errors, what is ignored and why.
    pub notes: Vec<String>,
}

pub const FROM_CMDLINE: &str = "ip= on the command line";

/// The plan from `ip` (the value of the command line's `ip=`, if any) and boot.toml's
/// `[[network]]` tables (`file`, read from `path`).
pub fn plan(ip: Option<&str>, file: Result<Vec<Network>, Vec<ConfigError>>, path: &Path) -> Plan {
    let mut p = Plan::default();
    let nets = match file {
        Ok(nets) => nets,
        Err(errors) => {
            p.notes.extend(errors.iter().map(|e| format!("net: {e}")));
            p.notes.push(format!(
                "net: {}: [[network]] not applied (see above)",
                path.display()
            ));
            Vec::new()
        }
    };
    if let Some(value) = ip {
        match ip_arg::parse(value) {
            Ok(arg) => {
                p.from = FROM_CMDLINE.to_string();
                if !nets.is_empty() {
                    let names: Vec<&str> = nets.iter().map(|n| n.interface.as_str()).collect();
                    p.notes.push(format!(
                        "net: ip= on the command line wins: {}'s [[network]] ({}) not applied",
                        path.display(),
                        names.join(", ")
                    ));
                }
                if let Some(ntp) = arg.ntp {
                    p.notes.push(format!(
                        "net: ip=: NTP server {ntp} ignored (kennel sets no clock from the network)"
                    ));
                }
                p.hostname = arg.hostname;
                let addressing = match arg.method {
                    Method::Off => {
                        p.notes.push(format!(
                            "net: ip={value} on the command line: no network configured"
                        ));
                        return p;
                    }
                    Method::Dhcp => Addressing::Dhcp,
                    Method::Static { address, gateway } => Addressing::Static { address, gateway },
                };
                p.ifaces.push(Iface {
                    name: arg.device,
                    addressing,
                    dns: arg.dns,
                    wait: DEFAULT_WAIT,
                });
                return p;
            }
            Err(e) => {
                p.notes.push(format!("net: {e}: ignored"));
            }
        }
    }
    p.from = path.display().to_string();
    p.ifaces = nets
        .into_iter()
        .map(|n| Iface {
            name: Some(n.interface),
            addressing: n.method,
            dns: n.dns,
            wait: n.wait,
        })
        .collect();
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const TOML: &str = "[[network]]\ninterface = \"eth1\"\ndhcp = true\n";

    fn file(text: &str) -> Result<Vec<Network>, Vec<ConfigError>> {
        super::super::config::parse(Path::new("/etc/kennel/boot.toml"), text)
    }

    fn path() -> PathBuf {
        PathBuf::from("/etc/kennel/boot.toml")
    }

    #[test]
    fn the_command_line_wins_and_says_so() {
        let p = plan(
            Some("10.0.2.15::10.0.2.2:255.255.255.0:vm:eth0::10.0.2.3::10.0.2.4"),
            file(TOML),
            &path(),
        );
        assert_eq!(p.from, FROM_CMDLINE);
        assert_eq!(p.hostname.as_deref(), Some("vm"));
        assert_eq!(
            p.ifaces,
            [Iface {
                name: Some("eth0".into()),
                addressing: Addressing::Static {
                    address: "10.0.2.15/24".parse().unwrap(),
                    gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
                },
                dns: vec![Ipv4Addr::new(10, 0, 2, 3)],
                wait: DEFAULT_WAIT,
            }]
        );
        assert_eq!(
            p.notes,
            [
                "net: ip= on the command line wins: /etc/kennel/boot.toml's [[network]] (eth1) not applied",
                "net: ip=: NTP server 10.0.2.4 ignored (kennel sets no clock from the network)",
            ]
        );
    }

    #[test]
    fn off_configures_nothing() {
        let p = plan(Some("off"), file(TOML), &path());
        assert!(p.ifaces.is_empty());
        assert_eq!(
            p.notes.last().unwrap(),
            "net: ip=off on the command line: no network configured"
        );
    }

    #[test]
    fn the_file_without_ip_or_with_a_broken_one() {
        let p = plan(None, file(TOML), &path());
        assert_eq!(p.from, "/etc/kennel/boot.toml");
        assert_eq!(p.ifaces.len(), 1);
        assert_eq!(p.ifaces[0].addressing, Addressing::Dhcp);
        assert!(p.notes.is_empty());

        let p = plan(Some("rarp"), file(TOML), &path());
        assert_eq!(p.ifaces.len(), 1);
        assert_eq!(p.notes.len(), 1);
        assert!(p.notes[0].starts_with("net: ip=rarp: autoconf \"rarp\" is not supported"));

        assert_eq!(
            plan(None, file(""), &path()),
            Plan {
                from: "/etc/kennel/boot.toml".into(),
                ..Plan::default()
            }
        );
    }

    #[test]
    fn a_broken_file_is_said() {
        let p = plan(None, file("[[network]]\ninterface = \"eth0\"\n"), &path());
        assert!(p.ifaces.is_empty());
        assert_eq!(p.notes.len(), 2);
        assert_eq!(
            p.notes[1],
            "net: /etc/kennel/boot.toml: [[network]] not applied (see above)"
        );
        // ip= still applies.
        let p = plan(Some("dhcp"), file("[[network]]\n"), &path());
        assert_eq!(p.ifaces.len(), 1);
        assert_eq!(p.ifaces[0].name, None);
    }
}
