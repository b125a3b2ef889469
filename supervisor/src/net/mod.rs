//! Container networks (issue 15): bridges, addresses, firewall rules, CNI and names.

pub mod dns;
