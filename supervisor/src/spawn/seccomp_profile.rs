//! Seccomp profiles in the OCI/Docker JSON format (`seccomp = "/path/profile.json"`),
//! compiled by the daemon into BPF programs that the helper installs.
//!
//! A profile has a default action and groups of syscalls with their action (and
//! optional argument conditions, and `includes`/`excludes` by capability). Since one
//! seccompiler filter has a single match action, a profile becomes a stack of filters,
//! which the kernel combines by taking the most restrictive answer: one filter whose
//! listed syscalls are allowed and everything else gets the default action, and one per
//! other action whose listed syscalls get that action and everything else is allowed.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

/// One compiled filter, as `(code, jt, jf, k)` instructions (serializable for the spec).
pub type Program = Vec<(u16, u8, u8, u32)>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    args: Vec<Arg>,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// A profile that cannot be read or compiled.
#[derive(Debug, thiserror::Error)]
pub enum SeccompProfileError {
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("unsupported action {0}")]
    Action(String),
    #[error("unsupported argument operator {0}")]
    Operator(String),
    /// seccompiler refused the filter built from the profile.
    #[error(transparent)]
    Compile(#[from] seccompiler::Error),
    #[error("no program")]
    NoProgram,
}

fn action(name: &str, errno: Option<u32>) -> Result<Value, SeccompProfileError> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => json!("allow"),
        "SCMP_ACT_ERRNO" => json!({ "errno": errno.unwrap_or(libc::EPERM as u32) }),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => json!("kill_thread"),
        "SCMP_ACT_KILL_PROCESS" => json!("kill_process"),
        "SCMP_ACT_TRAP" => json!("trap"),
        "SCMP_ACT_LOG" => json!("log"),
        "SCMP_ACT_TRACE" => json!({ "trace": errno.unwrap_or(0) }),
        other => return Err(SeccompProfileError::Action(other.to_string())),
    })
}

fn condition(a: &Arg) -> Result<Value, SeccompProfileError> {
    let op = match a.op.as_str() {
        "SCMP_CMP_EQ" => json!("eq"),
        "SCMP_CMP_NE" => json!("ne"),
        "SCMP_CMP_LT" => json!("lt"),
        "SCMP_CMP_LE" => json!("le"),
        "SCMP_CMP_GT" => json!("gt"),
        "SCMP_CMP_GE" => json!("ge"),
        "SCMP_CMP_MASKED_EQ" => json!({ "masked_eq": a.value }),
        other => return Err(SeccompProfileError::Operator(other.to_string())),
    };
    let val = if a.op == "SCMP_CMP_MASKED_EQ" {
        a.value_two
    } else {
        a.value
    };
    Ok(json!({ "index": a.index, "type": "qword", "op": op, "val": val }))
}

fn arch() -> seccompiler::TargetArch {
    if cfg!(target_arch = "aarch64") {
        seccompiler::TargetArch::aarch64
    } else {
        seccompiler::TargetArch::x86_64
    }
}

fn arch_name() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else {
        "SCMP_ARCH_X86_64"
    }
}

/// Whether seccompiler knows `name` on this architecture (profiles list syscalls of
/// every architecture; the unknown ones are skipped as libseccomp does).
fn known(name: &str) -> bool {
    let doc = json!({ "t": { "mismatch_action": "allow", "filter_action": "trap", "filter": [{ "syscall": name }] } });
    seccompiler::compile_from_json(doc.to_string().as_bytes(), arch()).is_ok()
}

fn compile(doc: Value) -> Result<Program, SeccompProfileError> {
    let mut map = seccompiler::compile_from_json(doc.to_string().as_bytes(), arch())?;
    let prog = map.remove("t").ok_or(SeccompProfileError::NoProgram)?;
    Ok(prog
        .into_iter()
        .map(|i| (i.code, i.jt, i.jf, i.k))
        .collect())
}

/// Compile the profile at `path` for a container with capability set `caps` (names
/// without `CAP_`).
pub fn compile_file(path: &Path, caps: &[String]) -> Result<Vec<Program>, SeccompProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeccompProfileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let p: Profile = serde_json::from_str(&text).map_err(|source| SeccompProfileError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let has = |c: &String| caps.iter().any(|x| format!("CAP_{x}") == *c || x == c);
    let default = action(&p.default_action, p.default_errno_ret)?;
    let mut listed: Vec<Value> = Vec::new();
    let mut by_action: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
    let mut seen = HashSet::new();
    for g in &p.syscalls {
        if !g.includes.caps.iter().all(has) || g.excludes.caps.iter().any(has) {
            continue;
        }
        if !g.includes.arches.is_empty() && !g.includes.arches.iter().any(|a| a == arch_name()) {
            continue;
        }
        let act = action(&g.action, g.errno_ret.or(p.default_errno_ret))?;
        let args = g
            .args
            .iter()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()?;
        for name in g.names.iter().chain(g.name.iter()) {
            if !seen.contains(name) && !known(name) {
                continue;
            }
            seen.insert(name.clone());
            let entry = if args.is_empty() {
                json!({ "syscall": name })
            } else {
                json!({ "syscall": name, "args": args })
            };
            listed.push(entry.clone());
            if act != json!("allow") {
                let key = act.to_string();
                by_action
                    .entry(key)
                    .or_insert_with(|| (act.clone(), Vec::new()))
                    .1
                    .push(entry);
            }
        }
    }
    let mut progs = Vec::new();
    if default != json!("allow") {
        progs.push(compile(json!({ "t": { "mismatch_action": default, "filter_action": "allow", "filter": listed } }))?);
    }
    for (_, (act, entries)) in by_action {
        progs.push(compile(
            json!({ "t": { "mismatch_action": "allow", "filter_action": act, "filter": entries } }),
        )?);
    }
    Ok(progs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_an_allowlist_profile_with_conditions_and_caps() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.json");
        std::fs::write(
            &p,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[
                {"names":["read","write","not_a_syscall"],"action":"SCMP_ACT_ALLOW"},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
                {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                {"names":["reboot"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
        )
        .unwrap();
        let progs = compile_file(&p, &["CHOWN".into()]).unwrap();
        assert_eq!(progs.len(), 2);
        assert!(compile_file(Path::new("/nonexistent.json"), &[])
            .unwrap_err()
            .to_string()
            .starts_with("read /nonexistent.json: "));
    }
}
