//! Splitting a byte stream into lines: partial lines held, long lines cut into pieces.

/// The longest line emitted as one record; a longer line is emitted in pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;

/// Turns chunks of a byte stream into lines (without their `\n`; a `\r` is kept as is).
///
/// A partial line is held until its newline arrives; a line longer than `max` bytes is
/// emitted in pieces of `max` bytes; [`LineSplitter::finish`] returns a trailing partial line.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    /// Bytes of the current line seen so far (never more than `max`).
    partial: Vec<u8>,
    /// The piece size for long lines.
    max: usize,
}

impl LineSplitter {
    /// A splitter emitting lines of at most `max` bytes (`max` >= 1).
    pub(crate) fn new(max: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            max: max.max(1),
        }
    }

    /// Feeds `data`, appending every line it completes to `out`.
    pub(crate) fn push(&mut self, mut data: &[u8], out: &mut Vec<Vec<u8>>) {
        while !data.is_empty() {
            let room = self.max - self.partial.len();
            match data.iter().position(|&b| b == b'\n') {
                // The line ends within `max` bytes: emit it whole.
                Some(i) if i <= room => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&data[..i]);
                    out.push(line);
                    data = &data[i + 1..];
                }
                // No newline and the data fits: hold it.
                _ if data.len() <= room => {
                    self.partial.extend_from_slice(data);
                    return;
                }
                // More than `room` bytes before the next newline or the end of the data:
                // the line is longer than `max`, emit a piece of exactly `max` bytes.
                _ => {
                    self.partial.extend_from_slice(&data[..room]);
                    out.push(std::mem::take(&mut self.partial));
                    data = &data[room..];
                }
            }
        }
    }

    /// The trailing partial line at end of stream, if any.
    pub(crate) fn finish(&mut self) -> Option<Vec<u8>> {
        if self.partial.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.partial))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        let rest = s.finish();
        (out, rest)
    }

    #[test]
    fn whole_lines() {
        let (lines, rest) = split(100, &[b"a\nbb\n\nccc\n"]);
        assert_eq!(
            lines,
            vec![b"a".to_vec(), b"bb".to_vec(), b"".to_vec(), b"ccc".to_vec()]
        );
        assert_eq!(rest, None);
    }

    #[test]
    fn partial_lines_are_held_until_newline() {
        let (lines, rest) = split(100, &[b"hel", b"lo", b" world\nsec", b"ond\nthi"]);
        assert_eq!(lines, vec![b"hello world".to_vec(), b"second".to_vec()]);
        assert_eq!(rest, Some(b"thi".to_vec()));
    }

    #[test]
    fn crlf_and_raw_bytes_kept() {
        let (lines, _) = split(100, &[b"dos\r\n\xff\xfe\x00bin\n"]);
        assert_eq!(lines, vec![b"dos\r".to_vec(), b"\xff\xfe\x00bin".to_vec()]);
    }

    #[test]
    fn long_lines_split_in_pieces() {
        let (lines, rest) = split(4, &[b"abcdefghij\n"]);
        assert_eq!(
            lines,
            vec![b"abcd".to_vec(), b"efgh".to_vec(), b"ij".to_vec()]
        );
        assert_eq!(rest, None);
        // Arriving in small chunks gives the same pieces.
        let (lines, _) = split(4, &[b"ab", b"cde", b"fghi", b"j\n"]);
        assert_eq!(
            lines,
            vec![b"abcd".to_vec(), b"efgh".to_vec(), b"ij".to_vec()]
        );
    }

    #[test]
    fn line_of_exactly_max_is_one_record() {
        let (lines, rest) = split(4, &[b"abcd", b"\nefgh\n"]);
        assert_eq!(lines, vec![b"abcd".to_vec(), b"efgh".to_vec()]);
        assert_eq!(rest, None);
        let (lines, rest) = split(4, &[b"abcdefgh"]);
        assert_eq!(lines, vec![b"abcd".to_vec()]);
        assert_eq!(rest, Some(b"efgh".to_vec()));
    }

    #[test]
    fn max_line_64k() {
        let mut data = vec![b'x'; MAX_LINE * 2 + 10];
        data.push(b'\n');
        let (lines, _) = split(MAX_LINE, &[&data[..1000], &data[1000..]]);
        let lens: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(lens, vec![MAX_LINE, MAX_LINE, 10]);
    }

    #[test]
    fn eof_partial_line() {
        let (lines, rest) = split(100, &[b"no newline"]);
        assert!(lines.is_empty());
        assert_eq!(rest, Some(b"no newline".to_vec()));
    }
}
