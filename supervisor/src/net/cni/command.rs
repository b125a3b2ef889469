//! `kennel cni add|check|del` (hidden): one CNI operation in a process of its own, which
//! the daemon starts as a child (it must not run plugins itself) and tests drive. ADD prints
//! the result (CNI 1.0.0 JSON) on stdout; errors go to stderr, exit 1.

use std::path::PathBuf;

use crate::cli::{CniArgs, CniCmd, CniOpArgs};
use crate::commands::{EXIT_FAILED, EXIT_OK};

use super::{Attachment, CniPaths};

pub fn main(a: CniArgs) -> i32 {
    let (op, o) = match a.command {
        CniCmd::Add(o) => ("add", o),
        CniCmd::Check(o) => ("check", o),
        CniCmd::Del(o) => ("del", o),
        CniCmd::Ls(l) => return ls(&l.cache_dir),
    };
    match run(op, &o) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("kennel: cni {op}: {e}");
            EXIT_FAILED
        }
    }
}

fn run(op: &str, o: &CniOpArgs) -> Result<(), String> {
    let args = o
        .arg
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() && !kv.contains(';') => {
                Ok((k.to_string(), v.to_string()))
            }
            _ => Err(format!("--arg {kv:?}: not KEY=VALUE (without ';')")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let capability_args = match &o.capability_args {
        None => serde_json::Value::Null,
        Some(text) => match serde_json::from_str(text) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) => return Err("--capability-args: not a JSON object".into()),
            Err(e) => return Err(format!("--capability-args: not JSON: {e}")),
        },
    };
    let plugin_dirs = if o.plugin_dir.is_empty() {
        super::DEFAULT_PLUGIN_DIRS
            .iter()
            .map(PathBuf::from)
            .collect()
    } else {
        o.plugin_dir.clone()
    };
    let mut paths = CniPaths::new(o.conf_dir.clone(), plugin_dirs, o.cache_dir.clone());
    paths.timeout = o.timeout;
    let netns = o.netns.clone().unwrap_or_default();
    let att = Attachment {
        container_id: &o.container_id,
        netns: &netns,
        ifname: &o.ifname,
        args: &args,
        capability_args,
    };
    let err = |e: super::CniError| e.to_string();
    match op {
        "add" => {
            let list = super::load(&paths, &o.network).map_err(err)?;
            let result = super::add(&paths, &list, &att).map_err(err)?;
            println!("{}", serde_json::to_string(&result).unwrap_or_default());
        }
        "check" => {
            let list = super::load(&paths, &o.network).map_err(err)?;
            super::check(&paths, &list, &att).map_err(err)?;
        }
        _ => super::del(&paths, &o.network, &att).map_err(err)?,
    }
    Ok(())
}

/// `kennel cni ls`: the cache's records, without their configurations.
fn ls(cache_dir: &std::path::Path) -> i32 {
    let paths = CniPaths::new(PathBuf::new(), Vec::new(), cache_dir.to_path_buf());
    for e in super::cached(&paths) {
        let addresses: Vec<String> = super::CniResult::from_raw(&e.result)
            .map(|r| {
                r.addresses(&e.ifname)
                    .iter()
                    .map(|(ip, len)| format!("{ip}/{len}"))
                    .collect()
            })
            .unwrap_or_default();
        let row = serde_json::json!({
            "network": e.network, "containerId": e.container_id, "ifName": e.ifname,
            "netns": e.netns, "file": e.file, "addresses": addresses,
        });
        println!("{row}");
    }
    EXIT_OK
}
