//! Every process kennel starts (`run`'s command, a service, a container's service, an
//! exec, a probe) begins with every signal disposition at its default and an empty mask,
//! whatever kennel itself was started with (here: SIGHUP and SIGQUIT ignored, as under
//! `nohup`, and SIGUSR2 blocked; the harness sets them explicitly, never inheriting the
//! test runner's).

use std::process::{Command, Stdio};

use crate::ctr::Rig;
use crate::harness::{sig_fields, sig_mask, Signals, KENNEL};

/// What kennel is started with in these tests.
fn inherited() -> Signals {
    Signals {
        ignored: vec![libc::SIGHUP, libc::SIGQUIT],
        blocked: vec![libc::SIGUSR2],
    }
}

/// Prints the `SigIgn` and `SigBlk` lines of the process's own status.
const SHOW: [&str; 4] = ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"];

/// `argv` run to its end with `signals`, through `unshare` as PID 1 of a new pid
/// namespace when `ns`; its stdout.
fn output(argv: &[&str], signals: &Signals, ns: bool) -> String {
    let mut cmd = if ns {
        let mut c = Command::new("unshare");
        c.args(["--pid", "--fork", "--kill-child", "--"]).args(argv);
        c
    } else {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c
    };
    cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
    signals.apply(&mut cmd);
    let out = cmd.output().expect("run the command");
    assert!(out.status.success(), "{argv:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn run_starts_its_command_with_default_dispositions_and_an_empty_mask() {
    let given = inherited();
    // The wrapper works: the command run directly keeps what it was given.
    let direct = sig_fields(&output(&SHOW, &given, false));
    assert_eq!(
        direct,
        (sig_mask(&given.ignored), sig_mask(&given.blocked)),
        "the test's own setup"
    );
    let mut run = vec![KENNEL, "run", "--"];
    run.extend_from_slice(&SHOW);
    for ns in [false, true] {
        let got = sig_fields(&output(&run, &given, ns));
        assert_eq!(got, (0, 0), "kennel run (as PID 1: {ns}): SigIgn, SigBlk");
    }
}

#[test]
fn services_containers_execs_and_probes_start_with_default_dispositions() {
    let s = Rig::new();
    s.inherit_signals(&inherited().ignored, &inherited().blocked);
    let probe = s.script(
        "probe",
        r#"exec grep -E '^Sig(Ign|Blk)' /proc/self/status > "$D/probe""#,
    );
    s.unit(
        "plain",
        &format!(
            "[service]\ncommand = [\"sleep\", \"100000\"]\n\
             [ready]\ncommand = [\"{probe}\"]\n"
        ),
    );
    s.unit(
        "show",
        "[service]\ntype = \"oneshot\"\ncommand = [\"grep\", \"-E\", \"^Sig(Ign|Blk)\", \"/proc/self/status\"]\n",
    );
    s.container("ctr", &SHOW, "");
    s.up();
    let fields = |unit: &str| {
        s.wait_for(&format!("{unit}'s output"), || {
            s.stdout(unit).iter().any(|l| l.starts_with("SigBlk"))
        });
        sig_fields(&s.stdout(unit).join("\n"))
    };
    assert_eq!(fields("show"), (0, 0), "a service: SigIgn, SigBlk");
    assert_eq!(
        fields("ctr"),
        (0, 0),
        "a container's service: SigIgn, SigBlk"
    );
    s.wait_file("probe");
    assert_eq!(
        sig_fields(&s.read("probe").unwrap_or_default()),
        (0, 0),
        "a readiness probe: SigIgn, SigBlk"
    );
    s.wait_state("plain", "up");
    let mut exec = vec!["plain"];
    exec.extend_from_slice(&SHOW);
    assert_eq!(
        sig_fields(&s.exec_ok(&exec)),
        (0, 0),
        "an exec: SigIgn, SigBlk"
    );
}
