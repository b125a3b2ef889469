//! The `[[network]]` tables of `/etc/kennel/boot.toml`: one interface each, statically
//! addressed or by DHCP, checked key by key with every problem named (file, table, key).
//!
//! ```toml
//! [[network]]
//! interface = "eth0"
//! address = "10.0.2.15/24"     # or: dhcp = true
//! gateway = "10.0.2.2"
//! dns = ["10.0.2.3"]
//! wait = "10s"                 # for the interface to appear (and DHCP's first lease)
//! ```

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cidr::Cidr;
use super::ip_arg::valid_ifname;

/// How long boot waits, by default, for an interface to appear and for its first lease.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

const KEYS: &[&str] = &["interface", "address", "dhcp", "gateway", "dns", "wait"];

/// One `[[network]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub interface: String,
    pub method: Addressing,
    pub dns: Vec<Ipv4Addr>,
    pub wait: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// How an interface gets its address.
pub enum Addressing {
    Dhcp,
    Static {
        address: Cidr,
        gateway: Option<Ipv4Addr>,
    },
}

/// A problem of the network part of boot.toml.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Toml {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: network: must be a list of tables ([[network]])", path.display())]
    NotTables { path: PathBuf },
    #[error("{}: [[network]] #{number}{}: {key}: {problem}", path.display(), name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default())]
    Key {
        path: PathBuf,
        /// 1 for the file's first `[[network]]`.
        number: usize,
        /// Its interface, when it says one.
        name: Option<String>,
        key: String,
        problem: String,
    },
}

/// Read the `[[network]]` tables of `path`; a missing file has none.
pub fn read(path: &Path) -> Result<Vec<Network>, Vec<ConfigError>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(vec![ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }]),
    }
}

/// The `[[network]]` tables of the text of boot.toml (`path` is for messages only); every
/// problem, or none.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Network>, Vec<ConfigError>> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        vec![ConfigError::Toml {
            path: path.to_path_buf(),
            line,
            message: e.message().trim().replace('\n', " "),
        }]
    })?;
    let Some(list) = doc.get("network") else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err(vec![ConfigError::NotTables {
            path: path.to_path_buf(),
        }]);
    };
    let mut errors = Vec::new();
    let mut nets: Vec<Network> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let Some(table) = item.as_table() else {
            errors.push(ConfigError::NotTables {
                path: path.to_path_buf(),
            });
            continue;
        };
        let name = table
            .get("interface")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let mut bad = |key: &str, problem: String| {
            errors.push(ConfigError::Key {
                path: path.to_path_buf(),
                number: i + 1,
                name: name.clone(),
                key: key.to_string(),
                problem,
            })
        };
        let parsed = parse_table(table, &mut bad);
        if let Some(n) = &name {
            if seen.contains(n) {
                bad("interface", format!("{n:?} is configured twice"));
                continue;
            }
            seen.push(n.clone());
        }
        nets.extend(parsed);
    }
    if errors.is_empty() {
        Ok(nets)
    } else {
        Err(errors)
    }
}

/// One table; `bad(key, problem)` for each problem; `None` if there was one.
fn parse_table(table: &toml::Table, bad: &mut impl FnMut(&str, String)) -> Option<Network> {
    let before = std::cell::Cell::new(0usize);
    let mut count = |key: &str, problem: String| {
        before.set(before.get() + 1);
        bad(key, problem)
    };
    for key in table.keys() {
        if !KEYS.contains(&key.as_str()) {
            count(key, format!("unknown key (known: {})", KEYS.join(", ")));
        }
    }
    let string = |key: &str, count: &mut dyn FnMut(&str, String)| -> Option<String> {
        match table.get(key)? {
            toml::Value::String(s) => Some(s.clone()),
            other => {
                count(key, format!("must be a string, not {}", other.type_str()));
                None
            }
        }
    };
    let interface = match string("interface", &mut count) {
        Some(i) if valid_ifname(&i) => Some(i),
        Some(i) => {
            count(
                "interface",
                format!("{i:?} is not an interface name (1 to 15 characters, no '/' or spaces)"),
            );
            None
        }
        None => {
            if !table.contains_key("interface") {
                count("interface", "missing (e.g. interface = \"eth0\")".into());
            }
            None
        }
    };
    let address = string("address", &mut count).and_then(|a| match a.parse::<Cidr>() {
        Ok(c) => Some(c),
        Err(e) => {
            count("address", e.to_string());
            None
        }
    });
    let ipv4 = |key: &str, s: &str, count: &mut dyn FnMut(&str, String)| -> Option<Ipv4Addr> {
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                count(key, format!("{s:?} is not an IPv4 address"));
                None
            }
        }
    };
    let gateway = string("gateway", &mut count).and_then(|g| ipv4("gateway", &g, &mut count));
    let dhcp = match table.get("dhcp") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => {
            count(
                "dhcp",
                format!("must be true or false, not {}", other.type_str()),
            );
            false
        }
    };
    let mut dns = Vec::new();
    match table.get("dns") {
        None => {}
        Some(toml::Value::Array(list)) => {
            for v in list {
                match v.as_str() {
                    Some(s) => dns.extend(ipv4("dns", s, &mut count)),
                    None => count("dns", format!("{v} is not a string")),
                }
            }
        }
        Some(other) => count(
            "dns",
            format!(
                "must be a list of addresses (dns = [\"10.0.2.3\"]), not {}",
                other.type_str()
            ),
        ),
    }
    let wait = match string("wait", &mut count) {
        None => DEFAULT_WAIT,
        Some(w) => match kennel_units::parse_duration(&w) {
            Ok(d) => d,
            Err(e) => {
                count("wait", e.to_string());
                DEFAULT_WAIT
            }
        },
    };
    let method = match (dhcp, table.contains_key("address")) {
        (true, true) => {
            count(
                "address",
                "an address and dhcp = true: choose one".to_string(),
            );
            None
        }
        (true, false) => {
            if table.contains_key("gateway") {
                count(
                    "gateway",
                    "with dhcp = true the lease gives the gateway".to_string(),
                );
            }
            Some(Addressing::Dhcp)
        }
        (false, false) => {
            count(
                "address",
                "missing: give an address (address = \"10.0.2.15/24\") or dhcp = true".into(),
            );
            None
        }
        (false, true) => address.map(|address| Addressing::Static { address, gateway }),
    };
    if before.get() > 0 {
        return None;
    }
    Some(Network {
        interface: interface?,
        method: method?,
        dns,
        wait,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("/etc/kennel/boot.toml"), text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn static_and_dhcp() {
        let nets = parse(
            Path::new("b.toml"),
            r#"
modules = ["virtio_net"]

[[network]]
interface = "eth0"
address = "10.0.2.15/24"
gateway = "10.0.2.2"
dns = ["10.0.2.3", "1.1.1.1"]

[[network]]
interface = "eth1"
dhcp = true
wait = "3s"
"#,
        )
        .unwrap();
        assert_eq!(
            nets,
            [
                Network {
                    interface: "eth0".into(),
                    method: Addressing::Static {
                        address: "10.0.2.15/24".parse().unwrap(),
                        gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
                    },
                    dns: vec![Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(1, 1, 1, 1)],
                    wait: DEFAULT_WAIT,
                },
                Network {
                    interface: "eth1".into(),
                    method: Addressing::Dhcp,
                    dns: vec![],
                    wait: Duration::from_secs(3),
                },
            ]
        );
        assert_eq!(parse(Path::new("b.toml"), "modules = []\n").unwrap(), []);
    }

    #[test]
    fn every_problem_named_with_file_table_and_key() {
        assert_eq!(
            errors(
                r#"
[[network]]
interface = "eth0"
address = "10.0.2.15"
gateway = "10.0.2"
adress = "x"

[[network]]
dhcp = true
gateway = "10.0.2.2"
dns = "10.0.2.3"
wait = "soon"
"#
            ),
            [
                "/etc/kennel/boot.toml: [[network]] #1 (eth0): adress: unknown key (known: interface, address, dhcp, gateway, dns, wait)",
                "/etc/kennel/boot.toml: [[network]] #1 (eth0): address: \"10.0.2.15\" has no prefix length (write it as ADDRESS/LENGTH, e.g. 10.0.2.15/24)",
                "/etc/kennel/boot.toml: [[network]] #1 (eth0): gateway: \"10.0.2\" is not an IPv4 address",
                "/etc/kennel/boot.toml: [[network]] #2: interface: missing (e.g. interface = \"eth0\")",
                "/etc/kennel/boot.toml: [[network]] #2: dns: must be a list of addresses (dns = [\"10.0.2.3\"]), not string",
                "/etc/kennel/boot.toml: [[network]] #2: wait: invalid duration \"soon\": expected a number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"5m\")",
                "/etc/kennel/boot.toml: [[network]] #2: gateway: with dhcp = true the lease gives the gateway",
            ]
        );
        assert_eq!(
            errors("[[network]]\ninterface = \"eth0\"\n[[network]]\ninterface = \"eth0\"\ndhcp = true\n"),
            [
                "/etc/kennel/boot.toml: [[network]] #1 (eth0): address: missing: give an address (address = \"10.0.2.15/24\") or dhcp = true",
                "/etc/kennel/boot.toml: [[network]] #2 (eth0): interface: \"eth0\" is configured twice",
            ]
        );
        assert_eq!(
            errors("[[network]]\ninterface = \"eth0\"\ndhcp = true\naddress = \"10.0.0.1/8\"\n"),
            ["/etc/kennel/boot.toml: [[network]] #1 (eth0): address: an address and dhcp = true: choose one"]
        );
        assert_eq!(
            errors("network = \"eth0\"\n"),
            ["/etc/kennel/boot.toml: network: must be a list of tables ([[network]])"]
        );
        assert_eq!(
            errors("modules = []\n[[network]\n"),
            ["/etc/kennel/boot.toml:2: invalid table header expected `.`, `]]`"]
        );
    }

    #[test]
    fn a_broken_network_never_stops_the_modules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("boot.toml");
        for network in ["network = \"eth0\"", "[[network]]\nadress = 1"] {
            std::fs::write(&p, format!("modules = [\"overlay\"]\n{network}\n")).unwrap();
            let modules = crate::boot::modules::BootConfig::read(&p).unwrap().modules;
            assert_eq!(modules, ["overlay"], "{network}");
            assert!(read(&p).is_err());
        }
    }

    #[test]
    fn missing_file_is_no_network() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(&dir.path().join("boot.toml")).unwrap(), []);
    }
}
