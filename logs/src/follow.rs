//! `kennel logs -f`: print the last lines of a log, then what is appended, across rotations.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use crate::tail::last_lines;

/// How long `follow` sleeps when there was nothing new.
const POLL: Duration = Duration::from_millis(150);

/// The file being followed.
struct Current {
    file: File,
    /// `(st_dev, st_ino)`: a different pair at the path means the log was rotated.
    id: (u64, u64),
    /// Bytes already copied out.
    pos: u64,
}

/// Writes the last `n` lines of the log at `path` (across its rotated files, like
/// [`crate::read_last_lines`]) to `out`, then everything appended to it, polling every
/// 150ms, until `stop()` returns true (checked at every poll).
///
/// Rotation is handled: when the file at `path` is replaced (another inode), the rest of
/// the old file is copied first, then the new one from its start; when it shrinks, it is
/// read again from its start. A log that does not exist yet is waited for. Appended bytes
/// are copied as they are (the hub writes whole records).
pub fn follow(
    path: &Path,
    n: usize,
    out: &mut impl Write,
    stop: impl Fn() -> bool,
) -> io::Result<()> {
    let mut current = open(path, true)?;
    let lines = last_lines(path, n, current.as_ref().map(|c| (&c.file, c.pos)))?;
    for line in lines {
        out.write_all(&line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop() {
        let mut progressed = false;
        if let Some(cur) = current.as_mut() {
            progressed |= copy_new(cur, &mut buf, out)?;
        }
        match fs::metadata(path) {
            Ok(meta) => match current.as_mut() {
                Some(cur) if cur.id == (meta.dev(), meta.ino()) => {
                    if meta.len() < cur.pos {
                        cur.pos = 0; // truncated in place: start over
                        progressed = true;
                    }
                }
                _ => {
                    // Rotated (or created): the writer no longer writes the old file, so
                    // what it still holds past `pos` is final.
                    if let Some(cur) = current.as_mut() {
                        copy_new(cur, &mut buf, out)?;
                        // Several rotations between two polls: the generations written
                        // after the old file and already rotated away come first.
                        copy_missed_generations(path, cur.id, &mut buf, out)?;
                    }
                    current = open(path, false)?;
                    progressed = true;
                }
            },
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        if !progressed {
            std::thread::sleep(POLL);
        }
    }
    Ok(())
}

/// After the followed file (`old`) was rotated: copy, oldest first, every rotated file
/// newer than it (`NAME.log.K-1` .. `NAME.log.1` where `old` is now `NAME.log.K`; all of
/// them if `old` was already dropped).
fn copy_missed_generations(
    path: &Path,
    old: (u64, u64),
    buf: &mut [u8],
    out: &mut impl Write,
) -> io::Result<()> {
    let rotated = |k: usize| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{k}"));
        std::path::PathBuf::from(p)
    };
    let mut newer = Vec::new();
    for k in 1.. {
        match fs::metadata(rotated(k)) {
            Ok(meta) if (meta.dev(), meta.ino()) == old => break,
            Ok(_) => newer.push(rotated(k)),
            Err(_) => break,
        }
    }
    for p in newer.iter().rev() {
        if let Some(mut cur) = open(p, false)? {
            copy_new(&mut cur, buf, out)?;
        }
    }
    Ok(())
}

/// Opens `path`, positioned at its end or its start; `None` if it does not exist.
fn open(path: &Path, at_end: bool) -> io::Result<Option<Current>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    Ok(Some(Current {
        file,
        id: (meta.dev(), meta.ino()),
        pos: if at_end { meta.len() } else { 0 },
    }))
}

/// Copies what was appended to `cur` since `pos`; `true` if there was something.
fn copy_new(cur: &mut Current, buf: &mut [u8], out: &mut impl Write) -> io::Result<bool> {
    let mut any = false;
    loop {
        let n = match cur.file.read_at(buf, cur.pos) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        out.write_all(&buf[..n])?;
        cur.pos += n as u64;
        any = true;
    }
    if any {
        out.flush()?;
    }
    Ok(any)
}
