//! Loading unit files and directories into a [`UnitSet`]: read and parse every file, then
//! check across units (duplicate names, unknown dependencies, cycles), reporting every
//! problem. Also [`check_paths`], `kennel check`'s: named files with their directory's
//! units as context. This is the one part of the crate that reads files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::diag::{sort_diagnostics, Diagnostic};
use crate::graph::{cycles, Graph};
use crate::model::{Network, Unit};
use crate::name::check_unit_name;
use crate::network::Networks;
use crate::parse::{parse_file, DepRef, NetRefs, SocketRef};
use crate::set::UnitSet;
use crate::suggest::did_you_mean;
use crate::systemd;

/// One unit file read and parsed on its own.
struct Loaded {
    name: String,
    path: PathBuf,
    unit: Option<Unit>,
    deps: Vec<DepRef>,
    /// Its network, address and ports.
    net: NetRefs,
    /// Its sockets' addresses.
    sockets: Vec<SocketRef>,
    /// Its problems are reported (else it is only context: see [`check_paths`]).
    checked: bool,
    /// A systemd service's `After=` and `Before=` on services: ordering kept only against
    /// the units of the set (resolved once every file is read).
    ordering: Option<(Vec<DepRef>, Vec<DepRef>)>,
}

/// What `kennel check` found in units that load: how many, and the warnings (only systemd
/// files have some: what kennel reads differently or not at all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub units: usize,
    pub warnings: Vec<Diagnostic>,
    /// The CNI networks (`network = "cni:NAME"`) of the checked units, where each is
    /// named: whether a configuration exists is the caller's to check (the units crate
    /// reads no CNI files).
    pub cni_networks: Vec<CniRef>,
}

/// A unit's `network = "cni:NAME"`, with the position of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniRef {
    pub network: String,
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
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
    load_paths_with(paths, &Networks::builtin())
}

/// [`load_paths`] with the bridge networks units may join (`kennel up --networks`): a
/// unit on an unknown network, an address outside its network or taken by another unit,
/// and a host port published twice are errors at the value.
pub fn load_paths_with(paths: &[PathBuf], networks: &Networks) -> Result<UnitSet, Vec<Diagnostic>> {
    load_paths_with_warnings(paths, networks).map(|(set, _)| set)
}

/// [`load_paths_with`], also returning the warnings of systemd unit files (sorted) when the
/// units load. On failure, only the errors.
pub fn load_paths_with_warnings(
    paths: &[PathBuf],
    networks: &Networks,
) -> Result<(UnitSet, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let files = unit_files(paths, &mut diags);
    let loaded = load_files(files, Vec::new(), networks, &mut diags);
    let (mut warnings, mut errors): (Vec<_>, Vec<_>) = diags.into_iter().partition(|d| d.warning);
    if !errors.is_empty() {
        sort_diagnostics(&mut errors);
        return Err(errors);
    }
    sort_diagnostics(&mut warnings);
    let units = loaded
        .into_iter()
        .filter_map(|l| l.unit)
        .map(|u| (u.name.clone(), u))
        .collect();
    Ok((UnitSet::from_validated(units), warnings))
}

/// What `kennel check PATH...` does: checks the units of `paths` (directories and files, as
/// [`load_paths`] reads them) with, as context, the other `*.toml` units of the directory
/// of each file named: a dependency on one of those is known, and a cycle through them is
/// found. Only the problems of the checked files are reported (a broken context file is
/// not: its unit still counts as existing); a dependency found neither among them nor in
/// the context is unknown. Returns how many units were checked and the warnings of
/// systemd files; on failure, every error and warning, sorted.
pub fn check_paths(paths: &[PathBuf]) -> Result<Checked, Vec<Diagnostic>> {
    check_paths_with(paths, &Networks::builtin())
}

/// [`check_paths`] with the bridge networks units may join (see [`load_paths_with`]).
pub fn check_paths_with(
    paths: &[PathBuf],
    networks: &Networks,
) -> Result<Checked, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let files = unit_files(paths, &mut diags);
    let mut context = Vec::new();
    let mut seen: BTreeSet<PathBuf> = files.iter().map(|f| file_key(f)).collect();
    for path in paths.iter().filter(|p| !p.is_dir()) {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        for f in dir_units(dir).unwrap_or_default() {
            if seen.insert(file_key(&f)) {
                context.push(f);
            }
        }
    }
    let context_files: BTreeSet<PathBuf> = context.iter().cloned().collect();
    let loaded = load_files(files, context, networks, &mut diags);
    let context_dirs: BTreeSet<PathBuf> = context_files
        .iter()
        .map(|f| PathBuf::from(format!("{}.d", f.display())))
        .collect();
    diags.retain(|d| {
        !context_files.contains(&d.file)
            && !d.file.parent().is_some_and(|p| context_dirs.contains(p))
    });
    sort_diagnostics(&mut diags);
    if diags.iter().any(|d| !d.warning) {
        return Err(diags);
    }
    let cni_networks = loaded
        .iter()
        .filter(|l| l.checked)
        .filter_map(|l| {
            let (network, line, col) = l.net.cni.clone()?;
            Some(CniRef {
                network,
                file: l.path.clone(),
                line,
                col,
            })
        })
        .collect();
    Ok(Checked {
        units: loaded.iter().filter(|l| l.checked).count(),
        warnings: diags,
        cni_networks,
    })
}

/// `path` made canonical, to tell files apart (as it is if that fails).
fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Read and parse `files` (checked) then `context` (not checked: see [`check_paths`]), and
/// check across them; every problem goes to `diags`.
fn load_files(
    files: Vec<PathBuf>,
    context: Vec<PathBuf>,
    networks: &Networks,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Loaded> {
    let mut loaded: Vec<Loaded> = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut socket_files = Vec::new();
    let files = files.into_iter().map(|f| (f, true));
    for (path, checked) in files.chain(context.into_iter().map(|f| (f, false))) {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "socket" {
            // Not a unit: sockets for the service it names (attached below).
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if stem.ends_with('@') {
                diags.push(Diagnostic::at_start(
                    &path,
                    "a socket template (NAME@.socket) is not supported: kennel starts no service instance per connection",
                ));
                continue;
            }
            if let Err(e) = check_unit_name(stem) {
                diags.push(Diagnostic::at_start(&path, e.to_string()));
                continue;
            }
            let mut f = systemd::read_socket(stem, &path);
            let failed = f.diags.iter().any(|d| !d.warning);
            diags.append(&mut f.diags);
            if !failed {
                socket_files.push((path, f));
            }
            continue;
        }
        if systemd::REFUSED_TYPES.contains(&ext) {
            diags.push(Diagnostic::at_start(
                &path,
                format!(".{ext} units are not supported yet (only .service and .socket files are read); remove the file or write the unit in TOML"),
            ));
            continue;
        }
        if ext == "service" {
            match systemd::kind(&path) {
                systemd::Kind::Service => {}
                systemd::Kind::Template => {
                    diags.push(Diagnostic::at_start(
                        &path,
                        "a template is not a unit: instantiate it with a symlink NAME@INSTANCE.service -> NAME@.service in the unit directory",
                    ));
                    continue;
                }
                systemd::Kind::Alias(target) => {
                    diags.push(Diagnostic::warning(
                        &path,
                        1,
                        1,
                        format!(
                            "an alias of {target} (a symlink): not a unit of its own, not loaded"
                        ),
                    ));
                    continue;
                }
                systemd::Kind::Masked => {
                    diags.push(Diagnostic::warning(
                        &path,
                        1,
                        1,
                        "masked (a symlink to /dev/null): not loaded",
                    ));
                    continue;
                }
            }
        }
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
            diags.push(Diagnostic::at_start(&path, e.to_string()));
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
        if ext == "service" {
            let mapped = systemd::read_service(&name, &path);
            diags.extend(mapped.diags);
            loaded.push(Loaded {
                name,
                path,
                unit: mapped.unit,
                deps: mapped.requires,
                // A systemd service has no [container], so no network of its own.
                net: Default::default(),
                sockets: Vec::new(),
                checked,
                ordering: Some((mapped.after, mapped.before)),
            });
            continue;
        }
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
            net: parsed.net,
            sockets: parsed.sockets,
            checked,
            ordering: None,
        });
    }
    attach_sockets(&mut loaded, socket_files, diags);
    resolve_ordering(&mut loaded, diags);
    check_dependencies(&loaded, diags);
    check_networks(&loaded, networks, diags);
    check_sockets(&loaded, diags);
    loaded
}

/// Across units: no address is listened on by two units (unless both set `reuse_port`);
/// reported at the second, in name order.
fn check_sockets(loaded: &[Loaded], diags: &mut Vec<Diagnostic>) {
    let mut order: Vec<&Loaded> = loaded.iter().collect();
    order.sort_by(|a, b| a.name.cmp(&b.name));
    let mut seen: Vec<(&SocketRef, &str)> = Vec::new();
    for l in order {
        for s in &l.sockets {
            let clash = seen
                .iter()
                .find(|(o, _)| o.listen.clashes(&s.listen) && !(o.reuse_port && s.reuse_port));
            match clash {
                Some((o, other)) => diags.push(Diagnostic::new(
                    s.file.as_deref().unwrap_or(&l.path),
                    s.line,
                    s.col,
                    format!(
                        "socket: {} clashes with unit {other:?}'s {}; listen once, or set reuse_port on both",
                        s.listen, o.listen
                    ),
                )),
                None => seen.push((s, &l.name)),
            }
        }
    }
}

/// The start of the warning about a `.service` file without `[Install]`.
const NO_INSTALL: &str = "no [Install] section";

/// The sockets of each `.socket` file go to the unit it names, which becomes
/// socket-activated; a unit that is not in the set is an error at `Service=` (or 1:1).
fn attach_sockets(
    loaded: &mut [Loaded],
    files: Vec<(PathBuf, systemd::SocketFile)>,
    diags: &mut Vec<Diagnostic>,
) {
    for (path, f) in files {
        let Some(l) = loaded.iter_mut().find(|l| l.name == f.service) else {
            let hint = did_you_mean(&f.service, loaded.iter().map(|l| l.name.as_str()));
            diags.push(Diagnostic::new(
                &path,
                f.line,
                f.col,
                format!(
                    "no unit {:?} for these sockets{hint}: add {}.service or {}.toml, or name another with Service=",
                    f.service, f.service, f.service
                ),
            ));
            continue;
        };
        for (socket, line, col) in f.sockets {
            l.sockets.push(SocketRef {
                listen: socket.listen.clone(),
                file: Some(path.clone()),
                reuse_port: socket.reuse_port,
                line,
                col,
            });
            if let Some(u) = l.unit.as_mut() {
                u.sockets.push(socket);
                u.service.activate = crate::model::Activate::Socket;
            }
        }
        // A service without [Install] is what a socket pulls in: no warning about it.
        diags.retain(|d| !(d.warning && d.file == l.path && d.message.starts_with(NO_INSTALL)));
    }
}

/// systemd's `After=`/`Before=` on services: kept against the units of the set (`Before=x`
/// puts this unit in `x`'s `after`), a note for the others (ordering against a unit that
/// is not there is a no-op, as under systemd).
fn resolve_ordering(loaded: &mut [Loaded], diags: &mut Vec<Diagnostic>) {
    let known: BTreeSet<String> = loaded.iter().map(|l| l.name.clone()).collect();
    let mut before_edges: Vec<(String, DepRef)> = Vec::new();
    for l in loaded.iter_mut() {
        let Some((after, before)) = l.ordering.take() else {
            continue;
        };
        for (key, deps) in [("After", after), ("Before", before)] {
            for d in deps {
                if !known.contains(&d.name) || d.name == l.name {
                    let file = d.file.clone().unwrap_or_else(|| l.path.clone());
                    diags.push(Diagnostic::warning(
                        &file,
                        d.line,
                        d.col,
                        format!(
                            "{key}={}.service: no such unit in the set; ordering against it is a no-op",
                            d.name
                        ),
                    ));
                } else if key == "After" {
                    if let Some(u) = l.unit.as_mut() {
                        if !u.service.after.contains(&d.name) {
                            u.service.after.push(d.name.clone());
                        }
                    }
                    l.deps.push(d);
                } else {
                    let target = d.name.clone();
                    before_edges.push((
                        target,
                        DepRef {
                            name: l.name.clone(),
                            file: Some(d.file.clone().unwrap_or_else(|| l.path.clone())),
                            ..d
                        },
                    ));
                }
            }
        }
    }
    for (target, dep) in before_edges {
        if let Some(t) = loaded.iter_mut().find(|l| l.name == target) {
            if let Some(u) = t.unit.as_mut() {
                if !u.service.after.contains(&dep.name) {
                    u.service.after.push(dep.name.clone());
                }
            }
            t.deps.push(dep);
        }
    }
}

/// Across units: each bridge network exists, each static address is a host address of its
/// network other than the gateway and no other unit's, no host port is published twice.
/// A problem between two units is reported at the second (in name order).
fn check_networks(loaded: &[Loaded], networks: &Networks, diags: &mut Vec<Diagnostic>) {
    let mut order: Vec<&Loaded> = loaded.iter().collect();
    order.sort_by(|a, b| a.name.cmp(&b.name));
    let mut addresses: BTreeMap<(String, std::net::IpAddr), &str> = BTreeMap::new();
    let mut ports: Vec<(crate::network::PortMap, &str)> = Vec::new();
    for l in order {
        let mut on = None;
        if let Some((net, line, col)) = &l.net.network {
            match networks.get(net) {
                Some(def) => on = Some(def),
                None => {
                    let hint = did_you_mean(net, networks.names());
                    diags.push(Diagnostic::new(
                        &l.path,
                        *line,
                        *col,
                        format!("container.network: unknown network {net:?}{hint}; define it in a file {net}.toml of the networks directory (kennel --networks)"),
                    ));
                }
            }
        }
        if let (Some(def), Some((addr, line, col))) = (on, &l.net.address) {
            let problem = if !def.assignable(*addr) {
                let subnets = match def.subnet6 {
                    Some(s6) => format!("{} or {s6}", def.subnet),
                    None => def.subnet.to_string(),
                };
                Some(format!(
                    "container.address: {addr} is not an address of network {:?} ({subnets}, not the gateway {}, the network or the broadcast address); pick another",
                    def.name, def.gateway
                ))
            } else if let Some(other) = addresses.get(&(def.name.clone(), *addr)) {
                Some(format!(
                    "container.address: {addr} is already unit {other:?}'s on network {:?}; pick another",
                    def.name
                ))
            } else {
                addresses.insert((def.name.clone(), *addr), &l.name);
                None
            };
            if let Some(message) = problem {
                diags.push(Diagnostic::new(&l.path, *line, *col, message));
            }
        }
        for (p, line, col) in &l.net.ports {
            match ports.iter().find(|(q, _)| q.clashes(p)) {
                Some((q, other)) => diags.push(Diagnostic::new(
                    &l.path,
                    *line,
                    *col,
                    format!("container.ports: host port {}/{} is already published by unit {other:?} ({q}); pick another host port", p.host_port, p.proto),
                )),
                None => ports.push((*p, &l.name)),
            }
        }
    }
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
    files.retain(|f| seen.insert(file_key(f)));
    files
}

/// What tells two unit files apart: the canonical path, except for a systemd service,
/// whose name is the link's, not its target's (`getty@tty1.service -> getty@.service`).
fn file_key(f: &Path) -> PathBuf {
    if f.extension().is_some_and(|e| e == "service") {
        if let (Some(dir), Some(name)) = (f.parent(), f.file_name()) {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            return canonical(dir).join(name);
        }
    }
    canonical(f)
}

/// Every `*.toml`, `*.service` (not a template `NAME@.service`), `*.socket` (not a template
/// `NAME@.socket`) and `*.timer`
/// file directly in `dir` (following symlinks), sorted.
fn dir_units(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let unit_file =
            matches!(ext, "toml" | "service" | "socket") || systemd::REFUSED_TYPES.contains(&ext);
        let template = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("@.service") || n.ends_with("@.socket"));
        if unit_file && !template && !path.is_dir() {
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
                // Never the unit itself: a unit cannot depend on itself.
                let others = known.iter().copied().filter(|k| *k != l.name);
                let hint = did_you_mean(&dep.name, others);
                let message = format!("{}: unknown unit {:?}{hint}", dep.field, dep.name);
                let file = dep.file.as_deref().unwrap_or(&l.path);
                diags.push(Diagnostic::new(file, dep.line, dep.col, message));
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
        let cycle = from_a_checked_unit(cycle, loaded);
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

/// `a -> b -> c -> a` told from its first checked unit (`b -> c -> a -> b` if `a` is only
/// context), so that the problem is reported in a checked file when the cycle goes through
/// one.
fn from_a_checked_unit(cycle: Vec<String>, loaded: &[Loaded]) -> Vec<String> {
    let checked = |n: &String| loaded.iter().any(|l| l.name == *n && l.checked);
    let ring = &cycle[..cycle.len().saturating_sub(1)];
    match ring.iter().position(checked) {
        Some(i) if i > 0 => {
            let mut out: Vec<String> = ring[i..].iter().chain(&ring[..i]).cloned().collect();
            out.push(ring[i].clone());
            out
        }
        _ => cycle,
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
