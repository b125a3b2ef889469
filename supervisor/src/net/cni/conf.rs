//! Network configurations: finding `NAME.conflist` (or a `.conf`/`.json` whose "name" is
//! NAME) in the configuration directory, and checking it, with messages that name the file
//! and the field.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::CniError;

/// The CNI versions kennel speaks to plugins (those of Debian 12's plugins, and what libcni
/// accepts of the 0.3/0.4 generation).
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// A network configuration list, checked: the plugin chain of one network.
#[derive(Debug, Clone)]
pub struct ConfList {
    /// The network's name (the list's "name").
    pub name: String,
    /// The version every plugin of the chain is called with.
    pub cni_version: String,
    /// `disableCheck`: CHECK does nothing.
    pub disable_check: bool,
    /// Each plugin's configuration as written (with its "type").
    pub plugins: Vec<Map<String, Value>>,
    /// Where it was read from (kept in the cache beside the configuration).
    pub file: PathBuf,
    /// The document as read (a `.conf` as the list libcni makes of it).
    pub raw: Value,
}

impl ConfList {
    /// The plugin type (executable name) of plugin `i`.
    pub fn plugin_type(&self, i: usize) -> &str {
        self.plugins[i]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Whether the list's version has CHECK and a prevResult on DEL (0.4.0 and later).
    pub fn has_check(&self) -> bool {
        self.cni_version != "0.3.0" && self.cni_version != "0.3.1"
    }

    /// Parses and checks a configuration list (`.conflist`) or a single configuration
    /// (`.conf`, `.json`, turned into a list of one plugin as libcni does).
    pub fn parse(file: &Path, text: &str) -> Result<ConfList, CniError> {
        let bad = |msg: String| CniError::Conf {
            file: file.to_path_buf(),
            msg,
        };
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "not JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(top) = &doc else {
            return Err(bad("not a JSON object".into()));
        };
        let name = match top.get("name") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(bad("field \"name\": not a string".into())),
            None => return Err(bad("field \"name\": missing (the network's name)".into())),
        };
        if let Err(why) = check_name(&name) {
            return Err(bad(format!("field \"name\": {name:?} {why}")));
        }
        let cni_version = version_of(top).map_err(bad)?;
        let disable_check = match top.get("disableCheck") {
            None => false,
            Some(Value::Bool(b)) => *b,
            // libcni also takes the strings "true"/"false".
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(bad(format!(
                    "field \"disableCheck\": {v} is not true or false"
                )))
            }
        };
        let (plugins, raw) = match top.get("plugins") {
            Some(Value::Array(list)) => {
                if list.is_empty() {
                    return Err(bad(
                        "field \"plugins\": empty (a list needs at least one plugin)".into(),
                    ));
                }
                let mut plugins = Vec::with_capacity(list.len());
                for (i, p) in list.iter().enumerate() {
                    let Value::Object(p) = p else {
                        return Err(bad(format!("field \"plugins[{i}]\": not a JSON object")));
                    };
                    check_plugin(p, &format!("plugins[{i}].")).map_err(bad)?;
                    plugins.push(p.clone());
                }
                (plugins, doc.clone())
            }
            Some(_) => return Err(bad("field \"plugins\": not a list".into())),
            // A single plugin's configuration (a .conf).
            None => {
                if !top.contains_key("type") {
                    return Err(bad(
                        "neither \"plugins\" (a configuration list) nor \"type\" (a single \
                         plugin's configuration)"
                            .into(),
                    ));
                }
                check_plugin(top, "").map_err(bad)?;
                let raw = serde_json::json!({
                    "cniVersion": cni_version, "name": name, "plugins": [doc.clone()],
                });
                (vec![top.clone()], raw)
            }
        };
        Ok(ConfList {
            name,
            cni_version,
            disable_check,
            plugins,
            file: file.to_path_buf(),
            raw,
        })
    }

    /// Reads and checks one file.
    pub fn from_file(file: &Path) -> Result<ConfList, CniError> {
        let text = std::fs::read_to_string(file).map_err(|source| CniError::Io {
            what: "read",
            path: file.to_path_buf(),
            source,
        })?;
        ConfList::parse(file, &text)
    }
}

/// The version to call the plugins with: "cniVersion", or (CNI 1.1) the highest of
/// "cniVersions" that kennel speaks.
fn version_of(top: &Map<String, Value>) -> Result<String, String> {
    if let Some(Value::Array(versions)) = top.get("cniVersions") {
        let best = SUPPORTED_VERSIONS
            .iter()
            .rev()
            .find(|v| versions.iter().any(|x| x.as_str() == Some(**v)));
        return match best {
            Some(v) => Ok(v.to_string()),
            None => Err(format!(
                "field \"cniVersions\": none of {} is supported (kennel speaks {})",
                Value::Array(versions.clone()),
                SUPPORTED_VERSIONS.join(", ")
            )),
        };
    }
    match top.get("cniVersion") {
        Some(Value::String(v)) if SUPPORTED_VERSIONS.contains(&v.as_str()) => Ok(v.clone()),
        Some(Value::String(v)) => Err(format!(
            "field \"cniVersion\": {v:?} is not supported (kennel speaks {})",
            SUPPORTED_VERSIONS.join(", ")
        )),
        Some(_) => Err("field \"cniVersion\": not a string".into()),
        None => Err("field \"cniVersion\": missing (e.g. \"1.0.0\")".into()),
    }
}

/// A plugin configuration's own fields: "type" (an executable's name), "capabilities".
fn check_plugin(p: &Map<String, Value>, at: &str) -> Result<(), String> {
    match p.get("type") {
        Some(Value::String(t)) if t.is_empty() => Err(format!("field \"{at}type\": empty")),
        Some(Value::String(t)) if t.contains('/') || t == "." || t == ".." => Err(format!(
            "field \"{at}type\": {t:?} is not a plugin name (a file name in the plugin \
             directories, without '/')"
        )),
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(format!("field \"{at}type\": not a string")),
        None => Err(format!(
            "field \"{at}type\": missing (the plugin to run, e.g. \"bridge\")"
        )),
    }?;
    match p.get("capabilities") {
        None => Ok(()),
        Some(Value::Object(c)) => match c.iter().find(|(_, v)| !v.is_boolean()) {
            Some((k, _)) => Err(format!("field \"{at}capabilities.{k}\": not true or false")),
            None => Ok(()),
        },
        Some(_) => Err(format!(
            "field \"{at}capabilities\": not an object of true/false"
        )),
    }
}

/// The spec's rule for network names (they also name cache files): `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err("is empty"),
        Some(c) if !c.is_ascii_alphanumeric() => Err("must start with a letter or digit"),
        _ if chars.any(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(c))) => {
            Err("may hold only letters, digits, '_', '.' and '-'")
        }
        _ => Ok(()),
    }
}

/// Finds network `name` in `dir`: `NAME.conflist` first, then any `.conflist`, then any
/// `.conf` / `.json` whose "name" is `name` (in file-name order, as libcni does). Files that
/// do not parse are passed over, and named in the error when nothing matches.
pub fn load(dir: &Path, name: &str) -> Result<ConfList, CniError> {
    if let Err(why) = check_name(name) {
        return Err(CniError::Invalid {
            what: "network name",
            value: name.to_string(),
            why,
        });
    }
    let direct = dir.join(format!("{name}.conflist"));
    if direct.exists() {
        let list = ConfList::from_file(&direct)?;
        if list.name == name {
            return Ok(list);
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|source| CniError::Io {
        what: "read directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let ext = |p: &Path, want: &[&str]| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| want.contains(&e))
    };
    let mut skipped = Vec::new();
    let lists = files.iter().filter(|p| ext(p, &["conflist"]));
    let singles = files.iter().filter(|p| ext(p, &["conf", "json"]));
    for file in lists.chain(singles) {
        match ConfList::from_file(file) {
            Ok(list) if list.name == name => return Ok(list),
            Ok(_) => {}
            Err(e) => skipped.push(e.to_string()),
        }
    }
    Err(CniError::NotFound {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfList, String> {
        ConfList::parse(Path::new("/x/n.conflist"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_list_is_read_with_its_plugins() {
        let l = parse(
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},
               {"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        assert_eq!(l.name, "n");
        assert_eq!(l.plugin_type(1), "portmap");
        assert!(l.has_check());
    }

    #[test]
    fn a_single_conf_becomes_a_list_of_one() {
        let l =
            parse(r#"{"cniVersion":"0.3.1","name":"n","type":"bridge","bridge":"b0"}"#).unwrap();
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(l.raw["plugins"][0]["bridge"], "b0");
        assert!(!l.has_check());
    }

    #[test]
    fn cni_versions_picks_the_highest_spoken() {
        let l = parse(
            r#"{"cniVersions":["0.4.0","1.0.0","1.1.0"],"name":"n","plugins":[{"type":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(l.cni_version, "1.0.0");
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        for (text, want) in [
            ("{", "/x/n.conflist: not JSON"),
            (
                r#"{"cniVersion":"1.0.0","plugins":[]}"#,
                "field \"name\": missing",
            ),
            (
                r#"{"cniVersion":"9.9.9","name":"n","plugins":[{"type":"x"}]}"#,
                "field \"cniVersion\": \"9.9.9\" is not supported",
            ),
            (
                r#"{"name":"n","plugins":[{"type":"x"}]}"#,
                "field \"cniVersion\": missing",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
                "field \"plugins\": empty",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"x"},{}]}"#,
                "field \"plugins[1].type\": missing",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../x"}]}"#,
                "field \"plugins[0].type\": \"../x\" is not a plugin name",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"x","capabilities":{"a":1}}]}"#,
                "field \"plugins[0].capabilities.a\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"a/b","plugins":[{"type":"x"}]}"#,
                "field \"name\": \"a/b\" may hold only",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n"}"#,
                "neither \"plugins\"",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
