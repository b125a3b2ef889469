//! Locking a container's process down before exec: rlimits, OOM score, the seccomp filter,
//! the capability sets and no_new_privs. Runs in the helper (or its child), after the
//! rootfs is in place and before the exec; a container's service forked before its
//! rootfs is built installs kennel's default filter and the bounding set while it waits
//! ([`confine_early`]).

use std::collections::{BTreeMap, HashSet};

use caps::{CapSet, Capability};
use kennel_units::security::{CapabilitySets, Seccomp, Security};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::fail;
use crate::spawn::seccomp_profile::Program;
use crate::spawn::spec::SpawnFailure;

/// Before the user changes: the descriptors sealed, limits, OOM score, then (unless
/// `confined` already did: [`confine`]) the seccomp filter and the bounding set, and
/// keep-caps for a non-root user with ambient capabilities.
pub fn before_user(
    sec: &Security,
    root: bool,
    profile: &[Program],
    confined: bool,
) -> Result<(), SpawnFailure> {
    seal_descriptors()?;
    resources(sec)?;
    if !confined {
        confine(sec, profile)?;
    }
    let ambient = sec.sets.as_ref().map_or(&sec.ambient, |s| &s.ambient);
    if !root && !ambient.is_empty() || sec.sets.is_some() {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
            return Err(fail(
                "keep capabilities",
                "",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// What of [`confine`] a service forked before its rootfs is built does while it waits
/// (container.rs): all of it, with kennel's default filter (or none), which lets every
/// later step through: true. A profile of the unit's own may refuse what kennel does
/// before exec (reading the container's /etc/passwd, listing /proc/self/fd, setting
/// limits), so it is left for [`before_user`], just before the user changes: false.
pub fn confine_early(sec: &Security) -> Result<bool, SpawnFailure> {
    match sec.seccomp {
        Seccomp::Profile(_) => Ok(false),
        Seccomp::Default | Seccomp::Unconfined => confine(sec, &[]).map(|()| true),
    }
}

/// The seccomp filter (installed while still fully privileged, so it needs no
/// no_new_privs; the filter lets the remaining steps through) and the bounding set.
pub fn confine(sec: &Security, profile: &[Program]) -> Result<(), SpawnFailure> {
    let set = capability_set(sec)?;
    match &sec.seccomp {
        Seccomp::Unconfined => {}
        Seccomp::Default => install(default_filters(set.contains(&Capability::CAP_SYS_ADMIN))?)?,
        Seccomp::Profile(_) => install(
            profile
                .iter()
                .map(|p| {
                    p.iter()
                        .map(|&(code, jt, jf, k)| seccompiler::sock_filter { code, jt, jf, k })
                        .collect()
                })
                .collect(),
        )?,
    }
    for cap in caps::all() {
        if !set.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| fail("drop capability", cap.to_string(), e))?;
        }
    }
    Ok(())
}

/// After the user changed: the effective, permitted and inheritable sets (the container
/// set for root; only the ambient ones for another user), then no_new_privs.
pub fn after_user(sec: &Security, root: bool) -> Result<(), SpawnFailure> {
    if let Some(sets) = &sec.sets {
        explicit_sets(sets)?;
        return no_new_privs(sec);
    }
    let set = capability_set(sec)?;
    let keep: HashSet<Capability> = if root {
        set
    } else {
        sec.ambient
            .iter()
            .filter_map(|n| parse_cap(n).ok())
            .collect()
    };
    // Effective first: it must stay within the permitted set at every step.
    for which in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::set(None, which, &keep)
            .map_err(|e| fail("set capabilities", format!("{which:?}"), e))?;
    }
    if !root {
        for cap in &keep {
            caps::raise(None, CapSet::Ambient, *cap)
                .map_err(|e| fail("raise ambient capability", cap.to_string(), e))?;
        }
    }
    no_new_privs(sec)
}

/// Each of the five sets as given (an OCI bundle's): effective cleared first, the
/// permitted and inheritable sets, effective, then ambient (which must be in both).
fn explicit_sets(sets: &CapabilitySets) -> Result<(), SpawnFailure> {
    let parse = |names: &[String]| -> Result<HashSet<Capability>, SpawnFailure> {
        names.iter().map(|n| parse_cap(n)).collect()
    };
    caps::clear(None, CapSet::Effective).map_err(|e| fail("set capabilities", "Effective", e))?;
    for (which, names) in [
        (CapSet::Permitted, &sets.permitted),
        (CapSet::Inheritable, &sets.inheritable),
        (CapSet::Effective, &sets.effective),
    ] {
        caps::set(None, which, &parse(names)?)
            .map_err(|e| fail("set capabilities", format!("{which:?}"), e))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| fail("set capabilities", "Ambient", e))?;
    // The kernel takes an ambient capability only if it is permitted and inheritable: the
    // others are left out, as runc leaves them (its default spec lists ambient
    // capabilities and no inheritable ones).
    let (permitted, inheritable) = (parse(&sets.permitted)?, parse(&sets.inheritable)?);
    for cap in parse(&sets.ambient)? {
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap)
                .map_err(|e| fail("raise ambient capability", cap.to_string(), e))?;
        }
    }
    Ok(())
}

fn no_new_privs(sec: &Security) -> Result<(), SpawnFailure> {
    if sec.no_new_privileges {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(fail(
                "set no_new_privs",
                "",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// Nothing of the host's may reach the container through a descriptor. Stdio that is the
/// host's /dev/null (the helper opens it before it enters the container) is swapped for
/// the container's: root inside could fchmod or fchown the host's node through it. And
/// descriptors inherited by accident (left open, without close-on-exec, by whatever
/// started kennel) are closed: the process would keep them across exec, and the init
/// (which never execs) would hold them where `/proc/1/fd` shows them. kennel's own
/// descriptors are close-on-exec; the passed stdio is 0-2.
fn seal_descriptors() -> Result<(), SpawnFailure> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let null = std::fs::metadata("/dev/null").map_err(|e| fail("stat", "/dev/null", e))?;
    for fd in 0..=2 {
        // SAFETY: fstat on an fd number with a zeroed, correctly sized stat buffer.
        let st = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 {
                continue;
            }
            st
        };
        let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == null.rdev();
        if is_null && (st.st_dev, st.st_ino) != (null.dev(), null.ino()) {
            let own = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| fail("open", "/dev/null", e))?;
            nix::unistd::dup2(own.as_raw_fd(), fd)
                .map_err(|e| fail("replace stdio with", "/dev/null", e.desc()))?;
        }
    }
    let fds: Vec<libc::c_int> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| fail("list descriptors", "/proc/self/fd", e))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl/close on descriptor numbers; one that is not close-on-exec is not
        // ours (the directory listing's own descriptor is close-on-exec and already gone).
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

/// Every capability this kernel and the caps crate know, as `CAP_NAME` (features.json).
pub fn known_capabilities() -> Vec<String> {
    let mut all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    all.sort();
    all
}

fn parse_cap(name: &str) -> Result<Capability, SpawnFailure> {
    format!("CAP_{name}")
        .parse::<Capability>()
        .map_err(|_| fail("capability", name, "unknown capability"))
}

fn capability_set(sec: &Security) -> Result<HashSet<Capability>, SpawnFailure> {
    if let Some(sets) = &sec.sets {
        return sets.bounding.iter().map(|n| parse_cap(n)).collect();
    }
    let names = sec.capabilities();
    if names.iter().any(|n| n == "ALL") {
        return Ok(caps::all());
    }
    names.iter().map(|n| parse_cap(n)).collect()
}

fn set_rlimit(name: &str, value: u64, soft: Option<u64>) -> Result<(), SpawnFailure> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let res = match name {
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "core" => Resource::RLIMIT_CORE,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "stack" => Resource::RLIMIT_STACK,
        "cpu" => Resource::RLIMIT_CPU,
        "fsize" => Resource::RLIMIT_FSIZE,
        "as" => Resource::RLIMIT_AS,
        "data" => Resource::RLIMIT_DATA,
        "rss" => Resource::RLIMIT_RSS,
        "locks" => Resource::RLIMIT_LOCKS,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "rttime" => Resource::RLIMIT_RTTIME,
        other => return Err(fail("set limit", other, "unknown limit")),
    };
    let lim = |x: u64| {
        if x == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            x
        }
    };
    let (s, h) = (lim(soft.unwrap_or(value)), lim(value));
    if getrlimit(res).is_ok_and(|cur| cur == (s, h)) {
        return Ok(());
    }
    setrlimit(res, s, h).map_err(|e| fail("set limit", name, e.desc()))
}

/// The rlimits and the OOM score, each unless already so. Raising a hard limit or
/// lowering the score takes CAP_SYS_RESOURCE of the host's user namespace (and inside a
/// user namespace /proc/self is not even writable): with a user namespace this runs before
/// joining it, and the second call (before_user) finds everything set.
pub fn resources(sec: &Security) -> Result<(), SpawnFailure> {
    for (name, value) in &sec.limits {
        set_rlimit(name, *value, sec.soft_limits.get(name).copied())?;
    }
    if let Some(adj) = sec.oom_score_adj {
        const FILE: &str = "/proc/self/oom_score_adj";
        let cur = std::fs::read_to_string(FILE).ok();
        if cur.as_deref().map(str::trim) != Some(adj.to_string().as_str()) {
            std::fs::write(FILE, adj.to_string()).map_err(|e| fail("write", FILE, e))?;
        }
    }
    Ok(())
}

/// Install the filters with seccomp(2) directly: seccompiler's `apply_filter` would also
/// set no_new_privs, which `no_new_privileges = false` must be able to leave off (the
/// helper is still privileged here, so the kernel does not require it).
fn install(filters: Vec<BpfProgram>) -> Result<(), SpawnFailure> {
    for prog in &filters {
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the kernel copies the program from `fprog`, which outlives the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(fail(
                "install seccomp filter",
                "",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

fn arch() -> TargetArch {
    if cfg!(target_arch = "aarch64") {
        TargetArch::aarch64
    } else {
        TargetArch::x86_64
    }
}

/// Syscalls the default filter refuses with EPERM, as Docker's default profile does.
const DENIED: &[(&str, i64)] = &[
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("settimeofday", libc::SYS_settimeofday),
    ("adjtimex", libc::SYS_adjtimex),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    #[cfg(target_arch = "x86_64")]
    ("iopl", libc::SYS_iopl),
    #[cfg(target_arch = "x86_64")]
    ("ioperm", libc::SYS_ioperm),
    ("syslog", libc::SYS_syslog),
    ("vhangup", libc::SYS_vhangup),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("mount_setattr", libc::SYS_mount_setattr),
];

/// Denied unless the container has CAP_SYS_ADMIN.
const ADMIN: &[(&str, i64)] = &[
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
];

/// The default filters: EPERM for the denied syscalls (and namespace-creating clone
/// flags without CAP_SYS_ADMIN); ENOSYS for clone3, whose flags a filter cannot inspect,
/// so that libc falls back to clone.
pub fn default_filters(sys_admin: bool) -> Result<Vec<BpfProgram>, SpawnFailure> {
    let bad = |e: seccompiler::BackendError| fail("build seccomp filter", "", e);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, nr) in DENIED {
        rules.insert(*nr, Vec::new());
    }
    if !sys_admin {
        for (_, nr) in ADMIN {
            rules.insert(*nr, Vec::new());
        }
        let ns_flags = [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWCGROUP,
        ];
        let mut clone_rules = Vec::new();
        for flag in ns_flags {
            let f = flag as u64;
            let cond =
                SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(f), f)
                    .map_err(bad)?;
            clone_rules.push(SeccompRule::new(vec![cond]).map_err(bad)?);
        }
        rules.insert(libc::SYS_clone, clone_rules);
    }
    let eperm = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch(),
    )
    .map_err(bad)?;
    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, Vec::new());
    let enosys = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch(),
    )
    .map_err(bad)?;
    let mut filters = vec![
        BpfProgram::try_from(eperm).map_err(bad)?,
        BpfProgram::try_from(enosys).map_err(bad)?,
    ];
    if cfg!(target_arch = "x86_64") {
        filters.push(no_x32());
    }
    Ok(filters)
}

/// ENOSYS for every x32 system call (x86_64 numbers with bit 30 set), which the filters
/// above, written for x86_64 numbers, would not recognize: a denied call must not pass
/// under its x32 number. Kernels built without x32 answer ENOSYS anyway.
fn no_x32() -> BpfProgram {
    const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let op = |code, jt, jf, k| seccompiler::sock_filter { code, jt, jf, k };
    vec![
        // seccomp_data: nr at offset 0, arch at 4.
        op(LD_ABS, 0, 0, 4),
        op(JEQ, 0, 3, AUDIT_ARCH_X86_64),
        op(LD_ABS, 0, 0, 0),
        op(JGE, 0, 1, X32_SYSCALL_BIT),
        op(RET, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        op(RET, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // What the default filter answers: default_filter_tests.rs.

    #[test]
    fn capability_sets() {
        let mut sec = Security::default();
        let set = capability_set(&sec).unwrap();
        assert!(set.contains(&Capability::CAP_CHOWN) && !set.contains(&Capability::CAP_SYS_ADMIN));
        assert_eq!(set.len(), 14);
        sec.cap_drop = vec!["ALL".into()];
        sec.cap_add = vec!["NET_ADMIN".into()];
        assert_eq!(
            capability_set(&sec).unwrap(),
            HashSet::from([Capability::CAP_NET_ADMIN])
        );
    }
}
