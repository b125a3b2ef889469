//! `kennel --help` and docs/cli.md: every subcommand the help lists has its section on the
//! page, and every option it shows is documented there (or on the page the section links
//! for it: exec.md, images.md, vm.md); `--help` works for every subcommand. And the
//! README's `kennel status` example has the columns kennel prints.

use std::process::Command;

use crate::harness::{Sandbox, KENNEL};

/// `kennel ARGS --help`'s output (it must succeed).
fn help(args: &[&str]) -> String {
    let out = Command::new(KENNEL)
        .args(args)
        .arg("--help")
        .output()
        .expect("run kennel --help");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("Usage: kennel"),
        "kennel {args:?} --help: {}{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The subcommands a help text lists (its `Commands:` section, `help` aside).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

/// The long options a help text shows (`--help` and `--version` aside).
fn options(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Options:"))
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix('-')
                .map(|r| r.split_once(", ").map_or(l, |(_, o)| o))?;
            let opt = l.split([' ', '=']).next()?;
            opt.starts_with("--").then(|| opt.to_string())
        })
        .filter(|o| o != "--help" && o != "--version")
        .collect()
}

#[test]
fn cli_md_documents_every_subcommand_and_option_that_help_shows() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let read = |p: &str| std::fs::read_to_string(docs.join(p)).expect("read a doc page");
    let cli = read("cli.md");
    let all = [
        cli.clone(),
        read("exec.md"),
        read("images.md"),
        read("vm.md"),
    ]
    .join("\n");
    let mut missing = Vec::new();
    for opt in options(&help(&[])) {
        if !cli.contains(&opt) {
            missing.push(format!("kennel {opt}"));
        }
    }
    for sub in subcommands(&help(&[])) {
        if !cli.contains(&format!("kennel {sub}")) && !cli.contains(&format!("| {sub}")) {
            missing.push(format!("section kennel {sub}"));
        }
        let text = help(&[&sub]);
        let nested = subcommands(&text);
        let mut helps = vec![(vec![sub.clone()], text)];
        for n in nested {
            helps.push((vec![sub.clone(), n.clone()], help(&[&sub, &n])));
        }
        for (args, text) in helps {
            for opt in options(&text) {
                if !all.contains(&opt) {
                    missing.push(format!("kennel {} {opt}", args.join(" ")));
                }
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/cli.md: {missing:#?}");
}

#[test]
fn readme_status_example_has_the_columns_status_prints() {
    let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(readme).expect("read README.md");
    let example = readme
        .lines()
        .skip_while(|l| l.trim() != "$ kennel status")
        .nth(1)
        .expect("a `$ kennel status` example in README.md");
    let s = Sandbox::new();
    s.unit("db", "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n");
    s.up();
    s.wait_state("db", "up");
    let printed = s.ok(&["status"]);
    let header = printed.lines().next().unwrap_or_default();
    let columns = |l: &str| -> Vec<String> {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(
        columns(example),
        columns(header),
        "README: {example}\nkennel: {header}"
    );
}
