//! The helper role (`kennel __helper`): a fresh, single-threaded copy of kennel that reads a
//! [`SpawnSpec`] from its stdin socket, prepares the process step by step and execs the
//! service. No Rust runs between fork and exec in the daemon: this process is that step.
//!
//! Protocol: fd 0 is a Unix stream socket; the daemon writes the spec as JSON and shuts
//! down its write side. On success the helper execs (its copy of the socket is close-on-exec,
//! so the daemon reads EOF); on failure it writes one [`SpawnFailure`] JSON line and exits.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Group, Uid, User};

use super::env;
use super::spec::{SpawnFailure, SpawnSpec};

/// Run the helper role; never returns.
pub fn main() -> ! {
    // fd 0 is the socket: keep it (close-on-exec) on a high fd, and give the service /dev/null.
    let sock = match take_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kennel helper: {e}");
            std::process::exit(125);
        }
    };
    let mut sock = sock;
    let failure = match run(&mut sock) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    eprintln!("kennel: {failure}");
    if let Ok(mut line) = serde_json::to_vec(&failure) {
        line.push(b'\n');
        let _ = sock.write_all(&line);
    }
    std::process::exit(failure.exit_code)
}

fn take_socket() -> Result<UnixStream, Errno> {
    let fd = fcntl(0, FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: fcntl just returned this fd; nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
    nix::unistd::dup2(null, 0)?;
    nix::unistd::close(null)?;
    Ok(UnixStream::from(owned))
}

pub(crate) fn fail(step: &str, subject: impl Into<String>, error: impl ToString) -> SpawnFailure {
    SpawnFailure {
        step: step.into(),
        subject: subject.into(),
        error: error.to_string(),
        exit_code: 125,
    }
}

fn run(sock: &mut UnixStream) -> Result<std::convert::Infallible, SpawnFailure> {
    let (mut buf, passed) = recv_with_fd(sock).map_err(|e| fail("read spawn spec", "", e))?;
    sock.read_to_end(&mut buf)
        .map_err(|e| fail("read spawn spec", "", e))?;
    let spec: SpawnSpec =
        serde_json::from_slice(&buf).map_err(|e| fail("decode spawn spec", "", e))?;
    if let (true, Some(fd)) = (spec.stdin_passed, passed) {
        nix::unistd::dup2(fd.as_raw_fd(), 0).map_err(|e| fail("set up stdin", "", e.desc()))?;
    }
    if spec.argv.is_empty() {
        return Err(fail("exec", "", "empty command"));
    }
    reset_signals();
    // First of all: into the unit's cgroup, so that everything this process becomes or
    // forks is limited and accounted, and dies with the unit.
    // `0`: the writer itself (see `UnitCgroup::join_files` on why not the pid).
    for procs in &spec.cgroup_procs {
        std::fs::write(procs, "0")
            .map_err(|e| fail("join cgroup", procs.display().to_string(), e))?;
    }
    if spec.new_session {
        nix::unistd::setsid().map_err(|e| fail("setsid", "", e.desc()))?;
    }
    match (&spec.container, &spec.join) {
        (Some(c), _) => super::container::run(&spec, c, sock.as_raw_fd()),
        (None, Some(j)) => super::container::join(&spec, j, sock.as_raw_fd()),
        (None, None) => become_service(&spec),
    }
}

/// The first read of the spec, which may carry a file descriptor (the process's stdin).
fn recv_with_fd(sock: &UnixStream) -> std::io::Result<(Vec<u8>, Option<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let (n, fd) = {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        let mut fd = None;
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    // SAFETY: the kernel just installed this fd for us.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    fd.get_or_insert(owned);
                }
            }
        }
        (msg.bytes, fd)
    };
    buf.truncate(n);
    Ok((buf, fd))
}

/// The last steps of every spawn: the user, the environment, the working directory, exec.
/// In a container this runs after `pivot_root`, so the user is looked up in the
/// container's `/etc/passwd` and the command in its PATH.
pub(crate) fn become_service(spec: &SpawnSpec) -> Result<std::convert::Infallible, SpawnFailure> {
    let who = resolve_user(spec.user.as_deref())?;
    let mut vars = env::Env::new();
    vars.extend(spec.base_env.iter().cloned());
    if let Some(u) = &who.passwd {
        vars.set("HOME", &u.dir.to_string_lossy());
        vars.set("USER", &u.name);
        vars.set("LOGNAME", &u.name);
        vars.set("SHELL", &u.shell.to_string_lossy());
    }
    if let Some(file) = &spec.environment_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| fail("read environment_file", file.display().to_string(), e))?;
        let parsed = env::parse_env_file(&text).map_err(|(line, msg)| {
            fail(
                "read environment_file",
                format!("{}:{line}", file.display()),
                msg,
            )
        })?;
        vars.extend(parsed);
    }
    vars.extend(spec.env.iter().cloned());

    if spec.tty {
        // SAFETY: ioctl on fd 0 with an integer argument.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
            return Err(fail(
                "set controlling terminal",
                "",
                std::io::Error::last_os_error(),
            ));
        }
    }
    let root = who
        .uid
        .map_or_else(|| Uid::current().is_root(), |u| u.is_root());
    if let Some(sec) = &spec.security {
        super::security::before_user(&sec.settings, root, &sec.profile)?;
    }
    drop_privileges(&who)?;
    if let Some(sec) = &spec.security {
        super::security::after_user(&sec.settings, root)?;
    }
    let dir = spec.working_dir.as_deref().unwrap_or(Path::new("/"));
    nix::unistd::chdir(dir).map_err(|e| fail("chdir", dir.display().to_string(), e.desc()))?;

    exec(&spec.argv, &vars)
}

/// Undo what the daemon's signal handling left behind: an exec keeps the mask and ignored
/// dispositions, and a service must start with neither.
pub(crate) fn reset_signals() {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting the default disposition installs no Rust handler; errors (for
        // signals glibc reserves) are irrelevant.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// The identity to run as.
struct Identity {
    uid: Option<Uid>,
    gid: Option<Gid>,
    passwd: Option<User>,
}

fn resolve_user(spec: Option<&str>) -> Result<Identity, SpawnFailure> {
    let Some(spec) = spec else {
        let me = User::from_uid(Uid::current()).ok().flatten();
        return Ok(Identity {
            uid: None,
            gid: None,
            passwd: me,
        });
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = match user_part.parse::<u32>() {
        Ok(n) => {
            User::from_uid(Uid::from_raw(n)).map_err(|e| fail("look up user", spec, e.desc()))?
        }
        Err(_) => Some(
            User::from_name(user_part)
                .map_err(|e| fail("look up user", spec, e.desc()))?
                .ok_or_else(|| fail("look up user", user_part, "no such user in /etc/passwd"))?,
        ),
    };
    let uid = match (&passwd, user_part.parse::<u32>()) {
        (_, Ok(n)) => Uid::from_raw(n),
        (Some(p), Err(_)) => p.uid,
        (None, Err(_)) => return Err(fail("look up user", spec, "no such user")),
    };
    let gid = match group_part {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => Gid::from_raw(n),
            Err(_) => {
                Group::from_name(g)
                    .map_err(|e| fail("look up group", g, e.desc()))?
                    .ok_or_else(|| fail("look up group", g, "no such group in /etc/group"))?
                    .gid
            }
        },
        None => match &passwd {
            Some(p) => p.gid,
            None => Gid::from_raw(uid.as_raw()),
        },
    };
    Ok(Identity {
        uid: Some(uid),
        gid: Some(gid),
        passwd,
    })
}

fn drop_privileges(who: &Identity) -> Result<(), SpawnFailure> {
    let (Some(uid), Some(gid)) = (who.uid, who.gid) else {
        return Ok(());
    };
    match &who.passwd {
        Some(p) => {
            let name = CString::new(p.name.as_bytes())
                .map_err(|_| fail("initgroups", p.name.clone(), "name contains NUL"))?;
            nix::unistd::initgroups(&name, gid)
                .map_err(|e| fail("initgroups", p.name.clone(), e.desc()))?;
        }
        None => nix::unistd::setgroups(&[gid])
            .map_err(|e| fail("setgroups", gid.to_string(), e.desc()))?,
    }
    nix::unistd::setgid(gid).map_err(|e| fail("setgid", gid.to_string(), e.desc()))?;
    nix::unistd::setuid(uid).map_err(|e| fail("setuid", uid.to_string(), e.desc()))?;
    Ok(())
}

fn exec(argv: &[String], vars: &env::Env) -> Result<std::convert::Infallible, SpawnFailure> {
    let cstr = |s: &str| {
        CString::new(s.as_bytes()).map_err(|_| fail("exec", s.to_string(), "argument contains NUL"))
    };
    let args = argv
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = vars
        .to_cstrings()
        .map_err(|k| fail("exec", k, "environment contains NUL"))?;
    let prog = &argv[0];
    let candidates: Vec<String> = if prog.contains('/') {
        vec![prog.clone()]
    } else {
        let path = vars.get("PATH").unwrap_or(env::DEFAULT_PATH);
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/{prog}"))
            .collect()
    };
    let mut denied = None;
    for cand in &candidates {
        let c = cstr(cand)?;
        let err = match nix::unistd::execve(&c, &args, &envp) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        match err {
            Errno::ENOENT | Errno::ENOTDIR => continue,
            Errno::EACCES | Errno::ENOEXEC | Errno::EPERM => {
                denied = Some((cand.clone(), err));
                if prog.contains('/') {
                    break;
                }
            }
            other => {
                return Err(SpawnFailure {
                    exit_code: 126,
                    ..fail("exec", cand.clone(), other.desc())
                })
            }
        }
    }
    Err(match denied {
        Some((cand, e)) => SpawnFailure {
            exit_code: 126,
            ..fail("exec", cand, e.desc())
        },
        None if prog.contains('/') => SpawnFailure {
            exit_code: 127,
            ..fail("exec", prog.clone(), "no such file or directory")
        },
        None => SpawnFailure {
            exit_code: 127,
            ..fail("exec", prog.clone(), "command not found in PATH")
        },
    })
}
