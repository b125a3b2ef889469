//! The control socket: protocol types, the daemon's server and the CLI's client.

pub mod client;
pub mod pretty;
pub mod protocol;
pub mod server;
