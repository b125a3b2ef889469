//! `CgroupError`: every way a cgroup operation fails, each message lowercase and naming
//! the file, e.g. `write /sys/fs/cgroup/memory/kennel/web/memory.limit_in_bytes: invalid argument`.

use std::io;
use std::path::PathBuf;

/// An error from detecting, creating, limiting, killing or removing cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Reading a cgroup file (or `/proc/self/...`) failed.
    #[error("read {}: {}", path.display(), os_msg(source))]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Writing a cgroup file failed (the kernel refused the value, or the file is missing).
    #[error("write {}: {}", path.display(), os_msg(source))]
    Write {
        /// The control file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Creating a cgroup directory failed.
    #[error("create {}: {}", path.display(), os_msg(source))]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Removing a cgroup directory failed (typically "device or resource busy").
    #[error("remove {}: {}", path.display(), os_msg(source))]
    Rmdir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Sending SIGKILL to a process of the unit failed (other than "no such process").
    #[error("kill pid {pid} of {}: {}", path.display(), os_msg(source))]
    Signal {
        /// The process.
        pid: i32,
        /// The unit's main directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Neither a `cgroup` nor a `cgroup2` filesystem is mounted.
    #[error("no cgroup filesystem in {}: neither cgroup nor cgroup2 is mounted", path.display())]
    NotMounted {
        /// The mount table read (`/proc/self/mountinfo`).
        path: PathBuf,
    },
    /// A cgroup hierarchy kennel would use is mounted read-only (what Docker, podman and
    /// Kubernetes give a container by default): no unit cgroup can be made in it.
    #[error("{} is mounted read-only", path.display())]
    ReadOnly {
        /// The mount point.
        path: PathBuf,
    },
    /// A file under `/proc` (or a sample of one) could not be understood.
    #[error("parse {}: {what}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// `--cgroup-parent` is not a clean path (e.g. it contains `..`).
    #[error("invalid cgroup parent {parent:?}: {why}")]
    InvalidParent {
        /// The parent as given.
        parent: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A unit cgroup name that cannot be a single directory (or is the reserved `supervisor`).
    #[error("invalid unit cgroup name {name:?}: {why}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Processes were still in the cgroup after every kill round.
    #[error("kill {}: {left} process(es) still there after {rounds} rounds", path.display())]
    KillTimeout {
        /// The unit's main directory.
        path: PathBuf,
        /// How many processes were left.
        left: usize,
        /// How many rounds were tried.
        rounds: u32,
    },
    /// The cgroup did not report frozen in time.
    #[error("freeze {}: not frozen after {ms} ms", path.display())]
    FreezeTimeout {
        /// The state file watched (`freezer.state` or `cgroup.events`).
        path: PathBuf,
        /// How long it was waited for.
        ms: u64,
    },
    /// No freezer: neither a v1 `freezer` hierarchy nor a v2 `cgroup.freeze` file.
    #[error("freeze {}: no freezer (no v1 freezer hierarchy, no cgroup.freeze)", path.display())]
    NoFreezer {
        /// The unit's main directory.
        path: PathBuf,
    },
}

/// The OS message of an I/O error, lowercase and without the "(os error N)" suffix:
/// `Invalid argument (os error 22)` -> `invalid argument`.
pub(crate) fn os_msg(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => &text[..],
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_name_the_file() {
        let e = CgroupError::Write {
            path: "/sys/fs/cgroup/memory/kennel/web/memory.limit_in_bytes".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(
            e.to_string(),
            "write /sys/fs/cgroup/memory/kennel/web/memory.limit_in_bytes: invalid argument"
        );
        let e = CgroupError::Rmdir {
            path: "/sys/fs/cgroup/kennel/web".into(),
            source: io::Error::from_raw_os_error(libc::EBUSY),
        };
        assert_eq!(
            e.to_string(),
            "remove /sys/fs/cgroup/kennel/web: device or resource busy"
        );
        let custom = io::Error::other("Weird thing");
        assert_eq!(os_msg(&custom), "weird thing");
    }
}
