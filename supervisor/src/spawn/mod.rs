//! Process creation: the spawn spec, the helper role that becomes the service, and the
//! daemon's side that launches it.

pub mod env;
pub mod helper;
pub mod launch;
pub mod spec;

pub use launch::{launch, HELPER_ARG};
pub use spec::{SpawnFailure, SpawnSpec};
