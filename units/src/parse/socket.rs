//! `[[socket]]`: the sockets kennel binds and holds for a unit (see [`crate::socket`]).

use toml_edit::{Item, TableLike};

use super::value::Ctx;
use crate::socket::{
    fd_name_problem, Listen, Socket, UnixKind, DEFAULT_BACKLOG, DEFAULT_MODE, MAX_SOCKETS,
};

const SOCKET_KEYS: &[&str] = &[
    "listen",
    "kind",
    "name",
    "backlog",
    "reuse_port",
    "mode",
    "user",
    "group",
];

/// A socket's address with its position, for the check across units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocketRef {
    pub(crate) listen: Listen,
    /// The file it is written in, when not the unit's own (a systemd `.socket` file).
    pub(crate) file: Option<std::path::PathBuf>,
    pub(crate) reuse_port: bool,
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// Every `[[socket]]` of unit `unit`; an address listed twice is an error at the second.
pub(crate) fn sockets(
    cx: &mut Ctx,
    item: &Item,
    unit: &str,
    refs: &mut Vec<SocketRef>,
) -> Vec<Socket> {
    let entries = cx.table_array("socket", item, "[{ listen = \"tcp:127.0.0.1:8080\" }]");
    if entries.len() > MAX_SOCKETS {
        cx.error(
            item.span(),
            format!(
                "socket: {} sockets; a unit may have {MAX_SOCKETS} at most",
                entries.len()
            ),
        );
    }
    let mut out: Vec<Socket> = Vec::new();
    for (i, t, span) in entries {
        let path = format!("socket[{i}]");
        let Some(s) = socket(cx, &path, t, span, unit) else {
            continue;
        };
        let at = t.get("listen").and_then(Item::span);
        if let Some(other) = out.iter().position(|o| o.listen.clashes(&s.listen)) {
            if !(out[other].reuse_port && s.reuse_port) {
                cx.error(
                    at,
                    format!(
                        "{path}.listen: {} clashes with socket[{other}] ({}); listen once, or set reuse_port on both",
                        s.listen, out[other].listen
                    ),
                );
                continue;
            }
        }
        let (line, col) = cx.pos(at);
        refs.push(SocketRef {
            listen: s.listen.clone(),
            file: None,
            reuse_port: s.reuse_port,
            line,
            col,
        });
        out.push(s);
    }
    out
}

fn socket(
    cx: &mut Ctx,
    path: &str,
    t: &dyn TableLike,
    span: Option<std::ops::Range<usize>>,
    unit: &str,
) -> Option<Socket> {
    cx.check_keys(t, Some(path), SOCKET_KEYS);
    let mut listen = match t.get("listen") {
        Some(item) => {
            let key = format!("{path}.listen");
            let text = cx.text(
                &key,
                item,
                "an address string such as \"tcp:127.0.0.1:8080\"",
            )?;
            match Listen::parse(&text) {
                Ok(l) => Some(l),
                Err(e) => {
                    cx.error(item.span(), format!("{key}: {e}"));
                    None
                }
            }
        }
        None => {
            cx.error(span.clone(), format!("{path}.listen is required"));
            None
        }
    };
    let mut s = Socket {
        listen: Listen::Tcp(([127, 0, 0, 1], 1).into()),
        name: unit.to_string(),
        backlog: DEFAULT_BACKLOG,
        reuse_port: false,
        mode: DEFAULT_MODE,
        user: None,
        group: None,
    };
    let unix_only = |cx: &mut Ctx, listen: &Option<Listen>, key: &str, item: &Item| {
        if matches!(listen, Some(Listen::Tcp(_) | Listen::Udp(_))) {
            cx.error(
                item.span(),
                format!("{path}.{key}: only for unix: sockets (a file has a mode and an owner, a port has not)"),
            );
        }
    };
    if let Some(item) = t.get("kind") {
        let key = format!("{path}.kind");
        if let Some(name) = cx.choice(&key, item, UnixKind::NAMES) {
            match &mut listen {
                Some(Listen::Unix { kind, .. }) => {
                    *kind = UnixKind::from_name(name).unwrap_or_default();
                }
                Some(_) => cx.error(
                    item.span(),
                    format!("{key}: only for unix: sockets (tcp: is a stream, udp: datagrams)"),
                ),
                None => {}
            }
        }
    }
    if let Some(item) = t.get("name") {
        let key = format!("{path}.name");
        if let Some(name) = cx.string(&key, item, "a name string") {
            match fd_name_problem(&name) {
                Some(problem) => cx.error(item.span(), format!("{key}: {problem}")),
                None => s.name = name,
            }
        }
    } else if let Some(problem) = fd_name_problem(unit) {
        cx.error(
            span,
            format!("{path}.name: the default, the unit's name, is not valid: {problem}; set one"),
        );
    }
    if let Some(item) = t.get("backlog") {
        let key = format!("{path}.backlog");
        if let Some(n) = cx.count(&key, item, 1) {
            s.backlog = n;
            if matches!(listen, Some(ref l) if !l.listens()) {
                cx.error(
                    item.span(),
                    format!("{key}: a datagram socket has no backlog"),
                );
            }
        }
    }
    if let Some(item) = t.get("reuse_port") {
        s.reuse_port = cx
            .boolean(&format!("{path}.reuse_port"), item)
            .unwrap_or(false);
    }
    if let Some(item) = t.get("mode") {
        unix_only(cx, &listen, "mode", item);
        if let Some(mode) = mode(cx, &format!("{path}.mode"), item) {
            s.mode = mode;
        }
    }
    for key in ["user", "group"] {
        if let Some(item) = t.get(key) {
            unix_only(cx, &listen, key, item);
            let value = cx.text(
                &format!("{path}.{key}"),
                item,
                "a name or a numeric id string",
            );
            if key == "user" {
                s.user = value;
            } else {
                s.group = value;
            }
        }
    }
    s.listen = listen?;
    Some(s)
}

/// A file mode: an octal string such as `"0660"` (an integer would read as decimal).
fn mode(cx: &mut Ctx, path: &str, item: &Item) -> Option<u32> {
    let text = cx.string(path, item, "an octal mode string such as \"0660\"")?;
    match u32::from_str_radix(&text, 8) {
        Ok(m) if m <= 0o7777 && !text.is_empty() => Some(m),
        _ => {
            cx.error(
                item.span(),
                format!("{path}: {text:?} is not an octal mode such as \"0660\""),
            );
            None
        }
    }
}
