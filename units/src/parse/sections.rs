//! The sections of a unit file: `[service]`, `[restart]`, `[health]`, `[logs]` (`[ready]` is in `ready.rs`).

use std::ops::Range;
use std::time::Duration;

use toml_edit::{Key, TableLike};

use super::value::Ctx;
use super::DepRef;
use crate::duration::format_duration;
use crate::model::{
    Activate, Directory, DirectoryKind, Health, KillMode, Logs, PathCondition, Restart,
    RestartPolicy, Service, ServiceType,
};

pub(crate) const SERVICE_KEYS: &[&str] = &[
    "command",
    "environment",
    "environment_file",
    "working_dir",
    "user",
    "type",
    "after",
    "requires",
    "success_exit_codes",
    "stop_signal",
    "stop_timeout",
    "activate",
    "start_pre",
    "start_post",
    "reload",
    "reload_signal",
    "stop",
    "stop_post",
    "start_timeout",
    "kill_mode",
    "send_sigkill",
    "pid_file",
    "remain_after_exit",
    "condition_path_exists",
    "assert_path_exists",
    "runtime_directory",
    "runtime_directory_mode",
    "state_directory",
    "state_directory_mode",
    "cache_directory",
    "cache_directory_mode",
    "logs_directory",
    "logs_directory_mode",
    "configuration_directory",
    "configuration_directory_mode",
];

/// The `[service]` keys of commands around the main one (refused in `[container]` units).
pub(crate) const AROUND_KEYS: &[&str] = &["start_pre", "start_post", "reload", "stop", "stop_post"];
const RESTART_KEYS: &[&str] = &[
    "policy",
    "delay",
    "max_delay",
    "reset_after",
    "burst",
    "interval",
];
const HEALTH_KEYS: &[&str] = &["command", "interval", "timeout", "retries"];
const LOGS_KEYS: &[&str] = &["max_size", "keep"];

/// `[service]`; `header` is where to report a missing `command` (which an `image` may
/// supply: `command_optional`). Every `after` and `requires` entry that is a valid name
/// (and not the unit itself) goes to `deps`.
pub(crate) fn service(
    cx: &mut Ctx,
    t: &dyn TableLike,
    header: Option<Range<usize>>,
    unit: &str,
    deps: &mut Vec<DepRef>,
    command_optional: bool,
) -> Service {
    cx.check_keys(t, Some("service"), SERVICE_KEYS);
    let mut s = Service::new(Vec::new());
    match t.get("command") {
        Some(item) => s.command = cx.argv("service.command", item).unwrap_or_default(),
        None if command_optional => {}
        None => cx.error(header, "service.command is required"),
    }
    if let Some(item) = t.get("environment") {
        if let Some(env) = cx.table("service.environment", item) {
            for (k, v) in env.iter() {
                let path = format!("service.environment.{k}");
                if k.is_empty() || k.contains(['=', '\0']) {
                    let span = env.key(k).and_then(Key::span);
                    cx.error(span, format!("{path}: invalid variable name {k:?}"));
                } else if let Some(value) = cx.string(&path, v, "a string") {
                    if value.contains('\0') {
                        cx.error(
                            v.span(),
                            format!("{path}: must not contain a NUL character"),
                        );
                    } else {
                        s.environment.insert(k.to_string(), value);
                    }
                }
            }
        }
    }
    if let Some(item) = t.get("environment_file") {
        s.environment_file = cx.abs_path("service.environment_file", item);
    }
    if let Some(item) = t.get("working_dir") {
        s.working_dir = cx.abs_path("service.working_dir", item);
    }
    if let Some(item) = t.get("user") {
        s.user = cx.text(
            "service.user",
            item,
            "a user string such as \"www-data\" or \"1000:1000\"",
        );
    }
    if let Some(item) = t.get("type") {
        // kennel's simple is up once the exec succeeded (systemd's exec); idle is simple.
        let kinds = ["simple", "notify", "oneshot", "forking", "exec", "idle"];
        s.kind = match cx.choice("service.type", item, &kinds) {
            Some("notify") => ServiceType::Notify,
            Some("oneshot") => ServiceType::Oneshot,
            Some("forking") => ServiceType::Forking,
            _ => ServiceType::Simple,
        };
    }
    let mut requires = Vec::new();
    for field in ["after", "requires"] {
        let Some(item) = t.get(field) else { continue };
        let path = format!("service.{field}");
        for (name, span) in cx.unit_names(&path, item) {
            if name == unit {
                cx.error(span, format!("{path}: a unit cannot depend on itself"));
                continue;
            }
            let (line, col) = cx.pos(span);
            deps.push(DepRef {
                field: if field == "after" {
                    "service.after"
                } else {
                    "service.requires"
                },
                name: name.clone(),
                file: None,
                line,
                col,
            });
            if !s.after.contains(&name) {
                s.after.push(name.clone());
            }
            if field == "requires" && !requires.contains(&name) {
                requires.push(name);
            }
        }
    }
    s.requires = requires;
    if let Some(item) = t.get("success_exit_codes") {
        if let Some(values) = cx.array(
            "service.success_exit_codes",
            item,
            "an array of exit codes such as [0, 2]",
        ) {
            if values.is_empty() {
                cx.error(item.span(), "service.success_exit_codes: must not be empty");
            }
            let mut codes = Vec::new();
            for (i, v) in values.iter().enumerate() {
                let path = format!("service.success_exit_codes[{i}]");
                match v.as_integer() {
                    Some(n @ 0..=255) => codes.push(n as i32),
                    Some(n) => cx.error(v.span(), format!("{path}: must be in 0..=255, found {n}")),
                    None => cx.error(
                        v.span(),
                        format!(
                            "{path}: expected an integer, found {}",
                            super::value::describe_value(v)
                        ),
                    ),
                }
            }
            s.success_exit_codes = codes;
        }
    }
    if let Some(item) = t.get("stop_signal") {
        if let Some(sig) = cx.signal("service.stop_signal", item) {
            s.stop_signal = sig;
        }
    }
    if let Some(item) = t.get("stop_timeout") {
        if let Some(d) = cx.timeout("service.stop_timeout", item) {
            s.stop_timeout = d;
        }
    }
    if let Some(item) = t.get("activate") {
        if cx.choice("service.activate", item, &["up", "socket"]) == Some("socket") {
            s.activate = Activate::Socket;
        }
    }
    if let Some(item) = t.get("start_timeout") {
        if let Some(d) = cx.timeout("service.start_timeout", item) {
            s.start_timeout = d;
        }
    }
    if let Some(item) = t.get("pid_file") {
        s.pid_file = cx.abs_path("service.pid_file", item);
        if s.kind != ServiceType::Forking {
            cx.error(
                t.key("pid_file").and_then(Key::span),
                "service.pid_file is only for type = \"forking\"",
            );
        }
    }
    if let Some(item) = t.get("remain_after_exit") {
        s.remain_after_exit = cx
            .boolean("service.remain_after_exit", item)
            .unwrap_or(false);
        let span = t.key("remain_after_exit").and_then(Key::span);
        if s.remain_after_exit && s.kind != ServiceType::Oneshot {
            cx.error(
                span,
                "service.remain_after_exit is only for type = \"oneshot\"",
            );
        } else if s.remain_after_exit && t.contains_key("stop") {
            cx.error(span, "service.stop with remain_after_exit = true is not supported yet (the stop of a oneshot that remains up runs no command)");
        }
    }
    for kind in DirectoryKind::ALL {
        let key = kind.key();
        let mode_key = format!("{key}_mode");
        let mode = t
            .get(&mode_key)
            .and_then(|item| cx.mode(&format!("service.{mode_key}"), item))
            .unwrap_or(0o755);
        let Some(item) = t.get(key) else { continue };
        let Some(values) = cx.array(
            &format!("service.{key}"),
            item,
            "an array of relative paths such as [\"redis\"]",
        ) else {
            continue;
        };
        for (i, v) in values.iter().enumerate() {
            let item = toml_edit::Item::Value((*v).clone());
            if let Some(path) = cx.rel_path(&format!("service.{key}[{i}]"), &item) {
                s.directories.push(Directory { kind, path, mode });
            }
        }
    }
    for (key, assert) in [
        ("condition_path_exists", false),
        ("assert_path_exists", true),
    ] {
        let Some(item) = t.get(key) else { continue };
        let path = format!("service.{key}");
        let Some(values) = cx.array(
            &path,
            item,
            "an array of absolute paths such as [\"/etc/app.conf\", \"!/run/app.disabled\"]",
        ) else {
            continue;
        };
        for (i, v) in values.iter().enumerate() {
            let item = toml_edit::Item::Value((*v).clone());
            let elem = format!("{path}[{i}]");
            let Some(text) = cx.text(&elem, &item, "an absolute path string") else {
                continue;
            };
            let (negate, p) = match text.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, text.as_str()),
            };
            if p.starts_with('/') {
                s.conditions.push(PathCondition {
                    assert,
                    path: p.into(),
                    negate,
                });
            } else {
                cx.error(item.span(), format!("{elem}: must be an absolute path (\"!\" before it to negate), found {text:?}"));
            }
        }
    }
    if let Some(item) = t.get("kill_mode") {
        let names = KillMode::NAMES.map(|(n, _)| n);
        s.kill_mode = cx
            .choice("service.kill_mode", item, &names)
            .and_then(KillMode::from_name)
            .unwrap_or_default();
    }
    if let Some(item) = t.get("send_sigkill") {
        if let Some(b) = cx.boolean("service.send_sigkill", item) {
            s.send_sigkill = b;
        }
    }
    if let Some(item) = t.get("reload_signal") {
        s.reload_signal = cx.signal("service.reload_signal", item);
    }
    for key in AROUND_KEYS {
        let Some(item) = t.get(key) else { continue };
        let list = cx.exec_commands(&format!("service.{key}"), item);
        *match *key {
            "start_pre" => &mut s.start_pre,
            "start_post" => &mut s.start_post,
            "reload" => &mut s.reload,
            "stop" => &mut s.stop,
            _ => &mut s.stop_post,
        } = list;
    }
    s
}

/// `[restart]`.
pub(crate) fn restart(cx: &mut Ctx, t: &dyn TableLike) -> Restart {
    cx.check_keys(t, Some("restart"), RESTART_KEYS);
    let mut r = Restart::default();
    if let Some(item) = t.get("policy") {
        let names = RestartPolicy::NAMES.map(|(n, _)| n);
        r.policy = cx
            .choice("restart.policy", item, &names)
            .and_then(RestartPolicy::from_name)
            .unwrap_or_default();
    }
    let mut delay_ok = true;
    for (key, field) in [
        ("delay", &mut r.delay),
        ("max_delay", &mut r.max_delay),
        ("reset_after", &mut r.reset_after),
        ("interval", &mut r.interval),
    ] {
        if let Some(item) = t.get(key) {
            match cx.duration(&format!("restart.{key}"), item) {
                Some(d) => *field = d,
                None => delay_ok &= !matches!(key, "delay" | "max_delay"),
            }
        }
    }
    if let Some(item) = t.get("burst") {
        if let Some(n) = cx.count("restart.burst", item, 1) {
            r.burst = n;
        }
    }
    if delay_ok && r.max_delay < r.delay {
        let (delay, max) = (format_duration(r.delay), format_duration(r.max_delay));
        match t.get("max_delay") {
            Some(item) => cx.error(
                item.span(),
                format!("restart.max_delay: must be at least restart.delay ({delay}), found {max}"),
            ),
            None => cx.error(
                t.get("delay").and_then(|i| i.span()),
                format!("restart.delay: {delay} is longer than the default restart.max_delay ({max}); set restart.max_delay too"),
            ),
        }
    }
    r
}

/// `[health]`; `header` is where to report a missing `command`.
pub(crate) fn health(
    cx: &mut Ctx,
    t: &dyn TableLike,
    header: Option<Range<usize>>,
) -> Option<Health> {
    cx.check_keys(t, Some("health"), HEALTH_KEYS);
    let command = match t.get("command") {
        Some(item) => cx.argv("health.command", item),
        None => {
            cx.error(header, "health.command is required");
            None
        }
    };
    let mut h = Health {
        command: Vec::new(),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        retries: 3,
    };
    if let Some(item) = t.get("interval") {
        h.interval = cx.duration("health.interval", item).unwrap_or(h.interval);
    }
    if let Some(item) = t.get("timeout") {
        h.timeout = cx.duration("health.timeout", item).unwrap_or(h.timeout);
    }
    if let Some(item) = t.get("retries") {
        h.retries = cx.count("health.retries", item, 1).unwrap_or(h.retries);
    }
    h.command = command?;
    Some(h)
}

/// `[logs]`.
pub(crate) fn logs(cx: &mut Ctx, t: &dyn TableLike) -> Logs {
    cx.check_keys(t, Some("logs"), LOGS_KEYS);
    let mut l = Logs::default();
    if let Some(item) = t.get("max_size") {
        match cx.size("logs.max_size", item) {
            Some(0) => cx.error(item.span(), "logs.max_size: must be greater than 0"),
            Some(n) => l.max_size = n,
            None => {}
        }
    }
    if let Some(item) = t.get("keep") {
        l.keep = cx.count("logs.keep", item, 0).unwrap_or(l.keep);
    }
    l
}
