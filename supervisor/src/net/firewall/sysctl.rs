//! The sysctls a network's rules need, written in the calling thread's network namespace
//! (a /proc/sys/net file belongs to the namespace of the thread that opens it).

use std::fs;

use super::FirewallError;

/// net.ipv4.ip_forward, route_localnet on the bridge (127.0.0.1 publishing), and IPv6
/// forwarding when the network has a v6 subnet. Each is written only when not yet 1.
pub fn for_network(bridge: &str, ipv6: bool) -> Result<(), FirewallError> {
    set_one("/proc/sys/net/ipv4/ip_forward")?;
    set_one(&format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"))?;
    if ipv6 {
        set_one("/proc/sys/net/ipv6/conf/all/forwarding")?;
    }
    Ok(())
}

fn set_one(path: &str) -> Result<(), FirewallError> {
    let err = |source| FirewallError::Sysctl {
        path: path.to_string(),
        source,
    };
    if fs::read_to_string(path).map_err(err)?.trim() == "1" {
        return Ok(());
    }
    fs::write(path, "1\n").map_err(err)
}
