//! What the mapping of a `.service` says about directives it does not map one by one:
//! the no-ops, why a directive is not honoured yet (by family), the `[resources]` ones, and
//! value helpers.

use super::service::Cx;
use super::syntax::Entry;
use crate::container::{check_cpu_list, Resources};

/// Directives read as no-ops on purpose (informational, or what kennel does anyway).
pub(super) const NO_OPS: &[(&str, &str)] = &[
    ("Unit", "Documentation"),
    ("Install", "WantedBy"),
    ("Install", "RequiredBy"),
    ("Install", "UpheldBy"),
];

/// Why a directive kennel does not read is not honoured, by family.
pub(super) fn not_yet_reason(section: &str, key: &str) -> &'static str {
    const AROUND: &[&str] = &["ExecCondition"];
    const DIRS: &[&str] = &["RuntimeDirectoryPreserve"];
    if AROUND.contains(&key) {
        "ExecCondition= is not supported yet; the unit always starts"
    } else if DIRS.contains(&key) {
        "the runtime directory is removed after each stop (RuntimeDirectoryPreserve=no)"
    } else if key.starts_with("Condition") || key.starts_with("Assert") {
        "only ConditionPathExists= and AssertPathExists= are read yet; the unit starts without this one"
    } else if key.starts_with("Limit") {
        "rlimits of plain services are not supported yet; the inherited limit applies"
    } else if key.starts_with("Protect")
        || key.starts_with("Private")
        || key.starts_with("Restrict")
        || key.ends_with("Paths")
        || key.starts_with("SystemCall")
        || key.contains("Capabilit")
        || matches!(
            key,
            "NoNewPrivileges"
                | "LockPersonality"
                | "MemoryDenyWriteExecute"
                | "DynamicUser"
                | "RemoveIPC"
                | "KeyringMode"
                | "UMask"
                | "DevicePolicy"
                | "DeviceAllow"
                | "IPAddressDeny"
                | "IPAddressAllow"
        )
    {
        "sandboxing of plain services is not mapped yet; the service runs without it"
    } else if section == "Install" {
        "kennel has no enable/disable: every unit of the directory starts at kennel up"
    } else if matches!(key, "GuessMainPID" | "BusName") {
        "D-Bus services are not supported yet (GuessMainPID=: kennel finds a forking daemon from PIDFile= or as the only process left)"
    } else if matches!(key, "WatchdogSec" | "WatchdogSignal") {
        "the watchdog is not supported yet"
    } else {
        "kennel has no equivalent yet"
    }
}

/// `.target` -> "target", for messages.
pub(super) fn unit_type(name: &str) -> &str {
    name.rsplit_once('.').map_or("such", |(_, t)| t)
}

/// A memory size: bytes with an optional K, M, G, T (1024-based) suffix, or `infinity`
/// (`None`). Percentages are not supported.
pub(super) fn memory(v: &str) -> Result<Option<u64>, String> {
    if v == "infinity" || v.is_empty() {
        return Ok(None);
    }
    if v.ends_with('%') {
        return Err("a percentage of the RAM is not supported yet; write a size".into());
    }
    let (num, mult) = match v.char_indices().last() {
        Some((i, c @ ('K' | 'M' | 'G' | 'T'))) => (
            &v[..i],
            match c {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => 1 << 40,
            },
        ),
        _ => (v, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .map(Some)
        .ok_or_else(|| format!("invalid size {v:?}: write e.g. 512M"))
}

/// The `[Service]` directives that set `[resources]`.
pub(super) const RESOURCE_KEYS: &[&str] = &[
    "MemoryMax",
    "MemoryLimit",
    "CPUQuota",
    "TasksMax",
    "CPUWeight",
    "IOWeight",
    "AllowedCPUs",
];

/// Maps one of [`RESOURCE_KEYS`] onto `r`.
pub(super) fn resource(cx: &mut Cx, e: &Entry, r: &mut Resources) {
    let key = e.key.as_str();
    match key {
        "MemoryMax" | "MemoryLimit" => match memory(&e.value) {
            Ok(None) => r.memory_max = None,
            Ok(Some(b)) if b >= 64 * 1024 => {
                r.memory_max = Some(b);
                if key == "MemoryLimit" {
                    cx.approx(e, "as MemoryMax= (cgroup v1's limit)");
                }
            }
            Ok(Some(_)) => cx.err(
                e,
                format!("{key}=: kennel's memory_max must be at least 64K"),
            ),
            Err(m) => cx.warn(e, format!("{key}= is not honoured: {m}")),
        },
        "CPUQuota" => {
            if e.value.is_empty() {
                r.cpu_millis = None;
                return;
            }
            match e
                .value
                .strip_suffix('%')
                .and_then(|p| p.parse::<f64>().ok())
            {
                Some(p) if p > 0.0 && p <= 102_400.0 => {
                    r.cpu_millis = Some(((p * 10.0).round() as u32).max(1));
                }
                _ => cx.err(
                    e,
                    format!(
                        "CPUQuota=: expected a percentage such as 50%, found {:?}",
                        e.value
                    ),
                ),
            }
        }
        "TasksMax" => match e.value.as_str() {
            "infinity" | "" => r.pids_max = None,
            v if v.ends_with('%') => cx.not_honoured(
                e,
                "a percentage of the system's limit is not supported yet; write a number",
            ),
            v => match v.parse::<u64>() {
                Ok(n) if n >= 1 => r.pids_max = Some(n),
                _ => cx.err(
                    e,
                    format!("TasksMax=: expected a positive integer, found {v:?}"),
                ),
            },
        },
        "CPUWeight" | "IOWeight" => match e.value.parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => {
                if key == "CPUWeight" {
                    r.cpu_weight = Some(n);
                } else {
                    r.io_weight = Some(n);
                }
            }
            _ if e.value.is_empty() => {}
            _ => cx.not_honoured(
                e,
                format!("only 1..=10000 is supported, found {:?}", e.value),
            ),
        },
        "AllowedCPUs" => {
            let list = e.value.replace(' ', ",");
            match check_cpu_list(&list) {
                Ok(()) => r.cpuset = Some(list),
                Err(m) => cx.err(e, format!("AllowedCPUs=: {m}")),
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(memory("512M"), Ok(Some(512 << 20)));
        assert_eq!(memory("1G"), Ok(Some(1 << 30)));
        assert_eq!(memory("4096"), Ok(Some(4096)));
        assert_eq!(memory("infinity"), Ok(None));
        assert!(memory("50%").unwrap_err().contains("percentage"));
        assert!(memory("lots").is_err());
    }

    #[test]
    fn reasons_by_family() {
        assert!(not_yet_reason("Service", "ExecCondition").contains("always starts"));
        assert!(not_yet_reason("Service", "ProtectSystem").contains("sandboxing"));
        assert!(not_yet_reason("Unit", "ConditionVirtualization").contains("ConditionPathExists="));
        assert!(not_yet_reason("Service", "LimitNOFILE").contains("rlimits"));
        assert!(not_yet_reason("Install", "Alias").contains("enable/disable"));
        assert_eq!(unit_type("network.target"), "target");
    }
}
