//! Signal names and numbers (Linux x86_64 numbering): `"SIGTERM"`, `"TERM"`, `"15"`,
//! `"SIGRTMIN+3"`.

use crate::model::Signal;

/// The first real-time signal as seen by programs (glibc reserves 32 and 33).
pub const SIGRTMIN: i32 = 34;
/// The last real-time signal.
pub const SIGRTMAX: i32 = 64;

/// The standard signals 1..=31 by number (index = number - 1), without the `SIG` prefix.
const NAMES: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// Other names accepted by [`parse_signal`].
const ALIASES: [(&str, i32); 4] = [("IOT", 6), ("CLD", 17), ("POLL", 29), ("UNUSED", 31)];

/// A string that names no signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid signal {0:?}: expected a name such as \"SIGTERM\" or \"TERM\", \"SIGRTMIN+N\", or a number 1..=64"
)]
pub struct SignalError(pub String);

/// Parses a signal: a name with or without the `SIG` prefix (case-insensitive:
/// `"SIGTERM"`, `"TERM"`, `"term"`), a real-time signal (`"SIGRTMIN"`, `"SIGRTMIN+3"`,
/// `"RTMIN+3"`, `"SIGRTMAX"`, `"SIGRTMAX-2"`), or a number 1..=64 (`"15"`).
pub fn parse_signal(s: &str) -> Result<Signal, SignalError> {
    let err = || SignalError(s.to_string());
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<i32>() {
            Ok(n) if (1..=SIGRTMAX).contains(&n) => Ok(Signal { number: n }),
            _ => Err(err()),
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(i) = NAMES.iter().position(|&n| n == name) {
        return Ok(Signal {
            number: i as i32 + 1,
        });
    }
    if let Some(&(_, n)) = ALIASES.iter().find(|(a, _)| *a == name) {
        return Ok(Signal { number: n });
    }
    let number = if let Some(rest) = name.strip_prefix("RTMIN") {
        SIGRTMIN + rt_offset(rest, '+').ok_or_else(err)?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        SIGRTMAX - rt_offset(rest, '-').ok_or_else(err)?
    } else {
        return Err(err());
    };
    if (SIGRTMIN..=SIGRTMAX).contains(&number) {
        Ok(Signal { number })
    } else {
        Err(err())
    }
}

/// `""` => 0, `"+N"` (with `sign` '+') => N.
fn rt_offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    let digits = rest.strip_prefix(sign)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 2 {
        return None;
    }
    digits.parse().ok()
}

/// The conventional name of a signal number: `"SIGTERM"`, `"SIGRTMIN"`, `"SIGRTMIN+3"`.
/// Numbers without a name (0, 32, 33, > 64, negative) come back as the plain number,
/// which [`parse_signal`] reads back when it is in 1..=64.
pub fn signal_name(number: i32) -> String {
    match number {
        1..=31 => format!("SIG{}", NAMES[number as usize - 1]),
        SIGRTMIN => "SIGRTMIN".to_string(),
        n if (SIGRTMIN + 1..=SIGRTMAX).contains(&n) => format!("SIGRTMIN+{}", n - SIGRTMIN),
        n => n.to_string(),
    }
}

/// Every name [`parse_signal`] knows, with the `SIG` prefix (for suggestions).
pub(crate) fn known_names() -> impl Iterator<Item = String> {
    NAMES
        .iter()
        .chain(ALIASES.iter().map(|(a, _)| a))
        .chain(["RTMIN", "RTMAX"].iter())
        .map(|n| format!("SIG{n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Result<i32, SignalError> {
        parse_signal(s).map(|s| s.number)
    }

    #[test]
    fn names_numbers_and_realtime_signals_parse() {
        assert_eq!(num("SIGTERM"), Ok(15));
        assert_eq!(num("TERM"), Ok(15));
        assert_eq!(num("sigterm"), Ok(15));
        assert_eq!(num("SIGHUP"), Ok(1));
        assert_eq!(num("SIGSYS"), Ok(31));
        assert_eq!(num("SIGIOT"), Ok(6));
        assert_eq!(num("15"), Ok(15));
        assert_eq!(num("64"), Ok(64));
        assert_eq!(num("32"), Ok(32));
        assert_eq!(num("SIGRTMIN"), Ok(34));
        assert_eq!(num("SIGRTMIN+3"), Ok(37));
        assert_eq!(num("RTMIN+30"), Ok(64));
        assert_eq!(num("SIGRTMAX"), Ok(64));
        assert_eq!(num("SIGRTMAX-2"), Ok(62));
    }

    #[test]
    fn unknown_signals_are_rejected() {
        for bad in [
            "", "0", "65", "-1", "SIG", "SIGFOO", "RTMIN+31", "RTMIN-1", "RTMAX+1", "RTMIN+",
            "15.0", " TERM",
        ] {
            assert_eq!(
                parse_signal(bad),
                Err(SignalError(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(34), "SIGRTMIN");
        assert_eq!(signal_name(37), "SIGRTMIN+3");
        assert_eq!(signal_name(32), "32");
        assert_eq!(signal_name(0), "0");
        for n in 1..=64 {
            assert_eq!(num(&signal_name(n)), Ok(n));
        }
    }
}
