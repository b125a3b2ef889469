//! Process creation, by the process it runs in. A start (decided by the start plan,
//! `kennel_core::start`) crosses four processes, and each has its module:
//!
//! ```text
//! daemon   launch/     try the plan's launch ways; the daemon's end of the zygote
//!                      (launch/zygote.rs); clone3 into a cgroup (launch/clone.rs)
//! zygote   zygote.rs   `kennel-zygote`: forks each helper as the daemon's child
//! helper   helper/     `kennel-helper`: reads the spec, joins the cgroup, makes the
//!                      namespaces (container.rs), the layers (layers.rs) and the rootfs
//!                      (rootfs.rs, userns.rs), locks the process down (security.rs),
//!                      execs the service
//! init     init.rs     `kennel-init`: PID 1 of a container, reaps, forwards signals,
//!                      notes how the service ended (also `kennel run`'s loop)
//! ```
//!
//! Shared by them: the messages that cross the boundaries (`spec.rs`: the daemon's
//! [`SpawnSpec`] and the helper's [`SpawnFailure`]), the system-call interface
//! (`sys.rs`), process titles (`title.rs`), environments (`env.rs`) and seccomp profiles
//! (`seccomp_profile.rs`, compiled by the daemon, installed by the helper).

pub mod env;
pub mod helper;
pub mod init;
pub mod launch;
pub mod seccomp_profile;
pub mod spec;
pub mod sys;
pub mod title;
pub mod zygote;

pub use launch::{launch, launch_quiet, HELPER_ARG};
pub use spec::{SpawnFailure, SpawnSpec};
pub use zygote::ZYGOTE_ARG;
