//! The crate's error type: one enum, lowercase messages that name the path or tar entry.

use std::path::PathBuf;

/// Everything that can go wrong in the store, an import, a commit or an export.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An I/O error on a path of the store or of the input.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A tar entry that would write outside its layer, or that kennel refuses.
    #[error("tar entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    /// A tar entry kennel cannot represent.
    #[error("tar entry {entry:?}: {reason}")]
    BadEntry { entry: String, reason: String },
    /// Reading a tar stream failed.
    #[error("reading tar {what}: {source}")]
    Tar {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A blob's or layer's content does not have the digest the manifest or config says.
    #[error("digest mismatch for {what}: expected {expected}, found {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// The input is not an image kennel understands, or is inconsistent.
    #[error("invalid image {path}: {reason}")]
    Format { path: PathBuf, reason: String },
    /// A JSON document of the input or of the store could not be read.
    #[error("invalid json {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// No such image in the store.
    #[error("image {0} not found in STATE/images")]
    ImageNotFound(String),
    /// No such layer in the store.
    #[error("layer {0:?} not found in STATE/layers")]
    LayerNotFound(String),
    /// A name given on the command line is not valid.
    #[error("{0}")]
    InvalidName(String),
    /// The store is in a state the operation cannot proceed from.
    #[error("{0}")]
    Refused(String),
}

/// The crate's result type.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// `map_err` helper: an I/O error with the operation and path.
pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.into();
    move |source| ImageError::Io { op, path, source }
}
