//! `[ready]`: when a unit counts as up (notify, tcp or command), and its rules against
//! `service.type`.

use std::net::Ipv6Addr;
use std::ops::Range;
use std::time::Duration;

use toml_edit::TableLike;

use super::value::Ctx;
use crate::model::{Ready, ReadyProbe, ServiceType};

const READY_KEYS: &[&str] = &["notify", "tcp", "command", "timeout"];

/// The default `[ready] timeout`.
pub(crate) const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A probe key that is set, valid or not: (key, its value span, the probe if valid).
type Probe = (&'static str, Option<Range<usize>>, Option<ReadyProbe>);

/// `[ready]` of a service of type `kind` (`[ready]` is refused for a oneshot by the caller).
pub(crate) fn ready(
    cx: &mut Ctx,
    t: &dyn TableLike,
    header: Option<Range<usize>>,
    kind: ServiceType,
) -> Option<Ready> {
    cx.check_keys(t, Some("ready"), READY_KEYS);
    let mut timeout = DEFAULT_READY_TIMEOUT;
    if let Some(item) = t.get("timeout") {
        timeout = cx.duration("ready.timeout", item).unwrap_or(timeout);
    }
    let mut probes: Vec<Probe> = Vec::new();
    if let Some(item) = t.get("notify") {
        match cx.boolean("ready.notify", item) {
            Some(true) => probes.push(("notify", item.span(), Some(ReadyProbe::Notify))),
            Some(false) => {}
            None => probes.push(("notify", item.span(), None)),
        }
    }
    if let Some(item) = t.get("tcp") {
        let probe = cx
            .string("ready.tcp", item, "a \"HOST:PORT\" string")
            .and_then(|addr| match check_tcp(&addr) {
                Ok(()) => Some(ReadyProbe::Tcp(addr)),
                Err(e) => {
                    cx.error(item.span(), format!("ready.tcp: {e}"));
                    None
                }
            });
        probes.push(("tcp", item.span(), probe));
    }
    if let Some(item) = t.get("command") {
        let probe = cx.argv("ready.command", item).map(ReadyProbe::Command);
        probes.push(("command", item.span(), probe));
    }
    probes.sort_by_key(|(_, span, _)| span.as_ref().map(|s| s.start));
    if probes.is_empty() {
        if kind == ServiceType::Notify {
            // `type = "notify"` already says how; `[ready]` may just set the timeout.
            return Some(Ready {
                probe: ReadyProbe::Notify,
                timeout,
            });
        }
        cx.error(header, "[ready] needs one of notify = true, tcp or command");
        return None;
    }
    for (key, span, _) in probes.iter().skip(1) {
        cx.error(
            span.clone(),
            format!(
                "ready.{key}: only one of ready.notify, ready.tcp and ready.command may be set"
            ),
        );
    }
    let (key, span, probe) = probes.into_iter().next()?;
    if kind == ServiceType::Notify && key != "notify" {
        cx.error(
            span,
            format!("ready.{key}: not allowed with type = \"notify\" (a notify service is ready when it sends READY=1)"),
        );
    }
    Some(Ready {
        probe: probe?,
        timeout,
    })
}

/// A string that is not a `HOST:PORT` address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TcpAddressError {
    /// Not `HOST:PORT`.
    #[error(
        "invalid address {0:?}: expected HOST:PORT such as \"127.0.0.1:8080\", \"localhost:5432\" or \"[::1]:8080\""
    )]
    Syntax(String),
    /// The port is 0 or above 65535.
    #[error("invalid address {0:?}: the port must be in 1..=65535")]
    Port(String),
}

/// Checks a `HOST:PORT` address: HOST a name, an IPv4 address or a bracketed IPv6 address,
/// PORT in 1..=65535.
fn check_tcp(addr: &str) -> Result<(), TcpAddressError> {
    let bad = || TcpAddressError::Syntax(addr.to_string());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if let Some(inner) = host.strip_prefix('[') {
        let ip = inner.strip_suffix(']').ok_or_else(bad)?;
        ip.parse::<Ipv6Addr>().map_err(|_| bad())?;
    } else {
        let name_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !name_ok {
            return Err(bad());
        }
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u32>() {
        Ok(1..=65535) => Ok(()),
        _ => Err(TcpAddressError::Port(addr.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::check_tcp;

    #[test]
    fn tcp_addresses() {
        for good in [
            "127.0.0.1:8080",
            "localhost:5432",
            "[::1]:80",
            "db.internal:65535",
            "[fe80::1]:1",
        ] {
            assert_eq!(check_tcp(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "8080",
            ":8080",
            "localhost:",
            "::1:80",
            "[::1:80",
            "[nope]:80",
            "a b:1",
            "h:0",
            "h:65536",
            "h:-1",
            "h:99999999999",
        ] {
            assert!(check_tcp(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_tcp("h:0").map_err(|e| e.to_string()),
            Err("invalid address \"h:0\": the port must be in 1..=65535".to_string())
        );
    }
}
