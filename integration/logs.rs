//! Log capture: stdout and stderr lines in `NAME.log` with their stream, `kennel logs`
//! (`-n`, `-f`), and rotation at `max_size` keeping `keep` files without losing or
//! splitting a line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::harness::{Record, Sandbox, KENNEL, PATIENCE};

#[test]
fn stdout_and_stderr_lines_are_logged_with_their_stream() {
    let s = Sandbox::new();
    s.script_unit(
        "talker",
        "echo 'to stdout'\necho 'to stderr' >&2\nprintf 'no newline at the end'\nexit 0",
        "type = \"oneshot\"\n",
    );
    s.up();
    s.wait_state("talker", "exited");
    s.wait_log("talker", "kennel", "exited with code 0; done");
    s.wait_log("talker", "stdout", "no newline at the end");
    let records = s.records("talker");
    let lines: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r.stream != "kennel")
        .map(|r| (r.stream.as_str(), r.text.as_str()))
        .collect();
    for want in [
        ("stdout", "to stdout"),
        ("stderr", "to stderr"),
        ("stdout", "no newline at the end"),
    ] {
        assert!(lines.contains(&want), "{want:?} not in {lines:?}");
    }
    assert_eq!(lines.len(), 3, "{lines:?}");
    // `kennel logs` prints the same records.
    assert_eq!(s.ok(&["logs", "talker"]), s.log("talker"));
}

#[test]
fn logs_n_prints_the_last_n_lines() {
    let s = Sandbox::new();
    s.script_unit(
        "counter",
        "i=1; while [ $i -le 50 ]; do echo \"line $i\"; i=$((i+1)); done\nexec sleep 100000",
        "",
    );
    s.up();
    s.wait_log("counter", "stdout", "line 50");
    let all = s.ok(&["logs", "counter"]);
    let all: Vec<&str> = all.lines().collect();
    assert!(all.len() >= 51, "{all:?}");
    let last = s.ok(&["logs", "-n", "3", "counter"]);
    let last: Vec<&str> = last.lines().collect();
    assert_eq!(last, all[all.len() - 3..]);
    // kennel's own "started" record may land before or after the output (the service can
    // print before kennel hears that its helper reached exec): compare the service's lines.
    let texts: Vec<String> = all
        .iter()
        .map(|l| Record::parse(l))
        .filter(|r| r.stream == "stdout")
        .map(|r| r.text)
        .collect();
    assert_eq!(texts[texts.len() - 3..], ["line 48", "line 49", "line 50"]);
}

/// The numbers of the `n N` stdout records in the unit's log files, oldest file first, and
/// the files' sizes; asserts every line of every file is a whole record.
fn numbers_in_files(s: &Sandbox, unit: &str, keep: u32) -> (Vec<u64>, Vec<u64>) {
    let mut files = Vec::new();
    for k in (1..=keep).rev() {
        let p = s.logs.join(format!("{unit}.log.{k}"));
        if p.exists() {
            files.push(p);
        }
    }
    files.push(s.logs.join(format!("{unit}.log")));
    let mut numbers = Vec::new();
    let mut sizes = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read log");
        sizes.push(text.len() as u64);
        assert!(text.ends_with('\n'), "{} ends mid-record", f.display());
        for line in text.lines() {
            let r = Record::parse(line);
            if r.stream == "stdout" {
                let n = r
                    .text
                    .strip_prefix("n ")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("split or mangled line {line:?}"));
                numbers.push(n);
            }
        }
    }
    (numbers, sizes)
}

/// A oneshot printing `n 1` .. `n COUNT` as fast as it can, with the given `[logs]`.
fn flood(s: &Sandbox, count: u32, logs: &str) {
    s.script_unit(
        "flood",
        &format!("i=1; while [ $i -le {count} ]; do echo \"n $i\"; i=$((i+1)); done"),
        &format!("type = \"oneshot\"\n[logs]\n{logs}"),
    );
    s.up();
    s.wait_state("flood", "exited");
    // Every line and the exit record are written once both are in the files.
    let last = format!(" stdout n {count}\n");
    s.wait_for("the last line and the exit record", || {
        let texts: Vec<String> = std::fs::read_dir(&s.logs)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        texts.iter().any(|t| t.contains(&last))
            && texts
                .iter()
                .any(|t| t.contains(" kennel exited with code 0; done\n"))
    });
}

#[test]
fn rotation_loses_and_splits_no_line() {
    let s = Sandbox::new();
    // ~40 bytes a record: 1500 records fill ~8 files of 8K, fewer than keep.
    flood(&s, 1500, "max_size = \"8K\"\nkeep = 12\n");
    let (numbers, sizes) = numbers_in_files(&s, "flood", 12);
    assert!(sizes.len() >= 5, "expected several rotations: {sizes:?}");
    assert!(sizes.iter().all(|&n| n <= 8192), "{sizes:?}");
    let want: Vec<u64> = (1..=1500).collect();
    assert_eq!(numbers, want, "every line exactly once, in order");
}

#[test]
fn rotation_keeps_only_keep_files() {
    let s = Sandbox::new();
    // ~60K of records into files of 4K: far more than keep = 3 rotations.
    flood(&s, 1500, "max_size = \"4K\"\nkeep = 3\n");
    for k in 1..=3 {
        assert!(
            s.logs.join(format!("flood.log.{k}")).exists(),
            "flood.log.{k}"
        );
    }
    assert!(
        !s.logs.join("flood.log.4").exists(),
        "keep = 3 keeps 3 files"
    );
    let (numbers, sizes) = numbers_in_files(&s, "flood", 3);
    assert!(sizes.iter().all(|&n| n <= 4096), "{sizes:?}");
    // The retained lines are the newest ones, contiguous up to the last.
    assert_eq!(numbers.last(), Some(&1500));
    let first = numbers[0];
    assert!(first > 1, "old lines are dropped");
    let want: Vec<u64> = (first..=1500).collect();
    assert_eq!(numbers, want);
}

#[test]
fn logs_follow_prints_lines_written_later() {
    let s = Sandbox::new();
    s.script_unit(
        "late",
        "echo early\nwhile [ ! -e $D/go ]; do sleep 0.05; done\necho 'late line'\nexec sleep 100000",
        "",
    );
    s.up();
    s.wait_log("late", "stdout", "early");
    let f = Follower::start(&s, "late");
    // The existing content first; then, once the follower is running, the new line.
    while f.next().text != "early" {}
    s.touch("go");
    while f.next().text != "late line" {}
}

#[test]
fn logs_reads_the_files_when_no_daemon_answers() {
    let s = Sandbox::new();
    s.script_unit("talker", "echo one\necho two\nexec sleep 100000", "");
    s.up();
    s.wait_log("talker", "stdout", "two");
    let online = s.ok(&["logs", "talker"]);
    // --log-dir naming another directory than the daemon's is refused.
    let err = s.fails(&["logs", "--log-dir", "/tmp", "talker"], 1);
    assert!(err.contains(&s.logs.display().to_string()), "{err}");
    s.ok(&["shutdown"]);
    s.wait_exit();

    let logs = s.logs.display().to_string();
    let out = s.kennel(&["logs", "--log-dir", &logs, "talker"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let offline = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(offline.starts_with(&online), "{offline}\nvs\n{online}");
    assert_eq!(offline, s.log("talker"));
    assert!(stderr.contains("no kennel daemon is listening"), "{stderr}");
    assert!(stderr.contains("talker.log"), "{stderr}");
    let last = s.kennel(&["logs", "--log-dir", &logs, "-n", "1", "talker"]);
    let last = String::from_utf8_lossy(&last.stdout).into_owned();
    assert_eq!(
        last.lines().collect::<Vec<_>>(),
        [s.log("talker").lines().last().unwrap_or_default()]
    );
    // A name with no log there is an error, not an empty output.
    let err = s.fails(&["logs", "--log-dir", &logs, "nope"], 1);
    assert!(err.contains("has no log of \"nope\""), "{err}");

    // -f: what is there, then what a kennel started later appends.
    let f = Follower::with(&s, &["--log-dir", &logs, "talker"]);
    while f.next().text != "two" {}
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(s.logs.join("talker.log"))
        .expect("open the log");
    std::io::Write::write_all(&mut file, b"2026-01-01T00:00:00.000Z stdout three\n")
        .expect("append");
    while f.next().text != "three" {}
}

/// `kennel logs -f UNIT`, its stdout lines delivered on a channel by a reader thread.
struct Follower {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(s: &Sandbox, unit: &str) -> Follower {
        Follower::with(s, &[unit])
    }

    /// `kennel logs -f ARGS`.
    fn with(s: &Sandbox, args: &[&str]) -> Follower {
        let mut child = Command::new(KENNEL)
            .args(["logs", "-f"])
            .args(args)
            .env("KENNEL_SOCKET", &s.socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn kennel logs -f");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next record printed.
    fn next(&self) -> Record {
        let line = self
            .lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|e| panic!("kennel logs -f printed nothing more: {e}"));
        Record::parse(&line)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service printing `n B-I` (I in 1..=20) for each batch B in 1..=BATCHES once the test
/// creates `go-B`, into a log of 1K files: a batch (~800 bytes) rotates it at most once.
fn batches(s: &Sandbox, batches: u32) {
    s.script_unit(
        "rotor",
        &format!(
            "echo ready\nb=1\nwhile [ $b -le {batches} ]; do\n\
               while [ ! -e $D/go-$b ]; do sleep 0.05; done\n\
               i=1; while [ $i -le 20 ]; do echo \"n $b-$i\"; i=$((i+1)); done\n\
               b=$((b+1))\n\
             done\nexec sleep 100000"
        ),
        "[logs]\nmax_size = \"1K\"\nkeep = 50\n",
    );
}

#[test]
fn logs_follow_continues_across_rotations() {
    let s = Sandbox::new();
    batches(&s, 5);
    s.up();
    s.wait_log("rotor", "stdout", "ready");
    let f = Follower::start(&s, "rotor");
    while f.next().text != "ready" {}
    let mut seen = Vec::new();
    for b in 1..=5 {
        s.touch(&format!("go-{b}"));
        let last = format!("n {b}-20");
        loop {
            let r = f.next();
            if r.stream == "stdout" {
                seen.push(r.text.clone());
            }
            if r.text == last {
                break;
            }
        }
    }
    assert!(s.logs.join("rotor.log.3").exists(), "the log rotated");
    let want: Vec<String> = (1..=5)
        .flat_map(|b| (1..=20).map(move |i| format!("n {b}-{i}")))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn logs_follow_loses_no_line_when_the_log_rotates_several_times_between_polls() {
    let s = Sandbox::new();
    s.script_unit(
        "rotor",
        "echo ready\nwhile [ ! -e $D/go ]; do sleep 0.05; done\n\
         i=1; while [ $i -le 400 ]; do echo \"n $i\"; i=$((i+1)); done\nexec sleep 100000",
        "[logs]\nmax_size = \"1K\"\nkeep = 50\n",
    );
    s.up();
    s.wait_log("rotor", "stdout", "ready");
    let f = Follower::start(&s, "rotor");
    while f.next().text != "ready" {}
    s.touch("go");
    let mut seen: Vec<u64> = Vec::new();
    while seen.last() != Some(&400) {
        if let Some(n) = f.next().text.strip_prefix("n ") {
            seen.push(n.parse().expect("number"));
        }
    }
    let want: Vec<u64> = (1..=400).collect();
    assert_eq!(seen, want);
}
