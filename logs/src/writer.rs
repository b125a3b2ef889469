//! The writer thread: the only place that touches log files (append, rotate) and the echo.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use kennel_units::Logs;
use tokio::sync::{mpsc, oneshot};

use crate::error::os_message;
use crate::rotate::LogFile;
use crate::time::format_rfc3339_millis;

/// Which stream a record came from; written as the record's second field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// The service's stdout.
    Stdout,
    /// The service's stderr.
    Stderr,
    /// A system record written by the daemon.
    Kennel,
}

impl Stream {
    /// `stdout`, `stderr` or `kennel`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Kennel => "kennel",
        }
    }
}

/// What the hub and the reader tasks send to the writer thread.
#[derive(Debug)]
pub(crate) enum Msg {
    /// Lines read together from one stream of one unit.
    Lines {
        /// The unit; its log is `DIR/UNIT.log`.
        unit: Arc<str>,
        /// The unit's current `[logs]` config (applies from this record on).
        cfg: Logs,
        /// Where the lines came from.
        stream: Stream,
        /// When they were read (the timestamp of each record).
        time: SystemTime,
        /// The lines, without their `\n`.
        lines: Vec<Vec<u8>>,
    },
    /// Flush every file, then answer: everything queued before it is written.
    Flush(oneshot::Sender<()>),
    /// Flush every file and stop; the answer is sent just before the thread ends.
    Shutdown(oneshot::Sender<()>),
}

/// Where echoed lines (`NAME | line`) go; each line is given in one `write_all`.
pub(crate) type Echo = Box<dyn Write + Send>;

/// Spawns the writer thread, which runs until a `Shutdown` message or until every sender
/// of `rx` is gone.
pub(crate) fn spawn(
    dir: PathBuf,
    echo: Option<Echo>,
    rx: mpsc::Receiver<Msg>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("kennel-logs".into())
        .spawn(move || {
            Writer {
                dir,
                files: HashMap::new(),
                echo,
            }
            .run(rx)
        })
}

/// The writer thread's state.
struct Writer {
    /// The log directory.
    dir: PathBuf,
    /// Every unit's log file seen so far (kept open).
    files: HashMap<Arc<str>, UnitLog>,
    /// The echo target; `None` when echo is off or after it failed.
    echo: Option<Echo>,
}

/// A unit's log file plus whether it is currently failing (to warn once, not per line).
struct UnitLog {
    file: LogFile,
    failing: bool,
}

impl Writer {
    /// The thread's loop: handle messages, flushing whenever nothing else is queued.
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut done = None;
        loop {
            let msg = match rx.try_recv() {
                Ok(msg) => msg,
                Err(mpsc::error::TryRecvError::Empty) => {
                    self.flush_all();
                    match rx.blocking_recv() {
                        Some(msg) => msg,
                        None => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            match msg {
                Msg::Lines {
                    unit,
                    cfg,
                    stream,
                    time,
                    lines,
                } => self.write(&unit, &cfg, stream, time, &lines),
                Msg::Flush(reply) => {
                    self.flush_all();
                    let _ = reply.send(());
                }
                Msg::Shutdown(reply) => {
                    done = Some(reply);
                    break;
                }
            }
        }
        self.flush_all();
        drop(self);
        tracing::debug!("log writer stopped");
        if let Some(reply) = done {
            let _ = reply.send(());
        }
    }

    /// Appends `lines` to the unit's log as `TIMESTAMP STREAM line` records, and echoes
    /// service output as `UNIT | line`.
    fn write(
        &mut self,
        unit: &Arc<str>,
        cfg: &Logs,
        stream: Stream,
        time: SystemTime,
        lines: &[Vec<u8>],
    ) {
        let prefix = format!("{} {} ", format_rfc3339_millis(time), stream.as_str());
        let log = self.files.entry(unit.clone()).or_insert_with(|| UnitLog {
            file: LogFile::new(crate::log_path(&self.dir, unit)),
            failing: false,
        });
        let mut record = Vec::with_capacity(256);
        for line in lines {
            record.clear();
            record.extend_from_slice(prefix.as_bytes());
            record.extend_from_slice(line);
            record.push(b'\n');
            let result = log.file.append(&record, cfg);
            note(unit, log, result);
        }
        if stream == Stream::Kennel {
            return;
        }
        let Some(echo) = self.echo.as_mut() else {
            return;
        };
        for line in lines {
            record.clear();
            record.extend_from_slice(unit.as_bytes());
            record.extend_from_slice(b" | ");
            record.extend_from_slice(line);
            record.push(b'\n');
            if let Err(err) = echo.write_all(&record) {
                tracing::warn!("echo of service output stopped: {}", os_message(&err));
                self.echo = None;
                return;
            }
        }
    }

    /// Flushes every open log file.
    fn flush_all(&mut self) {
        for (unit, log) in self.files.iter_mut() {
            let result = log.file.flush();
            note(unit, log, result);
        }
    }
}

/// Reports a failing log once (and its recovery), not once per record.
fn note(unit: &str, log: &mut UnitLog, result: io::Result<()>) {
    match result {
        Err(err) if !log.failing => {
            log.failing = true;
            tracing::error!(
                unit,
                "write {}: {} (records are lost until it works again)",
                log.file.path().display(),
                os_message(&err)
            );
        }
        Ok(()) if log.failing => {
            log.failing = false;
            tracing::info!(unit, "write {}: works again", log.file.path().display());
        }
        _ => {}
    }
}
