//! A unit written back as kennel's TOML (what `kennel import-systemd` writes), with the
//! warnings of its systemd file as comments.

use std::fmt::Write as _;
use std::path::Path;

use crate::diag::Diagnostic;
use crate::duration::format_duration;
use crate::model::{Activate, Listen, ReadyProbe, ServiceType, Unit, UnixKind};
use crate::signal::signal_name;

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The TOML of `unit`, read from the systemd file `source`; each warning becomes a comment
/// at the top (`# FILE:LINE:COL: warning: ...`).
pub fn to_toml(unit: &Unit, source: &Path, warnings: &[Diagnostic]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported from {} by kennel import-systemd.",
        source.display()
    );
    if warnings.is_empty() {
        let _ = writeln!(out, "# Every directive was honoured.");
    } else {
        let _ = writeln!(out, "# What kennel reads differently or not at all:");
        for w in warnings {
            let _ = writeln!(out, "#   {w}");
        }
    }
    out.push('\n');
    if let Some(d) = &unit.description {
        let _ = writeln!(out, "description = {}\n", q(d));
    }
    let s = &unit.service;
    let _ = writeln!(out, "[service]");
    let _ = writeln!(out, "command = {}", list(&s.command));
    if !s.environment.is_empty() {
        let env: Vec<String> = s
            .environment
            .iter()
            .map(|(k, v)| format!("{} = {}", q(k), q(v)))
            .collect();
        let _ = writeln!(out, "environment = {{ {} }}", env.join(", "));
    }
    if let Some(f) = &s.environment_file {
        let _ = writeln!(out, "environment_file = {}", q(&f.to_string_lossy()));
    }
    if let Some(d) = &s.working_dir {
        let _ = writeln!(out, "working_dir = {}", q(&d.to_string_lossy()));
    }
    if let Some(u) = &s.user {
        let _ = writeln!(out, "user = {}", q(u));
    }
    let kind = match s.kind {
        ServiceType::Simple => "simple",
        ServiceType::Notify => "notify",
        ServiceType::Oneshot => "oneshot",
        ServiceType::Forking => "forking",
    };
    let _ = writeln!(out, "type = {}", q(kind));
    let after: Vec<String> = s
        .after
        .iter()
        .filter(|a| !s.requires.contains(a))
        .cloned()
        .collect();
    if !after.is_empty() {
        let _ = writeln!(out, "after = {}", list(&after));
    }
    if !s.requires.is_empty() {
        let _ = writeln!(out, "requires = {}", list(&s.requires));
    }
    if s.success_exit_codes != [0] {
        let codes: Vec<String> = s.success_exit_codes.iter().map(i32::to_string).collect();
        let _ = writeln!(out, "success_exit_codes = [{}]", codes.join(", "));
    }
    let _ = writeln!(
        out,
        "stop_signal = {}",
        q(&signal_name(s.stop_signal.number))
    );
    let timeout = |d| {
        if d == crate::INFINITY {
            q("infinity")
        } else {
            q(&format_duration(d))
        }
    };
    let _ = writeln!(out, "stop_timeout = {}", timeout(s.stop_timeout));
    let _ = writeln!(out, "start_timeout = {}", timeout(s.start_timeout));
    let _ = writeln!(out, "kill_mode = {}", q(s.kill_mode.name()));
    for kind in crate::model::DirectoryKind::ALL {
        let of_kind: Vec<&crate::model::Directory> =
            s.directories.iter().filter(|d| d.kind == kind).collect();
        let Some(first) = of_kind.first() else {
            continue;
        };
        let paths: Vec<String> = of_kind.iter().map(|d| d.path.clone()).collect();
        let _ = writeln!(out, "{} = {}", kind.key(), list(&paths));
        let _ = writeln!(out, "{}_mode = \"{:04o}\"", kind.key(), first.mode);
    }
    for (key, assert) in [
        ("condition_path_exists", false),
        ("assert_path_exists", true),
    ] {
        let paths: Vec<String> = s
            .conditions
            .iter()
            .filter(|c| c.assert == assert)
            .map(|c| format!("{}{}", if c.negate { "!" } else { "" }, c.path.display()))
            .collect();
        if !paths.is_empty() {
            let _ = writeln!(out, "{key} = {}", list(&paths));
        }
    }
    if s.remain_after_exit {
        let _ = writeln!(out, "remain_after_exit = true");
    }
    if let Some(p) = &s.pid_file {
        let _ = writeln!(out, "pid_file = {}", q(&p.to_string_lossy()));
    }
    let _ = writeln!(out, "send_sigkill = {}", s.send_sigkill);
    for (key, cmds) in [
        ("start_pre", &s.start_pre),
        ("start_post", &s.start_post),
        ("reload", &s.reload),
        ("stop", &s.stop),
        ("stop_post", &s.stop_post),
    ] {
        if cmds.is_empty() {
            continue;
        }
        let items: Vec<String> = cmds
            .iter()
            .map(|c| {
                let dash = if c.ignore_failure { "\"-\", " } else { "" };
                let argv: Vec<String> = c.argv.iter().map(|a| q(a)).collect();
                format!("[{dash}{}]", argv.join(", "))
            })
            .collect();
        let _ = writeln!(out, "{key} = [{}]", items.join(", "));
    }
    if s.activate == Activate::Socket {
        let _ = writeln!(out, "activate = \"socket\"");
    }

    let r = &unit.restart;
    let policy = r.policy.name();
    let _ = writeln!(out, "\n[restart]");
    let _ = writeln!(out, "policy = {}", q(policy));
    let _ = writeln!(out, "delay = {}", q(&format_duration(r.delay)));
    let _ = writeln!(out, "max_delay = {}", q(&format_duration(r.max_delay)));
    let _ = writeln!(out, "reset_after = {}", q(&format_duration(r.reset_after)));
    let _ = writeln!(out, "burst = {}", r.burst);
    let _ = writeln!(out, "interval = {}", q(&format_duration(r.interval)));

    if let Some(ready) = &unit.ready {
        let _ = writeln!(out, "\n[ready]");
        if ready.probe == ReadyProbe::Notify {
            let _ = writeln!(out, "notify = true");
        }
        let _ = writeln!(out, "timeout = {}", q(&format_duration(ready.timeout)));
    }

    for sock in &unit.sockets {
        let _ = writeln!(out, "\n[[socket]]");
        let _ = writeln!(out, "listen = {}", q(&sock.listen.address()));
        let unix = match &sock.listen {
            Listen::Unix { kind, .. } => {
                let name = match kind {
                    UnixKind::Stream => "stream",
                    UnixKind::Datagram => "datagram",
                    UnixKind::Seqpacket => "seqpacket",
                };
                let _ = writeln!(out, "kind = {}", q(name));
                true
            }
            _ => false,
        };
        let _ = writeln!(out, "name = {}", q(&sock.name));
        if sock.listen.listens() {
            let _ = writeln!(out, "backlog = {}", sock.backlog);
        }
        let _ = writeln!(out, "reuse_port = {}", sock.reuse_port);
        if unix {
            let _ = writeln!(out, "mode = {}", q(&format!("{:04o}", sock.mode)));
            for (key, v) in [("user", &sock.user), ("group", &sock.group)] {
                if let Some(v) = v {
                    let _ = writeln!(out, "{key} = {}", q(v));
                }
            }
        }
    }

    let res = &unit.resources;
    if !res.is_empty() {
        let _ = writeln!(out, "\n[resources]");
        if let Some(m) = res.memory_max {
            let _ = writeln!(out, "memory_max = {}", q(&m.to_string()));
        }
        if let Some(c) = res.cpu_millis {
            let _ = writeln!(out, "cpu = {}", f64::from(c) / 1000.0);
        }
        if let Some(w) = res.cpu_weight {
            let _ = writeln!(out, "cpu_weight = {w}");
        }
        if let Some(p) = res.pids_max {
            let _ = writeln!(out, "pids_max = {p}");
        }
        if let Some(w) = res.io_weight {
            let _ = writeln!(out, "io_weight = {w}");
        }
        if let Some(c) = &res.cpuset {
            let _ = writeln!(out, "cpuset = {}", q(c));
        }
    }
    out
}
