//! The client side of the control socket: one blocking connection, one request at a time.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::pretty::{self, Reindent};
use super::protocol::{
    ProtoError, Reply, ReplyBody, Request, RequestBody, StatusReply, StatusRow, PROTOCOL_VERSION,
    STATUS_HEAD, STATUS_TAIL,
};

/// The client writes the re-indented status in pieces of about this size.
const OUT_CHUNK: usize = 64 * 1024;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no kennel daemon is listening on {path} ({source}); start one with `kennel up` \
         or point --socket / KENNEL_SOCKET at its socket"
    )]
    NoDaemon {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to {path}: permission denied; kennel's control socket is root-only")]
    Denied { path: PathBuf },
    #[error("talking to kennel on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("kennel closed the connection without replying")]
    Closed,
    #[error("kennel sent a reply this client cannot read: {0}")]
    BadReply(serde_json::Error),
    #[error("kennel sent an unexpected reply to {0}")]
    Unexpected(&'static str),
    #[error("writing the status: {0}")]
    Output(std::io::Error),
    #[error("{0}")]
    Daemon(#[from] ProtoError),
}

/// A connection to the daemon.
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connect to the daemon's socket.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::PermissionDenied {
                ClientError::Denied {
                    path: path.to_path_buf(),
                }
            } else {
                ClientError::NoDaemon {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        Ok(Client {
            path: path.to_path_buf(),
            // A status reply at 1,000 units is ~250 KB: read it in few calls.
            reader: BufReader::with_capacity(64 * 1024, stream),
        })
    }

    /// Send one request and wait for its reply (which may take as long as the request:
    /// `start` with wait returns once the units are up).
    pub fn call(&mut self, body: RequestBody) -> Result<ReplyBody, ClientError> {
        let answer = self.exchange(body)?;
        generic(&answer)
    }

    /// `status`: every unit's row, or the one unit's. Read without the intermediate
    /// buffering of [`Reply`] (see [`StatusReply`]).
    pub fn status(&mut self, unit: Option<String>) -> Result<Vec<StatusRow>, ClientError> {
        let answer = self.exchange(RequestBody::Status { unit })?;
        if let Ok(StatusReply::Ok(s)) = serde_json::from_slice::<StatusReply>(&answer) {
            return Ok(s.units);
        }
        match generic(&answer)? {
            ReplyBody::Status { units } => Ok(units),
            _ => Err(ClientError::Unexpected("status")),
        }
    }

    /// `status`, the rows written to `out` as they arrive, re-indented (serde_json's
    /// pretty layout, what `--json` prints): the reply is never held whole nor parsed
    /// into rows. A reply that does not start as a status reply (an error) is read whole
    /// and handled as by [`Client::call`].
    pub fn status_pretty(
        &mut self,
        unit: Option<String>,
        out: &mut impl Write,
    ) -> Result<(), ClientError> {
        let written = self.send(RequestBody::Status { unit })?;
        let path = self.path.clone();
        let io = |source| ClientError::Io {
            path: path.clone(),
            source,
        };
        // The head, or the whole line if it is shorter.
        let mut head = Vec::with_capacity(STATUS_HEAD.len());
        while head.len() < STATUS_HEAD.len() && !head.ends_with(b"\n") {
            let piece = self.reader.fill_buf().map_err(io)?;
            if piece.is_empty() {
                break;
            }
            let want = STATUS_HEAD.len() - head.len();
            let n = match piece[..piece.len().min(want)]
                .iter()
                .position(|&c| c == b'\n')
            {
                Some(k) => k + 1,
                None => piece.len().min(want),
            };
            head.extend_from_slice(&piece[..n]);
            self.reader.consume(n);
        }
        if head != STATUS_HEAD {
            if !head.ends_with(b"\n") {
                self.reader.read_until(b'\n', &mut head).map_err(io)?;
            }
            if head.is_empty() {
                return Err(written.err().map_or(ClientError::Closed, io));
            }
            return match generic(&head)? {
                ReplyBody::Status { units } => {
                    let json = serde_json::to_vec(&units).map_err(ClientError::BadReply)?;
                    pretty::write_pretty(&json, out).map_err(ClientError::Output)
                }
                _ => Err(ClientError::Unexpected("status")),
            };
        }
        let mut rows = Reindent::new();
        let mut text = Vec::with_capacity(OUT_CHUNK + OUT_CHUNK / 2);
        let mut tail = Vec::new();
        loop {
            let piece = self.reader.fill_buf().map_err(io)?;
            if piece.is_empty() {
                return Err(ClientError::Closed);
            }
            let n = piece.len();
            if !rows.done() {
                if let Some(end) = rows.feed(piece, &mut text) {
                    tail.extend_from_slice(&piece[end..]);
                }
                if text.len() >= OUT_CHUNK || rows.done() {
                    out.write_all(&text).map_err(ClientError::Output)?;
                    text.clear();
                }
            } else {
                tail.extend_from_slice(piece);
            }
            self.reader.consume(n);
            if tail.len() >= STATUS_TAIL.len() || tail.contains(&b'\n') {
                return if tail == STATUS_TAIL {
                    Ok(())
                } else {
                    Err(ClientError::Unexpected("status"))
                };
            }
        }
    }

    /// Write the request line, read the reply line.
    fn exchange(&mut self, body: RequestBody) -> Result<Vec<u8>, ClientError> {
        let written = self.send(body)?;
        let mut answer = Vec::new();
        match (self.reader.read_until(b'\n', &mut answer), written) {
            (Ok(n), _) if n > 0 => Ok(answer),
            (_, Err(source)) | (Err(source), Ok(())) => Err(self.io(source)),
            (Ok(_), Ok(())) => Err(ClientError::Closed),
        }
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Write the request line; the inner result is the write's. The daemon may answer
    /// before reading the request and close (it refuses a peer that is not root at
    /// once): then the write fails with EPIPE, and the reply that explains why is still
    /// there to read, so a failed write matters only if no reply comes.
    fn send(&mut self, body: RequestBody) -> Result<std::io::Result<()>, ClientError> {
        let req = Request {
            version: PROTOCOL_VERSION,
            body,
        };
        let mut line = serde_json::to_vec(&req).map_err(ClientError::BadReply)?;
        line.push(b'\n');
        Ok(self.reader.get_mut().write_all(&line))
    }
}

fn generic(answer: &[u8]) -> Result<ReplyBody, ClientError> {
    match serde_json::from_slice::<Reply>(answer).map_err(ClientError::BadReply)? {
        Reply::Ok(body) => Ok(body),
        Reply::Error(e) => Err(ClientError::Daemon(e)),
    }
}
