//! The client side of the control socket: one blocking connection, one request at a time.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::protocol::{ProtoError, Reply, ReplyBody, Request, RequestBody, PROTOCOL_VERSION};

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
            reader: BufReader::new(stream),
        })
    }

    /// Send one request and wait for its reply (which may take as long as the request:
    /// `start` with wait returns once the units are up).
    pub fn call(&mut self, body: RequestBody) -> Result<ReplyBody, ClientError> {
        let req = Request {
            version: PROTOCOL_VERSION,
            body,
        };
        let mut line = serde_json::to_vec(&req).map_err(ClientError::BadReply)?;
        line.push(b'\n');
        let io = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        // The daemon may answer before reading the request and close (it refuses a peer
        // that is not root at once): then the write fails with EPIPE, and the reply that
        // explains why is still there to read.
        let written = self.reader.get_mut().write_all(&line);
        let mut answer = String::new();
        match (self.reader.read_line(&mut answer), written) {
            (Ok(n), _) if n > 0 => {}
            (_, Err(source)) | (Err(source), Ok(())) => return Err(io(source)),
            (Ok(_), Ok(())) => return Err(ClientError::Closed),
        }
        match serde_json::from_str::<Reply>(&answer).map_err(ClientError::BadReply)? {
            Reply::Ok(body) => Ok(body),
            Reply::Error(e) => Err(ClientError::Daemon(e)),
        }
    }
}
