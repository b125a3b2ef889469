//! kennel's per-unit cgroups, on cgroup v1 (legacy and hybrid hosts) and v2 (unified).
//!
//! [`Cgroups`] is the detected layout plus the parent every unit cgroup goes under (by
//! default kennel's own cgroup, per hierarchy on v1; or `--cgroup-parent`). It creates a
//! [`UnitCgroup`] per unit with the unit's `kennel_units::Resources` applied; the unit
//! cgroup is plain paths (serializable for the spawn helper), and joins, lists, kills,
//! freezes, measures ([`Stats`]) and removes.
//!
//! Direct cgroupfs file I/O, no cgroup library: detection reads `/proc/self/mountinfo`
//! and `/proc/self/cgroup`, so hybrid hosts (v1 controllers plus a unified tree used for
//! `cgroup.kill`) and co-mounted hierarchies (`cpu,cpuacct`) are handled, and every
//! operation runs against a fake tree in tests ([`Cgroups::detect_at`]).
//!
//! ```no_run
//! use kennel_cgroups::Cgroups;
//! use kennel_units::Resources;
//!
//! let cgroups = Cgroups::detect(None)?;
//! cgroups.prepare()?;
//! let res = Resources { memory_max: Some(64 << 20), cpu_millis: Some(500), ..Default::default() };
//! let unit = cgroups.create("web", &res)?;
//! // The spawn helper writes its pid into each of these before exec:
//! let _files = unit.procs_files();
//! // ... later
//! let stats = unit.stats();
//! let ooms = unit.oom_kills();
//! unit.remove()?;
//! # let _ = (stats, ooms);
//! # Ok::<(), kennel_cgroups::CgroupError>(())
//! ```

#![warn(missing_docs)]

mod cgroups;
mod detect;
mod devices;
mod error;
mod fs;
mod limits;
mod stats;
mod unit;
mod v1;
mod v2;

use serde::{Deserialize, Serialize};

pub use cgroups::{Cgroups, Part, SUPERVISOR_LEAF};
pub use detect::Hierarchy;
pub use devices::{default_rules, DeviceRule};
pub use error::CgroupError;
pub use stats::{Stats, StatsFiles};
pub use unit::{UnitCgroup, UnitDir, PAYLOAD_LEAF};

/// The cgroup version of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// v1 controller hierarchies (legacy, or hybrid with a controller-less unified tree).
    V1,
    /// One cgroup2 tree with the controllers (unified).
    V2,
}
