//! kennel's unit files: TOML in, typed and validated units out.
//!
//! SKELETON: to be completed (see the helper's task). Public API:
//! - [`model`]: the typed units ([`Unit`], [`Service`], ...).
//! - [`load_paths`]: read files and directories into a [`UnitSet`], or every problem as
//!   [`Diagnostic`]s (`FILE:LINE:COL: message`).
//! - [`UnitSet`]: the validated set with its dependency graph.

pub mod model;
pub mod set;
pub use model::*;
pub use set::UnitSet;
