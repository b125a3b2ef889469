//! Whole lines on the console, unbuffered, before anything can be lost to a power-off.

use std::io::Write;

/// Write `kennel: TEXT\n` to stderr (the console, for init) in one write.
pub fn line(text: &str) {
    let msg = format!("kennel: {text}\n");
    let _ = std::io::stderr().lock().write_all(msg.as_bytes());
}
