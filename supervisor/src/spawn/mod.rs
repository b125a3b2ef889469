//! Process creation: the spawn spec, the helper role that becomes the service, and the
//! daemon's side that launches it.

pub mod container;
#[cfg(test)]
mod default_filter_tests;
pub mod env;
pub mod helper;
pub mod init;
pub mod launch;
pub mod layers;
pub mod rootfs;
pub mod seccomp_profile;
pub mod security;
pub mod spec;
pub mod sys;
pub mod terminal;
pub mod title;
pub mod userns;
pub mod zygote;

pub use launch::{launch, launch_quiet, HELPER_ARG};
pub use spec::{SpawnFailure, SpawnSpec};
pub use zygote::ZYGOTE_ARG;
