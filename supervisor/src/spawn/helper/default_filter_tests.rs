//! What kennel's default seccomp filter ([`default_filters`]) answers, call by call: the
//! filters run through a classic-BPF evaluator on this machine's architecture (every
//! denied call refused with EPERM, the calls a service makes let through, namespaces only
//! with CAP_SYS_ADMIN, clone3 ENOSYS, x32 and foreign-architecture numbers never through),
//! and installed for real in a forked child, whose calls the kernel answers the same way.

use seccompiler::{sock_filter, BpfProgram};

use super::security::default_filters;

/// What a filter (or the kernel, combining several) decides for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Allow,
    Errno(i32),
    KillProcess,
    Other(u32),
}

impl Verdict {
    fn of(ret: u32) -> Verdict {
        match ret & libc::SECCOMP_RET_ACTION_FULL {
            libc::SECCOMP_RET_ALLOW => Verdict::Allow,
            libc::SECCOMP_RET_ERRNO => Verdict::Errno((ret & libc::SECCOMP_RET_DATA) as i32),
            libc::SECCOMP_RET_KILL_PROCESS => Verdict::KillProcess,
            _ => Verdict::Other(ret),
        }
    }
}

/// The architecture the filters are built for, as the kernel reports it (`AUDIT_ARCH_*`).
#[cfg(target_arch = "x86_64")]
const NATIVE: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const NATIVE: u32 = 0xc000_00b7;

/// Another architecture the same machine may run calls of (i386 under x86_64, arm under
/// aarch64): its numbers mean other calls.
#[cfg(target_arch = "x86_64")]
const FOREIGN: u32 = 0x4000_0003;
#[cfg(target_arch = "aarch64")]
const FOREIGN: u32 = 0x4000_0028;

/// One classic-BPF program on a `seccomp_data` (nr, arch, instruction pointer, six
/// arguments, in the machine's byte order), as the kernel runs it.
fn run(prog: &[sock_filter], nr: i64, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as i32).to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    loop {
        let ins = prog
            .get(pc)
            .unwrap_or_else(|| panic!("ran off the program at {pc}"));
        pc += 1;
        let k = ins.k;
        let (jt, jf) = (ins.jt as usize, ins.jf as usize);
        let branch = |cond: bool| if cond { jt } else { jf };
        match ins.code as u32 {
            c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                let at = k as usize;
                assert!(at.is_multiple_of(4) && at + 4 <= data.len(), "load at {at}");
                acc = u32::from_ne_bytes(data[at..at + 4].try_into().expect("4 bytes"));
            }
            c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => acc &= k,
            c if c == libc::BPF_JMP | libc::BPF_JA => pc += k as usize,
            c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => pc += branch(acc == k),
            c if c == libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K => pc += branch(acc > k),
            c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => pc += branch(acc >= k),
            c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => pc += branch(acc & k != 0),
            c if c == libc::BPF_RET | libc::BPF_K => return k,
            other => panic!("instruction {other:#x} at {} not evaluated", pc - 1),
        }
    }
}

/// What the kernel decides with all of `filters` installed: each runs, and the action of
/// the highest precedence wins (KILL_PROCESS first, ALLOW last; of equal ones, the filter
/// installed last).
fn verdict(filters: &[BpfProgram], nr: i64, arch: u32, args: [u64; 6]) -> Verdict {
    let mut ret = libc::SECCOMP_RET_ALLOW;
    for prog in filters.iter().rev() {
        let cur = run(prog, nr, arch, args);
        let action = |r: u32| (r & libc::SECCOMP_RET_ACTION_FULL) as i32;
        if action(cur) < action(ret) {
            ret = cur;
        }
    }
    Verdict::of(ret)
}

fn native(filters: &[BpfProgram], nr: i64, arg0: u64) -> Verdict {
    verdict(filters, nr, NATIVE, [arg0, 0, 0, 0, 0, 0])
}

/// Refused with EPERM whatever the container's capabilities (docs/security.md), as
/// Docker's default profile does.
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

/// Refused with EPERM unless the container has CAP_SYS_ADMIN.
const ADMIN: &[(&str, i64)] = &[
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
];

/// What services call all the time: file and socket I/O, memory, signals, processes,
/// threads, identities, time. Let through with any arguments.
const SERVICE: &[(&str, i64)] = &[
    ("read", libc::SYS_read),
    ("write", libc::SYS_write),
    ("openat", libc::SYS_openat),
    ("close", libc::SYS_close),
    ("fstat", libc::SYS_fstat),
    ("lseek", libc::SYS_lseek),
    ("mmap", libc::SYS_mmap),
    ("mprotect", libc::SYS_mprotect),
    ("munmap", libc::SYS_munmap),
    ("brk", libc::SYS_brk),
    ("madvise", libc::SYS_madvise),
    ("rt_sigaction", libc::SYS_rt_sigaction),
    ("rt_sigprocmask", libc::SYS_rt_sigprocmask),
    ("ioctl", libc::SYS_ioctl),
    ("execve", libc::SYS_execve),
    ("exit_group", libc::SYS_exit_group),
    ("wait4", libc::SYS_wait4),
    ("kill", libc::SYS_kill),
    ("futex", libc::SYS_futex),
    ("getpid", libc::SYS_getpid),
    ("socket", libc::SYS_socket),
    ("bind", libc::SYS_bind),
    ("listen", libc::SYS_listen),
    ("accept4", libc::SYS_accept4),
    ("connect", libc::SYS_connect),
    ("sendmsg", libc::SYS_sendmsg),
    ("recvmsg", libc::SYS_recvmsg),
    ("epoll_create1", libc::SYS_epoll_create1),
    ("epoll_ctl", libc::SYS_epoll_ctl),
    ("epoll_pwait", libc::SYS_epoll_pwait),
    ("pipe2", libc::SYS_pipe2),
    ("dup3", libc::SYS_dup3),
    ("setuid", libc::SYS_setuid),
    ("setgid", libc::SYS_setgid),
    ("setgroups", libc::SYS_setgroups),
    ("capset", libc::SYS_capset),
    ("prctl", libc::SYS_prctl),
    ("chdir", libc::SYS_chdir),
    ("fchownat", libc::SYS_fchownat),
    ("prlimit64", libc::SYS_prlimit64),
    ("clock_gettime", libc::SYS_clock_gettime),
    ("clock_nanosleep", libc::SYS_clock_nanosleep),
    ("getrandom", libc::SYS_getrandom),
    ("sched_yield", libc::SYS_sched_yield),
];

const NS_FLAGS: &[(&str, i32)] = &[
    ("CLONE_NEWNS", libc::CLONE_NEWNS),
    ("CLONE_NEWUTS", libc::CLONE_NEWUTS),
    ("CLONE_NEWIPC", libc::CLONE_NEWIPC),
    ("CLONE_NEWUSER", libc::CLONE_NEWUSER),
    ("CLONE_NEWPID", libc::CLONE_NEWPID),
    ("CLONE_NEWNET", libc::CLONE_NEWNET),
    ("CLONE_NEWCGROUP", libc::CLONE_NEWCGROUP),
];

/// `fork()`'s clone flags, and `pthread_create`'s.
const FORK: u64 = (libc::SIGCHLD | libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u64;
const THREAD: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_SETTLS
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;

const EPERM: Verdict = Verdict::Errno(libc::EPERM);
const ENOSYS: Verdict = Verdict::Errno(libc::ENOSYS);

#[test]
fn the_denied_calls_are_refused_with_or_without_sys_admin() {
    for sys_admin in [false, true] {
        let f = default_filters(sys_admin).expect("default filters");
        for (name, nr) in DENIED {
            assert_eq!(native(&f, *nr, 0), EPERM, "{name}, sys_admin {sys_admin}");
        }
    }
}

#[test]
fn a_services_calls_go_through_with_or_without_sys_admin() {
    for sys_admin in [false, true] {
        let f = default_filters(sys_admin).expect("default filters");
        for (name, nr) in SERVICE {
            for arg0 in [0, 1, u64::MAX] {
                assert_eq!(
                    native(&f, *nr, arg0),
                    Verdict::Allow,
                    "{name}({arg0:#x}), sys_admin {sys_admin}"
                );
            }
        }
        for (what, flags) in [("fork", FORK), ("a thread", THREAD)] {
            assert_eq!(
                native(&f, libc::SYS_clone, flags),
                Verdict::Allow,
                "clone for {what}, sys_admin {sys_admin}"
            );
        }
    }
}

#[test]
fn mounts_and_namespaces_only_with_sys_admin() {
    let plain = default_filters(false).expect("default filters");
    let admin = default_filters(true).expect("default filters with SYS_ADMIN");
    for (name, nr) in ADMIN {
        assert_eq!(native(&plain, *nr, 0), EPERM, "{name}");
        assert_eq!(
            native(&admin, *nr, 0),
            Verdict::Allow,
            "{name} with SYS_ADMIN"
        );
    }
    for (name, flag) in NS_FLAGS {
        for flags in [*flag as u64, FORK | *flag as u64, THREAD | *flag as u64] {
            assert_eq!(
                native(&plain, libc::SYS_clone, flags),
                EPERM,
                "clone({flags:#x}) with {name}"
            );
            assert_eq!(
                native(&admin, libc::SYS_clone, flags),
                Verdict::Allow,
                "clone({flags:#x}) with {name}, SYS_ADMIN"
            );
        }
    }
}

#[test]
fn clone3_answers_enosys_so_that_libc_falls_back_to_clone() {
    for sys_admin in [false, true] {
        let f = default_filters(sys_admin).expect("default filters");
        assert_eq!(native(&f, libc::SYS_clone3, 0), ENOSYS, "{sys_admin}");
    }
}

/// A call under another architecture's numbers (`int 0x80` on x86_64) or the x32 ABI's
/// (bit 30) would mean another call than the filter checked: never let through.
#[test]
fn no_call_passes_under_another_abis_number() {
    for sys_admin in [false, true] {
        let f = default_filters(sys_admin).expect("default filters");
        for (name, nr) in DENIED.iter().chain(ADMIN).chain(SERVICE) {
            assert_eq!(
                verdict(&f, *nr, FOREIGN, [0; 6]),
                Verdict::KillProcess,
                "{name} on the foreign architecture, sys_admin {sys_admin}"
            );
            if cfg!(target_arch = "x86_64") {
                assert_eq!(
                    native(&f, *nr | 0x4000_0000, 0),
                    ENOSYS,
                    "{name} as x32, sys_admin {sys_admin}"
                );
            }
        }
    }
}

/// A probe of the kernel: a call, its arguments, and the errno a child gets for it with
/// the default filter installed (0: it succeeded), without and with SYS_ADMIN. The
/// arguments are invalid, so that each call is harmless even if the filter let it
/// through, and answered differently by the kernel itself (as root) than by the filter.
struct Probe {
    name: &'static str,
    nr: i64,
    args: [u64; 6],
    plain: i32,
    admin: i32,
}

const PROBES: &[Probe] = &[
    Probe {
        name: "getpid",
        nr: libc::SYS_getpid,
        args: [0; 6],
        plain: 0,
        admin: 0,
    },
    // The kernel: EINVAL (a size below clone_args').
    Probe {
        name: "clone3",
        nr: libc::SYS_clone3,
        args: [0; 6],
        plain: libc::ENOSYS,
        admin: libc::ENOSYS,
    },
    // The kernel: EOPNOTSUPP (no such operation).
    Probe {
        name: "keyctl",
        nr: libc::SYS_keyctl,
        args: [9999, 0, 0, 0, 0, 0],
        plain: libc::EPERM,
        admin: libc::EPERM,
    },
    // The kernel, to root: EINVAL (no magic).
    Probe {
        name: "reboot",
        nr: libc::SYS_reboot,
        args: [0; 6],
        plain: libc::EPERM,
        admin: libc::EPERM,
    },
    // The kernel: EINVAL (CSIGNAL bits are no unshare flag).
    Probe {
        name: "unshare",
        nr: libc::SYS_unshare,
        args: [1, 0, 0, 0, 0, 0],
        plain: libc::EPERM,
        admin: libc::EINVAL,
    },
    // The kernel: EINVAL (CLONE_SIGHAND without CLONE_VM), before it makes anything.
    Probe {
        name: "clone with CLONE_NEWUTS",
        nr: libc::SYS_clone,
        args: [
            (libc::CLONE_NEWUTS | libc::CLONE_SIGHAND) as u64,
            0,
            0,
            0,
            0,
            0,
        ],
        plain: libc::EPERM,
        admin: libc::EINVAL,
    },
    Probe {
        name: "clone without namespaces",
        nr: libc::SYS_clone,
        args: [libc::CLONE_SIGHAND as u64, 0, 0, 0, 0, 0],
        plain: libc::EINVAL,
        admin: libc::EINVAL,
    },
];

/// The errno of each probe in a forked child with `filters` installed; `None` for a
/// child that could not install them (exit 2) or died.
fn probe_in_child(filters: &[BpfProgram]) -> Option<Vec<i32>> {
    // Everything the child uses is made before the fork: it only makes system calls.
    let progs: Vec<libc::sock_fprog> = filters
        .iter()
        .map(|p| libc::sock_fprog {
            len: p.len() as u16,
            filter: p.as_ptr() as *mut libc::sock_filter,
        })
        .collect();
    let mut results = [0i32; PROBES.len()];
    let mut pipe = [0; 2];
    // SAFETY: pipe into a two-element array.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: the child only makes system calls on memory made before the fork (no
    // allocation, no lock), then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        unsafe {
            libc::close(pipe[0]);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(2);
            }
            for p in &progs {
                let rc = libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    p as *const libc::sock_fprog,
                );
                if rc != 0 {
                    libc::_exit(2);
                }
            }
            for (i, p) in PROBES.iter().enumerate() {
                let a = p.args;
                let rc = libc::syscall(p.nr, a[0], a[1], a[2], a[3], a[4], a[5]);
                results[i] = if rc < 0 { *libc::__errno_location() } else { 0 };
            }
            let len = std::mem::size_of_val(&results);
            let n = libc::write(pipe[1], results.as_ptr().cast(), len);
            libc::_exit(if n == len as isize { 0 } else { 3 });
        }
    }
    // SAFETY: closing our copy of the write end; reading into `results`, which is large
    // enough; waiting for our own child.
    unsafe {
        libc::close(pipe[1]);
        let len = std::mem::size_of_val(&results);
        let n = libc::read(pipe[0], results.as_mut_ptr().cast(), len);
        libc::close(pipe[0]);
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid, "waitpid");
        let exited_0 = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        (exited_0 && n == len as isize).then(|| results.to_vec())
    }
}

/// The filters this machine's kernel accepts (built for its architecture) answer as the
/// evaluator above says they do.
#[test]
fn the_kernel_answers_the_probes_as_the_filter_says() {
    for sys_admin in [false, true] {
        let f = default_filters(sys_admin).expect("default filters");
        let got = probe_in_child(&f).expect("a child with the filters installed");
        for (p, errno) in PROBES.iter().zip(got) {
            let want = if sys_admin { p.admin } else { p.plain };
            assert_eq!(
                errno,
                want,
                "{}: errno {errno} ({}), sys_admin {sys_admin}",
                p.name,
                std::io::Error::from_raw_os_error(errno)
            );
        }
    }
}
