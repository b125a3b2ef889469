//! systemd's unit file syntax (systemd.syntax(7)): `[Section]` headers, `Key=Value`
//! assignments, comments (`#`, `;`), line continuations (a trailing backslash), and the
//! value syntaxes the mapping needs (booleans, time spans, quoted word lists).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diag::Diagnostic;

/// One `Key=Value` assignment, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The section it is in (`Unit`, `Service`, `Install`, ...).
    pub section: String,
    pub key: String,
    /// The value, leading and trailing whitespace removed, continuation lines joined with a
    /// space.
    pub value: String,
    /// The file (the unit file or one of its drop-ins).
    pub file: PathBuf,
    /// 1-based line and column of the key.
    pub line: usize,
    pub col: usize,
}

impl Entry {
    /// A warning about this assignment.
    pub fn warning(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(&self.file, self.line, self.col, message)
    }

    /// An error about this assignment.
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, self.line, self.col, message)
    }
}

/// Reads the assignments of one file, in order, onto `out`; syntax errors go to `diags`.
/// Lines are what systemd reads: blank lines and lines starting with `#` or `;` are
/// comments; a line ending with `\` continues on the next (the backslash becomes a space;
/// comment lines inside a continuation are skipped); an assignment before any section
/// header is an error, as is a line that is neither a header nor `Key=Value`.
pub fn parse(path: &Path, text: &str, out: &mut Vec<Entry>, diags: &mut Vec<Diagnostic>) {
    let mut section: Option<String> = None;
    // The entry being continued.
    let mut open: Option<Entry> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if let Some(mut e) = open.take() {
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                open = Some(e);
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(part) => {
                    e.value.push_str(part);
                    e.value.push(' ');
                    open = Some(e);
                }
                None => {
                    e.value.push_str(trimmed);
                    e.value = e.value.trim().to_string();
                    out.push(e);
                }
            }
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
        if let Some(rest) = trimmed.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) if !name.is_empty() && !name.contains(['[', ']']) => {
                    section = Some(name.to_string());
                }
                _ => diags.push(Diagnostic::new(
                    path,
                    line_no,
                    indent + 1,
                    format!("invalid section header {trimmed:?}: write [Section]"),
                )),
            }
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            diags.push(Diagnostic::new(
                path,
                line_no,
                indent + 1,
                format!("expected Key=Value, a [Section] header or a comment, found {trimmed:?}"),
            ));
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            diags.push(Diagnostic::new(
                path,
                line_no,
                indent + 1,
                format!("invalid key {key:?}"),
            ));
            continue;
        }
        let Some(section) = section.clone() else {
            diags.push(Diagnostic::new(
                path,
                line_no,
                indent + 1,
                format!("{key}= is before any [Section] header"),
            ));
            continue;
        };
        let value = value.trim_start();
        let mut entry = Entry {
            section,
            key: key.to_string(),
            value: String::new(),
            file: path.to_path_buf(),
            line: line_no,
            col: indent + 1,
        };
        match value.strip_suffix('\\') {
            Some(part) => {
                entry.value = format!("{part} ");
                open = Some(entry);
            }
            None => {
                entry.value = value.to_string();
                out.push(entry);
            }
        }
    }
    // A continuation at the end of the file ends the value there.
    if let Some(mut e) = open {
        e.value = e.value.trim().to_string();
        out.push(e);
    }
}

/// systemd's booleans: `1 yes y true t on` and `0 no n false f off`, in any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// A time span (systemd.time(7)): `NUMBER[UNIT]` groups, optionally separated by spaces,
/// a bare number meaning seconds: `"90"`, `"5min 20s"`, `"1h30m"`, `"500ms"`, `"1.5s"`.
/// `None` for `infinity` (the caller says what it does with it); `Err` for bad syntax.
pub fn parse_timespan(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if s == "infinity" {
        return Ok(None);
    }
    let bad = || format!("invalid time span {s:?}: write e.g. \"90\", \"5min 20s\", \"500ms\"");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = rest[n..].trim_start();
        let u = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..u];
        rest = &rest[u..];
        let seconds = match unit {
            "" | "s" | "sec" | "second" | "seconds" => 1.0,
            "us" | "usec" | "µs" => 1e-6,
            "ms" | "msec" => 1e-3,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            "w" | "week" | "weeks" => 7.0 * 86400.0,
            "M" | "month" | "months" => 30.44 * 86400.0,
            "y" | "year" | "years" => 365.25 * 86400.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total)
        .map(Some)
        .map_err(|_| bad())
}

/// Splits a value into words as systemd does for lists (`Environment=`, `After=`, ...):
/// separated by whitespace, `"..."` and `'...'` quote (the quotes removed), C escapes
/// (`\n`, `\t`, `\\`, `\"`, `\'`, `\xNN`, `\ ` ...) in and out of quotes.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => word.push(unescape(&mut chars)?),
                ('"' | '\'', None) => quote = Some(c),
                (q, Some(open)) if q == open => quote = None,
                (c, None) if c.is_whitespace() => break,
                (c, _) => word.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("unbalanced quote {q} in {s:?}"));
        }
        words.push(word);
    }
}

/// The character after a backslash (the backslash already read).
pub(crate) fn unescape(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<char, String> {
    let Some(c) = chars.next() else {
        return Err("a backslash at the end of the value".into());
    };
    Ok(match c {
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        's' => ' ',
        'x' => {
            let hex: String = [chars.next(), chars.next()].into_iter().flatten().collect();
            u8::from_str_radix(&hex, 16)
                .map(char::from)
                .map_err(|_| format!("invalid escape \\x{hex}"))?
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (section, key, value, line) of each entry.
    type Found = Vec<(String, String, String, usize)>;

    fn entries(text: &str) -> (Found, Vec<String>) {
        let (mut out, mut diags) = (Vec::new(), Vec::new());
        parse(Path::new("a.service"), text, &mut out, &mut diags);
        let out = out
            .into_iter()
            .map(|e| (e.section, e.key, e.value, e.line))
            .collect();
        (out, diags.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn sections_keys_comments() {
        let (e, d) = entries(
            "# comment\n; also\n[Unit]\nDescription = A thing \n\n[Service]\n  ExecStart=/bin/true\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            e,
            [
                ("Unit".into(), "Description".into(), "A thing".into(), 4),
                ("Service".into(), "ExecStart".into(), "/bin/true".into(), 7),
            ]
        );
    }

    #[test]
    fn continuations_join_with_a_space_and_skip_comments() {
        // systemd.syntax(7): "ExecStart=/usr/bin/foo \\\n  --bar" is one line; comment
        // lines inside a continuation are ignored.
        let (e, d) =
            entries("[Service]\nExecStart=/bin/echo \\\n  one \\\n# skipped\n  two\nX=1\\\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(e[0].2, "/bin/echo  one  two");
        assert_eq!(e[0].3, 2);
        assert_eq!(e[1].2, "1");
    }

    #[test]
    fn bad_lines_are_errors_with_positions() {
        let (_, d) = entries("Foo=1\n[Unit\n[Unit]\n  garbage\n");
        assert_eq!(
            d,
            [
                "a.service:1:1: Foo= is before any [Section] header",
                "a.service:2:1: invalid section header \"[Unit\": write [Section]",
                "a.service:4:3: expected Key=Value, a [Section] header or a comment, found \"garbage\"",
            ]
        );
    }

    #[test]
    fn booleans_and_timespans() {
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        let t = |s| parse_timespan(s).unwrap().unwrap();
        assert_eq!(t("90"), Duration::from_secs(90));
        assert_eq!(t("5min 20s"), Duration::from_secs(320));
        assert_eq!(t("1h30m"), Duration::from_secs(5400));
        assert_eq!(t("500ms"), Duration::from_millis(500));
        assert_eq!(t("1.5s"), Duration::from_millis(1500));
        assert_eq!(parse_timespan("infinity"), Ok(None));
        assert!(parse_timespan("10 parsecs").is_err());
        assert!(parse_timespan("").is_err());
    }

    #[test]
    fn words_with_quotes_and_escapes() {
        assert_eq!(
            split_words(r#"A=1 "B=two words" 'C=it''s' D=a\x41\tb"#).unwrap(),
            ["A=1", "B=two words", "C=its", "D=aA\tb"]
        );
        assert!(split_words("\"open").is_err());
        assert!(split_words("  ").unwrap().is_empty());
    }
}
