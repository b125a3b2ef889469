//! The benchmark (`bench/run.sh`, see docs/performance.md) runs end to end: its `--quick`
//! mode (a few runs of each measurement) exits 0 and writes its report into a temporary
//! directory (`--out`), never over docs/performance.md, and the report holds numbers for
//! every peer it ran and the targets' ratios ([`bench_report`](crate::bench_report)).
//! Nothing here checks a time: a benchmark is never a test assert. crun and runc change the
//! host's /dev/null (they `fchown` their stdio), which no test watches: the escape tests
//! watch their own kennel's private one ([`Sandbox::private_null`](crate::harness::Sandbox::private_null)).
//! A kennel daemon answers on `KENNEL_SOCKET` meanwhile: the benchmark's store commands
//! (`kennel layer import` into its own state directory) must not ask it, or it would
//! refuse them (its state directory is another).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::harness::Sandbox;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

#[test]
fn bench_quick_runs_end_to_end() {
    let repo = repo();
    let out = tempfile::Builder::new()
        .prefix("kennel-bench-out-")
        .tempdir()
        .expect("tempdir");
    // A daemon on the socket a store command asks when given none (KENNEL_SOCKET stands
    // for the default socket, which a test may not take).
    let other = Sandbox::new();
    other.up();
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(repo.join("bench/run.sh"))
        .arg("--quick")
        .arg("--out")
        .arg(out.path())
        .env("KENNEL_VM_KERNEL_CACHE", repo.join("target/vm-kernel"))
        .env_remove("KENNEL")
        .env_remove("BENCH_ARGS")
        .env("KENNEL_SOCKET", &other.socket)
        .current_dir(&repo)
        .stdin(Stdio::null())
        .output()
        .expect("run bash bench/run.sh --quick");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "bench/run.sh --quick exited {:?}:\n{log}",
        output.status.code()
    );
    let md = std::fs::read_to_string(out.path().join("performance.md"))
        .unwrap_or_else(|e| panic!("no performance.md in {}: {e}\n{log}", out.path().display()));
    for section in [
        "## Targets",
        "## 1. Container start",
        "## 3. Exec",
        "## 5. Footprint",
        "## 9. Entry point of a container (issue 19)",
        "## 11. Networks (issue 15)",
        "## 12. podman with kennel as its OCI runtime (issue 16)",
    ] {
        assert!(
            md.contains(section),
            "performance.md has no {section:?}:\n{md}"
        );
    }
    let json = std::fs::read_to_string(out.path().join("performance.json"))
        .unwrap_or_else(|e| panic!("no performance.json: {e}\n{log}"));
    let bad = crate::bench_report::problems(&json, &md);
    assert!(
        bad.is_empty(),
        "the report lacks numbers: {bad:#?}\n{md}\n{log}"
    );
    for svg in ["performance-start.svg", "performance-rss.svg"] {
        let text = std::fs::read_to_string(out.path().join(svg))
            .unwrap_or_else(|e| panic!("no {svg}: {e}\n{log}"));
        assert!(text.starts_with("<svg"), "{svg} is not an SVG");
    }
    // The numbers, for whoever reads the test output (never asserted).
    let targets: String = md
        .lines()
        .skip_while(|l| !l.starts_with("## Targets"))
        .take_while(|l| !l.starts_with("## 1."))
        .collect::<Vec<_>>()
        .join("\n");
    let _ = writeln!(
        std::io::stderr().lock(),
        "bench --quick: {:.0}s\n{targets}",
        started.elapsed().as_secs_f64()
    );
}
