//! One unit's log file: appending whole records and rotating `NAME.log` -> `NAME.log.1` ...

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kennel_units::Logs;

/// The buffer in front of each log file; flushed whenever the writer has nothing queued,
/// so it only fills under a flood (then 8 KiB per write(2) is plenty). Kept small: every
/// unit that ever logged keeps its buffer.
const BUFFER: usize = 8 * 1024;

/// `PATH.K`: the K-th rotated file of the log at `path` (`NAME.log.1` is the newest).
pub(crate) fn rotated_path(path: &Path, k: u32) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

/// `LOG_DIR/NAME.log`, opened lazily in append mode, with its current size.
#[derive(Debug)]
pub(crate) struct LogFile {
    /// `LOG_DIR/NAME.log`.
    path: PathBuf,
    /// The open file; `None` before the first record, after a rotation or after an error
    /// (the next record reopens it).
    out: Option<BufWriter<File>>,
    /// Bytes in the file, including those still buffered.
    size: u64,
}

impl LogFile {
    /// The log at `path`; nothing is opened yet.
    pub(crate) fn new(path: PathBuf) -> Self {
        LogFile {
            path,
            out: None,
            size: 0,
        }
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one whole record (ending in `\n`), rotating first when the record would
    /// make the file exceed `cfg.max_size`. A record longer than `max_size` goes alone
    /// into a fresh file.
    pub(crate) fn append(&mut self, record: &[u8], cfg: &Logs) -> io::Result<()> {
        self.open()?;
        let len = record.len() as u64;
        if self.size > 0 && self.size.saturating_add(len) > cfg.max_size {
            self.rotate(cfg.keep)?;
        }
        let out = self.open()?;
        if let Err(err) = out.write_all(record) {
            // Reopen (and re-measure) on the next record.
            self.out = None;
            return Err(err);
        }
        self.size += len;
        Ok(())
    }

    /// Writes buffered records to the file.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush().inspect_err(|_| self.out = None),
            None => Ok(()),
        }
    }

    /// `NAME.log.(KEEP-1)` -> `NAME.log.KEEP` ... `NAME.log` -> `NAME.log.1`, the oldest
    /// deleted; with `keep == 0` the log is deleted. Rotated files beyond `keep` (left by a
    /// larger `keep` before a reload) are deleted too. The next record opens a fresh file.
    pub(crate) fn rotate(&mut self, keep: u32) -> io::Result<()> {
        let flushed = self.flush();
        self.out = None;
        flushed?;
        if keep == 0 {
            remove_if_exists(&self.path)?;
        } else {
            remove_if_exists(&rotated_path(&self.path, keep))?;
            for k in (1..keep).rev() {
                rename_if_exists(
                    &rotated_path(&self.path, k),
                    &rotated_path(&self.path, k + 1),
                )?;
            }
            rename_if_exists(&self.path, &rotated_path(&self.path, 1))?;
        }
        let mut k = keep + 1;
        while rotated_path(&self.path, k).exists() {
            remove_if_exists(&rotated_path(&self.path, k))?;
            k += 1;
        }
        self.size = 0;
        Ok(())
    }

    /// The open file, opening `NAME.log` (append, create, 0644) and reading its size if needed.
    fn open(&mut self) -> io::Result<&mut BufWriter<File>> {
        if self.out.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o644)
                .open(&self.path)?;
            self.size = file.metadata()?.len();
            self.out = Some(BufWriter::with_capacity(BUFFER, file));
        }
        match self.out.as_mut() {
            Some(out) => Ok(out),
            None => Err(io::Error::other("log file not open")),
        }
    }
}

/// Deletes `path`; a missing file is not an error.
fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Renames `from` to `to`; a missing `from` is not an error.
fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_size: u64, keep: u32) -> Logs {
        Logs { max_size, keep }
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_default()
    }

    fn write_lines(log: &mut LogFile, cfg: &Logs, lines: &[&str]) {
        for l in lines {
            log.append(format!("{l}\n").as_bytes(), cfg).unwrap();
        }
        log.flush().unwrap();
    }

    #[test]
    fn rotates_before_exceeding_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.log");
        let mut log = LogFile::new(path.clone());
        // Records of 4 bytes, max 10: two fit (8), the third rotates.
        write_lines(&mut log, &cfg(10, 3), &["aaa", "bbb", "ccc", "ddd", "eee"]);
        assert_eq!(read(&path), "eee\n");
        assert_eq!(read(&rotated_path(&path, 1)), "ccc\nddd\n");
        assert_eq!(read(&rotated_path(&path, 2)), "aaa\nbbb\n");
        assert!(!rotated_path(&path, 3).exists());
    }

    #[test]
    fn exact_fit_does_not_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.log");
        let mut log = LogFile::new(path.clone());
        write_lines(&mut log, &cfg(8, 3), &["aaa", "bbb"]);
        assert_eq!(read(&path), "aaa\nbbb\n");
        assert!(!rotated_path(&path, 1).exists());
    }

    #[test]
    fn keeps_only_keep_files_oldest_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.log");
        let mut log = LogFile::new(path.clone());
        // max 4: every record gets its own file.
        write_lines(&mut log, &cfg(4, 2), &["r1", "r2", "r3", "r4", "r5"]);
        assert_eq!(read(&path), "r5\n");
        assert_eq!(read(&rotated_path(&path, 1)), "r4\n");
        assert_eq!(read(&rotated_path(&path, 2)), "r3\n");
        assert!(!rotated_path(&path, 3).exists());
    }

    #[test]
    fn keep_zero_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.log");
        let mut log = LogFile::new(path.clone());
        write_lines(&mut log, &cfg(8, 0), &["aaa", "bbb", "ccc"]);
        assert_eq!(read(&path), "ccc\n");
        assert!(!rotated_path(&path, 1).exists());
    }

    #[test]
    fn oversized_record_goes_into_a_fresh_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.log");
        let mut log = LogFile::new(path.clone());
        write_lines(&mut log, &cfg(5, 3), &["a", "a-very-long-record", "b"]);
        assert_eq!(read(&path), "b\n");
        assert_eq!(read(&rotated_path(&path, 1)), "a-very-long-record\n");
        assert_eq!(read(&rotated_path(&path, 2)), "a\n");
    }

    #[test]
    fn existing_log_is_appended_and_its_size_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.log");
        fs::write(&path, "old1\nold2\n").unwrap();
        let mut log = LogFile::new(path.clone());
        write_lines(&mut log, &cfg(15, 3), &["new1", "new2"]);
        assert_eq!(read(&path), "new2\n");
        assert_eq!(read(&rotated_path(&path, 1)), "old1\nold2\nnew1\n");
    }

    #[test]
    fn smaller_keep_after_reload_deletes_extra_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.log");
        let mut log = LogFile::new(path.clone());
        write_lines(&mut log, &cfg(3, 4), &["1", "2", "3", "4", "5"]);
        assert!(rotated_path(&path, 4).exists());
        write_lines(&mut log, &cfg(3, 1), &["6"]);
        assert_eq!(read(&path), "6\n");
        assert_eq!(read(&rotated_path(&path, 1)), "5\n");
        for k in 2..=4 {
            assert!(!rotated_path(&path, k).exists(), "{k}");
        }
    }
}
