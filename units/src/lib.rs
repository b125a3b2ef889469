//! kennel's unit files: TOML in, typed and validated units out.
//!
//! - [`model`]: the typed units ([`Unit`], [`Service`], ...), every default applied.
//! - [`parse_unit`]: one file's text -> a [`Unit`], or all its problems.
//! - [`load_paths`] / [`load_dir`]: read files and directories into a [`UnitSet`], or every
//!   problem of every file as [`Diagnostic`]s (`FILE:LINE:COL: message`), sorted;
//!   [`check_paths`]: `kennel check`'s, a file checked with its directory's units as context.
//! - [`systemd`]: systemd `.service` files read into the same model, with warnings for what
//!   kennel reads differently or not at all.
//! - [`UnitSet`]: the validated set with its dependency graph (start order, requirers).
//! - [`parse_duration`], [`parse_size`], [`format_duration`], [`parse_signal`],
//!   [`signal_name`]: the value syntaxes of unit files.
//!
//! ```
//! let unit = kennel_units::parse_unit(
//!     "web",
//!     std::path::Path::new("web.toml"),
//!     "[service]\ncommand = [\"/bin/httpd\", \"-f\"]\n",
//! )
//! .unwrap();
//! assert_eq!(unit.service.command, ["/bin/httpd", "-f"]);
//! ```

pub mod container;
pub mod diag;
pub mod duration;
mod graph;
pub mod image;
mod load;
pub mod model;
pub mod name;
pub mod network;
mod parse;
pub mod security;
pub mod set;
pub mod signal;
pub mod socket;
pub mod suggest;
pub mod systemd;

pub use diag::{sort_diagnostics, Diagnostic};
pub use duration::{format_duration, parse_duration, parse_size, DurationError, SizeError};
pub use image::{ImageRef, ImageRefError};
pub use load::{
    check_paths, check_paths_with, load_dir, load_paths, load_paths_with, load_paths_with_warnings,
    Checked, CniRef,
};
pub use model::*;
pub use name::{check_unit_name, InvalidUnitName};
pub use network::{NetworkDef, Networks, PortMap, Proto};
pub use parse::parse_unit;
pub use set::UnitSet;
pub use signal::{parse_signal, signal_name, SignalError};
