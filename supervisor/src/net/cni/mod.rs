//! The runtime side of CNI 1.0 (what libcni does for containerd and podman): find a
//! network's configuration list ([`load`]), run its plugin chain for a container's network
//! namespace ([`add`], [`check`], [`del`]), and keep each ADD's configuration and result in a
//! cache so that DEL works after the configuration changed or kennel crashed.
//!
//! Synchronous and meant for a process of its own (`kennel cni add|check|del`, which the
//! daemon starts as a child): plugins are executables run with std::process, which the
//! daemon, with its one reaper, must not do itself.
//!
//! ```text
//! let paths = CniPaths::new("/etc/cni/net.d", vec!["/usr/lib/cni".into()], "/var/lib/kennel/cni");
//! let list = load(&paths, "mynet")?;
//! let result = add(&paths, &list, &Attachment { container_id: "web", netns, ifname: "eth0", .. })?;
//! ```

mod cache;
#[cfg(test)]
mod chain_tests;
pub mod command;
mod conf;
mod exec;
mod result;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

pub use cache::Entry as CachedAttachment;
pub use conf::ConfList;
pub use exec::PluginError;
// The result's parts, for the daemon's use of a result (addresses for /etc/hosts, status).
#[allow(unused_imports)]
pub use result::{CniResult, Dns, Interface, IpConfig, Route};

/// Where kennel looks for configurations and plugins, and keeps its cache.
#[derive(Debug, Clone)]
pub struct CniPaths {
    /// The configuration lists (`NAME.conflist`, `.conf`, `.json`); default /etc/cni/net.d.
    pub conf_dir: PathBuf,
    /// Where plugins are looked up, in order (also CNI_PATH); default /usr/lib/cni
    /// (Debian's containernetworking-plugins), /opt/cni/bin.
    pub plugin_dirs: Vec<PathBuf>,
    /// The ADD records (see the cache module); e.g. STATE/cni.
    pub cache_dir: PathBuf,
    /// How long one plugin call may take before it is killed.
    pub timeout: Duration,
}

/// The default configuration directory.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// The default plugin directories.
pub const DEFAULT_PLUGIN_DIRS: &[&str] = &["/usr/lib/cni", "/opt/cni/bin"];
/// The default time one plugin call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl CniPaths {
    pub fn new(conf_dir: PathBuf, plugin_dirs: Vec<PathBuf>, cache_dir: PathBuf) -> CniPaths {
        CniPaths {
            conf_dir,
            plugin_dirs,
            cache_dir,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// One container's attachment to a network.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// CNI_CONTAINERID: letters, digits, `_ . -`.
    pub container_id: &'a str,
    /// CNI_NETNS: the namespace's path (an nsfs bind mount); may be empty for DEL.
    pub netns: &'a Path,
    /// CNI_IFNAME: the interface to make in the container (e.g. eth0).
    pub ifname: &'a str,
    /// CNI_ARGS, as `K=V;K=V`.
    pub args: &'a [(String, String)],
    /// Capability arguments (e.g. `{"portMappings": [...]}`): each plugin gets, as its
    /// `runtimeConfig`, those of the capabilities its configuration declares true.
    pub capability_args: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// A configuration that is not valid; `msg` names the field.
    #[error("{}: {msg}", .file.display())]
    Conf { file: PathBuf, msg: String },
    #[error("no CNI network named {name:?} in {} (NAME.conflist, or a .conflist/.conf/.json whose \"name\" is NAME){}",
        .dir.display(),
        if .skipped.is_empty() { String::new() } else { format!("; files passed over: {}", .skipped.join("; ")) })]
    NotFound {
        name: String,
        dir: PathBuf,
        skipped: Vec<String>,
    },
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("network {network} ({}): plugin {plugin:?} not found in {dirs}", .file.display())]
    PluginNotFound {
        network: String,
        file: PathBuf,
        plugin: String,
        dirs: String,
    },
    #[error("network {network} ({}): plugin {plugin}: {command}: {source}", .file.display())]
    Plugin {
        network: String,
        file: PathBuf,
        plugin: String,
        command: &'static str,
        source: Box<PluginError>,
    },
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CNI cache {}: {msg}", .path.display())]
    CacheFormat { path: PathBuf, msg: String },
    #[error("network {network}: no result of an ADD of container {container_id} on {ifname} in the cache: CHECK needs one (was it added?)")]
    NoCachedResult {
        network: String,
        container_id: String,
        ifname: String,
    },
    #[error("network {network} ({}): cniVersion {version} has no CHECK (0.4.0 and later have)", .file.display())]
    CheckUnsupported {
        network: String,
        file: PathBuf,
        version: String,
    },
    #[error("{add}; the DEL that undid it failed too: {del}")]
    AddUndo {
        add: Box<CniError>,
        del: Box<CniError>,
    },
}

/// Finds and checks network `name`'s configuration in `paths.conf_dir`.
pub fn load(paths: &CniPaths, name: &str) -> Result<ConfList, CniError> {
    conf::load(&paths.conf_dir, name)
}

/// Runs the chain's ADD, in order, each plugin given the previous one's result; records the
/// configuration and the result in the cache. When a plugin fails, DEL runs for the whole
/// chain (in reverse, as the spec says a runtime should) and the cache record goes.
pub fn add(paths: &CniPaths, list: &ConfList, a: &Attachment) -> Result<CniResult, CniError> {
    check_attachment(a, true)?;
    let mut entry = cache::entry(list, a);
    cache::write(&paths.cache_dir, &entry)?;
    let mut prev: Option<Value> = None;
    for i in 0..list.plugins.len() {
        match call(paths, list, i, "ADD", prev.as_ref(), a) {
            Ok(out) => {
                prev = Some(out.ok_or_else(|| plugin_err(list, i, "ADD", PluginError::NoResult))?)
            }
            Err(add) => {
                let undo = run_del(paths, list, prev.as_ref(), a, true);
                return Err(match undo {
                    Ok(()) => {
                        cache::remove(&paths.cache_dir, &list.name, a.container_id, a.ifname)?;
                        add
                    }
                    Err(del) => CniError::AddUndo {
                        add: Box::new(add),
                        del: Box::new(del),
                    },
                });
            }
        }
    }
    let raw = prev.unwrap_or(Value::Null);
    let result = CniResult::from_raw(&raw).map_err(|m| {
        plugin_err(
            list,
            list.plugins.len() - 1,
            "ADD",
            PluginError::BadResult(m),
        )
    })?;
    entry.result = raw;
    cache::write(&paths.cache_dir, &entry)?;
    Ok(result)
}

/// Runs the chain's CHECK, in order, each plugin given the cached result of the ADD.
/// Nothing for a list with `disableCheck`; an error for versions before 0.4.0.
pub fn check(paths: &CniPaths, list: &ConfList, a: &Attachment) -> Result<(), CniError> {
    check_attachment(a, true)?;
    if !list.has_check() {
        return Err(CniError::CheckUnsupported {
            network: list.name.clone(),
            file: list.file.clone(),
            version: list.cni_version.clone(),
        });
    }
    if list.disable_check {
        return Ok(());
    }
    let no_result = || CniError::NoCachedResult {
        network: list.name.clone(),
        container_id: a.container_id.into(),
        ifname: a.ifname.into(),
    };
    let path = cache::path(&paths.cache_dir, &list.name, a.container_id, a.ifname);
    let entry = cache::read(&paths.cache_dir, &list.name, a.container_id, a.ifname)?
        .ok_or_else(no_result)?;
    if entry.result.is_null() {
        return Err(no_result());
    }
    let prev = result::convert_cached(&entry.result, &list.cni_version, &path)?;
    for i in 0..list.plugins.len() {
        call(paths, list, i, "CHECK", Some(&prev), a)?;
    }
    Ok(())
}

/// Runs the chain's DEL in reverse, with the configuration and the result the ADD cached
/// (the configuration file may have changed or gone since), then removes the record. With no
/// record, the current configuration is used; with neither, there is nothing to delete.
/// Idempotent, as the spec wants. An empty `netns` / `args` / null `capability_args` take
/// the cached ones.
pub fn del(paths: &CniPaths, name: &str, a: &Attachment) -> Result<(), CniError> {
    check_attachment(a, false)?;
    if let Err(why) = conf::check_name(name) {
        return Err(CniError::Invalid {
            what: "network name",
            value: name.into(),
            why,
        });
    }
    let cached = cache::read(&paths.cache_dir, name, a.container_id, a.ifname)?;
    let (list, prev, args, caps) = match &cached {
        Some(e) => {
            let path = cache::path(&paths.cache_dir, name, a.container_id, a.ifname);
            let text = serde_json::to_string(&e.config).unwrap_or_default();
            let list = ConfList::parse(&e.file, &text).map_err(|err| CniError::CacheFormat {
                path: path.clone(),
                msg: err.to_string(),
            })?;
            let prev = match e.result.is_null() {
                true => None,
                false => Some(result::convert_cached(&e.result, &list.cni_version, &path)?),
            };
            (list, prev, e.args.clone(), e.capability_args.clone())
        }
        None => match load(paths, name) {
            Ok(list) => (list, None, Vec::new(), Value::Null),
            Err(CniError::NotFound { .. }) => {
                tracing::info!(
                    network = name,
                    container = a.container_id,
                    "CNI DEL: no cached ADD and no configuration: nothing to delete"
                );
                return Ok(());
            }
            Err(e) => return Err(e),
        },
    };
    let mut a = a.clone();
    let netns = cached.as_ref().map(|e| e.netns.clone()).unwrap_or_default();
    if a.netns.as_os_str().is_empty() {
        a.netns = &netns;
    }
    if a.args.is_empty() {
        a.args = &args;
    }
    if a.capability_args.is_null() {
        a.capability_args = caps;
    }
    run_del(paths, &list, prev.as_ref(), &a, false)?;
    cache::remove(&paths.cache_dir, name, a.container_id, a.ifname)
}

/// The attachments the cache holds (for the cleanup after a crash).
pub fn cached(paths: &CniPaths) -> Vec<CachedAttachment> {
    cache::list(&paths.cache_dir)
}

/// DEL through the chain in reverse; prevResult only from 0.4.0 on (as libcni). Goes on
/// past a failing plugin (DEL is idempotent: a retry repeats the whole chain) and returns the
/// first error. `undo` (after a failed ADD) passes over plugins that are not installed: they
/// cannot have made anything.
fn run_del(
    paths: &CniPaths,
    list: &ConfList,
    prev: Option<&Value>,
    a: &Attachment,
    undo: bool,
) -> Result<(), CniError> {
    let prev = prev.filter(|_| list.has_check());
    let mut first = None;
    for i in (0..list.plugins.len()).rev() {
        match call(paths, list, i, "DEL", prev, a) {
            Ok(_) => {}
            Err(CniError::PluginNotFound { .. }) if undo => {}
            Err(e) => {
                tracing::warn!(network = %list.name, plugin = list.plugin_type(i), "CNI DEL: {e}");
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// The spec's rules for the container id and the interface name (they also name cache files).
fn check_attachment(a: &Attachment, needs_netns: bool) -> Result<(), CniError> {
    let invalid = |what, value: &str, why| CniError::Invalid {
        what,
        value: value.into(),
        why,
    };
    conf::check_name(a.container_id).map_err(|why| invalid("container id", a.container_id, why))?;
    let f = a.ifname;
    if f.is_empty()
        || f.len() > 15
        || f == "."
        || f == ".."
        || f.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(invalid(
            "interface name",
            f,
            "must be 1 to 15 characters, not . or .., without '/', ':' or spaces",
        ));
    }
    if needs_netns && a.netns.as_os_str().is_empty() {
        return Err(invalid(
            "network namespace path",
            "",
            "ADD and CHECK need one",
        ));
    }
    Ok(())
}

fn plugin_err(list: &ConfList, i: usize, command: &'static str, source: PluginError) -> CniError {
    CniError::Plugin {
        network: list.name.clone(),
        file: list.file.clone(),
        plugin: list.plugin_type(i).into(),
        command,
        source: Box::new(source),
    }
}

/// Plugin `i`'s configuration as the spec has the runtime hand it over: its own keys, with
/// the list's `name` and `cniVersion`, `prevResult`, and `runtimeConfig` from the capability
/// arguments it declares.
fn plugin_conf(list: &ConfList, i: usize, prev: Option<&Value>, caps: &Value) -> Value {
    let mut c = list.plugins[i].clone();
    c.insert("name".into(), list.name.clone().into());
    c.insert("cniVersion".into(), list.cni_version.clone().into());
    if let Some(p) = prev {
        c.insert("prevResult".into(), p.clone());
    }
    let mut rc = Map::new();
    if let (Some(Value::Object(declared)), Value::Object(given)) = (c.get("capabilities"), caps) {
        for (k, on) in declared {
            if on == &Value::Bool(true) {
                if let Some(v) = given.get(k) {
                    rc.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if !rc.is_empty() {
        c.insert("runtimeConfig".into(), Value::Object(rc));
    }
    Value::Object(c)
}

/// Runs one plugin; its output converted to the list's version.
fn call(
    paths: &CniPaths,
    list: &ConfList,
    i: usize,
    command: &'static str,
    prev: Option<&Value>,
    a: &Attachment,
) -> Result<Option<Value>, CniError> {
    let plugin = list.plugin_type(i);
    let exe = paths
        .plugin_dirs
        .iter()
        .map(|d| d.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| CniError::PluginNotFound {
            network: list.name.clone(),
            file: list.file.clone(),
            plugin: plugin.into(),
            dirs: paths
                .plugin_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let conf = plugin_conf(list, i, prev, &a.capability_args);
    let args = a
        .args
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";");
    let path = std::env::join_paths(&paths.plugin_dirs)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let env = exec::Env {
        command,
        container_id: a.container_id,
        netns: a.netns,
        ifname: a.ifname,
        args: &args,
        path: &path,
        timeout: paths.timeout,
    };
    let started = std::time::Instant::now();
    let out = exec::run(&exe, &conf, &env).map_err(|e| plugin_err(list, i, command, e))?;
    tracing::debug!(network = %list.name, plugin, command, took = ?started.elapsed(), "CNI plugin");
    match (command, out) {
        ("ADD", Some(v)) => result::convert(&v, &list.cni_version)
            .map(Some)
            .map_err(|m| plugin_err(list, i, command, PluginError::BadResult(m))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plugin_gets_name_version_prev_result_and_its_capabilities_only() {
        let list = ConfList::parse(
            Path::new("/n.conflist"),
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},
               {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]}"#,
        )
        .unwrap();
        let caps =
            json!({"portMappings":[{"hostPort":8080}],"bandwidth":{"x":1},"ips":["10.0.0.2"]});
        let first = plugin_conf(&list, 0, None, &caps);
        assert_eq!(
            first,
            json!({"type":"bridge","name":"n","cniVersion":"1.0.0"})
        );
        let prev = json!({"cniVersion":"1.0.0"});
        let second = plugin_conf(&list, 1, Some(&prev), &caps);
        assert_eq!(second["prevResult"], prev);
        assert_eq!(
            second["runtimeConfig"],
            json!({"portMappings":[{"hostPort":8080}]})
        );
    }

    #[test]
    fn container_ids_and_interface_names_are_checked() {
        let ok = Attachment {
            container_id: "web-1",
            netns: Path::new("/run/netns/x"),
            ifname: "eth0",
            args: &[],
            capability_args: Value::Null,
        };
        assert!(check_attachment(&ok, true).is_ok());
        for (id, ifname) in [
            ("../x", "eth0"),
            ("", "eth0"),
            ("a", "a/b"),
            ("a", "0123456789abcdef"),
            ("a", ""),
        ] {
            let a = Attachment {
                container_id: id,
                ifname,
                ..ok.clone()
            };
            assert!(check_attachment(&a, true).is_err(), "{id:?} {ifname:?}");
        }
        let no_netns = Attachment {
            netns: Path::new(""),
            ..ok.clone()
        };
        assert!(check_attachment(&no_netns, true).is_err());
        assert!(check_attachment(&no_netns, false).is_ok());
    }
}
