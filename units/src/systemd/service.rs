//! A `.service` file (its assignments, drop-ins included, in order) mapped onto kennel's
//! unit model. Every directive is honoured (mapped onto a kennel key), approximated
//! (mapped, with a warning saying how), not honoured (a warning saying why), or refused
//! (an error: the unit would not do what it says). docs/systemd.md lists them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::directives::{not_yet_reason, resource, unit_type, NO_OPS, RESOURCE_KEYS};
use super::exec::{self, Exec};
use super::spec::{self, Names};
use super::syntax::{parse_bool, parse_timespan, split_words, Entry};
use crate::diag::Diagnostic;
use crate::model::{
    Directory, DirectoryKind, ExecCommand, KillMode, PathCondition, Ready, ReadyProbe,
    RestartPolicy, ServiceType, Unit, INFINITY,
};
use crate::parse::DepRef;
use crate::signal::parse_signal;

/// systemd's default `TimeoutStartSec=`/`TimeoutStopSec=` (DefaultTimeoutStartSec).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);
/// systemd's default `RestartSec=`.
const DEFAULT_RESTART_SEC: Duration = Duration::from_millis(100);

/// What the mapping made of one service.
#[derive(Debug)]
pub(crate) struct Mapped {
    /// The unit, when there is no error (warnings allowed).
    pub(crate) unit: Option<Unit>,
    /// Errors and warnings.
    pub(crate) diags: Vec<Diagnostic>,
    /// `Requires=`/`BindsTo=` on services: hard dependencies (an unknown one is an error).
    pub(crate) requires: Vec<DepRef>,
    /// `After=` on services: ordering, kept only if the service is in the set.
    pub(crate) after: Vec<DepRef>,
    /// `Before=` on services: the other unit is ordered after this one, if in the set.
    pub(crate) before: Vec<DepRef>,
}

pub(super) struct Cx<'a> {
    names: &'a Names,
    diags: Vec<Diagnostic>,
}

impl Cx<'_> {
    pub(super) fn warn(&mut self, e: &Entry, message: impl Into<String>) {
        self.diags.push(e.warning(message));
    }
    pub(super) fn err(&mut self, e: &Entry, message: impl Into<String>) {
        self.diags.push(e.error(message));
    }
    pub(super) fn approx(&mut self, e: &Entry, how: impl std::fmt::Display) {
        self.warn(e, format!("{}={}: approximated: {how}", e.key, e.value));
    }
    pub(super) fn note(&mut self, e: &Entry, how: impl std::fmt::Display) {
        self.warn(e, format!("{}={}: {how}", e.key, e.value));
    }
    pub(super) fn not_honoured(&mut self, e: &Entry, why: impl std::fmt::Display) {
        self.warn(e, format!("{}= is not honoured: {why}", e.key));
    }
    /// The value with its specifiers expanded (an error, and `None`, if one is refused).
    pub(super) fn value(&mut self, e: &Entry) -> Option<String> {
        match spec::expand(&e.value, self.names) {
            Ok(v) => Some(v),
            Err(m) => {
                self.err(e, format!("{}=: {m}", e.key));
                None
            }
        }
    }
}

/// Maps the assignments of the unit `name` (kennel's name: `getty@tty1`) read from `path`.
/// `exists` tells whether a file exists (for `EnvironmentFile=-FILE`): the loader's
/// `Path::exists`, a fake in tests.
pub(crate) fn map(
    name: &str,
    path: &std::path::Path,
    entries: &[Entry],
    names: &Names,
    exists: &dyn Fn(&std::path::Path) -> bool,
) -> Mapped {
    let mut cx = Cx {
        names,
        diags: Vec::new(),
    };
    let mut unit = Unit::new(name, Vec::new());
    unit.path = path.to_path_buf();
    // systemd's defaults, where they differ from kennel's.
    unit.restart.policy = RestartPolicy::No;
    unit.restart.delay = DEFAULT_RESTART_SEC;
    unit.restart.max_delay = DEFAULT_RESTART_SEC;
    unit.service.stop_timeout = DEFAULT_TIMEOUT;
    let mut kind: Option<(&Entry, &str)> = None;
    let mut exec_start: Vec<(&Entry, Exec)> = Vec::new();
    // An ExecStart= line was refused (so "no ExecStart=" would only repeat it).
    let mut exec_start_refused = false;
    // ExecStartPre=, ExecStartPost=, ExecReload=, ExecStop=, ExecStopPost=, in order.
    let mut around: Vec<(&Entry, Exec)> = Vec::new();
    let mut environment: BTreeMap<String, String> = BTreeMap::new();
    let mut env_files: Vec<(&Entry, String)> = Vec::new();
    let mut start_timeout: Option<(&Entry, Option<Duration>)> = None;
    let mut pid_file: Option<(&Entry, PathBuf)> = None;
    let mut remain: Option<(&Entry, bool)> = None;
    let mut dirs: Vec<(DirectoryKind, String)> = Vec::new();
    let mut modes: Vec<(DirectoryKind, u32)> = Vec::new();
    let mut user: Option<String> = None;
    let mut group: Option<(&Entry, String)> = None;
    let mut requires = Vec::new();
    let mut after = Vec::new();
    let mut before = Vec::new();
    let mut has_install = false;
    let mut sections_warned: Vec<String> = Vec::new();

    for e in entries {
        let key = e.key.as_str();
        if key.starts_with("X-") || e.section.starts_with("X-") {
            continue; // systemd ignores them too
        }
        match (e.section.as_str(), key) {
            ("Unit" | "Service" | "Install", _) => {}
            (s, _) => {
                if !sections_warned.iter().any(|w| w == s) {
                    sections_warned.push(s.to_string());
                    cx.warn(e, format!("section [{s}] is not read (a .service file has [Unit], [Service], [Install])"));
                }
                continue;
            }
        }
        if e.section == "Install" {
            has_install = true;
        }
        if NO_OPS.contains(&(e.section.as_str(), key)) {
            continue;
        }
        match (e.section.as_str(), key) {
            ("Unit", "Description") => {
                let v = cx.value(e);
                unit.description = v.filter(|v| !v.is_empty());
            }
            ("Unit", "After" | "Before" | "Requires" | "BindsTo" | "Wants") => {
                if e.value.is_empty() {
                    let list = match key {
                        "After" => &mut after,
                        "Before" => &mut before,
                        "Wants" => continue,
                        _ => &mut requires,
                    };
                    list.clear();
                    continue;
                }
                let Some(v) = cx.value(e) else { continue };
                for dep in v.split_whitespace() {
                    let Some(service) = dep.strip_suffix(".service") else {
                        let why = if dep.ends_with(".socket") {
                            "a .socket file's sockets are its service's, bound before it starts".to_string()
                        } else {
                            format!("kennel has no {} units", unit_type(dep))
                        };
                        cx.warn(e, format!("{key}={dep}: {why}; read as a no-op"));
                        continue;
                    };
                    let r = DepRef {
                        field: match key {
                            "After" => "After",
                            "Before" => "Before",
                            "BindsTo" => "BindsTo",
                            _ => "Requires",
                        },
                        name: service.to_string(),
                        file: Some(e.file.clone()),
                        line: e.line,
                        col: e.col,
                    };
                    match key {
                        "After" => after.push(r),
                        "Before" => before.push(r),
                        "Wants" => cx.note(
                            e,
                            format!("approximated: every unit of the directory starts at kennel up, so {service} starts anyway; kennel start of this unit alone does not start it"),
                        ),
                        "BindsTo" => {
                            cx.approx(e, format!("as Requires= (this unit stops when {service} is stopped, not when it merely exits)"));
                            requires.push(r);
                        }
                        _ => requires.push(r),
                    }
                }
            }
            ("Unit", "DefaultDependencies") => {
                if parse_bool(&e.value) == Some(true) {
                    cx.note(e, "kennel adds no implicit dependencies (sysinit.target, shutdown.target ...); read as a no-op");
                }
            }
            ("Unit", "StartLimitBurst") | ("Service", "StartLimitBurst") => match e.value.parse::<u32>() {
                Ok(n) if n >= 1 => unit.restart.burst = n,
                Ok(_) => cx.not_honoured(e, "0 (no start limit) is not supported; kennel's default burst 5 applies"),
                Err(_) => cx.err(e, format!("StartLimitBurst=: expected a positive integer, found {:?}", e.value)),
            },
            ("Unit", "StartLimitIntervalSec") | ("Service", "StartLimitInterval") => {
                match parse_timespan(&e.value) {
                    Ok(Some(d)) if !d.is_zero() => unit.restart.interval = d,
                    Ok(_) => cx.not_honoured(e, "no start limit (0 or infinity) is not supported; kennel's default window 10s applies"),
                    Err(m) => cx.err(e, format!("{key}=: {m}")),
                }
            }
            ("Service", "Type") => kind = Some((e, e.value.as_str())),
            ("Service", "ExecStart") => {
                if e.value.is_empty() {
                    exec_start.clear();
                    continue;
                }
                match exec::parse(&e.value, names) {
                    Ok(x) => exec_start.push((e, x)),
                    Err(m) => {
                        exec_start_refused = true;
                        cx.err(e, format!("ExecStart=: {m}"));
                    }
                }
            }
            ("Service", "ExecStartPre" | "ExecStartPost" | "ExecReload" | "ExecStop" | "ExecStopPost") => {
                if e.value.is_empty() {
                    around.retain(|(a, _)| a.key != key);
                    continue;
                }
                match exec::parse(&e.value, names) {
                    Ok(x) => around.push((e, x)),
                    Err(m) => cx.err(e, format!("{key}=: {m}")),
                }
            }
            ("Service", "Environment") => {
                if e.value.is_empty() {
                    environment.clear();
                    continue;
                }
                let Some(v) = cx.value(e) else { continue };
                match split_words(&v) {
                    Ok(words) => {
                        for w in words {
                            match w.split_once('=') {
                                Some((k, val)) if !k.is_empty() => {
                                    environment.insert(k.to_string(), val.to_string());
                                }
                                _ => cx.err(e, format!("Environment=: {w:?} is not NAME=VALUE")),
                            }
                        }
                    }
                    Err(m) => cx.err(e, format!("Environment=: {m}")),
                }
            }
            ("Service", "EnvironmentFile") => {
                if e.value.is_empty() {
                    env_files.clear();
                    continue;
                }
                if let Some(v) = cx.value(e) {
                    env_files.push((e, v));
                }
            }
            ("Service", "WorkingDirectory") => {
                let Some(v) = cx.value(e) else { continue };
                let (optional, dir) = match v.strip_prefix('-') {
                    Some(d) => (true, d.to_string()),
                    None => (false, v.clone()),
                };
                if dir.is_empty() {
                    unit.service.working_dir = None;
                } else if dir == "~" {
                    cx.not_honoured(e, "~ (the user's home) is not supported yet; write the path");
                } else if !dir.starts_with('/') {
                    cx.err(e, format!("WorkingDirectory=: {dir:?} is not an absolute path"));
                } else {
                    if optional {
                        cx.approx(e, "the - prefix is not honoured: a missing directory fails the start");
                    }
                    unit.service.working_dir = Some(PathBuf::from(dir));
                }
            }
            ("Service", "User") => user = cx.value(e).filter(|v| !v.is_empty()),
            ("Service", "Group") => {
                group = cx.value(e).filter(|v| !v.is_empty()).map(|v| (e, v));
            }
            ("Service", "Restart") => {
                unit.restart.policy = match RestartPolicy::from_name(&e.value) {
                    Some(p) => {
                        if p == RestartPolicy::OnWatchdog {
                            cx.approx(e, "kennel's watchdog is [health]: restarted after failed health checks (WatchdogSec= is not honoured yet)");
                        }
                        p
                    }
                    None => {
                        cx.err(e, format!("Restart=: unknown value {:?} (no, on-success, on-failure, on-abnormal, on-watchdog, on-abort, always)", e.value));
                        continue;
                    }
                }
            }
            ("Service", "RestartSec") => match parse_timespan(&e.value) {
                Ok(Some(d)) => {
                    unit.restart.delay = d;
                    unit.restart.max_delay = d;
                }
                Ok(None) => cx.err(e, "RestartSec=: infinity is not a delay"),
                Err(m) => cx.err(e, format!("RestartSec=: {m}")),
            },
            ("Service", "TimeoutStopSec" | "TimeoutSec" | "TimeoutStartSec") => {
                let d = match parse_timespan(&e.value) {
                    Ok(d) => d,
                    Err(m) => {
                        cx.err(e, format!("{key}=: {m}"));
                        continue;
                    }
                };
                // 0 and infinity: no timeout.
                let d = d.filter(|d| !d.is_zero());
                if key != "TimeoutStartSec" {
                    unit.service.stop_timeout = d.unwrap_or(INFINITY);
                }
                if key != "TimeoutStopSec" {
                    unit.service.start_timeout = d.unwrap_or(INFINITY);
                    start_timeout = Some((e, d));
                }
            }
            ("Service", "KillSignal") => match parse_signal(&e.value) {
                Ok(s) => unit.service.stop_signal = s,
                Err(m) => cx.err(e, format!("KillSignal=: {m}")),
            },
            ("Service", "KillMode") => match KillMode::from_name(&e.value) {
                Some(m) => {
                    if matches!(m, KillMode::Process | KillMode::None) {
                        cx.approx(e, "what the main process leaves in the unit's cgroup is killed when its run ends (kennel removes the cgroup with the run)");
                    }
                    unit.service.kill_mode = m;
                }
                None => cx.err(e, format!("KillMode=: unknown value {:?} (control-group, mixed, process, none)", e.value)),
            },
            ("Service", k) if DirectoryKind::ALL.iter().any(|d| d.systemd_key() == k) => {
                let Some(kind) = DirectoryKind::ALL.into_iter().find(|d| d.systemd_key() == k) else { continue };
                if e.value.is_empty() {
                    dirs.retain(|(d, _)| *d != kind);
                    continue;
                }
                let Some(v) = cx.value(e) else { continue };
                match split_words(&v) {
                    Ok(words) => {
                        for w in words {
                            // NAME:SYMLINK (a symlink to the directory) is not read.
                            match w.split_once(':') {
                                Some(_) => cx.not_honoured(e, format!("{w}: the :LINK form is not supported yet")),
                                None if w.starts_with('/') || w.split('/').any(|c| c.is_empty() || c == "." || c == "..") => {
                                    cx.err(e, format!("{k}=: {w:?} must be a relative path below {}", kind.base()));
                                }
                                None => dirs.push((kind, w)),
                            }
                        }
                    }
                    Err(m) => cx.err(e, format!("{k}=: {m}")),
                }
            }
            ("Service", k) if DirectoryKind::ALL.iter().any(|d| format!("{}Mode", d.systemd_key()) == k) => {
                let Some(kind) = DirectoryKind::ALL.into_iter().find(|d| format!("{}Mode", d.systemd_key()) == k) else { continue };
                match u32::from_str_radix(&e.value, 8) {
                    Ok(m) if m <= 0o7777 => modes.push((kind, m)),
                    _ => cx.err(e, format!("{k}=: expected an octal mode such as 0755, found {:?}", e.value)),
                }
            }
            ("Unit", k @ ("ConditionPathExists" | "AssertPathExists")) => {
                let assert = k == "AssertPathExists";
                if e.value.is_empty() {
                    unit.service.conditions.retain(|c| c.assert != assert);
                    continue;
                }
                let Some(v) = cx.value(e) else { continue };
                if v.starts_with('|') {
                    cx.not_honoured(e, "triggering conditions (|) are not supported yet");
                    continue;
                }
                let (negate, p) = match v.strip_prefix('!') {
                    Some(p) => (true, p.to_string()),
                    None => (false, v.clone()),
                };
                if p.starts_with('/') {
                    unit.service.conditions.push(PathCondition { assert, path: p.into(), negate });
                } else {
                    cx.err(e, format!("{k}=: {p:?} is not an absolute path"));
                }
            }
            ("Service", "PIDFile") => {
                let Some(v) = cx.value(e) else { continue };
                // systemd reads a relative path below /run.
                let file = if v.starts_with('/') { PathBuf::from(v) } else { PathBuf::from("/run").join(v) };
                pid_file = Some((e, file));
            }
            ("Service", "SendSIGKILL") => match parse_bool(&e.value) {
                Some(b) => unit.service.send_sigkill = b,
                None => cx.err(e, format!("SendSIGKILL=: expected a boolean, found {:?}", e.value)),
            },
            ("Service", "SuccessExitStatus") => {
                if e.value.is_empty() {
                    unit.service.success_exit_codes = vec![0];
                    continue;
                }
                for w in e.value.split_whitespace() {
                    match w.parse::<i32>() {
                        Ok(n) if (0..=255).contains(&n) => {
                            if !unit.service.success_exit_codes.contains(&n) {
                                unit.service.success_exit_codes.push(n);
                            }
                        }
                        _ => cx.warn(e, format!("SuccessExitStatus={w} is not honoured: only exit codes 0..=255 are supported yet, not signals")),
                    }
                }
            }
            ("Service", "RemainAfterExit") => match parse_bool(&e.value) {
                Some(b) => remain = Some((e, b)),
                None => cx.err(e, format!("RemainAfterExit=: expected a boolean, found {:?}", e.value)),
            },
            ("Service", "IgnoreSIGPIPE") => match parse_bool(&e.value) {
                // kennel starts services with every signal at its default action.
                Some(false) => {}
                _ => cx.not_honoured(e, "kennel starts services with SIGPIPE at its default action (not ignored)"),
            },
            ("Service", "NotifyAccess") => cx.approx(e, "kennel accepts notifications on the unit's socket from any process"),
            ("Service", "StandardOutput" | "StandardError") => match e.value.as_str() {
                "journal" | "inherit" | "journal+console" | "syslog" | "syslog+console" | "kmsg" | "" => {
                    if !e.value.is_empty() && e.value != "inherit" {
                        cx.approx(e, "into kennel's log file of the unit");
                    }
                }
                _ => cx.not_honoured(e, "only the journal is approximated (kennel's log file of the unit)"),
            },
            ("Service", "StandardInput") => {
                if e.value != "null" {
                    cx.not_honoured(e, "the standard input is not set yet");
                }
            }
            ("Service", key) if RESOURCE_KEYS.contains(&key) => resource(&mut cx, e, &mut unit.resources),
            (section, key) => cx.not_honoured(e, not_yet_reason(section, key)),
        }
    }

    // Type=
    let kind = match kind {
        // kennel's simple is up once the exec succeeded: systemd's exec.
        None | Some((_, "simple" | "exec")) => ServiceType::Simple,
        Some((e, "idle")) => {
            cx.approx(e, "as simple (started without waiting for other jobs)");
            ServiceType::Simple
        }
        Some((_, "notify")) => ServiceType::Notify,
        Some((e, "notify-reload")) => {
            cx.approx(e, "as notify (reloading is not supported yet)");
            ServiceType::Notify
        }
        Some((_, "oneshot")) => ServiceType::Oneshot,
        Some((_, "forking")) => ServiceType::Forking,
        Some((e, "dbus")) => {
            cx.err(
                e,
                "Type=dbus is not supported yet: run the daemon as Type=simple or Type=notify",
            );
            ServiceType::Simple
        }
        Some((e, other)) => {
            cx.err(e, format!("Type=: unknown value {other:?} (simple, exec, forking, oneshot, dbus, notify, notify-reload, idle)"));
            ServiceType::Simple
        }
    };
    unit.service.kind = kind;
    for (kind, path) in dirs {
        let mode = modes
            .iter()
            .rev()
            .find(|(k, _)| *k == kind)
            .map_or(0o755, |(_, m)| *m);
        unit.service
            .directories
            .push(Directory { kind, path, mode });
    }
    match remain {
        Some((_, true)) if kind == ServiceType::Oneshot => unit.service.remain_after_exit = true,
        Some((e, true)) => cx.not_honoured(
            e,
            "only for Type=oneshot in kennel (a service that stays up is up anyway)",
        ),
        _ => {}
    }
    match pid_file {
        Some((_, f)) if kind == ServiceType::Forking => unit.service.pid_file = Some(f),
        Some((e, _)) => cx.not_honoured(e, "only read for Type=forking"),
        None => {}
    }
    if kind == ServiceType::Notify {
        let timeout = match start_timeout {
            Some((_, Some(d))) => d,
            Some((e, None)) => {
                cx.not_honoured(
                    e,
                    "an infinite readiness timeout is not supported yet; 90s applies to READY=1 (the commands around the main one have no limit)",
                );
                DEFAULT_TIMEOUT
            }
            None => DEFAULT_TIMEOUT,
        };
        unit.ready = Some(Ready {
            probe: ReadyProbe::Notify,
            timeout,
        });
    }
    if kind == ServiceType::Oneshot && unit.restart.policy == RestartPolicy::Always {
        cx.diags.push(Diagnostic::new(
            path,
            1,
            1,
            "Restart=always is not allowed with Type=oneshot (systemd refuses it too)",
        ));
    }

    // Environment and identity.
    let mut files = env_files.into_iter();
    if let Some((e, f)) = files.next() {
        let (optional, file) = match f.strip_prefix('-') {
            Some(f) => (true, f.to_string()),
            None => (false, f),
        };
        if !file.starts_with('/') {
            cx.err(
                e,
                format!("EnvironmentFile=: {file:?} is not an absolute path"),
            );
        } else if optional && !exists(std::path::Path::new(&file)) {
            cx.approx(e, "the file does not exist when the units are read, so it is not read (as systemd does with -); create it, then kennel reload");
        } else {
            let mut how = String::from("read at each start in kennel's format (KEY=VALUE lines, # comments, quotes around a value removed; no escapes or continuations)");
            if optional {
                how.push_str("; the - prefix: the file exists now, a start without it fails");
            }
            if !environment.is_empty() {
                how.push_str("; Environment= wins over the file (under systemd the file wins)");
            }
            cx.approx(e, how);
            unit.service.environment_file = Some(PathBuf::from(file));
        }
    }
    for (e, _) in files {
        cx.not_honoured(
            e,
            "kennel reads one environment file yet; only the first is read",
        );
    }
    unit.service.environment = environment.clone();
    unit.service.user = match (user, group) {
        (Some(u), Some((_, g))) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u),
        (None, Some((g, _))) => {
            cx.not_honoured(g, "a group without User= is not supported yet");
            None
        }
        (None, None) => None,
    };

    // ExecStart=
    let env_file = unit.service.environment_file.is_some();
    match exec_start.as_slice() {
        [] if exec_start_refused => {}
        [] => cx.diags.push(Diagnostic::new(
            path,
            1,
            1,
            "no ExecStart=: a service without a main command is not supported yet",
        )),
        [(e, x)] => {
            unit.service.command = command(&mut cx, e, x, &environment, env_file);
            if x.ignore_failure {
                cx.warn(e, "ExecStart=-...: approximated: every exit code counts as success (a death by signal still counts as a failure)");
                unit.service.success_exit_codes = (0..=255).collect();
            }
        }
        [(first, _), ..] if kind != ServiceType::Oneshot => {
            cx.err(
                first,
                "several ExecStart= lines are allowed only with Type=oneshot",
            );
        }
        several => {
            let mut script = String::from("set -ef");
            for (e, x) in several {
                let argv = command(&mut cx, e, x, &environment, env_file);
                let line = match argv.as_slice() {
                    [sh, c, body]
                        if sh == "/bin/sh" && c == "-c" && body.starts_with("set -f; exec ") =>
                    {
                        body["set -f; exec ".len()..].to_string()
                    }
                    _ => argv
                        .iter()
                        .map(|a| exec::shell_quote(a))
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                script.push_str("; ");
                script.push_str(&line);
                if x.ignore_failure {
                    script.push_str(" || :");
                }
            }
            cx.warn(several[0].0, "ExecStart=: approximated: the commands run in sequence by one /bin/sh -c, stopping at the first failure");
            unit.service.command = vec!["/bin/sh".into(), "-c".into(), script];
        }
    }
    // The commands around ExecStart=.
    for (e, x) in &around {
        let argv = command(&mut cx, e, x, &environment, env_file);
        let c = ExecCommand {
            argv,
            ignore_failure: x.ignore_failure,
        };
        let s = &mut unit.service;
        match e.key.as_str() {
            "ExecStartPre" => s.start_pre.push(c),
            "ExecStartPost" if kind == ServiceType::Oneshot => cx.not_honoured(
                e,
                "with Type=oneshot it is not supported yet and does not run (add the command as a last ExecStart=)",
            ),
            "ExecStartPost" => s.start_post.push(c),
            "ExecReload" => s.reload.push(c),
            "ExecStop" if s.remain_after_exit => cx.not_honoured(
                e,
                "the stop of a oneshot that remains up (RemainAfterExit=yes) runs no command yet",
            ),
            "ExecStop" => s.stop.push(c),
            _ => s.stop_post.push(c),
        }
    }
    if !has_install {
        cx.diags.push(Diagnostic::warning(path, 1, 1, "no [Install] section (a static unit under systemd, started only when another pulls it in): kennel starts it at kennel up like every unit of the directory"));
    }

    for r in &requires {
        if !unit.service.requires.contains(&r.name) {
            unit.service.requires.push(r.name.clone());
        }
        if !unit.service.after.contains(&r.name) {
            unit.service.after.push(r.name.clone());
        }
    }
    let has_error = cx.diags.iter().any(|d| !d.warning);
    Mapped {
        unit: (!has_error).then_some(unit),
        diags: cx.diags,
        requires,
        after,
        before,
    }
}

/// The argv of one command line, its prefixes reported.
fn command(
    cx: &mut Cx,
    e: &Entry,
    x: &Exec,
    env: &BTreeMap<String, String>,
    env_file: bool,
) -> Vec<String> {
    match x.privileges {
        Some("+") => cx.err(e, format!("{}=+...: running with full privileges (ignoring User= and sandboxing) is not supported yet; drop the + (kennel applies no sandboxing to plain services) or User=", e.key)),
        Some("!") => cx.err(e, format!("{}=!...: ambient-capability privilege elevation is not supported yet", e.key)),
        Some(_) => {} // !!: a no-op where ambient capabilities exist, as on every kernel kennel runs on
        None => {}
    }
    if x.argv0 {
        cx.warn(
            e,
            format!(
                "{}=@...: approximated: argv[0] is the file run, not the second word",
                e.key
            ),
        );
    }
    let r = exec::resolve(x, env, env_file);
    // $MAINPID is set by kennel in the commands' environment: the shell expands it exactly.
    let deferred: Vec<&String> = r.deferred.iter().filter(|v| *v != "MAINPID").collect();
    if !deferred.is_empty() {
        let vars: Vec<String> = deferred.iter().map(|v| format!("${v}")).collect();
        cx.warn(
            e,
            format!(
                "{}=: approximated: {} not known when the file is read (not set by Environment=, or an EnvironmentFile= may set it): the command runs through /bin/sh -c, which expands it at each start as systemd would",
                e.key,
                vars.join(", ")
            ),
        );
    }
    r.argv
}
