//! A plugin chain's result (the CNI 1.0 "Success" object), and its translation between the
//! 0.3.x/0.4.0 shape (each IP has a "version") and the 1.0.0 one (it has not), as libcni
//! converts a result to the version a configuration asks for.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CniError;

/// What an ADD gave the container, in the 1.0.0 shape (whatever the list's version).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniResult {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

/// An interface a plugin made; `sandbox` is the netns path when it is in the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// An address: `address` is CIDR (`10.1.2.3/24`); `interface` indexes `interfaces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

impl IpConfig {
    /// The address and prefix length, when `address` is a valid CIDR.
    pub fn cidr(&self) -> Option<(IpAddr, u8)> {
        let (ip, len) = self.address.split_once('/')?;
        Some((ip.parse().ok()?, len.parse().ok()?))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        self == &Dns::default()
    }
}

impl CniResult {
    /// The container's addresses on interface `ifname` (all of them when no interface is
    /// named by the result).
    pub fn addresses(&self, ifname: &str) -> Vec<(IpAddr, u8)> {
        self.ips
            .iter()
            .filter(|ip| match ip.interface {
                Some(i) => self.interfaces.get(i).is_some_and(|f| f.name == ifname),
                None => true,
            })
            .filter_map(IpConfig::cidr)
            .collect()
    }

    /// A raw result of any version kennel speaks, in the 1.0.0 shape.
    pub fn from_raw(raw: &Value) -> Result<CniResult, String> {
        let v = convert(raw, "1.0.0")?;
        serde_json::from_value(v).map_err(|e| format!("not a CNI result: {e}"))
    }
}

/// The generation of a version: 0.3.0 to 0.4.0 share one result shape, 1.0.0 another.
fn generation(version: &str) -> Result<u8, String> {
    match version {
        "0.3.0" | "0.3.1" | "0.4.0" => Ok(0),
        "1.0.0" => Ok(1),
        v => Err(format!(
            "a result of cniVersion {v:?} (kennel reads 0.3.0, 0.3.1, 0.4.0 and 1.0.0)"
        )),
    }
}

/// `raw` (a result of the version its "cniVersion" says) as a result of version `to`.
pub fn convert(raw: &Value, to: &str) -> Result<Value, String> {
    let Value::Object(map) = raw else {
        return Err("a result that is not a JSON object".into());
    };
    let from = map
        .get("cniVersion")
        .and_then(Value::as_str)
        .ok_or("a result without \"cniVersion\"")?;
    let (gen_from, gen_to) = (generation(from)?, generation(to)?);
    let mut out = map.clone();
    out.insert("cniVersion".into(), Value::String(to.into()));
    if gen_from != gen_to {
        if let Some(Value::Array(ips)) = out.get_mut("ips") {
            for ip in ips.iter_mut().filter_map(Value::as_object_mut) {
                if gen_to == 1 {
                    ip.remove("version");
                } else {
                    let v6 = ip
                        .get("address")
                        .and_then(Value::as_str)
                        .is_some_and(|a| a.contains(':'));
                    ip.insert("version".into(), (if v6 { "6" } else { "4" }).into());
                }
            }
        }
    }
    Ok(Value::Object(out))
}

/// [`convert`] for a result read back from kennel's own cache.
pub(super) fn convert_cached(
    raw: &Value,
    to: &str,
    path: &std::path::Path,
) -> Result<Value, CniError> {
    convert(raw, to).map_err(|msg| CniError::CacheFormat {
        path: path.to_path_buf(),
        msg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_0_4_result_reads_as_1_0_and_back() {
        let old = json!({"cniVersion":"0.4.0",
            "interfaces":[{"name":"cni0"},{"name":"eth0","sandbox":"/n"}],
            "ips":[{"version":"4","address":"10.9.0.2/24","gateway":"10.9.0.1","interface":1},
                   {"version":"6","address":"fd00::2/64","interface":1}],
            "dns":{}});
        let r = CniResult::from_raw(&old).unwrap();
        assert_eq!(r.cni_version, "1.0.0");
        assert_eq!(
            r.addresses("eth0"),
            vec![
                ("10.9.0.2".parse().unwrap(), 24),
                ("fd00::2".parse().unwrap(), 64)
            ]
        );
        assert!(r.addresses("cni0").is_empty());
        let new = convert(&old, "1.0.0").unwrap();
        assert!(new["ips"][0].get("version").is_none());
        let back = convert(&new, "0.3.1").unwrap();
        assert_eq!(back["ips"][0]["version"], "4");
        assert_eq!(back["ips"][1]["version"], "6");
        assert_eq!(back["cniVersion"], "0.3.1");
    }

    #[test]
    fn unknown_versions_are_refused() {
        let e = convert(&json!({"cniVersion":"0.2.0","ip4":{}}), "1.0.0").unwrap_err();
        assert!(e.contains("0.2.0"), "{e}");
    }
}
