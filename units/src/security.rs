//! The typed security settings of a `[container]`: capabilities, no_new_privs, seccomp,
//! devices, rlimits and the OOM score. Every key defaults to the safe choice.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Docker's default capability set, which every container gets unless the unit says
/// otherwise (names without the `CAP_` prefix).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Security settings of a container (`[container]` keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// `capabilities.add`: capability names (upper case, without `CAP_`), or `ALL`.
    pub cap_add: Vec<String>,
    /// `capabilities.drop`: names, or `ALL` (then only `add` remains).
    pub cap_drop: Vec<String>,
    /// `capabilities.ambient`: kept (as ambient capabilities) by a non-root `user`, who
    /// otherwise has none. Each must also be in the resulting set.
    pub ambient: Vec<String>,
    /// `no_new_privileges`; default true.
    pub no_new_privileges: bool,
    /// `seccomp`; default [`Seccomp::Default`].
    pub seccomp: Seccomp,
    /// `devices`: host device nodes the container may use besides the standard ones.
    pub devices: Vec<PathBuf>,
    /// `limits`: rlimits by name (`nofile`, `nproc`, `core`, `memlock`, `stack`, `cpu`,
    /// `fsize`, `as`, `data`, `rss`, `locks`, `sigpending`, `msgqueue`, `nice`, `rtprio`,
    /// `rttime`), soft = hard; `u64::MAX` for "unlimited".
    pub limits: BTreeMap<String, u64>,
    /// `oom_score_adj`, -1000..=1000.
    pub oom_score_adj: Option<i32>,
    /// Explicit capability sets, instead of the one set `cap_add`/`cap_drop`/`ambient`
    /// make: an OCI bundle's `process.capabilities` (`kennel oci`). No unit key sets it.
    #[serde(default)]
    pub sets: Option<CapabilitySets>,
    /// Soft rlimits lower than their hard value in `limits` (an OCI bundle's
    /// `process.rlimits`). No unit key sets it: a unit's limits are soft = hard.
    #[serde(default)]
    pub soft_limits: BTreeMap<String, u64>,
}

/// The five capability sets of a process, by name (upper case, without `CAP_`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySets {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub inheritable: Vec<String>,
    pub ambient: Vec<String>,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            ambient: Vec::new(),
            no_new_privileges: true,
            seccomp: Seccomp::Default,
            devices: Vec::new(),
            limits: BTreeMap::new(),
            oom_score_adj: None,
            sets: None,
            soft_limits: BTreeMap::new(),
        }
    }
}

impl Security {
    /// The capability set the container's processes get (bounding, permitted and
    /// effective for root): Docker's defaults, minus `drop`, plus `add`.
    pub fn capabilities(&self) -> Vec<String> {
        let mut set: Vec<String> = if self.cap_drop.iter().any(|c| c == "ALL") {
            Vec::new()
        } else {
            DEFAULT_CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .filter(|c| !self.cap_drop.contains(c))
                .collect()
        };
        for c in &self.cap_add {
            if c == "ALL" {
                return vec!["ALL".to_string()];
            }
            if !set.contains(c) {
                set.push(c.clone());
            }
        }
        set
    }
}

/// `seccomp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seccomp {
    /// kennel's default filter, with the effect of Docker's default profile.
    Default,
    /// No filter.
    Unconfined,
    /// A profile in the OCI/Docker JSON format.
    Profile(PathBuf),
}
