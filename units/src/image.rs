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

/// A string that is not `NAME[:TAG]`: `invalid image "web:": the tag has ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image {input:?}: {problem}")]
pub struct ImageRefError {
    /// The string as given.
    pub input: String,
    /// Which part is wrong.
    pub problem: ImageRefProblem,
}

/// The part of an image reference that is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefProblem {
    /// Empty or longer than 255 characters.
    #[error("the name must have 1 to 255 characters")]
    NameLength,
    /// A component of the name is empty, starts wrong or holds other characters.
    #[error(
        "the name is made of components of letters, digits and . _ - separated by /, each starting with a letter or digit"
    )]
    NameComponent,
    /// The tag is empty, too long, starts wrong or holds other characters.
    #[error("the tag has 1 to 128 letters, digits and . _ -, not starting with . or -")]
    Tag,
}

impl ImageRef {
    /// Parses `NAME[:TAG]`; the error says what is wrong, without the key's name.
    pub fn parse(s: &str) -> Result<ImageRef, ImageRefError> {
        let (name, tag) = match s.rsplit_once(':') {
            Some((n, t)) => (n, t),
            None => (s, "latest"),
        };
        let invalid = |problem| ImageRefError {
            input: s.to_string(),
            problem,
        };
        check_name(name).map_err(invalid)?;
        check_tag(tag).map_err(invalid)?;
        Ok(ImageRef {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, ImageRefError> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

fn check_name(name: &str) -> Result<(), ImageRefProblem> {
    if name.is_empty() || name.len() > 255 {
        return Err(ImageRefProblem::NameLength);
    }
    for part in name.split('/') {
        let ok = !part.is_empty()
            && !part.starts_with(['.', '-', '_'])
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(ImageRefProblem::NameComponent);
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), ImageRefProblem> {
    let ok = (1..=128).contains(&tag.len())
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ImageRefProblem::Tag)
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
        assert_eq!(
            ImageRef::parse("web:").unwrap_err().to_string(),
            "invalid image \"web:\": the tag has 1 to 128 letters, digits and . _ -, not starting with . or -"
        );
    }
}
