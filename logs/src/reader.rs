//! The reader tasks: one per pipe, reading a service's output and sending lines to the writer.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::SystemTime;

use kennel_units::Logs;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::os_message;
use crate::split::{LineSplitter, MAX_LINE};
use crate::writer::{Msg, Stream};

/// Bytes read from a pipe at once, at first: most services write little, and a reader
/// per pipe with a 64 KiB buffer was most of kennel's memory per unit.
const READ_BUF_MIN: usize = 4 * 1024;
/// ... and at most: a read that fills the buffer doubles it, up to a pipe's default
/// capacity, so a chatty service is read in as few calls as before.
const READ_BUF_MAX: usize = 64 * 1024;

/// Marks a reader task as running: counted in the hub's live readers while it exists, and
/// its drop completes the unit's [`crate::Capture`].
#[derive(Debug)]
pub(crate) struct Live {
    /// The hub's count of running readers (`close` waits for 0).
    count: watch::Sender<usize>,
    /// Dropped when the reader ends: resolves the matching [`crate::Capture`] half.
    _done: oneshot::Sender<()>,
}

impl Live {
    /// Counts one more running reader.
    pub(crate) fn new(count: &watch::Sender<usize>, done: oneshot::Sender<()>) -> Self {
        count.send_modify(|n| *n += 1);
        Live {
            count: count.clone(),
            _done: done,
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// What one reader task needs.
#[derive(Debug)]
pub(crate) struct Reader {
    /// The unit whose output this is.
    pub(crate) unit: Arc<str>,
    /// The unit's `[logs]` config at attach time.
    pub(crate) cfg: Logs,
    /// `Stdout` or `Stderr`.
    pub(crate) stream: Stream,
    /// To the writer thread; bounded, so a full channel makes this task wait (and the
    /// service block on its pipe), never the event loop.
    pub(crate) tx: mpsc::Sender<Msg>,
    /// Becomes `true` when the hub closes without waiting any longer for EOF: read what
    /// the pipe holds now, then stop.
    pub(crate) stop: watch::Receiver<bool>,
    /// Keeps this reader counted until it ends.
    pub(crate) _live: Live,
}

impl Reader {
    /// Reads `fd` until EOF (or the hub's stop), sending whole lines to the writer.
    pub(crate) async fn run(mut self, fd: OwnedFd) {
        let mut pipe = match pipe::Receiver::from_owned_fd(fd) {
            Ok(pipe) => pipe,
            Err(err) => {
                let msg = format!(
                    "cannot capture {}: {}",
                    self.stream.as_str(),
                    os_message(&err)
                );
                tracing::error!("{msg}");
                let _ = self.send(Stream::Kennel, vec![msg.into_bytes()]).await;
                return;
            }
        };
        let mut buf = vec![0u8; READ_BUF_MIN];
        let mut splitter = LineSplitter::new(MAX_LINE);
        let mut stopping = *self.stop.borrow_and_update();
        let mut watching = true;
        while !stopping {
            let read = tokio::select! {
                read = pipe.read(&mut buf) => read,
                changed = self.stop.changed(), if watching => {
                    match changed {
                        Ok(()) => stopping = *self.stop.borrow_and_update(),
                        // The hub is gone without closing: read on until EOF.
                        Err(_) => watching = false,
                    }
                    continue;
                }
            };
            match read {
                Ok(0) => break,
                Ok(n) => {
                    if !self.split_and_send(&mut splitter, &buf[..n]).await {
                        return;
                    }
                    if n == buf.len() && n < READ_BUF_MAX {
                        buf.resize((2 * n).min(READ_BUF_MAX), 0);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    tracing::error!("read {}: {}", self.stream.as_str(), os_message(&err));
                    break;
                }
            }
        }
        if stopping {
            // Closing: take what the pipe holds now, without waiting for more.
            loop {
                match pipe.try_read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if !self.split_and_send(&mut splitter, &buf[..n]).await {
                            return;
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        if let Some(rest) = splitter.finish() {
            let _ = self.send(self.stream, vec![rest]).await;
        }
    }

    /// Splits `data` and sends the completed lines; `false` when the writer is gone.
    async fn split_and_send(&self, splitter: &mut LineSplitter, data: &[u8]) -> bool {
        let mut lines = Vec::new();
        splitter.push(data, &mut lines);
        lines.is_empty() || self.send(self.stream, lines).await
    }

    /// Sends `lines` (waiting while the channel is full); `false` when the writer is gone.
    async fn send(&self, stream: Stream, lines: Vec<Vec<u8>>) -> bool {
        let msg = Msg::Lines {
            unit: self.unit.clone(),
            cfg: self.cfg.clone(),
            stream,
            time: SystemTime::now(),
            lines,
        };
        if self.tx.send(msg).await.is_err() {
            tracing::warn!(
                "log writer is gone: {} of this unit is no longer captured",
                self.stream.as_str()
            );
            return false;
        }
        true
    }
}
