//! Typed reads of single TOML values, each reporting a positioned diagnostic when the
//! value has the wrong type or a bad content.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{Item, Key, TableLike, Value};

use crate::diag::{Diagnostic, LineIndex};
use crate::duration::{parse_duration, parse_size};
use crate::model::Signal;
use crate::name::check_unit_name;
use crate::signal::{known_names, parse_signal};
use crate::suggest::{did_you_mean, levenshtein};

/// The diagnostics of one file being parsed.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a Path,
    pub(crate) index: LineIndex<'a>,
    pub(crate) diags: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Ctx {
            file,
            index: LineIndex::new(text),
            diags: Vec::new(),
        }
    }

    /// 1-based line and column of a span's start (1:1 without a span).
    pub(crate) fn pos(&self, span: Option<Range<usize>>) -> (usize, usize) {
        self.index.span_start(span)
    }

    /// Records a problem at the start of `span`.
    pub(crate) fn error(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let (line, col) = self.pos(span);
        self.diags
            .push(Diagnostic::new(self.file, line, col, message));
    }

    /// Reports every key of `table` that is not in `known`, at the key. `section` is
    /// `None` for the top level, else the table's name (`"service"`).
    pub(crate) fn check_keys(
        &mut self,
        table: &dyn TableLike,
        section: Option<&str>,
        known: &[&str],
    ) {
        for (key, _) in table.iter() {
            if known.contains(&key) {
                continue;
            }
            let hint = did_you_mean(key, known.iter().copied());
            let place = section.map_or_else(|| "at top level".to_string(), |s| format!("in [{s}]"));
            let span = table.key(key).and_then(Key::span);
            self.error(span, format!("unknown key {key:?} {place}{hint}"));
        }
    }

    fn wrong_type(&mut self, path: &str, item: &Item, expected: &str) {
        self.error(
            item.span(),
            format!("{path}: expected {expected}, found {}", describe(item)),
        );
    }

    /// A table or inline table.
    pub(crate) fn table<'i>(&mut self, path: &str, item: &'i Item) -> Option<&'i dyn TableLike> {
        let table = item.as_table_like();
        if table.is_none() {
            self.wrong_type(path, item, "a table");
        }
        table
    }

    /// Any string.
    pub(crate) fn string(&mut self, path: &str, item: &Item, expected: &str) -> Option<String> {
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong_type(path, item, expected);
                None
            }
        }
    }

    /// A string that is not empty and holds no NUL character.
    pub(crate) fn text(&mut self, path: &str, item: &Item, expected: &str) -> Option<String> {
        let s = self.string(path, item, expected)?;
        if s.is_empty() {
            self.error(item.span(), format!("{path}: must not be empty"));
            None
        } else if s.contains('\0') {
            self.error(
                item.span(),
                format!("{path}: must not contain a NUL character"),
            );
            None
        } else {
            Some(s)
        }
    }

    /// An absolute path.
    /// A path relative to a base directory, that stays below it: `redis`, `a/b`.
    pub(crate) fn rel_path(&mut self, path: &str, item: &Item) -> Option<String> {
        let s = self.text(path, item, "a relative path string such as \"redis\"")?;
        let below =
            !s.starts_with('/') && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
        if below {
            Some(s)
        } else {
            let msg = format!("{path}: must be a relative path below its base directory (no /, ., .. or empty parts at either end or inside), found {s:?}");
            self.error(item.span(), msg);
            None
        }
    }

    /// Permission bits as an octal string: `"0755"`, `"750"`.
    pub(crate) fn mode(&mut self, path: &str, item: &Item) -> Option<u32> {
        let s = self.string(path, item, "an octal mode string such as \"0755\"")?;
        match u32::from_str_radix(&s, 8) {
            Ok(m) if m <= 0o7777 && !s.is_empty() => Some(m),
            _ => {
                let msg = format!("{path}: expected an octal mode such as \"0755\", found {s:?}");
                self.error(item.span(), msg);
                None
            }
        }
    }

    pub(crate) fn abs_path(&mut self, path: &str, item: &Item) -> Option<PathBuf> {
        let s = self.text(path, item, "an absolute path string")?;
        if s.starts_with('/') {
            Some(PathBuf::from(s))
        } else {
            self.error(
                item.span(),
                format!("{path}: must be an absolute path, found {s:?}"),
            );
            None
        }
    }

    pub(crate) fn boolean(&mut self, path: &str, item: &Item) -> Option<bool> {
        let b = item.as_bool();
        if b.is_none() {
            self.wrong_type(path, item, "true or false");
        }
        b
    }

    /// An integer in `lo..=hi`.
    pub(crate) fn int(&mut self, path: &str, item: &Item, lo: i64, hi: i64) -> Option<i64> {
        let Some(n) = item.as_integer() else {
            self.wrong_type(path, item, "an integer");
            return None;
        };
        let unbounded = hi >= i64::from(u32::MAX);
        if (lo..=hi).contains(&n) {
            return Some(n);
        }
        let rule = if unbounded && n < lo {
            format!("must be at least {lo}")
        } else if unbounded {
            format!("must be at most {hi}")
        } else {
            format!("must be in {lo}..={hi}")
        };
        self.error(item.span(), format!("{path}: {rule}, found {n}"));
        None
    }

    /// A `u32` that is at least `min`.
    pub(crate) fn count(&mut self, path: &str, item: &Item, min: u32) -> Option<u32> {
        let n = self.int(path, item, i64::from(min), i64::from(u32::MAX))?;
        u32::try_from(n).ok()
    }

    pub(crate) fn duration(&mut self, path: &str, item: &Item) -> Option<Duration> {
        let s = self.string(path, item, "a duration string such as \"10s\"")?;
        match parse_duration(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(item.span(), format!("{path}: {e}"));
                None
            }
        }
    }

    /// A duration, or `"infinity"` ([`crate::INFINITY`]: no timeout).
    pub(crate) fn timeout(&mut self, path: &str, item: &Item) -> Option<Duration> {
        if item.as_str() == Some("infinity") {
            return Some(crate::INFINITY);
        }
        self.duration(path, item)
    }

    /// A list of commands: `[["/bin/a", "x"], ["-", "/bin/b"]]`, a leading `"-"` element
    /// meaning the command's failure is ignored.
    pub(crate) fn exec_commands(&mut self, path: &str, item: &Item) -> Vec<crate::ExecCommand> {
        let Some(values) = self.array(
            path,
            item,
            "an array of commands such as [[\"/bin/app\", \"--check\"], [\"-\", \"/bin/may-fail\"]]",
        ) else {
            return Vec::new();
        };
        let mut commands = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let elem = format!("{path}[{i}]");
            let Some(mut argv) = self.argv(&elem, &Item::Value((*v).clone())) else {
                continue;
            };
            let ignore_failure = argv[0] == "-";
            if ignore_failure {
                argv.remove(0);
                if argv.is_empty() {
                    self.error(v.span(), format!("{elem}: a command must follow \"-\""));
                    continue;
                }
            }
            commands.push(crate::ExecCommand {
                argv,
                ignore_failure,
            });
        }
        commands
    }

    pub(crate) fn size(&mut self, path: &str, item: &Item) -> Option<u64> {
        let s = self.string(path, item, "a size string such as \"10M\"")?;
        match parse_size(&s) {
            Ok(n) => Some(n),
            Err(e) => {
                self.error(item.span(), format!("{path}: {e}"));
                None
            }
        }
    }

    /// A signal: a name or number string, or an integer 1..=64.
    pub(crate) fn signal(&mut self, path: &str, item: &Item) -> Option<Signal> {
        let text = match item.as_value() {
            Some(Value::String(s)) => s.value().clone(),
            Some(Value::Integer(n)) => n.value().to_string(),
            _ => {
                self.wrong_type(path, item, "a signal such as \"SIGTERM\" or 15");
                return None;
            }
        };
        match parse_signal(&text) {
            Ok(sig) => Some(sig),
            Err(e) => {
                let names: Vec<String> = known_names().collect();
                let upper = text.to_ascii_uppercase();
                // Only near misses: "SIGFOO" is two edits from "SIGFPE", which is no help.
                let close = names
                    .iter()
                    .map(String::as_str)
                    .filter(|n| levenshtein(&upper, n) <= 1);
                let hint = did_you_mean(&upper, close);
                self.error(item.span(), format!("{path}: {e}{hint}"));
                None
            }
        }
    }

    /// One of `choices`, with a suggestion when it is close to one.
    pub(crate) fn choice<'c>(
        &mut self,
        path: &str,
        item: &Item,
        choices: &[&'c str],
    ) -> Option<&'c str> {
        let list = choices
            .iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let s = self.string(path, item, &format!("one of {list}"))?;
        if let Some(c) = choices.iter().find(|&&c| c == s) {
            return Some(c);
        }
        let hint = did_you_mean(&s, choices.iter().copied());
        self.error(
            item.span(),
            format!("{path}: invalid value {s:?}: expected one of {list}{hint}"),
        );
        None
    }

    /// The elements of an array, each with its item wrapper for positions.
    pub(crate) fn array<'i>(
        &mut self,
        path: &str,
        item: &'i Item,
        expected: &str,
    ) -> Option<Vec<&'i Value>> {
        match item.as_array() {
            Some(a) => Some(a.iter().collect()),
            None => {
                self.wrong_type(path, item, expected);
                None
            }
        }
    }

    /// An array of tables (`[[path]]` tables or an array of inline tables): each with its
    /// index and where to report a key it lacks. `example` completes "expected an array of
    /// tables such as ...".
    pub(crate) fn table_array<'i>(
        &mut self,
        path: &str,
        item: &'i Item,
        example: &str,
    ) -> Vec<(usize, &'i dyn TableLike, Option<Range<usize>>)> {
        let mut entries: Vec<(usize, &dyn TableLike, Option<Range<usize>>)> = Vec::new();
        match item {
            Item::ArrayOfTables(aot) => {
                entries.extend(
                    aot.iter()
                        .enumerate()
                        .map(|(i, t)| (i, t as &dyn TableLike, t.span())),
                );
            }
            Item::Value(Value::Array(values)) => {
                for (i, v) in values.iter().enumerate() {
                    match v.as_inline_table() {
                        Some(t) => entries.push((i, t, v.span())),
                        None => self.error(
                            v.span(),
                            format!("{path}[{i}]: expected a table, found {}", describe_value(v)),
                        ),
                    }
                }
            }
            _ => self.error(
                item.span(),
                format!(
                    "{path}: expected an array of tables such as {example}, found {}",
                    describe(item)
                ),
            ),
        }
        entries
    }

    /// An argv: a non-empty array of strings, the first one non-empty, none with a NUL.
    pub(crate) fn argv(&mut self, path: &str, item: &Item) -> Option<Vec<String>> {
        let values = self.array(
            path,
            item,
            "an array of strings such as [\"/bin/app\", \"--flag\"]",
        )?;
        if values.is_empty() {
            self.error(item.span(), format!("{path}: must not be empty"));
            return None;
        }
        let mut argv = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let elem = format!("{path}[{i}]");
            match v.as_str() {
                Some("") if i == 0 => {
                    self.error(v.span(), format!("{elem}: the program must not be empty"))
                }
                Some(s) if s.contains('\0') => self.error(
                    v.span(),
                    format!("{elem}: must not contain a NUL character"),
                ),
                Some(s) => argv.push(s.to_string()),
                None => self.error(
                    v.span(),
                    format!("{elem}: expected a string, found {}", describe_value(v)),
                ),
            }
        }
        (argv.len() == values.len()).then_some(argv)
    }

    /// An array of unit names, each with its span.
    pub(crate) fn unit_names(
        &mut self,
        path: &str,
        item: &Item,
    ) -> Vec<(String, Option<Range<usize>>)> {
        let Some(values) = self.array(path, item, "an array of unit names such as [\"db\"]") else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for (i, v) in values.iter().enumerate() {
            match v.as_str() {
                Some(s) => match check_unit_name(s) {
                    Ok(()) => names.push((s.to_string(), v.span())),
                    Err(e) => self.error(v.span(), format!("{path}: {e}")),
                },
                None => self.error(
                    v.span(),
                    format!(
                        "{path}[{i}]: expected a unit name string, found {}",
                        describe_value(v)
                    ),
                ),
            }
        }
        names
    }
}

/// What a TOML item is, for "found ..." messages: `integer 10`, `string "x"`, `table`.
pub(crate) fn describe(item: &Item) -> String {
    match item {
        Item::None => "nothing".to_string(),
        Item::Value(v) => describe_value(v),
        Item::Table(_) => "table".to_string(),
        Item::ArrayOfTables(_) => "array of tables".to_string(),
    }
}

pub(crate) fn describe_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {:?}", s.value()),
        Value::Integer(n) => format!("integer {}", n.value()),
        Value::Float(f) => format!("float {}", f.value()),
        Value::Boolean(b) => format!("boolean {}", b.value()),
        Value::Datetime(d) => format!("datetime {}", d.value()),
        Value::Array(_) => "array".to_string(),
        Value::InlineTable(_) => "table".to_string(),
    }
}
