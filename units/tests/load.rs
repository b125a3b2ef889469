//! `load_paths` / `load_dir` and the `UnitSet` graph: cross-unit checks with positions,
//! start order, requirers.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use kennel_units::{load_dir, load_paths, Unit, UnitSet};

/// A fresh directory holding `files` (name, text).
fn dir(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("kennel-units-load")
        .join(test);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    for (name, text) in files {
        fs::write(d.join(name), text).unwrap();
    }
    d
}

fn unit(deps: &str) -> String {
    format!("[service]\ncommand = [\"/bin/true\"]\n{deps}\n")
}

/// The diagnostics as strings, with the test directory shown as `D`.
fn errors(
    d: &std::path::Path,
    result: Result<UnitSet, Vec<kennel_units::Diagnostic>>,
) -> Vec<String> {
    let prefix = format!("{}/", d.display());
    match result {
        Ok(set) => panic!(
            "expected errors, loaded {:?}",
            set.names().collect::<Vec<_>>()
        ),
        Err(diags) => diags
            .iter()
            .map(|x| x.to_string().replace(&prefix, "D/"))
            .collect(),
    }
}

#[test]
fn loads_every_toml_file_of_a_directory() {
    let d = dir(
        "loads",
        &[
            ("web.toml", &unit("requires = [\"db\"]")),
            ("db.toml", &unit("")),
            ("README", "x"),
            ("db.toml.bak", "x"),
        ],
    );
    fs::create_dir(d.join("sub.toml")).unwrap();
    let set = load_dir(&d).unwrap();
    assert_eq!(set.names().collect::<Vec<_>>(), ["db", "web"]);
    assert_eq!(set.get("web").unwrap().path, d.join("web.toml"));
    assert_eq!(set.start_order(), ["db", "web"]);
}

#[test]
fn empty_directory_gives_an_empty_set() {
    let d = dir("empty", &[]);
    assert!(load_dir(&d).unwrap().is_empty());
}

#[test]
fn files_and_directories_mix() {
    let a = dir("mix-a", &[("web.toml", &unit("after = [\"db\"]"))]);
    let b = dir("mix-b", &[("db.conf", &unit(""))]);
    let set = load_paths(&[a.clone(), b.join("db.conf"), a.join("web.toml")]).unwrap();
    assert_eq!(set.names().collect::<Vec<_>>(), ["db", "web"]);
}

#[test]
fn unreadable_paths_and_duplicate_names() {
    let a = dir("dup-a", &[("web.toml", &unit(""))]);
    let b = dir("dup-b", &[("web.toml", &unit(""))]);
    let missing = a.join("nope");
    let diags = load_paths(&[a.clone(), b.clone(), missing.clone()]).unwrap_err();
    let got: Vec<String> = diags.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            format!(
                "{}:1:1: cannot read: No such file or directory (os error 2)",
                missing.display()
            ),
            format!(
                "{}:1:1: duplicate unit \"web\": also defined in {}",
                b.join("web.toml").display(),
                a.join("web.toml").display()
            ),
        ]
    );
}

#[test]
fn bad_file_names_are_reported() {
    let d = dir(
        "names",
        &[(".hidden.toml", &unit("")), ("a b.toml", &unit(""))],
    );
    assert_eq!(
        errors(&d, load_dir(&d)),
        [
            "D/.hidden.toml:1:1: invalid unit name \".hidden\": use only letters, digits and _ . @ -, not starting with \".\"",
            "D/a b.toml:1:1: invalid unit name \"a b\": use only letters, digits and _ . @ -, not starting with \".\"",
        ]
    );
}

#[test]
fn unknown_dependencies_with_suggestions_at_the_entry() {
    let d = dir(
        "unknown",
        &[
            ("db.toml", &unit("")),
            (
                "web.toml",
                &unit("after = [\"db\", \"zzz\"]\nrequires = [\"dbb\"]"),
            ),
        ],
    );
    assert_eq!(
        errors(&d, load_dir(&d)),
        [
            "D/web.toml:3:16: service.after: unknown unit \"zzz\"",
            "D/web.toml:4:13: service.requires: unknown unit \"dbb\"; did you mean \"db\"?",
        ]
    );
}

#[test]
fn cycles_are_reported_once_at_the_first_unit() {
    let d = dir(
        "cycle",
        &[
            ("a.toml", &unit("after = [\"x\", \"b\"]")),
            ("b.toml", &unit("requires = [\"c\"]")),
            ("c.toml", &unit("after = [\"a\"]")),
            ("x.toml", &unit("")),
        ],
    );
    assert_eq!(
        errors(&d, load_dir(&d)),
        ["D/a.toml:3:15: dependency cycle: a -> b -> c -> a"]
    );
}

#[test]
fn every_problem_of_every_file_at_once() {
    let d = dir(
        "all",
        &[
            ("a.toml", "[service]\ncomand = [\"x\"]\nafter = [\"b\"]\n"),
            ("b.toml", &unit("after = [\"a\"]\nrequires = [\"nope\"]")),
            ("c.toml", "[service\n"),
            ("d.toml", &unit("stop_timeout = 3")),
        ],
    );
    assert_eq!(
        errors(&d, load_dir(&d)),
        [
            "D/a.toml:1:1: service.command is required",
            "D/a.toml:2:1: unknown key \"comand\" in [service]; did you mean \"command\"?",
            "D/a.toml:3:10: dependency cycle: a -> b -> a",
            "D/b.toml:4:13: service.requires: unknown unit \"nope\"",
            "D/c.toml:1:9: invalid TOML: invalid table header; expected `.`, `]`",
            "D/d.toml:3:16: service.stop_timeout: expected a duration string such as \"10s\", found integer 3",
        ]
    );
}

fn code_unit(name: &str, after: &[&str], requires: &[&str]) -> Unit {
    let mut u = Unit::new(name, vec!["/bin/true".into()]);
    u.service.after = after.iter().map(|s| s.to_string()).collect();
    u.service.requires = requires.iter().map(|s| s.to_string()).collect();
    u
}

fn sample() -> UnitSet {
    UnitSet::from_units(vec![
        code_unit("web", &["cache"], &["api"]),
        code_unit("api", &[], &["db"]),
        code_unit("db", &[], &[]),
        code_unit("cache", &[], &[]),
        code_unit("worker", &["db"], &[]),
        code_unit("cron", &[], &["worker"]),
        code_unit("alone", &[], &[]),
    ])
    .unwrap()
}

#[test]
fn graph_queries() {
    let set = sample();
    assert_eq!(
        set.start_order(),
        ["alone", "cache", "db", "api", "web", "worker", "cron"]
    );
    assert_eq!(set.dependencies("web"), ["cache", "api"]);
    assert!(set.dependencies("nope").is_empty());
    assert_eq!(set.dependents("db"), ["api", "worker"]);
    assert_eq!(set.requirers("db"), ["api"]);
    assert!(set.requirers("cache").is_empty());
    let closure = |names: &[&str]| set.requirers_closure(names.iter().copied());
    assert_eq!(
        closure(&["db"]),
        BTreeSet::from(["db".into(), "api".into(), "web".into()])
    );
    assert_eq!(closure(&["cache"]), BTreeSet::from(["cache".into()]));
    assert_eq!(
        closure(&["worker", "api", "nope"]),
        BTreeSet::from(["worker".into(), "cron".into(), "api".into(), "web".into()])
    );
}

#[test]
fn start_order_respects_every_edge() {
    let set = sample();
    let order = set.start_order();
    assert_eq!(order.len(), set.len());
    for u in set.iter() {
        let at = |n: &str| order.iter().position(|o| *o == n).unwrap();
        for d in set.dependencies(&u.name) {
            assert!(at(d) < at(&u.name), "{} before {}", d, u.name);
        }
    }
}

#[test]
fn from_units_checks_like_the_loader() {
    let errors = UnitSet::from_units(vec![
        code_unit("a", &["b"], &[]),
        code_unit("b", &["a"], &["dbb"]),
        code_unit("db", &[], &["db"]),
        code_unit("db", &[], &[]),
        code_unit("x y", &[], &[]),
    ])
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "duplicate unit \"db\"",
            "invalid unit name \"x y\": use only letters, digits and _ . @ -, not starting with \".\"",
            "unit \"b\": service.requires: unknown unit \"dbb\"; did you mean \"db\"?",
            "unit \"db\": service.requires: a unit cannot depend on itself",
            "dependency cycle: a -> b -> a",
        ]
    );
}

#[test]
fn from_units_adds_requires_to_after() {
    let set =
        UnitSet::from_units(vec![code_unit("a", &[], &["b"]), code_unit("b", &[], &[])]).unwrap();
    assert_eq!(set.dependencies("a"), ["b"]);
    assert_eq!(set.start_order(), ["b", "a"]);
}

/// A container unit on layer "base" with `network` and `extra` lines after it.
fn container_unit(deps: &str, network: &str) -> String {
    format!("[service]\ncommand = [\"/bin/true\"]\n{deps}\n[container]\nrootfs = [\"base\"]\nnetwork = \"{network}\"\n")
}

#[test]
fn network_unit_requires_and_orders_after_it() {
    let d = dir(
        "net-ok",
        &[
            ("db.toml", &container_unit("", "none")),
            ("web.toml", &container_unit("after = [\"log\"]", "unit:db")),
            ("log.toml", &unit("")),
            ("side.toml", &container_unit("", "unit:web")),
        ],
    );
    let set = load_dir(&d).unwrap();
    let web = set.get("web").unwrap();
    assert_eq!(web.service.requires, ["db"]);
    assert_eq!(web.service.after, ["log", "db"]);
    assert_eq!(set.requirers("db"), ["web"]);
    assert_eq!(set.start_order(), ["db", "log", "web", "side"]);
    assert_eq!(
        set.requirers_closure(["db"]),
        BTreeSet::from(["db".into(), "web".into(), "side".into()])
    );
}

#[test]
fn network_unit_must_exist_with_a_suggestion() {
    let d = dir(
        "net-unknown",
        &[
            ("db.toml", &container_unit("", "none")),
            ("web.toml", &container_unit("", "unit:dbb")),
            (
                "api.toml",
                &container_unit("requires = [\"zzz\"]", "unit:zzz"),
            ),
        ],
    );
    assert_eq!(
        errors(&d, load_dir(&d)),
        [
            "D/api.toml:3:13: service.requires: unknown unit \"zzz\"",
            "D/api.toml:6:11: container.network: unknown unit \"zzz\"",
            "D/web.toml:6:11: container.network: unknown unit \"dbb\"; did you mean \"db\"?",
        ]
    );
}

#[test]
fn network_unit_must_have_its_own_network_namespace() {
    let d = dir(
        "net-target",
        &[
            ("plain.toml", &unit("")),
            ("hostnet.toml", &container_unit("", "host")),
            ("a.toml", &container_unit("", "unit:plain")),
            ("b.toml", &container_unit("", "unit:hostnet")),
            // A target with other problems is not checked further.
            (
                "broken.toml",
                "[service]\n[container]\nrootfs = [\"x\"]\nnetwork = \"host\"\n",
            ),
            ("c.toml", &container_unit("", "unit:broken")),
        ],
    );
    assert_eq!(
        errors(&d, load_dir(&d)),
        [
            "D/a.toml:6:11: container.network: unit \"plain\" is not a container, so it has no network namespace of its own; use network = \"host\" to share the host's",
            "D/b.toml:6:11: container.network: unit \"hostnet\" uses the host's network namespace; use network = \"host\" instead",
            "D/broken.toml:1:1: service.command is required",
        ]
    );
}

#[test]
fn cycles_through_network_are_reported() {
    let d = dir(
        "net-cycle",
        &[
            ("a.toml", &container_unit("", "unit:b")),
            ("b.toml", &container_unit("after = [\"c\"]", "none")),
            ("c.toml", &container_unit("", "unit:a")),
        ],
    );
    assert_eq!(
        errors(&d, load_dir(&d)),
        ["D/a.toml:6:11: dependency cycle: a -> b -> c -> a"]
    );
}

#[test]
fn from_units_handles_network_units() {
    use kennel_units::{Container, Layer, Network};
    let with_net = |name: &str, network: Network| {
        let mut u = Unit::new(name, vec!["/bin/true".into()]);
        let mut c = Container::new(vec![Layer::Named("base".into())], name);
        c.network = network;
        u.container = Some(c);
        u
    };
    let set = UnitSet::from_units(vec![
        with_net("db", Network::None),
        with_net("web", Network::Unit("db".into())),
    ])
    .unwrap();
    assert_eq!(set.get("web").unwrap().service.requires, ["db"]);
    assert_eq!(set.dependencies("web"), ["db"]);
    assert_eq!(set.start_order(), ["db", "web"]);
    let errors = UnitSet::from_units(vec![
        code_unit("plain", &[], &[]),
        with_net("web", Network::Unit("plain".into())),
        with_net("api", Network::Unit("dbb".into())),
        with_net("db", Network::None),
    ])
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "unit \"api\": container.network: unknown unit \"dbb\"; did you mean \"db\"?",
            "unit \"web\": container.network: unit \"plain\" is not a container, so it has no network namespace of its own; use network = \"host\" to share the host's",
        ]
    );
}

/// `kennel check web.toml`: the other units of web.toml's directory are context.
#[test]
fn check_paths_reads_a_files_directory_as_context() {
    use kennel_units::check_paths;
    let d = dir(
        "check-context",
        &[
            ("web.toml", &unit("requires = [\"db\"]")),
            ("db.toml", &unit("")),
            ("broken.toml", "[service]\ncomand = 1\n"),
            ("lost.toml", &unit("requires = [\"cache\"]")),
            ("a.toml", &unit("requires = [\"b\"]")),
            ("b.toml", &unit("after = [\"a\"]")),
        ],
    );
    let shown = |r: Result<kennel_units::Checked, Vec<kennel_units::Diagnostic>>| match r {
        Ok(c) => vec![format!("{} ok", c.units)],
        Err(diags) => diags
            .iter()
            .map(|x| x.to_string().replace(&format!("{}/", d.display()), "D/"))
            .collect(),
    };
    // Its dependency is in the directory; broken.toml's problems are not web's.
    assert_eq!(shown(check_paths(&[d.join("web.toml")])), ["1 ok"]);
    assert_eq!(
        shown(check_paths(&[d.join("web.toml"), d.join("db.toml")])),
        ["2 ok"]
    );
    // A dependency found nowhere is still unknown.
    assert_eq!(
        shown(check_paths(&[d.join("lost.toml")])),
        ["D/lost.toml:3:13: service.requires: unknown unit \"cache\""]
    );
    // A cycle through a context unit is reported in the checked file.
    assert_eq!(
        shown(check_paths(&[d.join("b.toml")])),
        ["D/b.toml:3:10: dependency cycle: b -> a -> b"]
    );
    // A directory is checked whole, as load_paths does.
    assert_eq!(shown(check_paths(std::slice::from_ref(&d))).len(), 4);
    // load_paths on the file alone still has no context.
    assert_eq!(
        errors(&d, load_paths(&[d.join("web.toml")])),
        ["D/web.toml:3:13: service.requires: unknown unit \"db\""]
    );
}

#[test]
fn unknown_dependency_never_suggests_the_unit_itself() {
    let d = dir(
        "no-self-hint",
        &[("dbx.toml", &unit("requires = [\"db\"]"))],
    );
    assert_eq!(
        errors(&d, load_dir(&d)),
        ["D/dbx.toml:3:13: service.requires: unknown unit \"db\""]
    );
}
