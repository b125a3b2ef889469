//! `kennel check` and the validation `kennel up` does first: every problem of every file
//! as `FILE:LINE:COL: message`, exit 1; `N units OK`, exit 0.

use crate::harness::{Sandbox, KENNEL};

/// A unit directory with one problem of each kind (and two good units).
fn bad_units(s: &Sandbox) {
    s.unit("web", "[service]\ncomand = [\"/bin/true\"]\n");
    s.unit(
        "slow",
        "[service]\ncommand = [\"/bin/true\"]\nstop_timeout = \"10 sec\"\n",
    );
    s.unit("db", "[service]\ncommand = [\"/bin/true\"]\n");
    s.unit(
        "app",
        "[service]\ncommand = [\"/bin/true\"]\nrequires = [\"dbb\"]\n",
    );
    s.unit(
        "a",
        "[service]\ncommand = [\"/bin/true\"]\nrequires = [\"b\"]\n",
    );
    s.unit(
        "b",
        "[service]\ncommand = [\"/bin/true\"]\nafter = [\"a\"]\n",
    );
    std::fs::write(s.units.join("README"), "not a unit").expect("write README");
}

/// What `kennel check` must print for [`bad_units`], in order.
fn expected(s: &Sandbox) -> Vec<String> {
    let d = s.units.display();
    vec![
        format!("{d}/a.toml:3:13: dependency cycle: a -> b -> a"),
        format!("{d}/app.toml:3:13: service.requires: unknown unit \"dbb\"; did you mean \"db\"?"),
        format!(
            "{d}/slow.toml:3:16: service.stop_timeout: invalid duration \"10 sec\": expected a \
             number followed by ms, s, m or h (e.g. \"250ms\", \"10s\", \"5m\")"
        ),
        format!("{d}/web.toml:1:1: service.command is required"),
        format!("{d}/web.toml:2:1: unknown key \"comand\" in [service]; did you mean \"command\"?"),
    ]
}

#[test]
fn check_prints_every_problem_as_file_line_col_and_exits_1() {
    let s = Sandbox::new();
    bad_units(&s);
    let out = std::process::Command::new(KENNEL)
        .arg("check")
        .arg(&s.units)
        .output()
        .expect("run kennel check");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, expected(&s));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "5 problems\n");
}

#[test]
fn check_of_good_units_prints_n_units_ok_and_exits_0() {
    let s = Sandbox::new();
    s.unit("db", "[service]\ncommand = [\"/bin/true\"]\n");
    s.unit(
        "web",
        "[service]\ncommand = [\"/bin/true\"]\nrequires = [\"db\"]\n\
         [restart]\ndelay = \"1s\"\n[logs]\nmax_size = \"10MiB\"\n",
    );
    s.unit(
        "job",
        "[service]\ncommand = [\"/bin/true\"]\ntype = \"oneshot\"\n",
    );
    let out = std::process::Command::new(KENNEL)
        .arg("check")
        .arg(&s.units)
        .output()
        .expect("run kennel check");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3 units OK\n");

    // Files given by path, whatever their extension.
    let other = s.path("other.conf");
    std::fs::write(&other, "[service]\ncommand = [\"/bin/true\"]\n").expect("write");
    let out = std::process::Command::new(KENNEL)
        .arg("check")
        .arg(s.units.join("db.toml"))
        .arg(&other)
        .output()
        .expect("run kennel check");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 units OK\n");
}

#[test]
fn up_refuses_invalid_units_with_the_same_messages() {
    let s = Sandbox::new();
    bad_units(&s);
    let out = s.up_output(&[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    for want in expected(&s) {
        assert!(
            lines.contains(&want.as_str()),
            "missing {want:?} in:\n{stderr}"
        );
    }
    assert!(!s.socket.exists(), "no socket was bound");
    assert!(!s.logs.exists(), "nothing was started");
}

#[test]
fn every_example_unit_set_checks_ok() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (dir, n) in [
        ("examples/quickstart", 7),
        ("examples/vm/rootfs/etc/kennel/units", 4),
        ("examples/vm/rootfs/etc/kennel/units-crashing", 4),
    ] {
        let out = std::process::Command::new(KENNEL)
            .arg("check")
            .arg(repo.join(dir))
            .output()
            .expect("run kennel check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{dir}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.trim(), format!("{n} units OK"), "{dir}");
    }
}

#[test]
fn check_of_one_file_knows_the_units_of_its_directory() {
    let s = Sandbox::new();
    s.unit("db", "[service]\ncommand = [\"/bin/true\"]\n");
    s.unit(
        "web",
        "[service]\ncommand = [\"/bin/true\"]\nrequires = [\"db\"]\n",
    );
    s.unit(
        "lost",
        "[service]\ncommand = [\"/bin/true\"]\nrequires = [\"cache\"]\n",
    );
    let check = |file: &str| {
        std::process::Command::new(KENNEL)
            .arg("check")
            .arg(s.units.join(file))
            .output()
            .expect("run kennel check")
    };
    let out = check("web.toml");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 unit OK\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    // A dependency the directory lacks too is still an error (and lost's only).
    let out = check("lost.toml");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{}/lost.toml:3:13: service.requires: unknown unit \"cache\"\n",
            s.units.display()
        )
    );
}
