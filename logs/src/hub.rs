//! [`LogHub`]: the handle the daemon uses to capture units' output and write system records.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use kennel_units::Logs;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::error::LogError;
use crate::reader::{Live, Reader};
use crate::writer::{self, Echo, Msg, Stream};

/// Batches of lines queued between the readers and the writer thread. A batch is what one
/// read of at most 64 KiB produced, so the queue holds at most a few MiB.
const CHANNEL: usize = 64;

/// The log hub: a cheap-to-clone handle on one writer thread and the reader tasks feeding it.
///
/// Records land in `DIR/NAME.log` as `TIMESTAMP STREAM line` (see the crate docs).
#[derive(Clone)]
pub struct LogHub {
    inner: Arc<Inner>,
}

/// The state shared by every clone of a [`LogHub`].
struct Inner {
    /// The log directory.
    dir: PathBuf,
    /// To the writer thread; bounded: readers wait when it is full.
    tx: mpsc::Sender<Msg>,
    /// System records and flush markers that found the channel full, in order; a task
    /// drains it so that `system` never blocks and never reorders.
    overflow: Mutex<Overflow>,
    /// The number of running reader tasks; `close` waits for 0.
    live: watch::Sender<usize>,
    /// Set to `true` by `close_within` after its grace: readers take what their pipe holds
    /// and stop without waiting for EOF.
    stop: watch::Sender<bool>,
    /// The writer thread, joined by `close`.
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Messages waiting for room in the channel.
#[derive(Default)]
struct Overflow {
    /// Oldest first.
    queue: VecDeque<Msg>,
    /// A drain is running: new messages must queue behind it.
    draining: bool,
}

/// The end of one unit's capture: resolves when both of its reader tasks have ended.
#[derive(Debug)]
#[must_use = "drop it if you do not need to wait for the capture to end"]
pub struct Capture {
    /// Closed when the stdout reader ends.
    stdout: oneshot::Receiver<()>,
    /// Closed when the stderr reader ends.
    stderr: oneshot::Receiver<()>,
}

impl Capture {
    /// Resolves when both pipes have hit EOF (every process holding their write ends has
    /// exited or closed them) and every line read from them has been queued to the writer.
    /// Follow with [`LogHub::flush`] to know the lines are written.
    pub async fn wait(self) {
        let _ = self.stdout.await;
        let _ = self.stderr.await;
    }
}

/// Writes each echoed line to kennel's stdout with one `write_all` under the stdout lock.
struct StdoutEcho;

impl Write for StdoutEcho {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = io::stdout().lock();
        out.write_all(buf)?;
        out.flush()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().lock().flush()
    }
}

impl LogHub {
    /// Creates `dir` (mode 0755, with its parents) if missing and spawns the writer thread.
    /// With `echo`, every line of service output is also written to kennel's stdout as
    /// `NAME | line`.
    pub fn start(dir: &Path, echo: bool) -> Result<LogHub, LogError> {
        let echo: Option<Echo> = if echo {
            Some(Box::new(StdoutEcho))
        } else {
            None
        };
        Self::start_inner(dir, echo)
    }

    /// Like [`LogHub::start`] with echo on, but echoed lines go to `echo` (e.g. the console
    /// when kennel is PID 1). Each line `NAME | line\n` is given in one `write_all` call.
    pub fn start_with_echo(dir: &Path, echo: Box<dyn Write + Send>) -> Result<LogHub, LogError> {
        Self::start_inner(dir, Some(echo))
    }

    fn start_inner(dir: &Path, echo: Option<Echo>) -> Result<LogHub, LogError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|source| LogError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        let (tx, rx) = mpsc::channel(CHANNEL);
        let thread = writer::spawn(dir.to_path_buf(), echo, rx)
            .map_err(|source| LogError::SpawnWriter { source })?;
        Ok(LogHub {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                tx,
                overflow: Mutex::new(Overflow::default()),
                live: watch::channel(0).0,
                stop: watch::channel(false).0,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Captures a unit's output: spawns one reader task per pipe (read ends; blocking or
    /// not, they are made non-blocking). `cfg` applies to this run's records; pass the
    /// unit's current `[logs]` at every start so a reload takes effect.
    ///
    /// The readers run until EOF, i.e. until every process holding a write end is gone.
    /// The returned [`Capture`] says when that happened.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with I/O enabled (like `tokio::spawn`).
    pub fn attach(&self, unit: &str, cfg: &Logs, stdout: OwnedFd, stderr: OwnedFd) -> Capture {
        let unit: Arc<str> = Arc::from(unit);
        let (stdout_done, stdout_rx) = oneshot::channel();
        let (stderr_done, stderr_rx) = oneshot::channel();
        for (stream, fd, done) in [
            (Stream::Stdout, stdout, stdout_done),
            (Stream::Stderr, stderr, stderr_done),
        ] {
            let reader = Reader {
                unit: unit.clone(),
                cfg: cfg.clone(),
                stream,
                tx: self.inner.tx.clone(),
                stop: self.inner.stop.subscribe(),
                _live: Live::new(&self.inner.live, done),
            };
            let span = tracing::debug_span!("log_capture", unit = %unit, stream = stream.as_str());
            tokio::spawn(reader.run(fd).instrument(span));
        }
        Capture {
            stdout: stdout_rx,
            stderr: stderr_rx,
        }
    }

    /// Writes a system record (stream `kennel`) into the unit's log, e.g. `started pid 42`.
    /// A message with several lines gives one record per line. Never blocks: when the
    /// channel is full the record waits in an ordered queue drained by a task (or, outside
    /// a runtime, is sent blocking), it is never dropped.
    pub fn system(&self, unit: &str, cfg: &Logs, message: &str) {
        let lines = message.split('\n').map(|l| l.as_bytes().to_vec()).collect();
        self.enqueue(Msg::Lines {
            unit: Arc::from(unit),
            cfg: cfg.clone(),
            stream: Stream::Kennel,
            time: SystemTime::now(),
            lines,
        });
    }

    /// Resolves when every record queued before the call (lines already read from the
    /// pipes, system records) is written to its file.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.enqueue(Msg::Flush(tx));
        let _ = rx.await;
    }

    /// Waits for every reader to hit EOF, writes everything, flushes the files and joins
    /// the writer thread. Other clones of the hub can no longer write afterwards.
    ///
    /// This waits as long as any captured pipe stays open: stop the services first, or
    /// use [`LogHub::close_within`].
    pub async fn close(self) {
        self.shutdown(None).await;
    }

    /// Like [`LogHub::close`], but waits at most `grace` for the pipes' EOF; then every
    /// reader takes what its pipe holds at that moment (and the partial line it holds) and
    /// stops. Output written to the pipes after that is not captured.
    pub async fn close_within(self, grace: Duration) {
        self.shutdown(Some(grace)).await;
    }

    async fn shutdown(&self, grace: Option<Duration>) {
        let mut live = self.inner.live.subscribe();
        match grace {
            None => {
                let _ = live.wait_for(|n| *n == 0).await;
            }
            Some(grace) => {
                if tokio::time::timeout(grace, live.wait_for(|n| *n == 0))
                    .await
                    .is_err()
                {
                    tracing::warn!("log capture still open after {grace:?}: taking what is buffered and stopping");
                    self.inner.stop.send_replace(true);
                    let _ = live.wait_for(|n| *n == 0).await;
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        self.enqueue(Msg::Shutdown(tx));
        let _ = rx.await;
        let thread = lock(&self.inner.thread).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("log writer thread panicked");
            }
        }
    }

    /// Sends `msg` without blocking and without overtaking messages queued earlier.
    fn enqueue(&self, msg: Msg) {
        let mut overflow = lock(&self.inner.overflow);
        if overflow.draining {
            overflow.queue.push_back(msg);
            return;
        }
        match self.inner.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Closed(_)) => tracing::warn!("log writer is closed: record dropped"),
            Err(TrySendError::Full(msg)) => {
                overflow.queue.push_back(msg);
                overflow.draining = true;
                drop(overflow);
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(drain(self.inner.clone()));
                    }
                    Err(_) => drain_blocking(&self.inner),
                }
            }
        }
    }
}

/// Sends the overflow queue in order, waiting for room; ends when it is empty.
async fn drain(inner: Arc<Inner>) {
    loop {
        let Some(msg) = next_overflow(&inner) else {
            return;
        };
        if inner.tx.send(msg).await.is_err() {
            abandon_overflow(&inner);
            return;
        }
    }
}

/// [`drain`] for a caller outside any runtime.
fn drain_blocking(inner: &Inner) {
    while let Some(msg) = next_overflow(inner) {
        if inner.tx.blocking_send(msg).is_err() {
            abandon_overflow(inner);
            return;
        }
    }
}

/// The oldest queued message; `None` (and the drain over) when the queue is empty.
fn next_overflow(inner: &Inner) -> Option<Msg> {
    let mut overflow = lock(&inner.overflow);
    let msg = overflow.queue.pop_front();
    if msg.is_none() {
        overflow.draining = false;
    }
    msg
}

/// The writer is gone: drop the queue, saying so.
fn abandon_overflow(inner: &Inner) {
    let mut overflow = lock(&inner.overflow);
    tracing::warn!(
        "log writer is closed: {} queued records dropped",
        overflow.queue.len() + 1
    );
    overflow.queue.clear();
    overflow.draining = false;
}

/// Locks `m`, ignoring poisoning (the data stays consistent: every critical section is a
/// queue operation that cannot panic halfway).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl fmt::Debug for LogHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogHub")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}
