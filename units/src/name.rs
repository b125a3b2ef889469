//! Unit names: the file stem of `DIR/NAME.toml`, `[A-Za-z0-9_.@-]+`, not starting with '.'.

/// Checks a unit name; the error says what is wrong, e.g.
/// `invalid unit name "a b": use only letters, digits and _ . @ -, not starting with "."`.
pub fn check_unit_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid unit name {name:?}: use only letters, digits and _ . @ -, not starting with \".\""
        ))
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
    }
}
