//! Every ```toml block of docs/units.md is a complete, valid unit file.

use std::path::{Path, PathBuf};

/// The ```toml blocks of `text`, each with the line its content starts on.
fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_end() == "```toml" => current = Some((i + 2, String::new())),
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```toml block");
    blocks
}

#[test]
fn every_toml_example_parses() {
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/units.md");
    let text = std::fs::read_to_string(&doc).unwrap();
    let blocks = toml_blocks(&text);
    assert!(
        blocks.len() >= 5,
        "expected at least 5 examples, found {}",
        blocks.len()
    );
    for (line, body) in blocks {
        if let Err(diags) = kennel_units::parse_unit("example", Path::new("example.toml"), &body) {
            let all: Vec<String> = diags.iter().map(ToString::to_string).collect();
            panic!(
                "the example at docs/units.md:{line} is invalid:\n{}",
                all.join("\n")
            );
        }
    }
}

#[test]
fn the_invalid_example_is_indeed_invalid() {
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/units.md");
    let text = std::fs::read_to_string(&doc).unwrap();
    let start = text.find("a unit `kennel check` refuses").unwrap();
    let block = text[start..]
        .split("```text\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let diags = kennel_units::parse_unit("bad", Path::new("bad.toml"), block).unwrap_err();
    assert_eq!(diags.len(), 3, "{diags:?}");
}
