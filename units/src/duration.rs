//! Durations (`"250ms"`, `"10s"`, `"1m30s"`) and sizes (`"512K"`, `"10M"`, `"1GiB"`):
//! parsing and compact formatting.

use std::time::Duration;

/// A string that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not of the form NUMBER UNIT [NUMBER UNIT ...].
    #[error(
        "invalid duration {0:?}: expected a number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"5m\")"
    )]
    Syntax(String),
    /// Well-formed but too large to represent.
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

/// A string that is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not of the form NUMBER [K|M|G|T][B|iB].
    #[error(
        "invalid size {0:?}: expected a number of bytes with an optional K, M, G or T suffix (e.g. \"4096\", \"512K\", \"10M\", \"1G\")"
    )]
    Syntax(String),
    /// Well-formed but more than 2^64-1 bytes.
    #[error("invalid size {0:?}: too large")]
    Overflow(String),
}

/// Parses a duration: one or more `NUMBER UNIT` groups with no spaces, the units being
/// `ms`, `s`, `m` and `h` (`"250ms"`, `"10s"`, `"5m"`, `"1h"`, `"1m30s"`). A bare `"0"` is
/// also accepted. Numbers are non-negative integers.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let syntax = || DurationError::Syntax(s.to_string());
    let overflow = || DurationError::Overflow(s.to_string());
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total_ms: u64 = 0;
    if rest.is_empty() {
        return Err(syntax());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(syntax());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| overflow())?;
        rest = &rest[digits..];
        let (unit_ms, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else {
            return Err(syntax());
        };
        rest = &rest[len..];
        let ms = number.checked_mul(unit_ms).ok_or_else(overflow)?;
        total_ms = total_ms.checked_add(ms).ok_or_else(overflow)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration compactly: `"0s"`, `"400ms"`, `"1.5s"`, `"2m3s"`, `"1h"`,
/// `"1h30m"`. Below one second the precision is milliseconds; from one second on,
/// fractions of a second are shown with up to three decimals.
pub fn format_duration(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms == 0 {
        return "0s".to_string();
    }
    if total_ms < 1_000 {
        return format!("{total_ms}ms");
    }
    let hours = total_ms / 3_600_000;
    let minutes = total_ms / 60_000 % 60;
    let secs = total_ms / 1_000 % 60;
    let millis = total_ms % 1_000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if secs > 0 || millis > 0 {
        out.push_str(&secs.to_string());
        if millis > 0 {
            let frac = format!("{millis:03}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out.push('s');
    }
    out
}

/// Parses a size in bytes: an integer with an optional binary (1024-based) suffix `K`,
/// `M`, `G` or `T` (either case), itself optionally followed by `B` or `iB`
/// (`"4096"`, `"512K"`, `"10M"`, `"10MB"`, `"1GiB"`); `"100B"` is 100 bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let syntax = || SizeError::Syntax(s.to_string());
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(syntax());
    }
    let number: u64 = s[..digits]
        .parse()
        .map_err(|_| SizeError::Overflow(s.to_string()))?;
    let suffix = &s[digits..];
    let mut chars = suffix.chars();
    let (shift, rest) = match chars.next() {
        None => (0, ""),
        Some('k' | 'K') => (10, chars.as_str()),
        Some('m' | 'M') => (20, chars.as_str()),
        Some('g' | 'G') => (30, chars.as_str()),
        Some('t' | 'T') => (40, chars.as_str()),
        Some('B') if chars.as_str().is_empty() => (0, ""),
        Some(_) => return Err(syntax()),
    };
    if !matches!(rest, "" | "B" | "iB") {
        return Err(syntax());
    }
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::Overflow(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("5m"), Ok(ms(300_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1h2m3s4ms"), Ok(ms(3_723_004)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("007s"), Ok(ms(7_000)));
    }

    #[test]
    fn bad_durations_are_rejected() {
        for bad in [
            "", "10", "s", "10 sec", "10sec", " 10s", "10s ", "-5s", "+5s", "1.5s", "10S", "1d",
            "5m3",
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(DurationError::Syntax(bad.to_string())),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_duration("10 sec").map_err(|e| e.to_string()),
            Err("invalid duration \"10 sec\": expected a number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"5m\")".to_string())
        );
    }

    #[test]
    fn huge_durations_overflow() {
        for big in [
            "99999999999999999999s",
            "18446744073709551615h",
            "18446744073709551615ms1ms",
        ] {
            assert_eq!(
                parse_duration(big),
                Err(DurationError::Overflow(big.to_string())),
                "{big:?}"
            );
        }
        assert_eq!(parse_duration("18446744073709551615ms"), Ok(ms(u64::MAX)));
    }

    #[test]
    fn durations_format_compactly() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(ms(400)), "400ms");
        assert_eq!(format_duration(ms(1_500)), "1.5s");
        assert_eq!(format_duration(ms(1_250)), "1.25s");
        assert_eq!(format_duration(ms(10_000)), "10s");
        assert_eq!(format_duration(ms(123_000)), "2m3s");
        assert_eq!(format_duration(ms(3_600_000)), "1h");
        assert_eq!(format_duration(ms(5_400_000)), "1h30m");
        assert_eq!(format_duration(ms(3_605_000)), "1h5s");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1ms");
    }

    #[test]
    fn formatted_whole_durations_parse_back() {
        for n in [1, 999, 1_000, 60_000, 61_000, 3_600_000, 3_723_000] {
            assert_eq!(parse_duration(&format_duration(ms(n))), Ok(ms(n)), "{n}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
    }

    #[test]
    fn bad_sizes_are_rejected() {
        for bad in [
            "", "M", "10 M", "-1", "1.5M", "10X", "10Mb", "10MiBs", "10KM", "10b", "0x10",
        ] {
            assert_eq!(
                parse_size(bad),
                Err(SizeError::Syntax(bad.to_string())),
                "{bad:?}"
            );
        }
        for big in [
            "18446744073709551616",
            "16777216T",
            "99999999999999999999999",
        ] {
            assert_eq!(
                parse_size(big),
                Err(SizeError::Overflow(big.to_string())),
                "{big:?}"
            );
        }
        assert_eq!(parse_size("16777215T"), Ok(16_777_215 << 40));
    }
}
