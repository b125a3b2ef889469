//! systemd unit files read into kennel's unit model (docs/systemd.md).
//!
//! - [`syntax`]: systemd's unit file syntax: sections, assignments, comments, continuations,
//!   booleans, time spans, quoted word lists.
//! - [`spec`]: specifiers (`%i`, `%n`, ...).
//! - [`exec`]: `Exec*=` command lines: prefixes, words, `$VAR` / `${VAR}`.
//! - `service`: a `.service` (and its drop-ins) mapped onto a [`Unit`], every directive
//!   honoured, approximated (a warning), not honoured (a warning) or refused (an error).
//! - [`read_service`]: one `.service` file with its drop-ins; [`to_toml`]: the equivalent
//!   TOML unit, for `kennel import-systemd`.
//!
//! A unit `NAME.service` is the kennel unit `NAME`; a template `NAME@.service` is not a
//! unit, its instances are: `NAME@INSTANCE.service`, a symlink to it in the unit directory.

mod directives;
pub mod exec;
mod service;
mod socket;
pub mod spec;
pub mod syntax;
mod toml_out;

use std::fs;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::model::Unit;
pub(crate) use service::Mapped;
pub(crate) use socket::SocketFile;
pub use toml_out::to_toml;

/// systemd unit types kennel refuses for now (read, never silently ignored).
pub const REFUSED_TYPES: &[&str] = &["timer"];

/// What a file of the unit directory is, by its name and (for symlinks) its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A service (a file, or an instance of a template).
    Service,
    /// A template, `NAME@.service`: not a unit of its own.
    Template,
    /// A symlink to another service of another name: systemd's alias, not a unit.
    Alias(String),
    /// A symlink to /dev/null: masked.
    Masked,
}

/// Tells what the `.service` file at `path` is.
pub(crate) fn kind(path: &Path) -> Kind {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if file_name.ends_with("@.service") {
        return Kind::Template;
    }
    let Ok(target) = fs::read_link(path) else {
        return Kind::Service;
    };
    if target == Path::new("/dev/null") {
        return Kind::Masked;
    }
    let target_name = target.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if target_name == file_name {
        return Kind::Service;
    }
    // getty@tty1.service -> getty@.service: an instance of the template.
    if let (Some((prefix, _)), Some(t)) = (
        file_name.split_once('@'),
        target_name.strip_suffix("@.service"),
    ) {
        if prefix == t {
            return Kind::Service;
        }
    }
    Kind::Alias(target_name.to_string())
}

/// The host name, for `%H` (None if it cannot be read).
fn hostname() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The drop-in files of the service at `path`, in systemd's order: the `*.conf` files of
/// `NAME@.service.d/` (for an instance, its template's) and `NAME.service.d/` beside it,
/// sorted by file name (a later one overrides an earlier one); a file name in both is the
/// instance's.
pub fn drop_ins(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(file_name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
    else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    if let Some((prefix, rest)) = file_name.split_once('@') {
        if let Some((_, ty)) = rest.rsplit_once('.') {
            let template = format!("{prefix}@.{ty}.d");
            if format!("{file_name}.d") != template {
                dirs.push(dir.join(template));
            }
        }
    }
    dirs.push(dir.join(format!("{file_name}.d")));
    let mut by_name: std::collections::BTreeMap<std::ffi::OsString, PathBuf> = Default::default();
    for d in dirs {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for entry in rd.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "conf") && !p.is_dir() {
                by_name.insert(entry.file_name(), p);
            }
        }
    }
    by_name.into_values().collect()
}

/// The assignments of the systemd file at `path` and its drop-ins, in order, with the
/// problems of their syntax; `Err` when the file itself cannot be read.
fn read_entries(path: &Path) -> Result<(Vec<syntax::Entry>, Vec<Diagnostic>), Diagnostic> {
    let mut diags = Vec::new();
    let mut entries = Vec::new();
    let text = fs::read_to_string(path)
        .map_err(|e| Diagnostic::at_start(path, format!("cannot read the file: {e}")))?;
    syntax::parse(path, &text, &mut entries, &mut diags);
    for d in drop_ins(path) {
        match fs::read_to_string(&d) {
            Ok(t) => syntax::parse(&d, &t, &mut entries, &mut diags),
            Err(e) => diags.push(Diagnostic::at_start(
                &d,
                format!("cannot read the drop-in: {e}"),
            )),
        }
    }
    Ok((entries, diags))
}

/// Reads the `.socket` file `NAME.socket` at `path` (and its drop-ins): the sockets of the
/// service it names.
pub(crate) fn read_socket(name: &str, path: &Path) -> SocketFile {
    let (entries, mut diags) = match read_entries(path) {
        Ok(found) => found,
        Err(d) => (Vec::new(), vec![d]),
    };
    let mut file = socket::map(name, path, &entries);
    if diags.iter().any(|d| !d.warning) {
        file.sockets.clear();
    }
    diags.append(&mut file.diags);
    file.diags = diags;
    file
}

/// Reads the service `name` (kennel's: `getty@tty1`) from `path` and its drop-ins, and maps
/// it onto a unit.
pub(crate) fn read_service(name: &str, path: &Path) -> Mapped {
    let (entries, mut diags) = match read_entries(path) {
        Ok(found) => found,
        Err(d) => {
            return Mapped {
                unit: None,
                diags: vec![d],
                requires: Vec::new(),
                after: Vec::new(),
                before: Vec::new(),
            }
        }
    };
    let names = spec::Names {
        full: format!("{name}.service"),
        hostname: hostname(),
    };
    let mut mapped = service::map(name, path, &entries, &names, &|p: &Path| p.exists());
    if diags.iter().any(|d| !d.warning) {
        mapped.unit = None;
    }
    diags.append(&mut mapped.diags);
    mapped.diags = diags;
    mapped
}

/// The `.socket` files directly in `dir` whose service is `service` (by `Service=` or by
/// name), read, in name order.
fn socket_files(dir: &Path, service: &str) -> Vec<SocketFile> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "socket") && !p.is_dir())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            let f = read_socket(&stem, &p);
            (f.service == service).then_some(f)
        })
        .collect()
}

/// The service a `.socket` file `path` names (`Service=`, or the one of its name), as the
/// path of its `.service` file beside it: what `kennel import-systemd` imports for it.
pub fn socket_service(path: &Path) -> Result<PathBuf, Vec<Diagnostic>> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let f = read_socket(stem, path);
    if f.diags.iter().any(|d| !d.warning) {
        return Err(f.diags);
    }
    Ok(path.with_file_name(format!("{}.service", f.service)))
}

/// `kennel import-systemd`'s reading of one `.service` file (with its drop-ins, and the
/// `.socket` files beside it that name it): the unit and its warnings, or every problem
/// (errors and warnings).
pub fn import_service(path: &Path) -> Result<(Unit, Vec<Diagnostic>), Vec<Diagnostic>> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some(name) = file_name.strip_suffix(".service") else {
        return Err(vec![Diagnostic::at_start(
            path,
            "not a .service or .socket file (only services and their sockets are supported yet)",
        )]);
    };
    if name.ends_with('@') {
        return Err(vec![Diagnostic::at_start(
            path,
            format!("{file_name} is a template: import an instance, NAME@INSTANCE.service (a symlink to the template)"),
        )]);
    }
    let mut mapped = read_service(name, path);
    // The .socket files beside it that are its own.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let sockets = socket_files(dir.unwrap_or(Path::new(".")), name);
    let mut attached = Vec::new();
    for f in sockets {
        mapped.diags.extend(f.diags);
        attached.extend(f.sockets.into_iter().map(|(s, _, _)| s));
    }
    crate::diag::sort_diagnostics(&mut mapped.diags);
    if mapped.diags.iter().any(|d| !d.warning) {
        mapped.unit = None;
    }
    match mapped.unit {
        Some(mut unit) => {
            if !attached.is_empty() {
                unit.sockets = attached;
                unit.service.activate = crate::model::Activate::Socket;
            }
            // Ordering and dependencies on services, as written (import has no unit set).
            for d in mapped.after.iter().chain(&mapped.requires) {
                if !unit.service.after.contains(&d.name) {
                    unit.service.after.push(d.name.clone());
                }
            }
            for d in &mapped.before {
                mapped.diags.push(Diagnostic::warning(
                    d.file.as_deref().unwrap_or(path),
                    d.line,
                    d.col,
                    format!(
                        "Before={}.service: write after = [\"{name}\"] in {}'s unit",
                        d.name, d.name
                    ),
                ));
            }
            Ok((unit, mapped.diags))
        }
        None => Err(mapped.diags),
    }
}
