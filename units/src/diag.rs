//! Diagnostics: one problem of one unit file, printed as `FILE:LINE:COL: message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a unit file. Line and column are 1-based; the column counts
/// characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Diagnostic {
    /// The unit file (or directory) the problem is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong, in one line.
    pub message: String,
    /// A warning (something kennel reads differently or not at all, the unit still loads)
    /// rather than an error. Only systemd unit files give warnings; `kennel check --strict`
    /// makes them errors.
    pub warning: bool,
}

impl Diagnostic {
    /// A diagnostic at `line:col` of `file`.
    pub fn new(file: &Path, line: usize, col: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line,
            col,
            message: message.into(),
            warning: false,
        }
    }

    /// A warning at `line:col` of `file`.
    pub fn warning(file: &Path, line: usize, col: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            warning: true,
            ..Diagnostic::new(file, line, col, message)
        }
    }

    /// A diagnostic about a whole file, placed at 1:1.
    pub fn at_start(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic::new(file, 1, 1, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}{}",
            self.file.display(),
            self.line,
            self.col,
            if self.warning { "warning: " } else { "" },
            self.message
        )
    }
}

/// Sorts diagnostics by file, line, column (then message) and drops exact duplicates.
pub fn sort_diagnostics(diags: &mut Vec<Diagnostic>) {
    diags.sort();
    diags.dedup();
}

/// Turns byte offsets of one text into 1-based line:column positions.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset at which each line starts.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// The 1-based (line, column) of a byte offset; offsets past the end or inside a
    /// character are moved back to the nearest character boundary.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        (line, col)
    }

    /// The position of the start of a span, or 1:1 without one.
    pub(crate) fn span_start(&self, span: Option<Range<usize>>) -> (usize, usize) {
        span.map_or((1, 1), |s| self.position(s.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let idx = LineIndex::new("ab\nçd\n\nx");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(1), (1, 2));
        assert_eq!(idx.position(3), (2, 1));
        // 'ç' is two bytes: 'd' is at byte 5, character column 2.
        assert_eq!(idx.position(5), (2, 2));
        // Inside 'ç': moved back to its start.
        assert_eq!(idx.position(4), (2, 1));
        assert_eq!(idx.position(7), (3, 1));
        assert_eq!(idx.position(8), (4, 1));
        assert_eq!(idx.position(100), (4, 2));
    }

    #[test]
    fn display_is_file_line_col_message() {
        let d = Diagnostic::new(Path::new("u/web.toml"), 3, 7, "bad");
        assert_eq!(d.to_string(), "u/web.toml:3:7: bad");
    }
}
