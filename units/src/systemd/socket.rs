//! A `.socket` file mapped onto the `[[socket]]`s of its service (`Service=`, or the
//! service of the same name): the sockets kennel binds, holds and passes as `LISTEN_FDS`.
//! The service is then socket-activated (`activate = "socket"`). docs/systemd.md lists the
//! directives.

use std::path::Path;

use super::spec::{self, Names};
use super::syntax::{parse_bool, Entry};
use crate::diag::Diagnostic;
use crate::socket::{
    fd_name_problem, Listen, Socket, UnixKind, DEFAULT_BACKLOG, DEFAULT_MODE, MAX_SOCKETS,
};

/// What a `.socket` file says.
#[derive(Debug)]
pub(crate) struct SocketFile {
    /// The unit (kennel's name) that gets the sockets, with the `Service=` entry's position
    /// if it named one (else the file's start).
    pub(crate) service: String,
    pub(crate) line: usize,
    pub(crate) col: usize,
    /// Each socket with the position of its `Listen*=` line. Empty when there are errors.
    pub(crate) sockets: Vec<(Socket, usize, usize)>,
    /// Errors and warnings.
    pub(crate) diags: Vec<Diagnostic>,
}

/// Directives of `[Socket]` read as no-ops, with why.
const NO_OPS: &[(&str, &str)] = &[
    ("RemoveOnStop", "kennel removes a Unix socket's file when it lets go of the socket (a unit removed, kennel's exit), never at a stop: the socket is held across stops"),
    ("DirectoryMode", "the parent directories of a Unix socket are made with mode 0755"),
    ("BindIPv6Only", "a [::] socket takes IPv4 too, or not, as the kernel's net.ipv6.bindv6only says (systemd's default)"),
    ("TriggerLimitIntervalSec", "no trigger limit: a failed service is not started by its socket until kennel start"),
    ("TriggerLimitBurst", "no trigger limit: a failed service is not started by its socket until kennel start"),
    ("PassCredentials", "not set"),
    ("PassSecurity", "not set"),
];

/// Maps the `.socket` file `NAME.socket` (`entries`, read from `path`).
pub(crate) fn map(name: &str, path: &Path, entries: &[Entry]) -> SocketFile {
    let names = Names {
        full: format!("{name}.socket"),
        hostname: super::hostname(),
    };
    let mut out = SocketFile {
        service: name.to_string(),
        line: 1,
        col: 1,
        sockets: Vec::new(),
        diags: Vec::new(),
    };
    let mut fd_name = format!("{name}.socket");
    let mut backlog = DEFAULT_BACKLOG;
    let mut reuse_port = false;
    let mut mode = DEFAULT_MODE;
    let (mut user, mut group) = (None, None);
    let mut listens: Vec<(Listen, usize, usize)> = Vec::new();
    let mut sections_warned: Vec<String> = Vec::new();
    for e in entries {
        let key = e.key.as_str();
        if key.starts_with("X-") || e.section.starts_with("X-") {
            continue;
        }
        let value = match spec::expand(&e.value, &names) {
            Ok(v) => v,
            Err(m) => {
                out.diags.push(e.error(format!("{key}=: {m}")));
                continue;
            }
        };
        match (e.section.as_str(), key) {
            ("Unit", "Description" | "Documentation") | ("Install", _) => {}
            ("Unit", _) => out.diags.push(e.warning(format!(
                "{key}= is not honoured in a .socket file: its sockets are bound when kennel loads the unit"
            ))),
            ("Socket", "ListenStream" | "ListenDatagram" | "ListenSequentialPacket") => {
                if value.is_empty() {
                    listens.clear();
                    continue;
                }
                match listen(key, &value) {
                    Ok(l) => listens.push((l, e.line, e.col)),
                    Err(m) => out.diags.push(e.error(format!("{key}={value}: {m}"))),
                }
            }
            ("Socket", "ListenFIFO" | "ListenSpecial" | "ListenNetlink" | "ListenMessageQueue" | "ListenUSBFunction") => {
                out.diags.push(e.error(format!(
                    "{key}= is not supported (kennel holds stream, datagram and seqpacket sockets only); remove it or run the service without it"
                )))
            }
            ("Socket", "Accept") => match parse_bool(&value) {
                Some(false) => {}
                Some(true) => out.diags.push(e.error(
                    "Accept=yes is not supported: kennel does not start a service instance per connection; use Accept=no (one service that accepts), or run the service under inetd-style supervision of its own",
                )),
                None => out.diags.push(e.error(format!("Accept=: expected a boolean, found {value:?}"))),
            },
            ("Socket", "Service") => match value.strip_suffix(".service") {
                Some(s) if crate::name::check_unit_name(s).is_ok() => {
                    out.service = s.to_string();
                    (out.line, out.col) = (e.line, e.col);
                }
                _ => out.diags.push(e.error(format!(
                    "Service=: {value:?} is not a service name such as web.service"
                ))),
            },
            ("Socket", "Backlog") => match value.parse::<u32>() {
                Ok(n) if n >= 1 => backlog = n,
                _ => out.diags.push(e.error(format!("Backlog=: expected a positive integer, found {value:?}"))),
            },
            ("Socket", "ReusePort") => match parse_bool(&value) {
                Some(b) => reuse_port = b,
                None => out.diags.push(e.error(format!("ReusePort=: expected a boolean, found {value:?}"))),
            },
            ("Socket", "SocketMode") => match u32::from_str_radix(&value, 8) {
                Ok(m) if m <= 0o7777 => mode = m,
                _ => out.diags.push(e.error(format!("SocketMode=: {value:?} is not an octal mode such as 0660"))),
            },
            ("Socket", "SocketUser") => user = Some(value).filter(|v| !v.is_empty()),
            ("Socket", "SocketGroup") => group = Some(value).filter(|v| !v.is_empty()),
            ("Socket", "FileDescriptorName") => match fd_name_problem(&value) {
                None => fd_name = value,
                Some(p) => out.diags.push(e.error(format!("FileDescriptorName=: {p}"))),
            },
            ("Socket", k) => match NO_OPS.iter().find(|(n, _)| *n == k) {
                Some((_, why)) => out.diags.push(e.warning(format!("{k}= is not honoured: {why}"))),
                None => out.diags.push(e.warning(format!(
                    "{k}= is not honoured: kennel sets no socket option but SO_REUSEADDR, SO_REUSEPORT (ReusePort=) and the backlog"
                ))),
            },
            (s, _) => {
                if !sections_warned.iter().any(|w| w == s) {
                    sections_warned.push(s.to_string());
                    out.diags.push(e.warning(format!(
                        "section [{s}] is not read (a .socket file has [Unit], [Socket], [Install])"
                    )));
                }
            }
        }
    }
    if listens.is_empty() && !out.diags.iter().any(|d| !d.warning) {
        out.diags.push(Diagnostic::at_start(
            path,
            "no ListenStream=, ListenDatagram= or ListenSequentialPacket=: a .socket file needs one",
        ));
    }
    if listens.len() > MAX_SOCKETS {
        out.diags.push(Diagnostic::at_start(
            path,
            format!(
                "{} sockets; a unit may have {MAX_SOCKETS} at most",
                listens.len()
            ),
        ));
    }
    if out.diags.iter().any(|d| !d.warning) {
        return out;
    }
    for (listen, line, col) in listens {
        let unix = matches!(listen, Listen::Unix { .. });
        out.sockets.push((
            Socket {
                backlog: if listen.listens() {
                    backlog
                } else {
                    DEFAULT_BACKLOG
                },
                listen,
                name: fd_name.clone(),
                reuse_port,
                mode: if unix { mode } else { DEFAULT_MODE },
                user: user.clone().filter(|_| unix),
                group: group.clone().filter(|_| unix),
            },
            line,
            col,
        ));
    }
    out
}

/// A `Listen*=` value: a path (a Unix socket), a port (every address: `[::]`), or an
/// address and port.
fn listen(key: &str, value: &str) -> Result<Listen, String> {
    let kind = match key {
        "ListenStream" => UnixKind::Stream,
        "ListenDatagram" => UnixKind::Datagram,
        _ => UnixKind::Seqpacket,
    };
    if value.starts_with('/') {
        return match Listen::parse(&format!("unix:{value}"))? {
            Listen::Unix { path, .. } => Ok(Listen::Unix { path, kind }),
            other => Ok(other),
        };
    }
    if value.starts_with('@') {
        return Err("abstract Unix sockets are not supported; use a path".into());
    }
    if kind == UnixKind::Seqpacket {
        return Err("a sequential packet socket is a Unix one: give a path".into());
    }
    if value.starts_with("vsock:") {
        return Err("AF_VSOCK sockets are not supported".into());
    }
    let scheme = if kind == UnixKind::Stream {
        "tcp"
    } else {
        "udp"
    };
    let inet = if value.bytes().all(|b| b.is_ascii_digit()) {
        format!("[::]:{value}")
    } else {
        value.to_string()
    };
    Listen::parse(&format!("{scheme}:{inet}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_values() {
        let l = |k, v| listen(k, v).map(|l| l.to_string());
        assert_eq!(l("ListenStream", "8080"), Ok("tcp:[::]:8080".into()));
        assert_eq!(
            l("ListenStream", "127.0.0.1:80"),
            Ok("tcp:127.0.0.1:80".into())
        );
        assert_eq!(l("ListenDatagram", "[::1]:53"), Ok("udp:[::1]:53".into()));
        assert_eq!(
            l("ListenStream", "/run/a.sock"),
            Ok("unix:/run/a.sock".into())
        );
        assert_eq!(
            l("ListenDatagram", "/run/a.sock"),
            Ok("unix:/run/a.sock (datagram)".into())
        );
        assert_eq!(
            l("ListenSequentialPacket", "/run/a"),
            Ok("unix:/run/a (seqpacket)".into())
        );
        assert!(l("ListenStream", "@abstract").is_err());
        assert!(l("ListenSequentialPacket", "8080").is_err());
        assert!(l("ListenStream", "localhost:80").is_err());
    }
}
