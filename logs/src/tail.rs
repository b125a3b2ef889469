//! Reading logs back: the last lines across `NAME.log.K` .. `NAME.log`, read from the end.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::rotate::rotated_path;

/// Bytes read at a time, backwards from the end of a file.
const BLOCK: u64 = 64 * 1024;

/// The last `n` lines of the log at `path` (`DIR/NAME.log`), continuing into its rotated
/// files (`NAME.log.1`, `NAME.log.2` ...) when `NAME.log` has fewer; oldest first, without
/// their `\n`. Files are read backwards from the end, so big files cost only what is
/// returned. A trailing line without `\n` counts as a line.
///
/// Errors: `NotFound` when neither `NAME.log` nor any rotated file exists.
pub fn read_last_lines(path: &Path, n: usize) -> io::Result<Vec<Vec<u8>>> {
    match File::open(path) {
        Ok(file) => {
            let len = file.metadata()?.len();
            last_lines(path, n, Some((&file, len)))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if !rotated_path(path, 1).exists() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no log at {}", path.display()),
                ));
            }
            last_lines(path, n, None)
        }
        Err(err) => Err(err),
    }
}

/// The last `n` lines of `current` (an open `NAME.log`, its first `len` bytes) and then of
/// the rotated files of `path`, oldest first.
pub(crate) fn last_lines(
    path: &Path,
    n: usize,
    current: Option<(&File, u64)>,
) -> io::Result<Vec<Vec<u8>>> {
    let mut parts = Vec::new(); // newest file first
    let mut found = 0;
    if let Some((file, len)) = current {
        let lines = tail(file, len, n)?;
        found += lines.len();
        parts.push(lines);
    }
    for older in rotated_files(path) {
        if found >= n {
            break;
        }
        let file = match File::open(&older) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        let len = file.metadata()?.len();
        let lines = tail(&file, len, n - found)?;
        found += lines.len();
        parts.push(lines);
    }
    Ok(parts.into_iter().rev().flatten().collect())
}

/// `NAME.log.1`, `NAME.log.2` ... as long as they exist (newest first).
fn rotated_files(path: &Path) -> Vec<PathBuf> {
    (1..)
        .map(|k| rotated_path(path, k))
        .take_while(|p| p.exists())
        .collect()
}

/// The last `n` lines of the first `len` bytes of `file`, oldest first.
fn tail(file: &File, len: u64, n: usize) -> io::Result<Vec<Vec<u8>>> {
    if n == 0 || len == 0 {
        return Ok(Vec::new());
    }
    let mut blocks = Vec::new(); // last block first
    let mut pos = len;
    let mut newlines = 0;
    while pos > 0 && newlines < n {
        let size = BLOCK.min(pos);
        pos -= size;
        let mut block = vec![0u8; size as usize];
        file.read_exact_at(&mut block, pos)?;
        newlines += block.iter().filter(|&&b| b == b'\n').count();
        if blocks.is_empty() && block.last() == Some(&b'\n') {
            newlines -= 1; // the final newline ends the last line, it starts none
        }
        blocks.push(block);
    }
    let mut data: Vec<u8> = blocks.into_iter().rev().flatten().collect();
    if data.last() == Some(&b'\n') {
        data.pop();
    }
    let mut lines: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if pos > 0 {
        lines.remove(0); // may be the end of a line that started before `pos`
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines.split_off(skip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn lines_of(v: Vec<Vec<u8>>) -> Vec<String> {
        v.into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn last_lines_of_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.log");
        fs::write(&path, "a\nb\nc\n").unwrap();
        assert_eq!(lines_of(read_last_lines(&path, 2).unwrap()), ["b", "c"]);
        assert_eq!(
            lines_of(read_last_lines(&path, 10).unwrap()),
            ["a", "b", "c"]
        );
        assert!(read_last_lines(&path, 0).unwrap().is_empty());
        fs::write(&path, "a\n\nno newline").unwrap();
        assert_eq!(
            lines_of(read_last_lines(&path, 2).unwrap()),
            ["", "no newline"]
        );
    }

    #[test]
    fn missing_log_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_last_lines(&dir.path().join("u.log"), 3).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn big_file_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.log");
        let text: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        fs::write(&path, text).unwrap();
        let got = lines_of(read_last_lines(&path, 30_000).unwrap());
        assert_eq!(got.len(), 30_000);
        assert_eq!(got[0], "line 70000");
        assert_eq!(got[29_999], "line 99999");
        // A line spanning two blocks comes out whole.
        let long = "x".repeat(200_000);
        fs::write(&path, format!("first\n{long}\nlast\n")).unwrap();
        let got = lines_of(read_last_lines(&path, 2).unwrap());
        assert_eq!(got, [long, "last".to_string()]);
    }

    #[test]
    fn across_rotated_files_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.log");
        fs::write(rotated_path(&path, 2), "1\n2\n").unwrap();
        fs::write(rotated_path(&path, 1), "3\n4\n").unwrap();
        fs::write(&path, "5\n").unwrap();
        assert_eq!(
            lines_of(read_last_lines(&path, 4).unwrap()),
            ["2", "3", "4", "5"]
        );
        assert_eq!(
            lines_of(read_last_lines(&path, 99).unwrap()),
            ["1", "2", "3", "4", "5"]
        );
        // Just rotated with keep = 0 or between rename and create: only rotated files.
        fs::remove_file(&path).unwrap();
        assert_eq!(
            lines_of(read_last_lines(&path, 3).unwrap()),
            ["2", "3", "4"]
        );
    }
}
