//! The security keys of `[container]`: `capabilities`, `no_new_privileges`, `seccomp`,
//! `devices`, `limits`, `oom_score_adj` (see [`crate::security`]).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use toml_edit::{Item, TableLike, Value};

use super::value::{describe, describe_value, Ctx};
use crate::security::{Seccomp, Security};
use crate::suggest::did_you_mean;

const CAPABILITIES_KEYS: &[&str] = &["add", "drop", "ambient"];

/// Every Linux capability, without the `CAP_` prefix, in the order of their numbers.
pub(crate) const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The rlimits `limits` takes, by their lower-case name without `RLIMIT_`.
pub(crate) const LIMITS: &[&str] = &[
    "nofile",
    "nproc",
    "core",
    "memlock",
    "stack",
    "cpu",
    "fsize",
    "as",
    "data",
    "rss",
    "locks",
    "sigpending",
    "msgqueue",
    "nice",
    "rtprio",
    "rttime",
];

/// The security keys of the `[container]` table `t` (its unknown keys are reported by
/// the caller).
pub(crate) fn security(cx: &mut Ctx, t: &dyn TableLike) -> Security {
    let mut s = Security::default();
    if let Some(item) = t.get("capabilities") {
        capabilities(cx, item, &mut s);
    }
    if let Some(item) = t.get("no_new_privileges") {
        s.no_new_privileges = cx
            .boolean("container.no_new_privileges", item)
            .unwrap_or(true);
    }
    if let Some(item) = t.get("seccomp") {
        s.seccomp = seccomp(cx, item).unwrap_or(Seccomp::Default);
    }
    if let Some(item) = t.get("devices") {
        s.devices = devices(cx, item);
    }
    if let Some(item) = t.get("limits") {
        s.limits = limits(cx, item);
    }
    if let Some(item) = t.get("oom_score_adj") {
        s.oom_score_adj = cx
            .int("container.oom_score_adj", item, -1000, 1000)
            .and_then(|n| i32::try_from(n).ok());
    }
    s
}

/// `capabilities = { add, drop, ambient }` into `s.cap_add`, `s.cap_drop`, `s.ambient`.
fn capabilities(cx: &mut Ctx, item: &Item, s: &mut Security) {
    let Some(t) = cx.table("container.capabilities", item) else {
        return;
    };
    cx.check_keys(t, Some("container.capabilities"), CAPABILITIES_KEYS);
    let mut ok = true;
    let mut lists: [Vec<(String, Option<Range<usize>>)>; 3] = Default::default();
    for (key, list) in CAPABILITIES_KEYS.iter().zip(lists.iter_mut()) {
        if let Some(item) = t.get(key) {
            ok &= capability_list(cx, key, item, list);
        }
    }
    let [add, drop, ambient] = lists;
    let add_all = add.iter().any(|(c, _)| c == "ALL");
    for (c, span) in &drop {
        if add_all {
            cx.error(
                span.clone(),
                format!("container.capabilities.drop: {c} has no effect with \"ALL\" in capabilities.add; remove it"),
            );
            ok = false;
        } else if c != "ALL" && add.iter().any(|(a, _)| a == c) {
            cx.error(
                span.clone(),
                format!("container.capabilities.drop: {c} is also in capabilities.add; list it in only one of them"),
            );
            ok = false;
        }
    }
    s.cap_add = add.into_iter().map(|(c, _)| c).collect();
    s.cap_drop = drop.into_iter().map(|(c, _)| c).collect();
    // With a wrong add or drop entry the set is unknown: checking ambient against it
    // would only repeat the problem.
    if ok {
        let set = s.capabilities();
        for (c, span) in &ambient {
            if set.iter().any(|x| x == c || x == "ALL") {
                continue;
            }
            let fix = if s.cap_drop.contains(c) {
                "remove it from capabilities.drop"
            } else {
                "add it to capabilities.add"
            };
            cx.error(
                span.clone(),
                format!("container.capabilities.ambient: {c} is not in the container's capability set; {fix}"),
            );
        }
    }
    s.ambient = ambient.into_iter().map(|(c, _)| c).collect();
}

/// One of `add`, `drop`, `ambient`: capability names (any case, with or without `CAP_`),
/// stored upper case without `CAP_`, each listed once; `"ALL"` except in `ambient`.
/// Returns false if an entry was wrong.
fn capability_list(
    cx: &mut Ctx,
    key: &str,
    item: &Item,
    out: &mut Vec<(String, Option<Range<usize>>)>,
) -> bool {
    let path = format!("container.capabilities.{key}");
    let Some(values) = cx.array(
        &path,
        item,
        "an array of capability names such as [\"NET_ADMIN\"]",
    ) else {
        return false;
    };
    let mut ok = true;
    for (i, v) in values.iter().enumerate() {
        let elem = format!("{path}[{i}]");
        let Some(s) = v.as_str() else {
            cx.error(
                v.span(),
                format!(
                    "{elem}: expected a capability name string, found {}",
                    describe_value(v)
                ),
            );
            ok = false;
            continue;
        };
        let upper = s.to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        let known = CAPABILITIES.contains(&name) || name == "ALL";
        if name == "ALL" && key == "ambient" {
            cx.error(
                v.span(),
                format!("{elem}: \"ALL\" is not allowed in ambient; list the capabilities"),
            );
        } else if !known {
            let all = (key != "ambient").then_some("ALL");
            let hint = did_you_mean(name, CAPABILITIES.iter().copied().chain(all));
            cx.error(v.span(), format!("{elem}: unknown capability {s:?}{hint}"));
        } else if out.iter().any(|(c, _)| c == name) {
            cx.error(v.span(), format!("{elem}: {name} is already listed"));
        } else {
            out.push((name.to_string(), v.span()));
            continue;
        }
        ok = false;
    }
    ok
}

/// `seccomp`: `"default"`, `"unconfined"` or an absolute path to a profile.
fn seccomp(cx: &mut Ctx, item: &Item) -> Option<Seccomp> {
    let expected = "\"default\", \"unconfined\" or an absolute path to a profile";
    let s = cx.string("container.seccomp", item, expected)?;
    match s.as_str() {
        "default" => return Some(Seccomp::Default),
        "unconfined" => return Some(Seccomp::Unconfined),
        _ => {}
    }
    if s.starts_with('/') && !s.contains('\0') {
        return Some(Seccomp::Profile(PathBuf::from(s)));
    }
    let hint = did_you_mean(&s, ["default", "unconfined"]);
    cx.error(
        item.span(),
        format!("container.seccomp: invalid value {s:?}: expected {expected}{hint}"),
    );
    None
}

/// `devices`: absolute, normalized paths under `/dev`, each listed once.
fn devices(cx: &mut Ctx, item: &Item) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Some(values) = cx.array(
        "container.devices",
        item,
        "an array of device paths such as [\"/dev/fuse\"]",
    ) else {
        return out;
    };
    for (i, v) in values.iter().enumerate() {
        let path = format!("container.devices[{i}]");
        let Some(s) = v.as_str() else {
            cx.error(
                v.span(),
                format!(
                    "{path}: expected a device path string, found {}",
                    describe_value(v)
                ),
            );
            continue;
        };
        let Some(rest) = s.strip_prefix("/dev/").filter(|r| !r.contains('\0')) else {
            cx.error(
                v.span(),
                format!("{path}: must be an absolute path under /dev, such as \"/dev/fuse\", found {s:?}"),
            );
            continue;
        };
        if rest
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            cx.error(
                v.span(),
                format!("{path}: must be a normalized path (no empty, \".\" or \"..\" components, no trailing \"/\"), found {s:?}"),
            );
            continue;
        }
        let device = PathBuf::from(s);
        if out.contains(&device) {
            cx.error(v.span(), format!("{path}: this device is already listed"));
        } else {
            out.push(device);
        }
    }
    out
}

/// `limits`: rlimit name -> a non-negative integer or `"unlimited"` (`u64::MAX`).
fn limits(cx: &mut Ctx, item: &Item) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Some(t) = cx.table("container.limits", item) else {
        return out;
    };
    cx.check_keys(t, Some("container.limits"), LIMITS);
    for (name, item) in t.iter() {
        if !LIMITS.contains(&name) {
            continue;
        }
        let path = format!("container.limits.{name}");
        let expected = "a non-negative integer or \"unlimited\"";
        let value = match item.as_value() {
            Some(Value::Integer(n)) => match u64::try_from(*n.value()) {
                Ok(n) => Some(n),
                Err(_) => {
                    let n = n.value();
                    cx.error(
                        item.span(),
                        format!("{path}: must be at least 0, found {n}"),
                    );
                    None
                }
            },
            Some(Value::String(s)) if s.value() == "unlimited" => Some(u64::MAX),
            Some(Value::String(s)) => {
                let s = s.value();
                let hint = did_you_mean(s, ["unlimited"]);
                cx.error(
                    item.span(),
                    format!("{path}: invalid value {s:?}: expected {expected}{hint}"),
                );
                None
            }
            _ => {
                cx.error(
                    item.span(),
                    format!("{path}: expected {expected}, found {}", describe(item)),
                );
                None
            }
        };
        if let Some(n) = value {
            out.insert(name.to_string(), n);
        }
    }
    out
}
