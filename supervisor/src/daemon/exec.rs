//! The daemon's parts of `kennel exec`: which namespaces to join, and the stdio (pipes
//! whose far ends go to the client; a terminal is made by the helper, in the unit's
//! namespaces: spawn/helper/terminal.rs).

use std::os::fd::OwnedFd;

use kennel_units::Container;

use crate::control::protocol::ExecRequest;
use crate::spawn::spec::JoinSpec;

/// The namespaces of a running container unit whose main pid is `pid`: those of its
/// PID 1 (the first child of the helper when there is a pid namespace), every one that
/// differs from kennel's own.
pub fn join_spec(pid: i32, c: &Container) -> JoinSpec {
    // With a pid namespace, the unit's pid is either the container's PID 1 itself (a
    // helper the zygote forked into the namespace) or a helper outside it whose child is
    // (one exec'd, or with a user namespace).
    let outside = |p: i32| {
        std::fs::read_link(format!("/proc/{p}/ns/pid")).ok()
            == std::fs::read_link("/proc/self/ns/pid").ok()
    };
    let inner = if c.namespaces.contains(&kennel_units::Namespace::Pid) && outside(pid) {
        first_child(pid).unwrap_or(pid)
    } else {
        pid
    };
    let mut namespaces = Vec::new();
    for ns in ["ipc", "uts", "net", "pid", "cgroup", "mnt", "user"] {
        let theirs = std::fs::read_link(format!("/proc/{inner}/ns/{ns}"));
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}"));
        match (theirs, ours) {
            (Ok(t), Ok(o)) if t == o => {}
            _ => namespaces.push(ns.to_string()),
        }
    }
    JoinSpec {
        pid: inner,
        namespaces,
    }
}

fn first_child(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The process's ends (`stdin`, `stdout`, `stderr`) and the client's (`client`: stdin's
/// write end when interactive, then stdout's and stderr's read ends). With a terminal,
/// /dev/null and none: the helper makes the terminal and hands its master back.
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub client: Vec<OwnedFd>,
}

impl Stdio {
    pub fn new(x: &ExecRequest) -> std::io::Result<Stdio> {
        if x.tty {
            let null = || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .map(OwnedFd::from)
            };
            return Ok(Stdio {
                stdin: None,
                stdout: null()?,
                stderr: null()?,
                client: Vec::new(),
            });
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let mut client = Vec::new();
        let stdin = if x.interactive {
            let (in_r, in_w) = pipe()?;
            client.push(in_w);
            Some(in_r)
        } else {
            None
        };
        client.push(out_r);
        client.push(err_r);
        Ok(Stdio {
            stdin,
            stdout: out_w,
            stderr: err_w,
            client,
        })
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}
