//! The crate's typed errors.

use std::io;
use std::path::PathBuf;

/// Why the log hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log directory could not be created or is not a directory.
    #[error("create log directory {}: {}", path.display(), os_message(source))]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The writer thread could not be spawned.
    #[error("spawn log writer thread: {}", os_message(source))]
    SpawnWriter {
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// An `io::Error` as a lowercase message without the `(os error N)` suffix:
/// `permission denied`, `no such file or directory`.
pub(crate) fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text.as_str(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_lowercase_and_names_the_path() {
        let err = LogError::CreateDir {
            path: PathBuf::from("/var/log/kennel"),
            source: io::Error::from_raw_os_error(13),
        };
        assert_eq!(
            err.to_string(),
            "create log directory /var/log/kennel: permission denied"
        );
    }
}
