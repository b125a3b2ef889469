//! Helpers shared by the integration tests: pipes, hubs in temp dirs, parsing log records.

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kennel_units::Logs;

/// A pipe: (read end, write end as a `File`).
pub fn pipe() -> (OwnedFd, File) {
    let (r, w) = nix::unistd::pipe().unwrap();
    (r, File::from(w))
}

/// `[logs]` with these values.
pub fn cfg(max_size: u64, keep: u32) -> Logs {
    Logs { max_size, keep }
}

/// One parsed record: `TIMESTAMP STREAM line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time: String,
    pub stream: String,
    pub line: Vec<u8>,
}

/// Parses a log file's records, checking the timestamp's shape.
pub fn records(data: &[u8]) -> Vec<Record> {
    let mut data = data;
    if data.last() == Some(&b'\n') {
        data = &data[..data.len() - 1];
    }
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == b'\n').map(parse).collect()
}

fn parse(rec: &[u8]) -> Record {
    let time = String::from_utf8(rec[..24].to_vec()).unwrap();
    let shape: String = time
        .chars()
        .map(|c| if c.is_ascii_digit() { 'D' } else { c })
        .collect();
    assert_eq!(shape, "DDDD-DD-DDTDD:DD:DD.DDDZ", "{time}");
    assert_eq!(rec[24], b' ');
    let rest = &rec[25..];
    let sp = rest.iter().position(|&b| b == b' ').unwrap();
    Record {
        time,
        stream: String::from_utf8(rest[..sp].to_vec()).unwrap(),
        line: rest[sp + 1..].to_vec(),
    }
}

/// Every record of the log at `path` and its rotated files, oldest first.
pub fn all_records(path: &Path) -> Vec<Record> {
    let mut files = Vec::new();
    let mut k = 1;
    loop {
        let p = format!("{}.{k}", path.display());
        if !Path::new(&p).exists() {
            break;
        }
        files.push(p);
        k += 1;
    }
    let mut out = Vec::new();
    for f in files.iter().rev() {
        out.extend(records(&fs::read(f).unwrap()));
    }
    if path.exists() {
        out.extend(records(&fs::read(path).unwrap()));
    }
    out
}

/// The lines of the records of `stream`, as strings.
pub fn lines(records: &[Record], stream: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.stream == stream)
        .map(|r| String::from_utf8(r.line.clone()).unwrap())
        .collect()
}

/// An echo sink that keeps what it is given, one `write` per echoed line.
#[derive(Clone, Default)]
pub struct Sink {
    pub writes: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes.lock().unwrap().push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
