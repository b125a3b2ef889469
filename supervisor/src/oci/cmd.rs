//! The commands.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use kennel_core::start::{CgroupFs, Launch, V1Join};

use super::log::Log;
use super::state::{self, Locked, Saved};
use super::{CreateArgs, OciCli, OciCmd};
use crate::spawn::spec::{Order, SpawnFailure, StartGate};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn err_box(e: impl std::error::Error + 'static) -> Box<dyn std::error::Error> {
    Box::new(e)
}

fn err(msg: impl Into<String>) -> Box<dyn std::error::Error> {
    msg.into().into()
}

pub fn run(cli: &OciCli, log: &Log) -> Res<i32> {
    if cli.version {
        println!("kennel version {}", env!("CARGO_PKG_VERSION"));
        println!("spec: {}", super::OCI_VERSION);
        return Ok(0);
    }
    if cli.systemd_cgroup {
        return Err(err(
            "--systemd-cgroup is not supported by kennel: use cgroupfs paths (podman: --cgroup-manager cgroupfs)",
        ));
    }
    match cli.rootless.as_deref() {
        None | Some("false") => {}
        Some("auto") if nix::unistd::geteuid().is_root() => {}
        Some(v) => {
            return Err(err(format!(
                "--rootless {v}: rootless containers are not supported by kennel yet (run as root)"
            )))
        }
    }
    let Some(command) = &cli.command else {
        return Err(err("no command: see kennel oci --help"));
    };
    log.debug(&format!("{command:?}"));
    let root = cli.root.as_path();
    match command {
        OciCmd::Spec(a) => spec(a),
        OciCmd::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&super::defaults::features())?
            );
            Ok(0)
        }
        OciCmd::Create(a) => create(root, a).map(|_| 0),
        OciCmd::Start(a) => start(root, &a.id, log).map(|()| 0),
        OciCmd::Run(a) => run_container(root, a, log),
        OciCmd::State(a) => show_state(root, &a.id).map(|()| 0),
        OciCmd::Kill(a) => kill(root, &a.id, &a.signal, a.all).map(|()| 0),
        OciCmd::Delete(a) => delete(root, &a.id, a.force, log).map(|()| 0),
        OciCmd::List(a) => list(root, a).map(|()| 0),
        OciCmd::Exec(a) => exec(root, a),
        OciCmd::Ps(a) => ps(root, a).map(|()| 0),
        OciCmd::Pause(a) => pause(root, &a.id, true).map(|()| 0),
        OciCmd::Resume(a) => pause(root, &a.id, false).map(|()| 0),
        OciCmd::Update(a) => update(root, a).map(|()| 0),
        OciCmd::Events(a) => events(root, a).map(|()| 0),
        OciCmd::Checkpoint(_) | OciCmd::Restore(_) => {
            Err(err("checkpoint and restore are not supported by kennel"))
        }
    }
}

fn spec(a: &super::SpecArgs) -> Res<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(err(format!("{}: exists", path.display())));
    }
    let text = serde_json::to_string_pretty(&super::defaults::default_spec())?;
    std::fs::write(&path, text + "\n").map_err(|e| err(format!("{}: {e}", path.display())))?;
    Ok(0)
}

/// Creates the container; returns its pid (our child until this process exits).
fn create(root: &Path, a: &CreateArgs) -> Res<i32> {
    if a.no_pivot {
        return Err(err("--no-pivot is not supported by kennel"));
    }
    if a.preserve_fds != 0 {
        return Err(err("--preserve-fds is not supported by kennel yet"));
    }
    let locked = Locked::create(root, &a.id)?;
    match create_locked(&locked, a) {
        Ok(pid) => Ok(pid),
        Err(e) => {
            let _ = locked.remove();
            Err(e)
        }
    }
}

fn create_locked(locked: &Locked, a: &CreateArgs) -> Res<i32> {
    let bundle_dir = std::fs::canonicalize(&a.bundle)
        .map_err(|e| err(format!("bundle {}: {e}", a.bundle.display())))?;
    let spec = super::config::load(&bundle_dir)?;
    let mut b = super::bundle::translate(&a.id, &bundle_dir, &locked.dir, &spec)?;
    let hooks = super::hooks::Hooks::of(&spec);
    if b.spawn.tty.is_some() && a.console_socket.is_none() {
        return Err(err(
            "process.terminal is true: --console-socket is required",
        ));
    }
    let console = a
        .console_socket
        .as_ref()
        .map(|p| {
            UnixStream::connect(p).map_err(|e| err(format!("console socket {}: {e}", p.display())))
        })
        .transpose()?;
    let fifo = locked.fifo();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| err(format!("mkfifo {}: {e}", fifo.display())))?;
    b.spawn.start_gate = Some(StartGate { fifo });

    // The cgroup.
    let (parent, name) = super::cgroup::split(b.cgroups_path.as_deref(), &a.id);
    let layout = super::cgroup::layout(&parent)?;
    let unit = layout.create(&name, &b.resources)?;
    let limited = b
        .device_rules
        .as_ref()
        .map_or(Ok(()), |rules| {
            unit.restrict_devices(rules).map_err(err_box)
        })
        .and_then(|()| b.extra.apply(&unit).map_err(err_box));
    if let Err(e) = limited {
        let _ = unit.remove();
        return Err(e);
    }
    b.spawn.cgroup_procs = unit.join_files();
    b.spawn.unified = unit.unified().map(Path::to_path_buf);
    b.spawn.v1 = if layout.version() == kennel_cgroups::Version::V1 {
        V1Join::First
    } else {
        V1Join::None
    };
    if let Some(c) = b.spawn.container.as_mut() {
        c.plan.cgroup_fs = match layout.version() {
            kennel_cgroups::Version::V1 => CgroupFs::Hierarchies,
            kennel_cgroups::Version::V2 => CgroupFs::Unified,
        };
        c.cgroup_hierarchies = unit.hierarchies();
    }
    let rootfs = b
        .spawn
        .container
        .as_ref()
        .and_then(|c| c.bundle.as_ref())
        .map(|r| r.path.clone())
        .unwrap_or_default();

    if let Some(path) = &b.pid_ns_path {
        // This process's children start in that pid namespace (this process stays out).
        let joined = std::fs::File::open(path).and_then(|f| {
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWPID).map_err(Into::into)
        });
        if let Err(e) = joined {
            let _ = unit.remove();
            return Err(err(format!("join pid namespace {}: {e}", path.display())));
        }
    }
    let pid = match spawn(&b.spawn, b.new_pid_ns, console.as_ref()) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = unit.remove();
            return Err(e);
        }
    };
    let start_time = state::proc_stat(pid).map_or(0, |s| s.1);
    let saved = Saved {
        id: a.id.clone(),
        pid,
        start_time,
        bundle: bundle_dir,
        rootfs,
        created: kennel_logs::format_rfc3339_millis(std::time::SystemTime::now()),
        annotations: b.annotations,
        cgroup_parent: parent,
        cgroup_name: name,
        hooks,
    };
    locked.save(&saved)?;
    let created = saved.spec_state("created");
    let pre = super::hooks::run("prestart", &saved.hooks.prestart, &created)
        .and_then(|()| super::hooks::run("createRuntime", &saved.hooks.create_runtime, &created));
    if let Err(e) = pre {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        let _ = unit.remove();
        return Err(err(e));
    }
    if let Some(p) = &a.pid_file {
        let tmp = p.with_extension("kennel-tmp");
        std::fs::write(&tmp, pid.to_string())
            .and_then(|()| std::fs::rename(&tmp, p))
            .map_err(|e| err(format!("pid file {}: {e}", p.display())))?;
    }
    Ok(pid)
}

/// Forks the helper (into a new pid namespace as its PID 1 when `new_pid`), with this
/// process's stdin (passed with the spec), stdout and stderr, and waits until it is
/// ready at its start gate (or failed). The terminal's master goes to `console`.
fn spawn(spec: &crate::spawn::SpawnSpec, new_pid: bool, console: Option<&UnixStream>) -> Res<i32> {
    let (ours, theirs) = UnixStream::pair()?;
    let launch = Launch::Zygote {
        into_cgroup: false,
        pid_ns: new_pid,
        spare_net: false,
    };
    let mut spec = spec.clone();
    // This process's stdin, unless it has none (closed).
    spec.stdin_passed = nix::fcntl::fcntl(0, nix::fcntl::FcntlArg::F_GETFD).is_ok();
    let json = serde_json::to_vec(&Order {
        launch,
        spec: &spec,
    })?;
    let pid = fork_helper(theirs.as_raw_fd(), new_pid)?;
    drop(theirs);
    // The spec, stdin with its first bytes.
    let mut body = (json.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&json);
    {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let fds = [0 as RawFd];
        let iov = [std::io::IoSlice::new(&body[..4])];
        let rights = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if spec.stdin_passed { &rights } else { &[] };
        sendmsg::<()>(ours.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
        (&ours).write_all(&body[4..])?;
        ours.shutdown(std::net::Shutdown::Write)?;
    }
    // What the helper says: the terminal (mark 2 with a descriptor), ready, or a failure.
    let mut said = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        let (n, fd) = crate::spawn::helper::recv_with_fd(ours.as_raw_fd(), &mut buf)?;
        if n == 0 {
            break;
        }
        if let (Ok(Some(fd)), Some(&crate::spawn::helper::terminal::MARK)) = (fd, buf[..n].last()) {
            if let Some(c) = console {
                send_fd(c, &fd)?;
            }
            said.extend_from_slice(&buf[..n - 1]);
            continue;
        }
        if buf[..n].contains(&StartGate::READY) {
            return Ok(pid);
        }
        said.extend_from_slice(&buf[..n]);
    }
    if spec.start_gate.is_none() && said.is_empty() {
        // No gate (exec): EOF without a report is the exec.
        return Ok(pid);
    }
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    let failure: Option<SpawnFailure> = serde_json::from_slice(&said).ok();
    Err(match failure {
        Some(f) => err(f.to_string()),
        None => err("the container's process ended before it was ready"),
    })
}

/// The master of the terminal to the console socket, as runc sends it (SCM_RIGHTS with
/// the name of the terminal as the data).
fn send_fd(sock: &UnixStream, fd: &OwnedFd) -> Res<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// clone3 (`CLONE_NEWPID` when `new_pid`): in the child, the channel on fd 0, stdout and
/// stderr kept, everything else closed, then the helper role. This process is
/// single-threaded (no runtime), as the zygote is.
fn fork_helper(channel: RawFd, new_pid: bool) -> Res<i32> {
    // SAFETY: zeroed is a valid clone_args (no flags, no pointers).
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    if new_pid {
        args.flags |= libc::CLONE_NEWPID as u64;
    }
    args.exit_signal = libc::SIGCHLD as u64;
    // SAFETY: clone3 without CLONE_VM and without a stack is a fork; this process is
    // single-threaded and holds no lock here.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if ret < 0 {
        return Err(err(format!("clone3: {}", std::io::Error::last_os_error())));
    }
    if ret > 0 {
        return Ok(ret as i32);
    }
    // SAFETY: plain descriptor operations in the single-threaded child.
    unsafe {
        if libc::dup2(channel, 3) < 0 || libc::dup2(3, 0) < 0 {
            libc::_exit(125);
        }
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..1024 {
                libc::close(fd);
            }
        }
    }
    crate::spawn::helper::main_forked(false)
}

/// `exec`: the process (process.json, or ARGS over the container's own process) as the
/// container's bundle would run it, translated by bundle.rs, then started by the helper
/// in the container's namespaces and cgroup (its join path, as `kennel exec` into a unit).
fn exec(root: &Path, a: &super::ExecArgs) -> Res<i32> {
    if a.preserve_fds != 0 {
        return Err(err("--preserve-fds is not supported by kennel yet"));
    }
    let (saved, mut spec, dir) = {
        let locked = Locked::open(root, &a.id)?;
        let saved = locked.load()?;
        let status = state::status(&locked.dir, &saved);
        if status != "running" {
            return Err(err(format!("container {} is {status}, not running", a.id)));
        }
        let spec = super::config::load(&saved.bundle)?;
        (saved, spec, locked.dir.clone())
    };
    let mut process: oci_spec::runtime::Process = match &a.process {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| err(format!("{}: {e}", path.display())))?;
            let p: oci_spec::runtime::Process =
                serde_json::from_value(v).map_err(|e| err(format!("{}: {e}", path.display())))?;
            super::config::check_keys(&serde_json::json!({ "process": serde_json::to_value(&p)? }))
                .map_err(|e| {
                    err(e
                        .to_string()
                        .replace("config.json", &path.display().to_string()))
                })?;
            p
        }
        None => {
            let mut p = spec.process().clone().unwrap_or_default();
            if a.args.is_empty() {
                return Err(err("exec: no command (ARGS or --process)"));
            }
            p.set_args(Some(a.args.clone()));
            p.set_terminal(Some(a.tty));
            p
        }
    };
    if !a.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        env.extend(a.env.iter().cloned());
        process.set_env(Some(env));
    }
    if let Some(cwd) = &a.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let user = process.user_mut();
        user.set_uid(
            uid.parse()
                .map_err(|_| err(format!("--user {u}: not uid[:gid]")))?,
        );
        user.set_gid(
            gid.parse()
                .map_err(|_| err(format!("--user {u}: not uid[:gid]")))?,
        );
    }
    if a.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let name = if c.starts_with("CAP_") {
                c.clone()
            } else {
                format!("CAP_{c}")
            };
            let cap: oci_spec::runtime::Capability = serde_json::from_value(name.clone().into())
                .map_err(|_| err(format!("--cap {c}: unknown capability")))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                s
            };
            caps.set_bounding(Some(add(caps.bounding())));
            caps.set_effective(Some(add(caps.effective())));
            caps.set_permitted(Some(add(caps.permitted())));
            caps.set_inheritable(Some(add(caps.inheritable())));
            caps.set_ambient(Some(add(caps.ambient())));
        }
        process.set_capabilities(Some(caps));
    }
    spec.set_process(Some(process));
    let b = super::bundle::translate(&a.id, &saved.bundle, &dir, &spec)?;
    let mut run = b.spawn;
    if run.tty.is_some() && a.console_socket.is_none() && a.detach {
        return Err(err(
            "exec with a terminal and -d: --console-socket is required",
        ));
    }
    run.container = None;
    run.join = Some(crate::spawn::spec::JoinSpec {
        pid: saved.pid,
        namespaces: ["ipc", "uts", "net", "pid", "cgroup", "mnt"]
            .iter()
            .filter(|n| {
                // Only the container's own namespaces (the host's are where this is).
                let theirs = std::fs::read_link(format!("/proc/{}/ns/{n}", saved.pid));
                let ours = std::fs::read_link(format!("/proc/self/ns/{n}"));
                matches!((theirs, ours), (Ok(t), Ok(o)) if t != o)
            })
            .map(|n| n.to_string())
            .collect(),
    });
    if let Some(unit) = super::cgroup::existing(&saved.cgroup_parent, &saved.cgroup_name) {
        run.cgroup_procs = unit.join_files();
    }
    let console = a
        .console_socket
        .as_ref()
        .map(|p| {
            UnixStream::connect(p).map_err(|e| err(format!("console socket {}: {e}", p.display())))
        })
        .transpose()?;
    let pid = spawn(&run, false, console.as_ref())?;
    if let Some(p) = &a.pid_file {
        std::fs::write(p, pid.to_string())
            .map_err(|e| err(format!("pid file {}: {e}", p.display())))?;
    }
    if a.detach {
        return Ok(0);
    }
    Ok(
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)? {
            nix::sys::wait::WaitStatus::Exited(_, c) => c,
            nix::sys::wait::WaitStatus::Signaled(_, s, _) => 128 + s as i32,
            _ => 1,
        },
    )
}

fn start(root: &Path, id: &str, log: &Log) -> Res<()> {
    let locked = Locked::open(root, id)?;
    let saved = locked.load()?;
    let status = state::status(&locked.dir, &saved);
    if status != "created" {
        return Err(err(format!("container {id} is {status}, not created")));
    }
    let fifo = locked.fifo();
    let f = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| err(format!("start {id}: the container is not waiting ({e})")))?;
    // SAFETY: open just returned it.
    let f = unsafe { OwnedFd::from_raw_fd(f) };
    nix::unistd::write(&f, &[0u8]).map_err(|e| err(format!("start {id}: {e}")))?;
    std::fs::remove_file(&fifo).map_err(|e| err(format!("{}: {e}", fifo.display())))?;
    wait_for_exec(saved.pid);
    super::hooks::run_all(
        "poststart",
        &saved.hooks.poststart,
        &saved.spec_state("running"),
        log,
    );
    Ok(())
}

/// Until the container's process has exec'd its program (its `/proc/PID/exe` is no longer
/// kennel), it ended, or 2 s passed: `start` returns (and poststart hooks run) once the
/// program runs, not while the process still does kennel's last steps.
fn wait_for_exec(pid: i32) {
    use std::os::unix::fs::MetadataExt;
    let Ok(me) = std::fs::metadata("/proc/self/exe") else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        match std::fs::metadata(format!("/proc/{pid}/exe")) {
            Ok(m) if (m.dev(), m.ino()) == (me.dev(), me.ino()) => {}
            _ => return,
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn run_container(root: &Path, a: &super::RunArgs, log: &Log) -> Res<i32> {
    let pid = create(root, &a.create)?;
    start(root, &a.create.id, log)?;
    if a.detach {
        return Ok(0);
    }
    let code = match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)? {
        nix::sys::wait::WaitStatus::Exited(_, c) => c,
        nix::sys::wait::WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        _ => 1,
    };
    if !a.keep {
        delete(root, &a.create.id, true, log)?;
    }
    Ok(code)
}

fn show_state(root: &Path, id: &str) -> Res<()> {
    let locked = Locked::open(root, id)?;
    let s = locked.load()?;
    let v = s.spec_state(state::status(&locked.dir, &s));
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn parse_signal(s: &str) -> Res<nix::sys::signal::Signal> {
    use std::str::FromStr;
    if let Ok(n) = s.parse::<i32>() {
        return Ok(nix::sys::signal::Signal::try_from(n)?);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| err(format!("unknown signal {s:?}")))
}

fn kill(root: &Path, id: &str, signal: &str, all: bool) -> Res<()> {
    let sig = parse_signal(signal)?;
    let locked = Locked::open(root, id)?;
    let s = locked.load()?;
    let unit = super::cgroup::existing(&s.cgroup_parent, &s.cgroup_name);
    if all {
        if let Some(unit) = &unit {
            for p in unit.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
            }
        }
    }
    let status = state::status(&locked.dir, &s);
    if status == "stopped" {
        // runc's words ("container not running"): containerd's runc shim takes an error
        // holding them as "already finished" (a kill racing the process's exit, as `ctr
        // task delete -f` makes), any other as a failure.
        return Err(err(format!("{id}: container not running")));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.pid), sig)
        .map_err(|e| err(format!("kill {id}: {e}")))?;
    // A frozen process dies of SIGKILL only once thawed (v1): thaw a paused container
    // after SIGKILL, as runc does, so that the kill takes effect.
    if status == "paused" && sig == nix::sys::signal::Signal::SIGKILL {
        if let Some(unit) = &unit {
            unit.thaw()?;
        }
    }
    Ok(())
}

/// `ps`: the pids of the container's cgroup, as JSON or as `ps` lines.
fn ps(root: &Path, a: &super::PsArgs) -> Res<()> {
    let locked = Locked::open(root, &a.id)?;
    let s = locked.load()?;
    let pids = super::cgroup::existing(&s.cgroup_parent, &s.cgroup_name)
        .map(|u| u.pids())
        .transpose()?
        .unwrap_or_default();
    match a.format.as_str() {
        "json" => {
            if !a.ps_args.is_empty() {
                return Err(err("ps options are for --format table only"));
            }
            println!("{}", serde_json::to_string(&pids)?);
        }
        "table" => {
            let args = if a.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                a.ps_args.clone()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| err(format!("ps: {e}")))?;
            if !out.status.success() {
                return Err(err(format!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            print!(
                "{}",
                ps_filter(&String::from_utf8_lossy(&out.stdout), &pids)?
            );
        }
        other => return Err(err(format!("--format {other:?}: use table or json"))),
    }
    Ok(())
}

/// The header of `ps` output and its lines whose PID column is one of `pids`.
fn ps_filter(text: &str, pids: &[i32]) -> Res<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| err("ps: its output has no PID column"))?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `pause` (freeze) or `resume` (thaw) the container's cgroup.
fn pause(root: &Path, id: &str, freeze: bool) -> Res<()> {
    let locked = Locked::open(root, id)?;
    let s = locked.load()?;
    let status = state::status(&locked.dir, &s);
    let want = if freeze { "running" } else { "paused" };
    if status != want {
        return Err(err(format!("container {id} is {status}, not {want}")));
    }
    let unit = super::cgroup::existing(&s.cgroup_parent, &s.cgroup_name)
        .ok_or_else(|| err(format!("container {id}: its cgroup is gone")))?;
    if freeze {
        unit.freeze()?;
    } else {
        unit.thaw()?;
    }
    Ok(())
}

fn delete(root: &Path, id: &str, force: bool, log: &Log) -> Res<()> {
    let locked = Locked::open(root, id)?;
    let s = locked.load()?;
    let status = state::status(&locked.dir, &s);
    if status != "stopped" && !force {
        return Err(err(format!(
            "container {id} is {status}, not stopped: kill it first, or delete --force"
        )));
    }
    let unit = super::cgroup::existing(&s.cgroup_parent, &s.cgroup_name);
    if status != "stopped" {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(s.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if let Some(u) = &unit {
        if status == "paused" {
            // A frozen process dies of SIGKILL only once thawed.
            let _ = u.thaw();
        }
        let _ = u.kill_all();
        // Until the cgroup is empty (the kernel takes a moment to end what it killed).
        for _ in 0..200 {
            if u.pids().map(|p| p.is_empty()).unwrap_or(true) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        u.remove()?;
    }
    super::hooks::run_all("poststop", &s.hooks.poststop, &s.spec_state("stopped"), log);
    locked.remove()?;
    Ok(())
}

fn list(root: &Path, a: &super::ListArgs) -> Res<()> {
    let mut rows = Vec::new();
    for id in state::ids(root) {
        let Ok(locked) = Locked::open(root, &id) else {
            continue;
        };
        let Ok(s) = locked.load() else { continue };
        let status = state::status(&locked.dir, &s);
        rows.push((s, status));
    }
    if a.quiet {
        for (s, _) in &rows {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match a.format.as_str() {
        "json" => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(s, st)| {
                    serde_json::json!({
                        "ociVersion": super::OCI_VERSION, "id": s.id,
                        "pid": if *st == "stopped" { 0 } else { s.pid },
                        "status": st, "bundle": s.bundle, "rootfs": s.rootfs,
                        "created": s.created, "annotations": s.annotations, "owner": "root"
                    })
                })
                .collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} CREATED",
                "ID", "PID", "STATUS", "BUNDLE"
            );
            for (s, st) in &rows {
                let pid = if *st == "stopped" { 0 } else { s.pid };
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {}",
                    s.id,
                    pid,
                    st,
                    s.bundle.display(),
                    s.created
                );
            }
        }
        other => return Err(err(format!("--format {other:?}: use table or json"))),
    }
    Ok(())
}

/// A size as runc's flags take it: bytes, or with a suffix k, m, g (powers of 1024); -1.
fn parse_size(flag: &str, s: &str) -> Res<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b');
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| err(format!("--{flag} {s:?}: a number of bytes, with k, m or g")))?;
    if n < 0 {
        return Ok(-1);
    }
    n.checked_mul(mul)
        .ok_or_else(|| err(format!("--{flag} {s:?}: too large")))
}

/// `update`: the LinuxResources of `--resources` and the flags, written into the running
/// container's cgroup (only what is given changes).
fn update(root: &Path, a: &super::UpdateArgs) -> Res<()> {
    let mut extra = super::cgroup::Extra::default();
    if let Some(src) = &a.resources {
        let text = if src == "-" {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)?;
            t
        } else {
            std::fs::read_to_string(src).map_err(|e| err(format!("{src}: {e}")))?
        };
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(format!("--resources {src}: {e}")))?;
        if v.get("devices")
            .is_some_and(|d| d.as_array().is_some_and(|a| !a.is_empty()))
        {
            return Err(err(
                "--resources: devices cannot be updated by kennel (set them at create)",
            ));
        }
        let mut without_devices = v.clone();
        if let Some(o) = without_devices.as_object_mut() {
            o.remove("devices");
        }
        super::config::check_keys(
            &serde_json::json!({ "linux": { "resources": without_devices } }),
        )
        .map_err(|e| err(format!("--resources: {e}")))?;
        let r: oci_spec::runtime::LinuxResources =
            serde_json::from_value(v).map_err(|e| err(format!("--resources {src}: {e}")))?;
        extra = super::cgroup::Extra::of(&r);
    }
    if let Some(m) = &a.memory {
        extra.memory_limit = Some(parse_size("memory", m)?);
    }
    if let Some(m) = &a.memory_swap {
        extra.memory_swap = Some(parse_size("memory-swap", m)?);
    }
    if let Some(m) = &a.memory_reservation {
        extra.memory_reservation = Some(parse_size("memory-reservation", m)?);
    }
    if let Some(p) = a.pids_limit {
        extra.pids_limit = Some(p);
    }
    let keep_quota = a.cpu_quota.is_none() && a.cpu_period.is_some() && extra.cpu_max.is_none();
    if a.cpu_quota.is_some() || a.cpu_period.is_some() {
        let (q, p) = extra.cpu_max.unwrap_or((-1, 100_000));
        extra.cpu_max = Some((a.cpu_quota.unwrap_or(q), a.cpu_period.unwrap_or(p)));
    }
    if let Some(s) = a.cpu_shares {
        extra.cpu_shares = Some(s);
    }
    if let Some(c) = &a.cpuset_cpus {
        extra.cpus = Some(c.clone());
    }
    if let Some(m) = &a.cpuset_mems {
        extra.mems = Some(m.clone());
    }
    let locked = Locked::open(root, &a.id)?;
    let s = locked.load()?;
    if state::status(&locked.dir, &s) == "stopped" {
        return Err(err(format!("container {} is not running", a.id)));
    }
    let unit = super::cgroup::existing(&s.cgroup_parent, &s.cgroup_name)
        .ok_or_else(|| err(format!("container {}: its cgroup is gone", a.id)))?;
    if keep_quota {
        // --cpu-period alone: the quota stays what it is.
        if let (Some(q), Some((_, p))) = (super::cgroup::current_quota(&unit), extra.cpu_max) {
            extra.cpu_max = Some((q, p));
        }
    }
    extra.apply(&unit)?;
    Ok(())
}

/// A duration as runc's `--interval` takes it: `5s`, `500ms`, `1m`, `1h`; a bare number is
/// seconds.
fn parse_interval(s: &str) -> Res<std::time::Duration> {
    let bad = || err(format!("--interval {s:?}: use e.g. 5s, 500ms or 1m"));
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `events`: runc's JSON event lines. `--stats`: one stats event. Else a stats event
/// every interval and an `oom` event when the cgroup's OOM-kill count rises, until the
/// container stops.
fn events(root: &Path, a: &super::EventsArgs) -> Res<()> {
    let interval = parse_interval(&a.interval)?;
    // The lock only while reading the state: events runs for long.
    let (dir, s) = {
        let locked = Locked::open(root, &a.id)?;
        let s = locked.load()?;
        (locked.dir.clone(), s)
    };
    let unit = super::cgroup::existing(&s.cgroup_parent, &s.cgroup_name)
        .ok_or_else(|| err(format!("container {}: its cgroup is gone", a.id)))?;
    if state::status(&dir, &s) == "stopped" {
        return Err(err(format!("container {} is not running", a.id)));
    }
    let stats_line = || {
        serde_json::json!({
            "type": "stats", "id": s.id, "data": super::cgroup::stats_data(&unit),
        })
    };
    let mut out = std::io::stdout();
    if a.stats {
        writeln!(out, "{}", serde_json::to_string(&stats_line())?)?;
        return Ok(());
    }
    let mut ooms = unit.oom_kills();
    // The OOM count is looked at more often than stats are printed (at most every 200 ms).
    let tick = interval.min(std::time::Duration::from_millis(200));
    let mut next_stats = std::time::Instant::now();
    loop {
        let now_ooms = unit.oom_kills();
        if now_ooms > ooms {
            writeln!(out, "{}", serde_json::json!({"type": "oom", "id": s.id}))?;
            out.flush()?;
        }
        ooms = now_ooms;
        if state::status(&dir, &s) == "stopped" || !dir.exists() {
            return Ok(());
        }
        if std::time::Instant::now() >= next_stats {
            writeln!(out, "{}", serde_json::to_string(&stats_line())?)?;
            out.flush()?;
            next_stats += interval;
        }
        std::thread::sleep(tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_keeps_the_header_and_the_containers_lines() {
        let text = "UID PID PPID C STIME TTY TIME CMD\n\
                    root 1 0 0 00:00 ? 00:00:01 /sbin/init\n\
                    root 42 1 0 00:00 ? 00:00:00 sleep 100\n\
                    root 420 1 0 00:00 ? 00:00:00 other 42\n";
        let out = ps_filter(text, &[42]).unwrap();
        assert_eq!(
            out,
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 00:00 ? 00:00:00 sleep 100\n"
        );
        assert!(
            ps_filter("USER COMMAND\nroot x\n", &[1]).is_err(),
            "no PID column"
        );
    }

    #[test]
    fn sizes_and_intervals_as_runc_takes_them() {
        assert_eq!(parse_size("memory", "128m").unwrap(), 128 << 20);
        assert_eq!(parse_size("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("memory", "4096").unwrap(), 4096);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        assert!(parse_size("memory", "lots").is_err());
        let ms = |s: &str| parse_interval(s).unwrap().as_millis();
        assert_eq!(ms("5s"), 5000);
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("1m"), 60_000);
        assert_eq!(ms("2"), 2000);
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("5x").is_err());
    }
}
