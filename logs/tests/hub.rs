//! The hub end to end: real pipes into real files in a temp dir.

mod util;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kennel_logs::{log_path, LogError, LogHub};
use util::{all_records, cfg, lines, pipe, records, Sink};

#[tokio::test]
async fn captures_stdout_stderr_and_system_records() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::default();
    let hub = LogHub::start_with_echo(dir.path(), Box::new(sink.clone())).unwrap();
    let c = cfg(1 << 20, 3);
    let (out_r, mut out_w) = pipe();
    let (err_r, mut err_w) = pipe();
    hub.system("web", &c, "started pid 42");
    let capture = hub.attach("web", &c, out_r, err_r);
    out_w.write_all(b"hel").unwrap();
    out_w
        .write_all(b"lo\nworld\n\xff\xfebin\nno newline")
        .unwrap();
    err_w.write_all(b"dos line\r\n").unwrap();
    drop((out_w, err_w));
    capture.wait().await;
    hub.system("web", &c, "exited with code 3");
    hub.close().await;

    let recs = records(&std::fs::read(log_path(dir.path(), "web")).unwrap());
    let out: Vec<&[u8]> = recs
        .iter()
        .filter(|r| r.stream == "stdout")
        .map(|r| &r.line[..])
        .collect();
    assert_eq!(
        out,
        [&b"hello"[..], b"world", b"\xff\xfebin", b"no newline"]
    );
    assert_eq!(lines(&recs, "stderr"), ["dos line\r"]);
    assert_eq!(
        lines(&recs, "kennel"),
        ["started pid 42", "exited with code 3"]
    );
    assert_eq!(recs.first().unwrap().stream, "kennel");
    assert_eq!(recs.last().unwrap().stream, "kennel");

    // Echo: service output only, one write per whole line.
    let mut echoed = sink.writes.lock().unwrap().clone();
    echoed.sort();
    let mut expect = [
        &b"web | hello\n"[..],
        b"web | world\n",
        b"web | \xff\xfebin\n",
        b"web | no newline\n",
        b"web | dos line\r\n",
    ];
    expect.sort();
    assert_eq!(echoed, expect);
}

#[tokio::test]
async fn long_line_is_split_into_64k_records() {
    let dir = tempfile::tempdir().unwrap();
    let hub = LogHub::start(dir.path(), false).unwrap();
    let (out_r, mut out_w) = pipe();
    let (err_r, err_w) = pipe();
    drop(err_w);
    let capture = hub.attach("big", &cfg(1 << 30, 1), out_r, err_r);
    let writer = std::thread::spawn(move || {
        let line = vec![b'z'; kennel_logs::MAX_LINE * 2 + 5];
        out_w.write_all(&line).unwrap();
        out_w.write_all(b"\n").unwrap();
    });
    capture.wait().await;
    writer.join().unwrap();
    hub.close().await;
    let recs = all_records(&log_path(dir.path(), "big"));
    let lens: Vec<usize> = recs.iter().map(|r| r.line.len()).collect();
    assert_eq!(lens, [kennel_logs::MAX_LINE, kennel_logs::MAX_LINE, 5]);
    assert!(recs.iter().all(|r| r.line.iter().all(|&b| b == b'z')));
}

#[tokio::test]
async fn two_units_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::default();
    let hub = LogHub::start_with_echo(dir.path(), Box::new(sink.clone())).unwrap();
    let mut producers = Vec::new();
    let mut captures = Vec::new();
    for unit in ["alpha", "beta"] {
        let (out_r, mut out_w) = pipe();
        let (err_r, mut err_w) = pipe();
        captures.push(hub.attach(unit, &cfg(1 << 30, 1), out_r, err_r));
        producers.push(std::thread::spawn(move || {
            for i in 0..20_000 {
                writeln!(out_w, "{unit} out {i}").unwrap();
                if i % 10 == 0 {
                    writeln!(err_w, "{unit} err {i}").unwrap();
                }
            }
        }));
    }
    for c in captures {
        c.wait().await;
    }
    for p in producers {
        p.join().unwrap();
    }
    hub.close().await;
    for unit in ["alpha", "beta"] {
        let recs = all_records(&log_path(dir.path(), unit));
        let expect_out: Vec<String> = (0..20_000).map(|i| format!("{unit} out {i}")).collect();
        let expect_err: Vec<String> = (0..20_000)
            .step_by(10)
            .map(|i| format!("{unit} err {i}"))
            .collect();
        assert_eq!(lines(&recs, "stdout"), expect_out);
        assert_eq!(lines(&recs, "stderr"), expect_err);
    }
    // Every echoed write is one whole line of one unit.
    let writes = sink.writes.lock().unwrap();
    assert_eq!(writes.len(), 2 * (20_000 + 2_000));
    for w in writes.iter() {
        let text = std::str::from_utf8(w).unwrap();
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text:?}"
        );
        let (unit, line) = text.split_once(" | ").unwrap();
        assert!(line.starts_with(unit), "{text:?}");
    }
}

/// The content of line `i` of the flood: its number, then a letter pattern.
fn flood_line(i: u64) -> String {
    let letter = (b'a' + (i % 26) as u8) as char;
    format!("{i:09} {}", letter.to_string().repeat(90))
}

#[tokio::test]
async fn fifty_megabytes_every_line_once_and_whole_across_rotations() {
    const LINES: u64 = 500_000; // 100 bytes each
    let dir = tempfile::tempdir().unwrap();
    let hub = LogHub::start(dir.path(), false).unwrap();
    let (out_r, mut out_w) = pipe();
    let (err_r, err_w) = pipe();
    drop(err_w);
    let capture = hub.attach("flood", &cfg(4 << 20, 40), out_r, err_r);
    let producer = std::thread::spawn(move || {
        let mut buf = Vec::with_capacity(1 << 16);
        for i in 0..LINES {
            buf.extend_from_slice(flood_line(i).as_bytes());
            buf.push(b'\n');
            if buf.len() > 60_000 {
                out_w.write_all(&buf).unwrap();
                buf.clear();
            }
        }
        out_w.write_all(&buf).unwrap();
    });
    capture.wait().await;
    producer.join().unwrap();
    hub.close().await;

    let path = log_path(dir.path(), "flood");
    assert!(std::path::Path::new(&format!("{}.10", path.display())).exists());
    let recs = all_records(&path);
    assert_eq!(recs.len() as u64, LINES);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.stream, "stdout");
        assert_eq!(r.line, flood_line(i as u64).as_bytes(), "record {i}");
    }
    // No file grew past max_size.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        assert!(entry.unwrap().metadata().unwrap().len() <= 4 << 20);
    }
}

/// An echo sink slower than the producer: sleeps 1ms every 200 lines, and records how far
/// the producer was ahead of it.
struct SlowSink {
    echoed: u64,
    batch: u32,
    written: Arc<AtomicU64>,
    max_lag: Arc<AtomicU64>,
}

impl Write for SlowSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.echoed += 1;
        let lag = self
            .written
            .load(Ordering::SeqCst)
            .saturating_sub(self.echoed);
        self.max_lag.fetch_max(lag, Ordering::SeqCst);
        self.batch += 1;
        if self.batch == 200 {
            self.batch = 0;
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn flooding_service_never_blocks_the_event_loop() {
    const LINES: u64 = 200_000; // 100 bytes each: 20 MB, well over the channel's bound
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let max_lag = Arc::new(AtomicU64::new(0));
    let sink = SlowSink {
        echoed: 0,
        batch: 0,
        written: written.clone(),
        max_lag: max_lag.clone(),
    };
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    rt.block_on(async {
        let hub = LogHub::start_with_echo(dir.path(), Box::new(sink)).unwrap();
        let (out_r, mut out_w) = pipe();
        let (err_r, err_w) = pipe();
        drop(err_w);
        let capture = hub.attach("flood", &cfg(1 << 30, 1), out_r, err_r);
        let producer_written = written.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..LINES {
                writeln!(out_w, "{}", flood_line(i)).unwrap();
                producer_written.store(i + 1, Ordering::SeqCst);
            }
        });
        // The ticker: records the producer's progress at each tick of the event loop.
        let ticker_seen = seen.clone();
        let ticker_written = written.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            loop {
                tick.tick().await;
                ticker_seen
                    .lock()
                    .unwrap()
                    .push(ticker_written.load(Ordering::SeqCst));
            }
        });
        capture.wait().await;
        ticker.abort();
        producer.join().unwrap();
        hub.close().await;
    });
    let seen = seen.lock().unwrap();
    let mut during: Vec<u64> = seen
        .iter()
        .copied()
        .filter(|&n| n > 0 && n < LINES)
        .collect();
    during.dedup();
    assert!(
        during.len() >= 10,
        "the event loop ticked only {} times during the flood",
        during.len()
    );
    // Backpressure: the producer was never more than the channel's bound ahead of the writer
    // (64 batches of at most 128 KiB, plus the pipe: under 90 000 lines of 100 bytes).
    let lag = max_lag.load(Ordering::SeqCst);
    assert!(lag < 90_000, "producer ran {lag} lines ahead");
    assert_eq!(
        all_records(&log_path(dir.path(), "flood")).len() as u64,
        LINES
    );
}

#[tokio::test]
async fn system_records_keep_their_order_when_the_channel_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let hub = LogHub::start(dir.path(), false).unwrap();
    let c = cfg(1 << 30, 1);
    for i in 0..5_000 {
        hub.system("sys", &c, &format!("event {i}"));
    }
    hub.system("sys", &c, "two\nlines");
    hub.flush().await;
    // Flushed, not closed: the file is complete already.
    let recs = records(&std::fs::read(log_path(dir.path(), "sys")).unwrap());
    let mut expect: Vec<String> = (0..5_000).map(|i| format!("event {i}")).collect();
    expect.extend(["two".to_string(), "lines".to_string()]);
    assert_eq!(lines(&recs, "kennel"), expect);
    hub.close().await;
}

#[test]
fn system_outside_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let hub = LogHub::start(dir.path(), false).unwrap();
    for i in 0..1_000 {
        hub.system("sys", &cfg(1 << 30, 1), &format!("event {i}"));
    }
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(hub.close());
    let recs = records(&std::fs::read(log_path(dir.path(), "sys")).unwrap());
    assert_eq!(recs.len(), 1_000);
}

#[tokio::test]
async fn restart_appends_and_rotation_config_changes_on_attach() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path(), "app");
    for run in 0..2 {
        let hub = LogHub::start(dir.path(), false).unwrap();
        hub.system("app", &cfg(1 << 20, 2), &format!("run {run}"));
        hub.close().await;
    }
    assert_eq!(lines(&all_records(&path), "kennel"), ["run 0", "run 1"]);
    // A smaller max_size on the next attach: the next record rotates.
    let hub = LogHub::start(dir.path(), false).unwrap();
    let (out_r, mut out_w) = pipe();
    let (err_r, err_w) = pipe();
    drop(err_w);
    let capture = hub.attach("app", &cfg(60, 2), out_r, err_r);
    out_w.write_all(b"after reload\n").unwrap();
    drop(out_w);
    capture.wait().await;
    hub.close().await;
    assert_eq!(
        lines(&records(&std::fs::read(&path).unwrap()), "stdout"),
        ["after reload"]
    );
    assert_eq!(lines(&all_records(&path), "kennel"), ["run 0", "run 1"]);
}

#[tokio::test]
async fn close_within_takes_what_an_open_pipe_holds() {
    let dir = tempfile::tempdir().unwrap();
    let hub = LogHub::start(dir.path(), false).unwrap();
    let (out_r, mut out_w) = pipe();
    let (err_r, _err_w) = pipe();
    let _capture = hub.attach("stray", &cfg(1 << 20, 1), out_r, err_r);
    out_w.write_all(b"complete\npartial").unwrap();
    // The write ends stay open (a daemonized grandchild holds them).
    hub.close_within(Duration::from_millis(50)).await;
    let recs = records(&std::fs::read(log_path(dir.path(), "stray")).unwrap());
    assert_eq!(lines(&recs, "stdout"), ["complete", "partial"]);
    drop(out_w);
}

#[tokio::test]
async fn flush_after_capture_end_writes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let hub = LogHub::start(dir.path(), false).unwrap();
    let (out_r, mut out_w) = pipe();
    let (err_r, err_w) = pipe();
    let capture = hub.attach("job", &cfg(1 << 20, 1), out_r, err_r);
    out_w.write_all(b"one\ntwo\n").unwrap();
    drop((out_w, err_w));
    capture.wait().await;
    hub.flush().await;
    let recs = records(&std::fs::read(log_path(dir.path(), "job")).unwrap());
    assert_eq!(lines(&recs, "stdout"), ["one", "two"]);
    hub.close().await;
}

#[test]
fn start_fails_with_a_typed_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let err = LogHub::start(&file.join("logs"), false).unwrap_err();
    assert!(matches!(err, LogError::CreateDir { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "create log directory {}: not a directory",
            file.join("logs").display()
        )
    );
}
