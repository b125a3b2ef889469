//! Image references (`NAME:TAG`), as `[container] image` and the image commands write them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `NAME:TAG`, e.g. `web:1` or `library/debian:12`. A missing tag means `latest`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ImageRef {
    /// Slash-separated components of letters, digits and `. _ -`.
    pub name: String,
    /// Letters, digits and `. _ -`, not starting with `.` or `-`, 128 characters at most.
    pub tag: String,
}

impl ImageRef {
    /// Parses `NAME[:TAG]`; the error says what is wrong, without the key's name.
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        let (name, tag) = match s.rsplit_once(':') {
            Some((n, t)) => (n, t),
            None => (s, "latest"),
        };
        check_name(name).map_err(|e| format!("invalid image {s:?}: {e}"))?;
        check_tag(tag).map_err(|e| format!("invalid image {s:?}: {e}"))?;
        Ok(ImageRef {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }
}

impl FromStr for ImageRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("the name must have 1 to 255 characters".into());
    }
    for part in name.split('/') {
        let ok = !part.is_empty()
            && !part.starts_with(['.', '-', '_'])
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(
                "the name is made of components of letters, digits and . _ - separated by /, each starting with a letter or digit"
                    .into(),
            );
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&tag.len())
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("the tag has 1 to 128 letters, digits and . _ -, not starting with . or -".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = ImageRef::parse("web:1").unwrap();
        assert_eq!((r.name.as_str(), r.tag.as_str()), ("web", "1"));
        assert_eq!(
            ImageRef::parse("library/debian").unwrap().to_string(),
            "library/debian:latest"
        );
        assert_eq!(
            ImageRef::parse("a.b-c_d/e:v1.2-rc_3").unwrap().tag,
            "v1.2-rc_3"
        );
        for bad in [
            "", ":1", "web:", "web:.x", "/web:1", "web/:1", "a//b:1", "../x:1", "we b:1", "x:y:z",
            "-a:1",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
