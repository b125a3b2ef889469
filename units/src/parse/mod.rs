//! One unit file's text -> a [`Unit`], or every problem found in it as [`Diagnostic`]s.
//!
//! The file is parsed with `toml_edit`, which keeps the span of every key and value, then
//! walked by hand: unknown keys get a suggestion, and checking goes on after a problem.

mod container;
mod ready;
mod sections;
mod security;
mod socket;
pub(crate) mod value;

use std::ops::Range;
use std::path::Path;

use toml_edit::{ImDocument, Item, Key, Table};

use crate::diag::{sort_diagnostics, Diagnostic};
use crate::model::{Activate, Logs, Ready, ReadyProbe, Restart, ServiceType, Unit};
use crate::name::check_unit_name;
pub(crate) use container::NetRefs;
pub(crate) use socket::SocketRef;
use value::Ctx;

const TOP_KEYS: &[&str] = &[
    "description",
    "service",
    "restart",
    "ready",
    "health",
    "logs",
    "container",
    "resources",
    "socket",
];

/// One `after` or `requires` entry, with its position for cross-unit diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DepRef {
    /// `"service.after"`, `"service.requires"` or `"container.network"`.
    pub(crate) field: &'static str,
    /// The unit named.
    pub(crate) name: String,
    /// The file it is written in, when not the unit's own (a systemd drop-in).
    pub(crate) file: Option<std::path::PathBuf>,
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// What parsing one file found: the unit when the file is valid on its own, the problems,
/// and the dependency entries (collected even when the file has problems, so that the
/// cross-unit checks still see them).
#[derive(Debug)]
pub(crate) struct ParsedFile {
    pub(crate) unit: Option<Unit>,
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) deps: Vec<DepRef>,
    /// Its network, address and ports, for the cross-unit checks.
    pub(crate) net: container::NetRefs,
    /// Its sockets' addresses, for the cross-unit checks.
    pub(crate) sockets: Vec<SocketRef>,
}

/// Parses the unit `name` from `text`, read from `path`. Only single-file checks are done
/// here: dependencies on units that do not exist are not detected (see
/// [`crate::load_paths`]). On failure every problem is returned, sorted by position.
pub fn parse_unit(name: &str, path: &Path, text: &str) -> Result<Unit, Vec<Diagnostic>> {
    let parsed = parse_file(name, path, text);
    match parsed.unit {
        Some(unit) if parsed.diags.is_empty() => Ok(unit),
        _ => {
            let mut diags = parsed.diags;
            sort_diagnostics(&mut diags);
            Err(diags)
        }
    }
}

pub(crate) fn parse_file(name: &str, path: &Path, text: &str) -> ParsedFile {
    let mut cx = Ctx::new(path, text);
    let mut deps = Vec::new();
    if let Err(e) = check_unit_name(name) {
        cx.error(None, e.to_string());
    }
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let message: Vec<&str> = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            cx.error(e.span(), format!("invalid TOML: {}", message.join("; ")));
            return ParsedFile {
                unit: None,
                diags: cx.diags,
                deps,
                net: Default::default(),
                sockets: Vec::new(),
            };
        }
    };
    let mut net = container::NetRefs::default();
    let mut sockets = Vec::new();
    let mut u = unit(&mut cx, doc.as_table(), name, path, &mut deps, &mut net);
    {
        if let Some(item) = doc.as_table().get("socket") {
            u.sockets = socket::sockets(&mut cx, item, name, &mut sockets);
        }
        let activate = doc
            .as_table()
            .get("service")
            .and_then(Item::as_table_like)
            .and_then(|t| t.get("activate"));
        if let (Activate::Socket, true, Some(item)) =
            (u.service.activate, u.sockets.is_empty(), activate)
        {
            cx.error(
                item.span(),
                "service.activate: \"socket\" needs at least one [[socket]] to listen on",
            );
        }
    }
    let unit = cx.diags.is_empty().then_some(u);
    ParsedFile {
        unit,
        diags: cx.diags,
        deps,
        net,
        sockets,
    }
}

/// Where a section starts: its `[header]` (or its key for a dotted or inline table).
fn section_span(root: &Table, key: &str, item: &Item) -> Option<Range<usize>> {
    match item {
        Item::Table(t) if t.span().is_some() && !t.is_dotted() => t.span(),
        _ => root.key(key).and_then(Key::span),
    }
}

fn unit(
    cx: &mut Ctx,
    root: &Table,
    name: &str,
    path: &Path,
    deps: &mut Vec<DepRef>,
    net: &mut container::NetRefs,
) -> Unit {
    cx.check_keys(root, None, TOP_KEYS);
    let mut unit = Unit::new(name, Vec::new());
    unit.path = path.to_path_buf();
    if let Some(item) = root.get("description") {
        unit.description = cx.text("description", item, "a string");
    }
    let section = |cx: &mut Ctx, key: &str| {
        let item = root.get(key)?;
        let table = cx.table(key, item)?;
        Some((table, section_span(root, key, item)))
    };
    // With `[container] image`, the image's Entrypoint/Cmd is the default command (resolved
    // by the daemon at spawn: the image store is runtime state).
    let has_image = root
        .get("container")
        .and_then(Item::as_table_like)
        .is_some_and(|t| t.contains_key("image"));
    match root.get("service") {
        None if has_image => {}
        None => cx.error(None, "[service] is required"),
        Some(_) => {
            if let Some((t, header)) = section(cx, "service") {
                unit.service = sections::service(cx, t, header, name, deps, has_image);
            }
        }
    }
    let kind = unit.service.kind;
    unit.restart =
        section(cx, "restart").map_or_else(Restart::default, |(t, _)| sections::restart(cx, t));
    if let Some((t, header)) = section(cx, "ready") {
        if kind == ServiceType::Oneshot {
            cx.error(
                header.clone(),
                "[ready] is not allowed with type = \"oneshot\" (a oneshot is up when it exits successfully)",
            );
        }
        unit.ready = ready::ready(cx, t, header, kind);
    } else if kind == ServiceType::Notify {
        unit.ready = Some(Ready {
            probe: ReadyProbe::Notify,
            timeout: ready::DEFAULT_READY_TIMEOUT,
        });
    }
    if let Some((t, header)) = section(cx, "health") {
        if kind == ServiceType::Oneshot {
            cx.error(
                header.clone(),
                "[health] is not allowed with type = \"oneshot\"",
            );
        }
        unit.health = sections::health(cx, t, header);
    }
    unit.logs = section(cx, "logs").map_or_else(Logs::default, |(t, _)| sections::logs(cx, t));
    if let Some((t, header)) = section(cx, "container") {
        let (c, network_unit) = container::container(cx, t, header, name, net);
        unit.container = c;
        if let Some((dep, span)) = network_unit {
            // Joining a unit's network namespace requires it (and orders after it).
            let (line, col) = cx.pos(span);
            deps.push(DepRef {
                field: "container.network",
                name: dep.clone(),
                file: None,
                line,
                col,
            });
            if !unit.service.requires.contains(&dep) {
                unit.service.requires.push(dep.clone());
            }
            if !unit.service.after.contains(&dep) {
                unit.service.after.push(dep);
            }
        }
    }
    if kind == ServiceType::Oneshot {
        if let Some(k) = root
            .get("service")
            .and_then(Item::as_table_like)
            .and_then(|t| t.key("start_post"))
        {
            cx.error(
                k.span(),
                "service.start_post is not supported with type = \"oneshot\" yet (run the commands in the oneshot's own command)",
            );
        }
    }
    if unit.container.is_some() {
        if let Some(t) = root.get("service").and_then(Item::as_table_like) {
            for key in sections::AROUND_KEYS {
                if let Some(k) = t.key(key) {
                    cx.error(
                        k.span(),
                        format!("service.{key} is not supported in a [container] unit yet (its commands would run outside the container); only plain units run commands around the main one"),
                    );
                }
            }
            if unit.service.kind == ServiceType::Forking {
                if let Some(k) = t.key("type") {
                    cx.error(
                        k.span(),
                        "type = \"forking\" is not supported in a [container] unit: run the daemon in the foreground (its init is the container's PID 1)",
                    );
                }
            }
            for kind in crate::model::DirectoryKind::ALL.map(crate::model::DirectoryKind::key) {
                if let Some(k) = t.key(kind) {
                    cx.error(
                        k.span(),
                        format!("service.{kind} is not supported in a [container] unit yet (kennel would make it on the host, not in the container's rootfs); use a volume"),
                    );
                }
            }
            if let Some(k) = t.key("kill_mode") {
                cx.error(
                    k.span(),
                    "service.kill_mode does not apply to a [container] unit: the stop signal goes to the container's init, which forwards it to the service",
                );
            }
        }
    }
    if let Some((t, _)) = section(cx, "resources") {
        unit.resources = container::resources(cx, t);
    }
    unit
}
