//! docs/architecture.md names every event and every action of the core's vocabulary
//! (`src/api.rs`).

use std::path::PathBuf;

/// The variant names of `pub enum NAME` in `src`.
fn variants(src: &str, name: &str) -> Vec<String> {
    let start = format!("pub enum {name} {{");
    let body = src
        .split_once(&start)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no `{start}` in api.rs"));
    let mut out = Vec::new();
    let mut depth = 0;
    for line in body.lines() {
        let t = line.trim();
        if depth == 0 && t.starts_with('}') {
            break;
        }
        if depth == 0 && !t.starts_with("//") && !t.starts_with('#') {
            let word: String = t.chars().take_while(|c| c.is_alphanumeric()).collect();
            if word.starts_with(char::is_uppercase) {
                out.push(word);
            }
        }
        depth += t.matches(['{', '(']).count();
        depth -= t.matches(['}', ')']).count();
    }
    out
}

#[test]
fn architecture_md_names_every_event_and_action() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let api = std::fs::read_to_string(root.join("src/api.rs")).expect("read api.rs");
    let doc = std::fs::read_to_string(root.join("../docs/architecture.md"))
        .expect("read architecture.md");
    let para = doc
        .split("\n\n")
        .find(|p| p.starts_with("Events:"))
        .expect("an `Events: ...` paragraph in architecture.md");
    let (events, actions) = para
        .split_once("Actions:")
        .expect("`Actions:` after the events");
    for (list, kind) in [(events, "Event"), (actions, "Action")] {
        let names = variants(&api, kind);
        assert!(names.len() >= 5, "{kind}: {names:?}");
        for n in names {
            assert!(
                list.contains(&format!("`{n}`")) || list.contains(&format!("`{n} ")),
                "architecture.md does not list {kind}::{n}: {list}"
            );
        }
    }
}
