//! Container networks: persistent network namespaces, bridge networks (bridge, veths,
//! addresses), address leases, kennel's nftables rules, CNI; the daemon's glue is
//! `daemon/network.rs` (see docs/networking.md).

pub mod bridge;
pub mod cni;
pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod netns;
pub mod ports;
