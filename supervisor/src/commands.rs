//! The client subcommands (status, start, stop, restart, reload, shutdown, logs) and
//! `check`: each one talks to the daemon or reads unit files, prints, and returns the exit
//! code documented in `docs/cli.md`.

use std::io::Write;
use std::path::{Path, PathBuf};

use kennel_core::{ExitStatus, HealthState, UnitStatus};

use crate::cli::{
    CheckArgs, ClientArgs, KillArgs, LogsArgs, NotifyArgs, ReloadArgs, StatusArgs, UnitsArgs,
};
use crate::control::client::{Client, ClientError};
use crate::control::protocol::{ReplyBody, RequestBody, StatusRow};

/// Success.
pub const EXIT_OK: i32 = 0;
/// The request failed: a unit failed, an unknown unit, invalid unit files.
pub const EXIT_FAILED: i32 = 1;
/// No daemon to talk to, or it could not be understood.
pub const EXIT_NO_DAEMON: i32 = 3;

fn call(client: &ClientArgs, body: RequestBody) -> Result<ReplyBody, i32> {
    let result = Client::connect(&client.socket).and_then(|mut c| c.call(body));
    result.map_err(client_failure)
}

fn client_failure(e: ClientError) -> i32 {
    eprintln!("kennel: {e}");
    match e {
        ClientError::Daemon(_) | ClientError::Denied { .. } => EXIT_FAILED,
        _ => EXIT_NO_DAEMON,
    }
}

fn code(r: Result<i32, i32>) -> i32 {
    r.unwrap_or_else(|c| c)
}

pub fn status(args: StatusArgs) -> i32 {
    code((|| {
        let one = match args.units.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        };
        if args.check {
            return net_check(&args);
        }
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        if args.json && args.units.len() <= 1 {
            // The rows as the daemon sends them, re-indented on the way: no parsing into
            // rows and back.
            let streamed = Client::connect(&args.client.socket)
                .and_then(|mut c| c.status_pretty(one, &mut out));
            return match streamed {
                Ok(()) => finish_output(out.write_all(b"\n").and_then(|()| out.flush())),
                Err(ClientError::Output(e)) => finish_output(Err(e)),
                Err(e) => Err(client_failure(e)),
            };
        }
        let all = Client::connect(&args.client.socket)
            .and_then(|mut c| c.status(one))
            .map_err(client_failure)?;
        let units: Vec<StatusRow> = if args.units.len() > 1 {
            let mut picked = Vec::new();
            for name in &args.units {
                match all.iter().find(|r| &r.status.name == name) {
                    Some(r) => picked.push(r.clone()),
                    None => {
                        eprintln!("kennel: unknown unit {name:?}");
                        return Err(EXIT_FAILED);
                    }
                }
            }
            picked
        } else {
            all
        };
        if args.ready {
            return readiness(&units);
        }
        let written = if args.json {
            serde_json::to_writer_pretty(&mut out, &units)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
        } else {
            out.write_all(table(&units).as_bytes())
        };
        finish_output(written.and_then(|()| out.flush()))
    })())
}

/// `status --check`: CNI's CHECK of the units on CNI networks, one line each.
fn net_check(args: &StatusArgs) -> Result<i32, i32> {
    let reply = Client::connect(&args.client.socket)
        .and_then(|mut c| {
            c.call(crate::control::protocol::RequestBody::NetCheck {
                units: args.units.clone(),
            })
        })
        .map_err(client_failure)?;
    let crate::control::protocol::ReplyBody::NetChecks { checks } = reply else {
        eprintln!("kennel: status --check: unexpected reply");
        return Err(EXIT_FAILED);
    };
    if checks.is_empty() {
        println!("no running unit on a CNI network");
        return Ok(EXIT_OK);
    }
    let mut failed = false;
    for c in &checks {
        match &c.error {
            None => println!("{}\t{}\tok", c.unit, c.network),
            Some(e) => {
                failed = true;
                println!("{}\t{}\tFAILED: {e}", c.unit, c.network);
            }
        }
    }
    if failed {
        Err(EXIT_FAILED)
    } else {
        Ok(EXIT_OK)
    }
}

/// `status --ready`: `ready`, or `not ready:` and one line per unit that is not, with its
/// state and detail.
fn readiness(units: &[StatusRow]) -> Result<i32, i32> {
    let not: Vec<&StatusRow> = units
        .iter()
        .filter(|r| !r.status.ready || r.status.health == Some(kennel_core::HealthState::Unhealthy))
        .collect();
    if not.is_empty() {
        println!("ready");
        return Ok(EXIT_OK);
    }
    println!("not ready:");
    for r in not {
        let state = format!("{:?}", r.status.state).to_lowercase();
        let health = match r.status.health {
            Some(kennel_core::HealthState::Unhealthy) => ", unhealthy",
            _ => "",
        };
        let sep = if r.status.detail.is_empty() { "" } else { ": " };
        println!(
            "  {} ({state}{health}{sep}{})",
            r.status.name, r.status.detail
        );
    }
    Err(EXIT_FAILED)
}

/// The exit code once the status is written (or not).
fn finish_output(written: std::io::Result<()>) -> Result<i32, i32> {
    match written {
        Ok(()) => Ok(EXIT_OK),
        // The reader went away (`kennel status | head`): not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
        Err(e) => {
            eprintln!("kennel: writing the status: {e}");
            Err(EXIT_FAILED)
        }
    }
}

/// The status table.
pub fn table(rows: &[StatusRow]) -> String {
    let header = [
        "NAME",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "LAST EXIT",
        "READY",
        "HEALTH",
        "MEM",
        "CPU",
        "TASKS",
        "NETWORK",
        "DETAIL",
    ];
    let rows: Vec<[String; 13]> = rows
        .iter()
        .map(|row| {
            let u: &UnitStatus = &row.status;
            let r = row.resources.clone().unwrap_or_default();
            [
                u.name.clone(),
                format!("{:?}", u.state).to_lowercase(),
                u.pid.map_or("-".into(), |p| p.to_string()),
                u.uptime.map_or("-".into(), kennel_units::format_duration),
                u.restarts.to_string(),
                u.last_exit.map_or("-".into(), exit_text),
                if u.ready { "yes".into() } else { "no".into() },
                match u.health {
                    None => "-".into(),
                    Some(HealthState::Unknown) => "unknown".into(),
                    Some(HealthState::Healthy) => "healthy".into(),
                    Some(HealthState::Failing) => "failing".into(),
                    Some(HealthState::Unhealthy) => "unhealthy".into(),
                },
                match (r.memory_current, r.memory_peak) {
                    (Some(c), Some(p)) => format!("{} (peak {})", bytes(c), bytes(p)),
                    (Some(c), None) => bytes(c),
                    _ => "-".into(),
                },
                r.cpu_usage_ns
                    .map_or("-".into(), |ns| format!("{:.2}s", ns as f64 / 1e9)),
                r.tasks.map_or("-".into(), |t| t.to_string()),
                match &row.network {
                    None => "-".into(),
                    Some(n) => {
                        let mut cells = vec![n.name.clone()];
                        cells.extend(n.addresses.iter().cloned());
                        cells.extend(n.ports.iter().cloned());
                        cells.join(" ")
                    }
                },
                match row.execs.as_slice() {
                    [] => u.detail.clone(),
                    execs => {
                        let pids: Vec<String> = execs.iter().map(|p| p.to_string()).collect();
                        let sep = if u.detail.is_empty() { "" } else { "; " };
                        format!("{}{sep}exec: {}", u.detail, pids.join(" "))
                    }
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// `512K`, `3.4M`, `1.2G`.
fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if f < K * K {
        format!("{:.0}K", f / K)
    } else if f < K * K * K {
        format!("{:.1}M", f / (K * K))
    } else {
        format!("{:.1}G", f / (K * K * K))
    }
}

/// `code 3` or `SIGKILL`.
pub fn exit_text(e: ExitStatus) -> String {
    match e {
        ExitStatus::Code(c) => format!("code {c}"),
        ExitStatus::Signal(s) => kennel_units::signal_name(s),
    }
}

/// Send a start, stop or restart; once done (with `wait`) say which units it `verb`ed, and
/// which it found `already` there (the daemon's `already`, e.g. `already up: site`).
fn units_command(
    args: UnitsArgs,
    make: fn(Vec<String>, bool) -> RequestBody,
    verb: &str,
    already: &str,
) -> i32 {
    let wait = !args.no_wait;
    code(
        call(&args.client, make(args.units.clone(), wait)).map(|body| {
            let there = match body {
                ReplyBody::Done { already } => already,
                _ => Vec::new(),
            };
            let done: Vec<&str> = args
                .units
                .iter()
                .map(String::as_str)
                .filter(|u| !there.iter().any(|t| t == u))
                .collect();
            if wait && !done.is_empty() {
                eprintln!("kennel: {verb}: {}", done.join(" "));
            }
            if !there.is_empty() {
                eprintln!("kennel: {already}: {}", there.join(" "));
            }
            EXIT_OK
        }),
    )
}

pub fn start(args: UnitsArgs) -> i32 {
    units_command(
        args,
        |units, wait| RequestBody::Start { units, wait },
        "started",
        "already up",
    )
}

pub fn stop(args: UnitsArgs) -> i32 {
    units_command(
        args,
        |units, wait| RequestBody::Stop { units, wait },
        "stopped",
        "already stopped",
    )
}

pub fn restart(args: UnitsArgs) -> i32 {
    units_command(
        args,
        |units, wait| RequestBody::Restart { units, wait },
        "restarted",
        "already restarted",
    )
}

pub fn reload(args: ReloadArgs) -> i32 {
    if !args.units.is_empty() {
        let body = RequestBody::ReloadUnits {
            units: args.units,
            wait: !args.no_wait,
        };
        return code(call(&args.client, body).map(|_| EXIT_OK));
    }
    code(
        call(
            &args.client,
            RequestBody::Reload {
                wait: !args.no_wait,
            },
        )
        .map(|body| {
            if let ReplyBody::Reloaded {
                added,
                removed,
                changed,
            } = body
            {
                let list = |v: &[String]| {
                    if v.is_empty() {
                        "-".to_string()
                    } else {
                        v.join(" ")
                    }
                };
                println!("added: {}", list(&added));
                println!("removed: {}", list(&removed));
                println!("changed: {}", list(&changed));
            }
            EXIT_OK
        }),
    )
}

pub fn kill(args: KillArgs) -> i32 {
    let signal = match kennel_units::parse_signal(&args.signal) {
        Ok(s) => s.number,
        Err(e) => {
            eprintln!("kennel: -s {}: {e}", args.signal);
            return EXIT_FAILED;
        }
    };
    let body = RequestBody::Kill {
        unit: args.unit,
        signal,
        main: args.main,
    };
    code(call(&args.client, body).map(|_| EXIT_OK))
}

pub fn shutdown(args: ClientArgs) -> i32 {
    code(call(&args, RequestBody::Shutdown).map(|_| EXIT_OK))
}

/// Where `kennel logs` reads when no daemon answers and `--log-dir` is not given.
const DEFAULT_LOG_DIR: &str = "/var/log/kennel";

pub fn logs(args: LogsArgs) -> i32 {
    code((|| {
        let path = log_path(&args)?;
        let n = args.lines.unwrap_or(usize::MAX);
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let result = if args.follow {
            kennel_logs::follow(&path, n, &mut out, || false)
        } else {
            kennel_logs::read_last_lines(&path, n).and_then(|lines| {
                for l in lines {
                    out.write_all(&l)?;
                    out.write_all(b"\n")?;
                }
                out.flush()
            })
        };
        match result {
            Ok(()) => Ok(EXIT_OK),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EXIT_OK),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
            Err(e) => {
                eprintln!("kennel: reading {}: {e}", path.display());
                Err(EXIT_FAILED)
            }
        }
    })())
}

/// The log of `args.unit`: where the daemon says, or, when no daemon answers, in
/// `--log-dir` (a unit with no log there is an error then: there is no unit set to tell a
/// unit that has not logged yet from a typo).
fn log_path(args: &LogsArgs) -> Result<PathBuf, i32> {
    let unit = args.unit.clone();
    let asked = Client::connect(&args.client.socket)
        .and_then(|mut c| c.call(RequestBody::LogPath { unit: unit.clone() }));
    match asked {
        Ok(ReplyBody::LogPath { path }) => {
            let path = PathBuf::from(path);
            let theirs = path.parent().unwrap_or(Path::new("/"));
            if let Some(mine) = &args.log_dir {
                if !same_dir(mine, theirs) {
                    eprintln!(
                        "kennel: the daemon on {} writes its logs in {}, not in --log-dir {}; \
                         drop --log-dir, or point --socket at the kennel that logs there",
                        args.client.socket.display(),
                        theirs.display(),
                        mine.display()
                    );
                    return Err(EXIT_FAILED);
                }
            }
            Ok(path)
        }
        Ok(_) => {
            eprintln!("kennel: unexpected reply to logs");
            Err(EXIT_NO_DAEMON)
        }
        Err(ClientError::NoDaemon { path: socket, .. }) => {
            if let Err(e) = kennel_units::check_unit_name(&unit) {
                eprintln!("kennel: {e}");
                return Err(EXIT_FAILED);
            }
            let dir = args
                .log_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_DIR));
            let path = kennel_logs::log_path(&dir, &unit);
            let rotated = dir.join(format!("{unit}.log.1"));
            if !path.exists() && !rotated.exists() {
                eprintln!(
                    "kennel: no kennel daemon is listening on {}, and {} has no log of {unit:?} \
                     (--log-dir)",
                    socket.display(),
                    dir.display()
                );
                return Err(EXIT_FAILED);
            }
            eprintln!(
                "kennel: no kennel daemon is listening on {}; reading {}",
                socket.display(),
                path.display()
            );
            Ok(path)
        }
        Err(e) => Err(client_failure(e)),
    }
}

/// Whether two paths name the same directory.
pub fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

pub fn check(args: CheckArgs) -> i32 {
    // A broken network file is reported, and units are then checked against the networks
    // that are valid (the built-in one at least).
    let (networks, mut all) = kennel_units::Networks::load_partial(&args.networks);
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let checked = kennel_units::check_paths_with(&args.paths, &networks).inspect(|checked| {
        for r in &checked.cni_networks {
            if let Some(d) = cni_problem(&args.cni_conf_dir, r) {
                all.push(d);
            }
        }
    });
    match checked {
        Ok(checked) if all.is_empty() && (checked.warnings.is_empty() || !args.strict) => {
            for w in &checked.warnings {
                println!("{w}");
            }
            let n = checked.units;
            let w = checked.warnings.len();
            if w == 0 {
                println!("{n} unit{} OK", plural(n));
            } else {
                println!("{n} unit{} OK, {w} warning{}", plural(n), plural(w));
            }
            EXIT_OK
        }
        Ok(checked) => {
            all.extend(checked.warnings);
            report_problems(&all, args.strict)
        }
        Err(diags) => {
            all.extend(diags);
            report_problems(&all, args.strict)
        }
    }
}

/// `network = "cni:NAME"` without a valid configuration of NAME in `conf_dir`.
fn cni_problem(conf_dir: &Path, r: &kennel_units::CniRef) -> Option<kennel_units::Diagnostic> {
    let paths = crate::net::cni::CniPaths::new(conf_dir.to_path_buf(), Vec::new(), PathBuf::new());
    let e = crate::net::cni::load(&paths, &r.network).err()?;
    let fix = match e {
        crate::net::cni::CniError::NotFound { .. } => format!(
            "; add {}.conflist there, or give its directory with --cni-conf-dir",
            r.network
        ),
        _ => "; fix that file".to_string(),
    };
    Some(kennel_units::Diagnostic::new(
        &r.file,
        r.line,
        r.col,
        format!("container.network: CNI network {:?}: {e}{fix}", r.network),
    ))
}

/// Prints every problem (warnings as errors with `strict`) and a count; EXIT_FAILED.
fn report_problems(diags: &[kennel_units::Diagnostic], strict: bool) -> i32 {
    let mut errors = 0;
    for d in diags {
        if d.warning && strict {
            let mut e = d.clone();
            e.warning = false;
            e.message = format!("{} (an error with --strict)", e.message);
            println!("{e}");
            errors += 1;
        } else {
            println!("{d}");
            errors += usize::from(!d.warning);
        }
    }
    let warnings = diags.len() - errors;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if warnings > 0 {
        eprintln!(
            "{errors} problem{}, {warnings} warning{}",
            plural(errors),
            plural(warnings)
        );
    } else {
        eprintln!("{errors} problem{}", plural(errors));
    }
    EXIT_FAILED
}

/// `kennel notify`: what `systemd-notify` does, for services under kennel (or systemd).
pub fn notify(args: NotifyArgs) -> i32 {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        eprintln!(
            "kennel notify: NOTIFY_SOCKET is not set (is this unit's [ready] notify = true?)"
        );
        return EXIT_FAILED;
    };
    let mut lines: Vec<String> = Vec::new();
    if args.ready {
        lines.push("READY=1".into());
    }
    if let Some(s) = args.status {
        lines.push(format!("STATUS={s}"));
    }
    lines.extend(args.assignments);
    if lines.is_empty() {
        eprintln!("kennel notify: nothing to send; try --ready");
        return EXIT_FAILED;
    }
    let msg = lines.join("\n") + "\n";
    let sent = std::os::unix::net::UnixDatagram::unbound()
        .and_then(|s| s.send_to(msg.as_bytes(), std::path::Path::new(&path)));
    match sent {
        Ok(_) => EXIT_OK,
        Err(e) => {
            eprintln!("kennel notify: send to {}: {e}", path.to_string_lossy());
            EXIT_FAILED
        }
    }
}

/// `kennel poweroff|reboot|halt`: ask the daemon; when none answers (emergency mode) and
/// PID 1 is this same kennel, signal it as systemd's tools do.
pub fn power(args: ClientArgs, action: crate::control::protocol::PowerAction) -> i32 {
    use crate::control::protocol::PowerAction;
    match Client::connect(&args.socket).and_then(|mut c| c.call(RequestBody::Power { action })) {
        Ok(_) => EXIT_OK,
        Err(ClientError::NoDaemon { .. }) if pid1_is_kennel() => {
            let rt = libc::SIGRTMIN();
            let sig = match action {
                PowerAction::Poweroff => rt + 4,
                PowerAction::Reboot => rt + 5,
                PowerAction::Halt => rt + 3,
            };
            // SAFETY: kill(2) to PID 1, which is kennel (checked above).
            if unsafe { libc::kill(1, sig) } == 0 {
                EXIT_OK
            } else {
                eprintln!("kennel: signal PID 1: {}", std::io::Error::last_os_error());
                EXIT_FAILED
            }
        }
        Err(e) => {
            eprintln!("kennel: {e}");
            match e {
                ClientError::Daemon(_) | ClientError::Denied { .. } => EXIT_FAILED,
                _ => EXIT_NO_DAEMON,
            }
        }
    }
}

fn pid1_is_kennel() -> bool {
    match (
        std::fs::read_link("/proc/1/exe"),
        std::fs::read_link("/proc/self/exe"),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
