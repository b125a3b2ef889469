//! kennel as the init of a Linux machine: `examples/vm/run.sh` builds an initramfs with
//! kennel as `/sbin/init` and boots it with qemu (TCG) on Debian's kernel; these tests read
//! the serial console. Each test has its own build directory (`target/vm-test-NAME`); the
//! kernel package is shared (`target/vm-kernel`, locked by the script). The VMs run one
//! at a time: under TCG each takes both of a CI machine's CPUs.
//!
//! If this machine cannot run a VM at all (not root, qemu cannot be installed, the kernel
//! package cannot be downloaded: the script exits 77), a test is skipped out loud
//! ([`skip`]); under CI, which has all of these (`scripts/test.sh` installs qemu from the
//! archive the kernel comes from), that fails the test.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use crate::harness::{skip, Missing};

/// One VM at a time (the disk boots of vm_disk.rs too).
pub(crate) static VM: Mutex<()> = Mutex::new(());

/// The repository's root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// Written straight to the test process's stderr, past libtest's capture, so that the
/// timings are seen even when the test passes.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

struct Boot {
    /// stdout (the console) then stderr (the script's own lines).
    out: String,
    code: Option<i32>,
}

impl Boot {
    fn has(&self, s: &str) -> bool {
        self.out.contains(s)
    }

    /// The first line containing `s`, as an index into the output's lines.
    fn line_of(&self, s: &str) -> Option<usize> {
        self.out.lines().position(|l| l.contains(s))
    }

    fn assert_has(&self, s: &str) {
        assert!(self.has(s), "no {s:?} in the output:\n{}", self.out);
    }

    fn assert_not(&self, s: &str) {
        assert!(!self.has(s), "{s:?} in the output:\n{}", self.out);
    }

    fn assert_checks_ok(&self, names: &[&str]) {
        let failed: Vec<&str> = self
            .out
            .lines()
            .filter(|l| l.contains("CHECK ") && l.contains(" FAIL"))
            .collect();
        assert!(
            failed.is_empty(),
            "failed checks: {failed:#?}\n{}",
            self.out
        );
        for n in names {
            self.assert_has(&format!("CHECK {n} ok"));
        }
        self.assert_has("CHECKS DONE");
    }

    fn assert_powered_off(&self) {
        assert_eq!(self.code, Some(0), "run.sh failed:\n{}", self.out);
        self.assert_has("reboot: Power down");
        self.assert_not("Kernel panic");
        self.assert_not("Attempted to kill init");
    }
}

/// Runs `examples/vm/run.sh ARGS` with its own build directory; `None` if this machine
/// cannot run a VM (the test is skipped: [`skip`]).
fn boot(name: &str, args: &[&str]) -> Option<Boot> {
    let _one = VM.lock().unwrap_or_else(|e| e.into_inner());
    let repo = repo();
    let out_dir = repo.join(format!("target/vm-test-{name}"));
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(repo.join("examples/vm/run.sh"))
        .args(args)
        .arg("--out")
        .arg(&out_dir)
        .env("KENNEL_VM_KERNEL_CACHE", repo.join("target/vm-kernel"))
        // TCG on a busy 2-CPU machine: generous, the script's default is 300s.
        .env("KENNEL_VM_TIMEOUT", "600")
        .env_remove("KENNEL_VM_BINARY")
        .env_remove("KENNEL_VM_FEATURES")
        .env_remove("KENNEL_VM_KVM")
        .current_dir(&repo)
        .stdin(Stdio::null())
        .output()
        .expect("run bash examples/vm/run.sh");
    let took = started.elapsed().as_secs_f64();
    let mut out = String::from_utf8_lossy(&output.stdout).into_owned();
    out.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.code() == Some(77) {
        let why = out
            .lines()
            .filter(|l| l.contains("SKIP"))
            .collect::<Vec<_>>()
            .join("; ");
        skip(
            Missing::Provided,
            &format!("this machine cannot run the VM: {why}"),
        );
        return None;
    }
    let timing = out
        .lines()
        .find(|l| l.starts_with("qemu start -> all units up"))
        .unwrap_or("qemu start -> all units up: (no timing line)");
    say(&format!(
        "vm::{name}: {timing}; run.sh took {took:.0}s (build included)"
    ));
    Some(Boot {
        out,
        code: output.status.code(),
    })
}

/// The checks of `examples/vm/rootfs/etc/kennel/checks.sh` that must pass on every boot.
const BOOT_CHECKS: &[&str] = &[
    "mount-proc",
    "mount-sys",
    "mount-dev",
    "mount-dev-pts",
    "mount-dev-shm",
    "mount-run",
    "mount-sys-fs-cgroup",
    "hostname",
    "cgroup-controllers",
    "kennel-status",
    "no-zombies-after-2000-orphans",
];

#[test]
fn vm_boots_checks_and_powers_off() {
    let Some(b) = boot("check", &["--check"]) else {
        return;
    };
    b.assert_powered_off();
    b.assert_has("all units up in ");
    b.assert_has("s (machine up ");
    b.assert_checks_ok(BOOT_CHECKS);
    b.assert_checks_ok(&[
        "web-running",
        "web-ns-pid",
        "web-ns-mnt",
        "web-ns-uts",
        "web-ns-net",
        "web-ns-ipc",
        "web-ns-cgroup",
        "web-overlay-root",
        "web-service-root",
        "web-exec",
        "web-hostname",
        "web-memory-max",
        "web-devices-v2",
    ]);
    // The ordered shutdown: every unit is stopped, `checks` (after web and ticker) first.
    let stop = |u: &str| {
        b.line_of(&format!("stopped unit=\"{u}\""))
            .unwrap_or_else(|| panic!("no stop line for {u}:\n{}", b.out))
    };
    let (checks, web, ticker) = (stop("checks"), stop("web"), stop("ticker"));
    assert!(
        checks < web && checks < ticker,
        "checks must stop before web and ticker (lines {checks}, {web}, {ticker}):\n{}",
        b.out
    );
    b.assert_has("all units stopped");
}

#[test]
fn vm_with_crashing_units_still_boots_and_powers_off() {
    let Some(b) = boot("crashing", &["--crashing"]) else {
        return;
    };
    b.assert_powered_off();
    b.assert_checks_ok(BOOT_CHECKS);
    b.assert_checks_ok(&[
        "crash-failed",
        "missing-failed",
        "userns-failed",
        "userns-says-why",
    ]);
}

#[test]
fn vm_bridge_unit_is_served_through_a_forwarded_port() {
    let Some(b) = boot("net", &["--net"]) else {
        return;
    };
    b.assert_powered_off();
    b.assert_checks_ok(&[
        "net-eth0-dhcp",
        "status-address-and-port",
        "bridge-kennel0",
        "published-port-via-127.0.0.1",
        "published-port-via-10.0.2.15",
        "host-request-served",
    ]);
    // run.sh's own verdict: the host fetched the page through qemu's forwarded port.
    b.assert_has("the host got web-bridge's page through the forwarded port");
}

#[test]
fn vm_kennel_panic_leads_to_emergency_mode() {
    let Some(b) = boot("panic", &["--panic"]) else {
        return;
    };
    assert_eq!(b.code, Some(0), "run.sh --panic failed:\n{}", b.out);
    b.assert_has("EMERGENCY");
    b.assert_not("Kernel panic");
    b.assert_not("Attempted to kill init");
    // Emergency mode still powers off when asked: run.sh types `kennel poweroff` into the
    // emergency shell (and only falls back to signals or `poweroff -f` if that fails).
    b.assert_has("reboot: Power down");
    b.assert_has("panic mode ended by: kennel poweroff (the guest powered off)");
}
