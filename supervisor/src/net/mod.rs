//! Container networks: the pieces the daemon uses to give containers addresses, names and
//! published ports (see docs/networking.md).

pub mod cni;
pub mod firewall;
