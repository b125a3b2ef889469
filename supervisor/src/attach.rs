//! The client side of `kennel exec`: ask the daemon, receive the process's stdio over the
//! socket, and shuttle bytes between it and this terminal (raw mode with `-t`, restored on
//! every way out) until the process ends. The bytes never pass through the daemon.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};

use crate::cli::ExecArgs;
use crate::control::protocol::{
    ExecRequest, Reply, ReplyBody, Request, RequestBody, PROTOCOL_VERSION,
};

/// kennel's own failures, as Docker numbers them.
pub const EXIT_CANNOT_RUN: i32 = 125;

/// Why `kennel exec` could not run the command or relay its stdio.
#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error("-e {0:?}: expected KEY=VALUE")]
    EnvSyntax(String),
    #[error("cannot reach kennel on {} ({source}); start one with `kennel up`", socket.display())]
    Connect {
        socket: std::path::PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Encode(serde_json::Error),
    #[error("send request: {0}")]
    Send(io::Error),
    #[error("read reply: {0}")]
    Read(io::Error),
    /// The daemon's refusal, as it worded it.
    #[error("{0}")]
    Refused(String),
    #[error("kennel sent {got} descriptors, expected {expected}")]
    Descriptors { got: usize, expected: usize },
    #[error("unexpected reply {0:?}")]
    UnexpectedReply(Box<ReplyBody>),
    /// Setting up the relay: the signal pipe, the descriptors.
    #[error("{0}")]
    Setup(io::Error),
    #[error("no pty")]
    NoPty,
    #[error("poll: {0}")]
    Poll(nix::errno::Errno),
}

pub fn exec(args: ExecArgs) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("kennel exec: {msg}");
            EXIT_CANNOT_RUN
        }
    }
}

fn run(args: ExecArgs) -> Result<i32, ExecError> {
    let (rows, cols) = window_size(0).unwrap_or((24, 80));
    let mut env = Vec::new();
    for e in &args.env {
        let (k, v) = e
            .split_once('=')
            .ok_or_else(|| ExecError::EnvSyntax(e.clone()))?;
        env.push((k.to_string(), v.to_string()));
    }
    let req = ExecRequest {
        unit: args.unit.clone(),
        argv: args.command.clone(),
        tty: args.tty,
        interactive: args.interactive,
        user: args.user.clone(),
        env,
        workdir: args.workdir.clone(),
        rows,
        cols,
    };
    let sock = UnixStream::connect(&args.client.socket).map_err(|source| ExecError::Connect {
        socket: args.client.socket.clone(),
        source,
    })?;
    let mut line = serde_json::to_vec(&Request {
        version: PROTOCOL_VERSION,
        body: RequestBody::Exec(req),
    })
    .map_err(ExecError::Encode)?;
    line.push(b'\n');
    (&sock).write_all(&line).map_err(ExecError::Send)?;
    let mut conn = Conn {
        sock,
        buf: Vec::new(),
    };
    let (reply, fds) = conn.recv_line(true).map_err(ExecError::Read)?;
    let what = format!("{} in unit {}", args.command.join(" "), args.unit);
    match reply {
        Reply::Error(e) => Err(ExecError::Refused(e.message)),
        Reply::Ok(ReplyBody::ExecExited { code, error }) => {
            if let Some(e) = error {
                eprintln!("kennel exec: {what}: {e}");
            }
            Ok(code)
        }
        Reply::Ok(ReplyBody::ExecStarted { .. }) => {
            let expected = if args.tty {
                1
            } else {
                2 + usize::from(args.interactive)
            };
            if fds.len() != expected {
                return Err(ExecError::Descriptors {
                    got: fds.len(),
                    expected,
                });
            }
            let (code, error) = relay(&mut conn, fds, &args)?;
            if let Some(e) = error {
                eprintln!("kennel exec: {what}: {e}");
            }
            Ok(code)
        }
        Reply::Ok(other) => Err(ExecError::UnexpectedReply(Box::new(other))),
    }
}

/// The socket with what was read past the last line.
struct Conn {
    sock: UnixStream,
    buf: Vec<u8>,
}

impl Conn {
    /// One reply line, and the descriptors that came with it.
    fn recv_line(&mut self, want_fds: bool) -> io::Result<(Reply, Vec<OwnedFd>)> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let mut fds = Vec::new();
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let reply = serde_json::from_slice(&line).map_err(io::Error::other)?;
                return Ok((reply, fds));
            }
            let mut chunk = [0u8; 4096];
            let mut space = nix::cmsg_space!([RawFd; 4]);
            let (n, got) = {
                let mut iov = [io::IoSliceMut::new(&mut chunk)];
                let cmsg = if want_fds { Some(&mut space) } else { None };
                let msg = recvmsg::<()>(
                    self.sock.as_raw_fd(),
                    &mut iov,
                    cmsg,
                    MsgFlags::MSG_CMSG_CLOEXEC,
                )
                .map_err(io::Error::from)?;
                let mut got = Vec::new();
                for c in msg.cmsgs().map_err(io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: the kernel just installed these descriptors for us.
                        got.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                (msg.bytes, got)
            };
            fds.extend(got);
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "kennel closed the connection",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Restores the terminal when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes into the local winsize.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

fn set_window_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the local winsize.
    unsafe {
        libc::ioctl(fd, libc::TIOCSWINSZ, &ws);
    }
}

/// Shuttle bytes until the process has ended and its output is drained; returns its exit
/// code and kennel's error, if any.
fn relay(
    conn: &mut Conn,
    fds: Vec<OwnedFd>,
    args: &ExecArgs,
) -> Result<(i32, Option<String>), ExecError> {
    let tty = args.tty;
    let stdin_is_tty = nix::unistd::isatty(0).unwrap_or(false);
    let _raw = if tty && stdin_is_tty {
        RawMode::enter()
    } else {
        None
    };
    // Signals that would end this client: handled, so the terminal is restored.
    let (sig_r, sig_w) = UnixStream::pair().map_err(ExecError::Setup)?;
    sig_r.set_nonblocking(true).map_err(ExecError::Setup)?;
    // With a terminal in raw mode, Ctrl-C is a byte for the process, not a signal for us;
    // these come from elsewhere (kill, a closed terminal) and end this client.
    let mut terminating = Vec::new();
    for sig in [
        libc::SIGWINCH,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
    ] {
        if !tty && sig != libc::SIGTERM && sig != libc::SIGHUP {
            continue;
        }
        signal_hook::low_level::pipe::register_raw(sig, sig_w.as_raw_fd())
            .map_err(ExecError::Setup)?;
        if sig != libc::SIGWINCH {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(sig, flag.clone()).map_err(ExecError::Setup)?;
            terminating.push((sig, flag));
        }
    }

    let mut fds = fds.into_iter();
    let (mut input, output, errput) = if tty {
        let master = fds.next().ok_or(ExecError::NoPty)?;
        let dup = master.try_clone().map_err(ExecError::Setup)?;
        (Some(dup), Some(master), None)
    } else {
        let input = if args.interactive { fds.next() } else { None };
        (input, fds.next(), fds.next())
    };
    if let Some(fd) = &input {
        // Never block on the process's stdin: a process that is not reading while its own
        // output fills up would otherwise deadlock with us.
        set_nonblocking(fd.as_raw_fd()).map_err(ExecError::Setup)?;
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut stdin_eof = false;
    let mut out_open = output.is_some();
    let mut err_open = errput.is_some();
    let mut stdin_open = input.is_some();
    let mut exit: Option<(i32, Option<String>)> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let stdin = io::stdin();
    loop {
        if let Some(done) = &exit {
            if !out_open && !err_open {
                return Ok(done.clone());
            }
        }
        let mut polls = Vec::new();
        let mut which = Vec::new();
        // SAFETY: fd 0 stays open for the life of this function.
        let stdin_fd = unsafe { BorrowedFd::borrow_raw(0) };
        if stdin_open && pending.is_empty() && !stdin_eof {
            polls.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
            which.push('i');
        }
        if !pending.is_empty() {
            if let Some(fd) = &input {
                polls.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                which.push('w');
            }
        }
        if out_open {
            if let Some(o) = &output {
                polls.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
                which.push('o');
            }
        }
        if err_open {
            if let Some(e) = &errput {
                polls.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
                which.push('e');
            }
        }
        if exit.is_none() {
            polls.push(PollFd::new(conn.sock.as_fd(), PollFlags::POLLIN));
            which.push('s');
        }
        polls.push(PollFd::new(sig_r.as_fd(), PollFlags::POLLIN));
        which.push('g');
        // Once the process has ended, drain what is left, but never hang on a descriptor
        // that a leftover background process keeps open.
        let timeout = if exit.is_some() {
            PollTimeout::from(200u16)
        } else {
            PollTimeout::NONE
        };
        let n = match poll(&mut polls, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ExecError::Poll(e)),
        };
        if n == 0 {
            if let Some(done) = exit {
                return Ok(done);
            }
            continue;
        }
        let ready: Vec<(char, bool)> = polls
            .iter()
            .zip(&which)
            .map(|(p, w)| (*w, p.revents().is_some_and(|r| !r.is_empty())))
            .collect();
        drop(polls);
        for (w, is_ready) in ready {
            if !is_ready {
                continue;
            }
            match w {
                'i' => {
                    let n = stdin.lock().read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        stdin_eof = true;
                        stdin_open = false;
                        if !tty {
                            input = None; // EOF reaches the process
                        }
                    } else {
                        pending.extend_from_slice(&buf[..n]);
                    }
                }
                'w' => {
                    let Some(fd) = &input else { continue };
                    match write_some(fd.as_raw_fd(), &pending) {
                        Ok(n) => {
                            pending.drain(..n);
                        }
                        Err(_) => {
                            // The process closed its stdin: stop feeding it.
                            pending.clear();
                            stdin_open = false;
                            input = None;
                        }
                    }
                }
                'o' | 'e' => {
                    let fd = if w == 'o' {
                        output.as_ref()
                    } else {
                        errput.as_ref()
                    };
                    let Some(fd) = fd else { continue };
                    let Some(n) = read_fd(fd.as_raw_fd(), &mut buf) else {
                        continue;
                    };
                    if n == 0 {
                        if w == 'o' {
                            out_open = false
                        } else {
                            err_open = false
                        }
                        continue;
                    }
                    let res = if w == 'o' {
                        let mut o = io::stdout().lock();
                        o.write_all(&buf[..n]).and_then(|()| o.flush())
                    } else {
                        let mut e = io::stderr().lock();
                        e.write_all(&buf[..n]).and_then(|()| e.flush())
                    };
                    if res.is_err() {
                        if w == 'o' {
                            out_open = false
                        } else {
                            err_open = false
                        }
                    }
                }
                's' => {
                    let (reply, _) = conn.recv_line(false).map_err(ExecError::Read)?;
                    exit = Some(match reply {
                        Reply::Ok(ReplyBody::ExecExited { code, error }) => (code, error),
                        Reply::Error(e) => (EXIT_CANNOT_RUN, Some(e.message)),
                        Reply::Ok(other) => {
                            (EXIT_CANNOT_RUN, Some(format!("unexpected reply {other:?}")))
                        }
                    });
                    if tty {
                        // The pty master reports EIO once the session is gone; nothing
                        // else will come.
                        stdin_open = false;
                    }
                }
                'g' => {
                    let mut sigs = [0u8; 64];
                    let _ = (&sig_r).read(&mut sigs);
                    if let Some((rows, cols)) = window_size(0) {
                        if let Some(o) = &output {
                            if tty {
                                set_window_size(o.as_raw_fd(), rows, cols);
                            }
                        }
                    }
                    if let Some((sig, _)) =
                        terminating.iter().find(|(_, f)| f.load(Ordering::Relaxed))
                    {
                        // Leaving closes the connection: kennel sends the session SIGHUP.
                        return Ok((128 + sig, None));
                    }
                }
                _ => {}
            }
        }
    }
}

/// `Some(0)` at the end (EOF, or EIO from a pty master whose other side is gone),
/// `None` when nothing is there right now.
fn read_fd(fd: RawFd, buf: &mut [u8]) -> Option<usize> {
    loop {
        // SAFETY: read into a live buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Some(n as usize);
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return None,
            _ => return Some(0),
        }
    }
}

/// Write what the descriptor takes now; `Ok(0)` when it is full.
fn write_some(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: write from a live buffer of the given length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(e),
        }
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map_err(io::Error::from)?;
    Ok(())
}
