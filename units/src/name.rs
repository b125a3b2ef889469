//! Unit names: the file stem of `DIR/NAME.toml`, `[A-Za-z0-9_.@-]+`, not starting with '.'.

/// A string that is not a unit name; displays as
/// `invalid unit name "a b": use only letters, digits and _ . @ -, not starting with "."`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid unit name {0:?}: use only letters, digits and _ . @ -, not starting with \".\"")]
pub struct InvalidUnitName(pub String);

/// Checks a unit name; the error says what is wrong.
pub fn check_unit_name(name: &str) -> Result<(), InvalidUnitName> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(InvalidUnitName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["web", "db-1", "getty@tty1", "a.b_c", "A9", "-x"] {
            assert!(check_unit_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a b", "a/b", "é", "a:b"] {
            assert!(check_unit_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_unit_name("a b").unwrap_err().to_string(),
            "invalid unit name \"a b\": use only letters, digits and _ . @ -, not starting with \".\""
        );
    }
}
