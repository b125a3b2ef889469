//! Loading unit files and directories into a [`UnitSet`]: parse every file, then check
//! across units (duplicate names, unknown dependencies, cycles), reporting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::diag::{sort_diagnostics, Diagnostic};
use crate::graph::{cycles, Graph};
use crate::model::{Network, Unit};
use crate::name::check_unit_name;
use crate::parse::{parse_file, DepRef};
use crate::set::UnitSet;
use crate::suggest::did_you_mean;

/// One unit file read and parsed on its own.
struct Loaded {
    name: String,
    path: PathBuf,
    unit: Option<Unit>,
    deps: Vec<DepRef>,
}

/// Loads the units of one directory (see [`load_paths`]).
pub fn load_dir(dir: &Path) -> Result<UnitSet, Vec<Diagnostic>> {
    load_paths(&[dir.to_path_buf()])
}

/// Loads units from `paths`, each a directory (every `*.toml` file directly in it, in name
/// order; other files are ignored; an empty directory gives no units) or a unit file (any
/// extension; the name is the file stem). Then checks across all the units: names are
/// unique, every `after`/`requires` entry names a loaded unit, there is no cycle.
///
/// On failure, returns every problem of every file, sorted by file, line and column.
/// Problems with a whole file (unreadable, bad name, duplicate) are placed at 1:1.
pub fn load_paths(paths: &[PathBuf]) -> Result<UnitSet, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let files = unit_files(paths, &mut diags);
    let mut loaded: Vec<Loaded> = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in files {
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            diags.push(Diagnostic::at_start(
                &path,
                format!(
                    "invalid unit name {:?}",
                    path.file_stem().unwrap_or_default()
                ),
            ));
            continue;
        };
        if let Err(e) = check_unit_name(&name) {
            diags.push(Diagnostic::at_start(&path, e));
            continue;
        }
        if let Some(first) = seen.get(&name) {
            let message = format!(
                "duplicate unit {name:?}: also defined in {}",
                first.display()
            );
            diags.push(Diagnostic::at_start(&path, message));
            continue;
        }
        seen.insert(name.clone(), path.clone());
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                diags.push(Diagnostic::at_start(
                    &path,
                    format!("cannot read the file: {e}"),
                ));
                continue;
            }
        };
        let parsed = parse_file(&name, &path, &text);
        diags.extend(parsed.diags);
        loaded.push(Loaded {
            name,
            path,
            unit: parsed.unit,
            deps: parsed.deps,
        });
    }
    check_dependencies(&loaded, &mut diags);
    if !diags.is_empty() {
        sort_diagnostics(&mut diags);
        return Err(diags);
    }
    let units = loaded
        .into_iter()
        .filter_map(|l| l.unit)
        .map(|u| (u.name.clone(), u))
        .collect();
    Ok(UnitSet::from_validated(units))
}

/// The unit files named by `paths`, directories expanded; the same file named twice is
/// kept once.
fn unit_files(paths: &[PathBuf], diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => match dir_units(path) {
                Ok(mut found) => files.append(&mut found),
                Err(e) => diags.push(Diagnostic::at_start(
                    path,
                    format!("cannot read the directory: {e}"),
                )),
            },
            Ok(_) => files.push(path.clone()),
            Err(e) => diags.push(Diagnostic::at_start(path, format!("cannot read: {e}"))),
        }
    }
    let mut seen = BTreeSet::new();
    files.retain(|f| seen.insert(fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    files
}

/// Every `*.toml` file directly in `dir` (following symlinks), sorted.
fn dir_units(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Unknown dependencies (with a suggestion) and cycles, at the `after`/`requires` entry.
/// A unit whose file has other problems still counts as existing, so one mistake does not
/// cascade into "unknown unit" errors in every unit that depends on it.
fn check_dependencies(loaded: &[Loaded], diags: &mut Vec<Diagnostic>) {
    let known: BTreeSet<&str> = loaded.iter().map(|l| l.name.as_str()).collect();
    for l in loaded {
        for dep in &l.deps {
            if !known.contains(dep.name.as_str()) {
                let hint = did_you_mean(&dep.name, known.iter().copied());
                let message = format!("{}: unknown unit {:?}{hint}", dep.field, dep.name);
                diags.push(Diagnostic::new(&l.path, dep.line, dep.col, message));
            } else if dep.field == "container.network" {
                let target = loaded
                    .iter()
                    .find(|t| t.name == dep.name)
                    .and_then(|t| t.unit.as_ref());
                if let Some(problem) = target.and_then(network_target_problem) {
                    let message = format!("container.network: {problem}");
                    diags.push(Diagnostic::new(&l.path, dep.line, dep.col, message));
                }
            }
        }
    }
    let graph: Graph = loaded
        .iter()
        .map(|l| {
            (
                l.name.clone(),
                l.deps.iter().map(|d| d.name.clone()).collect(),
            )
        })
        .collect();
    for cycle in cycles(&graph) {
        let (Some(first), Some(next)) = (cycle.first(), cycle.get(1)) else {
            continue;
        };
        let Some(l) = loaded.iter().find(|l| l.name == *first) else {
            continue;
        };
        let (line, col) = l
            .deps
            .iter()
            .find(|d| d.name == *next)
            .map_or((1, 1), |d| (d.line, d.col));
        let message = format!("dependency cycle: {}", cycle.join(" -> "));
        diags.push(Diagnostic::new(&l.path, line, col, message));
    }
}

/// Why `network = "unit:NAME"` cannot join `target` (NAME): it must be a container with a
/// network namespace of its own (`network = "none"`) or joining another one.
pub(crate) fn network_target_problem(target: &Unit) -> Option<String> {
    let name = &target.name;
    match target.container.as_ref().map(|c| &c.network) {
        None => Some(format!(
            "unit {name:?} is not a container, so it has no network namespace of its own; use network = \"host\" to share the host's"
        )),
        Some(Network::Host) => Some(format!(
            "unit {name:?} uses the host's network namespace; use network = \"host\" instead"
        )),
        Some(_) => None,
    }
}
