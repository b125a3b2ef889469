//! The octal escapes of `/proc/self/mountinfo` and `/etc/fstab`: space, tab, newline and
//! backslash are written `\040`, `\011`, `\012`, `\134`.

/// `field` with every `\ooo` decoded, byte by byte (a path need not be ASCII); a backslash
/// not followed by three octal digits stays.
pub fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                u8::try_from(v).ok()
            });
        match (b[i], oct) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_octal() {
        assert_eq!(super::unescape(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(super::unescape("/mnt/\\303\\251t\\303\\251"), "/mnt/été");
        assert_eq!(super::unescape(r"/a\09"), r"/a\09");
        assert_eq!(super::unescape(r"/end\"), r"/end\");
        assert_eq!(super::unescape("/plain"), "/plain");
        // Above 0o377 is no byte: left as written.
        assert_eq!(super::unescape(r"/a\777"), r"/a\777");
    }
}
