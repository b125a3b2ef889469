//! Container networks: what the daemon sets up so that a container gets an address.

pub mod cni;
