//! A process environment being assembled, and the `environment_file` format.

use std::ffi::CString;

/// PATH for services when neither kennel's caller nor the unit sets one (the kernel gives
/// init none).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables in insertion order; setting an existing key replaces its value in place.
#[derive(Debug, Default, Clone)]
pub struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Self {
        Env::default()
    }

    pub fn set(&mut self, key: &str, value: &str) {
        match self.vars.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.vars.push((key.to_string(), value.to_string())),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn extend(&mut self, it: impl IntoIterator<Item = (String, String)>) {
        for (k, v) in it {
            self.set(&k, &v);
        }
    }

    /// `KEY=VALUE` C strings for execve; the error names a variable containing NUL.
    pub fn to_cstrings(&self) -> Result<Vec<CString>, NulInVariable> {
        self.vars
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")).map_err(|_| NulInVariable(k.clone())))
            .collect()
    }
}

/// A variable whose name or value contains NUL, which execve cannot pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("variable {0} contains NUL")]
pub struct NulInVariable(pub String);

/// A line of an `environment_file` that is not an assignment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvFileError {
    #[error("expected KEY=VALUE, found {text:?}")]
    NotAssignment { line: usize, text: String },
    #[error("invalid variable name {name:?}")]
    InvalidName { line: usize, name: String },
}

impl EnvFileError {
    /// The line number, from 1.
    pub fn line(&self) -> usize {
        match self {
            EnvFileError::NotAssignment { line, .. } | EnvFileError::InvalidName { line, .. } => {
                *line
            }
        }
    }
}

/// Parse an `environment_file`: `KEY=VALUE` lines; blank lines and `#` comments skipped; an
/// optional `export ` prefix; a value wrapped in matching single or double quotes is
/// unwrapped. An error for the first line that is not an assignment.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err(EnvFileError::NotAssignment {
                line: i + 1,
                text: line.to_string(),
            });
        };
        let key = key.trim();
        let valid = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(EnvFileError::InvalidName {
                line: i + 1,
                name: key.to_string(),
            });
        }
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        out.push((key.to_string(), unquoted.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() {
        let text =
            "# comment\n\nA=1\nexport B = two words \nC=\"quoted # not comment\"\nD='x'\nE=\n";
        let got = parse_env_file(text).unwrap();
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "quoted # not comment"),
            ("D", "x"),
            ("E", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn env_file_errors_name_the_line() {
        let e = parse_env_file("A=1\nnonsense\n").unwrap_err();
        assert_eq!(e.line(), 2);
        assert_eq!(e.to_string(), "expected KEY=VALUE, found \"nonsense\"");
        let e = parse_env_file("1A=x").unwrap_err();
        assert_eq!(e.line(), 1);
        assert_eq!(e.to_string(), "invalid variable name \"1A\"");
    }

    #[test]
    fn later_values_win_in_place() {
        let mut e = Env::new();
        e.set("A", "1");
        e.set("B", "2");
        e.set("A", "3");
        assert_eq!(e.get("A"), Some("3"));
        assert_eq!(e.to_cstrings().unwrap()[0].to_str().unwrap(), "A=3");
    }
}
