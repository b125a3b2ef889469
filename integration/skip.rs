//! Skipping a test out loud: the one way a test of this workspace ends early because this
//! machine lacks something. It prints `SKIPPED: TEST: WHY` past libtest's capture (so that
//! `cargo test` shows it even though the test passes, and `scripts/test.sh` counts it); under
//! CI (`CI=true`) a skip for want of something `scripts/test.sh` provides fails the test
//! instead. Plain std, so that the tests of other crates include this file by path
//! (`#[path]`) and skip the same way.

// Each crate that includes this file uses a part of it.
#![allow(dead_code)]

use std::io::Write;

/// What a test found missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Something `scripts/test.sh` provides: root, a package it installs (busybox, qemu,
    /// crun, ...), Debian's archive it installs from. Under CI this is a failure: the test
    /// was meant to run there.
    Provided,
    /// Something of the machine's own that no script can provide (a kernel feature, a
    /// device): a skip everywhere.
    Host,
}

/// What becomes of a test that found `missing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Skip,
    Fail,
}

/// Whether `CI` (the variable CI services set, and `.ci/run`) says this is CI: any value
/// but empty, `0` or `false`.
pub fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The rule, without I/O: under CI only what no script provides may be skipped.
pub fn verdict(ci: bool, missing: Missing) -> Verdict {
    match (ci, missing) {
        (true, Missing::Provided) => Verdict::Fail,
        _ => Verdict::Skip,
    }
}

/// The running test's name (libtest names each test's thread after it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_string()
}

/// The test cannot run on this machine for want of `missing` (`why` says what): say so on
/// stderr (`SKIPPED: TEST: WHY`), then the caller returns. Under CI a [`Missing::Provided`]
/// panics instead, failing the test.
pub fn skip(missing: Missing, why: &str) {
    let name = test_name();
    let ci = is_ci(std::env::var("CI").ok().as_deref());
    match verdict(ci, missing) {
        Verdict::Skip => {
            // Straight to the process's stderr (libtest captures eprintln! of a test), in
            // one write, so that the line stays whole beside other tests' output.
            let line = format!("SKIPPED: {name}: {why}\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        Verdict::Fail => panic!(
            "{name}: cannot run: {why}; under CI (CI=true) this is a failure, not a skip: \
             scripts/test.sh provides it"
        ),
    }
}

/// [`skip`] for want of root, when not root; whether the test may go on.
pub fn need_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(Missing::Provided, "needs root");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_any_value_but_empty_0_or_false() {
        for (value, ci) in [
            (None, false),
            (Some(""), false),
            (Some("0"), false),
            (Some("false"), false),
            (Some("FALSE"), false),
            (Some("true"), true),
            (Some("1"), true),
            (Some("yes"), true),
        ] {
            assert_eq!(is_ci(value), ci, "CI={value:?}");
        }
    }

    #[test]
    fn under_ci_only_what_the_host_lacks_is_skipped() {
        assert_eq!(verdict(false, Missing::Provided), Verdict::Skip);
        assert_eq!(verdict(false, Missing::Host), Verdict::Skip);
        assert_eq!(verdict(true, Missing::Provided), Verdict::Fail);
        assert_eq!(verdict(true, Missing::Host), Verdict::Skip);
    }
}
