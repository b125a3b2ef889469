//! Container networks: persistent network namespaces, bridge networks (bridge, veths,
//! addresses), address leases; the daemon's glue is `daemon/network.rs`.

pub mod bridge;
pub mod ipam;
pub mod netns;
