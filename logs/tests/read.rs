//! Reading logs back: `read_last_lines` and `follow` on files the hub wrote.

mod util;

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use kennel_logs::{follow, log_path, read_last_lines, LogHub};
use util::{cfg, records};

#[tokio::test]
async fn last_lines_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let hub = LogHub::start(dir.path(), false).unwrap();
    // Records are 24 + 1 + 6 + 1 + 8 + 1 = 41 bytes: two per file.
    for i in 0..9 {
        hub.system("u", &cfg(100, 3), &format!("event {i:02}"));
    }
    hub.close().await;
    let path = log_path(dir.path(), "u");
    assert!(std::path::Path::new(&format!("{}.3", path.display())).exists());
    assert!(!std::path::Path::new(&format!("{}.4", path.display())).exists());
    let text = |n| -> Vec<String> {
        let got = read_last_lines(&path, n).unwrap();
        let data: Vec<u8> = got
            .iter()
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect();
        records(&data)
            .into_iter()
            .map(|r| String::from_utf8(r.line).unwrap())
            .collect()
    };
    assert_eq!(text(3), ["event 06", "event 07", "event 08"]);
    // Only 4 files are kept (NAME.log + 3): events 00 and 01 are gone.
    let all = text(100);
    let expect: Vec<String> = (2..9).map(|i| format!("event {i:02}")).collect();
    assert_eq!(all, expect);
}

/// `follow`'s output, sent over a channel write by write.
struct ChanWriter(mpsc::Sender<Vec<u8>>);

impl Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads `rx` until the accumulated output `out` holds `want` complete records.
fn wait_records(rx: &mpsc::Receiver<Vec<u8>>, out: &mut Vec<u8>, want: usize) {
    while out.iter().filter(|&&b| b == b'\n').count() < want {
        let chunk = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("follow stalled at {:?}", String::from_utf8_lossy(out)));
        out.extend(chunk);
    }
}

#[tokio::test]
async fn follow_sees_appends_and_survives_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path(), "f");
    let hub = LogHub::start(dir.path(), false).unwrap();
    let c = cfg(100, 2); // two 37-byte records per file
    for i in 0..3 {
        hub.system("f", &c, &format!("old {i}"));
    }
    hub.flush().await;

    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let path = path.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            follow(&path, 2, &mut ChanWriter(tx), || {
                stop.load(Ordering::SeqCst)
            })
        })
    };
    let mut out = Vec::new();
    wait_records(&rx, &mut out, 2);
    // The last 2 of 3, the first of them in the rotated file.
    let lines = |out: &[u8]| -> Vec<String> {
        records(out)
            .into_iter()
            .map(|r| String::from_utf8(r.line).unwrap())
            .collect()
    };
    assert_eq!(lines(&out), ["old 1", "old 2"]);

    // New records, several rotations among them; each waited for before the next, so the
    // follower is never more than one rotation behind.
    for i in 0..8 {
        hub.system("f", &c, &format!("new {i}"));
        hub.flush().await;
        wait_records(&rx, &mut out, 3 + i);
    }
    stop.store(true, Ordering::SeqCst);
    follower.join().unwrap().unwrap();
    let mut expect = vec!["old 1".to_string(), "old 2".to_string()];
    expect.extend((0..8).map(|i| format!("new {i}")));
    assert_eq!(lines(&out), expect);
    hub.close().await;
}

#[test]
fn follow_waits_for_a_log_that_does_not_exist_yet() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path(), "late");
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let path = path.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            follow(&path, 10, &mut ChanWriter(tx), || {
                stop.load(Ordering::SeqCst)
            })
        })
    };
    std::fs::write(&path, "first\nsecond\n").unwrap();
    let mut out = Vec::new();
    wait_records(&rx, &mut out, 2);
    assert_eq!(out, b"first\nsecond\n");
    stop.store(true, Ordering::SeqCst);
    follower.join().unwrap().unwrap();
}
