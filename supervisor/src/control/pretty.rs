//! Re-indent compact JSON the way `serde_json::to_writer_pretty` writes it, piece by piece
//! as it arrives, without reading it into values: `kennel status --json` prints the
//! daemon's rows this way (at 1,000 units, parsing them only to write them again, and
//! holding the whole reply to do so, was most of the client's time).

use std::io::{self, Write};

/// Where the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    /// Between tokens.
    Between,
    /// Inside a string.
    Str,
    /// Right after a backslash inside a string.
    Escape,
}

/// The state of a re-indentation: feed it the JSON text in pieces of any size.
///
/// The layout is serde_json's pretty one: two-space indent, `"key": value`, one member or
/// element per line, `[]` and `{}` when empty. Strings and numbers are copied as they are
/// (serde_json escapes the same way in both layouts). The input is trusted to be JSON:
/// only its nesting is followed, to know where the value ends.
#[derive(Debug)]
pub struct Reindent {
    depth: usize,
    at: In,
    /// An opening bracket not written yet: whether it is empty (`[]`) is known only from
    /// the next token, which may be in the next piece.
    open: Option<u8>,
    done: bool,
}

const SPACES: &[u8] = &[b' '; 64];

impl Default for Reindent {
    fn default() -> Self {
        Self::new()
    }
}

impl Reindent {
    pub fn new() -> Self {
        Reindent {
            depth: 0,
            at: In::Between,
            open: None,
            done: false,
        }
    }

    /// Whether the top-level array or object has ended.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Re-indents `json` into `out`. Returns `Some(n)` once the top-level array or object
    /// ends, after the first `n` bytes of `json` (the rest is not read); `None` while it
    /// goes on.
    pub fn feed(&mut self, json: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        if self.done {
            return Some(0);
        }
        out.reserve(json.len() + json.len() / 2);
        let mut i = 0;
        while i < json.len() {
            match self.at {
                In::Str => match json[i..].iter().position(|&c| c == b'"' || c == b'\\') {
                    None => {
                        out.extend_from_slice(&json[i..]);
                        return None;
                    }
                    Some(k) => {
                        out.extend_from_slice(&json[i..=i + k]);
                        self.at = if json[i + k] == b'"' {
                            In::Between
                        } else {
                            In::Escape
                        };
                        i += k + 1;
                    }
                },
                In::Escape => {
                    out.push(json[i]);
                    self.at = In::Str;
                    i += 1;
                }
                In::Between => {
                    let b = json[i];
                    i += 1;
                    if b.is_ascii_whitespace() {
                        continue;
                    }
                    if let Some(open) = self.open.take() {
                        if b == close_of(open) {
                            out.extend_from_slice(&[open, b]);
                            if self.depth == 0 {
                                self.done = true;
                                return Some(i);
                            }
                            continue;
                        }
                        out.push(open);
                        self.depth += 1;
                        newline(out, self.depth);
                    }
                    match b {
                        b'{' | b'[' => self.open = Some(b),
                        b'}' | b']' => {
                            self.depth = self.depth.saturating_sub(1);
                            newline(out, self.depth);
                            out.push(b);
                            if self.depth == 0 {
                                self.done = true;
                                return Some(i);
                            }
                        }
                        b',' => {
                            out.push(b',');
                            newline(out, self.depth);
                        }
                        b':' => out.extend_from_slice(b": "),
                        b'"' => {
                            out.push(b);
                            self.at = In::Str;
                        }
                        c => out.push(c),
                    }
                }
            }
        }
        None
    }
}

fn close_of(open: u8) -> u8 {
    if open == b'{' {
        b'}'
    } else {
        b']'
    }
}

fn newline(out: &mut Vec<u8>, depth: usize) {
    out.push(b'\n');
    let mut n = 2 * depth;
    while n > 0 {
        let k = n.min(SPACES.len());
        out.extend_from_slice(&SPACES[..k]);
        n -= k;
    }
}

/// Writes a whole JSON array or object (valid JSON, e.g. checked by `RawValue`) to `out`,
/// re-indented.
pub fn write_pretty(json: &[u8], out: &mut impl Write) -> io::Result<()> {
    let mut buf = Vec::new();
    Reindent::new().feed(json, &mut buf);
    out.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(s: &str) -> String {
        let mut out = Vec::new();
        write_pretty(s.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn sample() -> serde_json::Value {
        serde_json::json!([
            {"name": "a \"quoted\" [name], {x}: y\\", "n": -1.5e3, "ok": true, "none": null,
             "empty": [], "obj": {}, "nested": {"list": [1, [2, {}], {"k": "v\\\"]"}]}},
            [],
            "plain",
        ])
    }

    #[test]
    fn same_as_serde_json_pretty() {
        let v = sample();
        let compact = serde_json::to_string(&v).unwrap();
        assert_eq!(pretty(&compact), serde_json::to_string_pretty(&v).unwrap());
        let spaced = serde_json::to_string_pretty(&v).unwrap();
        assert_eq!(pretty(&spaced), spaced);
        assert_eq!(pretty("[ ]"), "[]");
        assert_eq!(pretty("{}"), "{}");
        let mut deep = serde_json::json!(1);
        for _ in 0..40 {
            deep = serde_json::json!([deep]);
        }
        let compact = serde_json::to_string(&deep).unwrap();
        assert_eq!(
            pretty(&compact),
            serde_json::to_string_pretty(&deep).unwrap()
        );
    }

    #[test]
    fn any_split_gives_the_same_and_finds_the_end() {
        let v = sample();
        let compact = serde_json::to_string(&v).unwrap();
        let want = serde_json::to_string_pretty(&v).unwrap();
        let input = format!("{compact}}}}}\n");
        let bytes = input.as_bytes();
        for size in 1..=bytes.len() {
            let mut r = Reindent::new();
            let mut out = Vec::new();
            let mut end = None;
            for (k, piece) in bytes.chunks(size).enumerate() {
                if let Some(n) = r.feed(piece, &mut out) {
                    end = Some(k * size + n);
                    break;
                }
            }
            assert!(r.done());
            assert_eq!(end, Some(compact.len()), "pieces of {size}");
            assert_eq!(String::from_utf8(out).unwrap(), want, "pieces of {size}");
        }
    }

    #[test]
    fn empty_top_level_array_ends() {
        let mut r = Reindent::new();
        let mut out = Vec::new();
        assert_eq!(r.feed(b"[", &mut out), None);
        assert_eq!(r.feed(b"]}}\n", &mut out), Some(1));
        assert_eq!(out, b"[]");
    }
}
