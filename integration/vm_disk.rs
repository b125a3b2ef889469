//! kennel as `/sbin/init` of a machine booted from its disk: `examples/vm/run-disk.sh`
//! builds a Debian 12 ext4 image (`examples/vm/disk.sh`: debootstrap, kennel as
//! `/sbin/init`, lighttpd, an `/etc/fstab` with a tmpfs, a second disk by `UUID=`, a bind
//! mount and a swap file) and boots it under qemu (TCG) with Debian's own kernel and
//! initramfs, `root=/dev/vda ro`. These tests read what the script prints: the serial
//! console, the guest's `CHECK NAME ok|FAIL` lines, the host's request to the daemon through
//! the forwarded port, the console login, and `e2fsck -fn` of the disks after the power-off.
//!
//! Two boots in all (each takes minutes under TCG): one `--check` boot shared by the tests
//! of a good boot (the first test to ask for it boots, the others wait and read the same
//! output), and one `--broken-fstab` boot. They run one at a time with the initramfs VMs
//! ([`crate::vm::VM`]). The rootfs's debootstrap is cached (`target/test-cache`).
//!
//! If this machine cannot run the VM (not root, qemu or debootstrap cannot be installed,
//! Debian's mirror cannot be reached: the script exits 77), the tests are skipped out loud
//! ([`skip`]); under CI that fails them.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use crate::harness::{skip, Missing};
use crate::podman_util::test_cache;

/// The repository's root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// Written straight to the test process's stderr, past libtest's capture.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// One run of `run-disk.sh`: stdout (the console, then the verdict) and stderr.
struct Boot {
    out: String,
    code: Option<i32>,
}

impl Boot {
    fn has(&self, s: &str) -> bool {
        self.out.contains(s)
    }

    fn assert_has(&self, s: &str) {
        assert!(self.has(s), "no {s:?} in the output:\n{}", self.out);
    }

    fn assert_not(&self, s: &str) {
        assert!(!self.has(s), "{s:?} in the output:\n{}", self.out);
    }

    /// Each of `names` has its `CHECK NAME ok` line (and no FAIL line).
    fn assert_checks_ok(&self, names: &[&str]) {
        let failed: Vec<&str> = self
            .out
            .lines()
            .filter(|l| names.iter().any(|n| l.contains(&format!("CHECK {n} FAIL"))))
            .collect();
        assert!(
            failed.is_empty(),
            "failed checks: {failed:#?}\n{}",
            self.out
        );
        for n in names {
            self.assert_has(&format!("CHECK {n} ok"));
        }
    }

    /// The kernel powered the machine off, and nothing panicked.
    fn assert_powered_off(&self) {
        self.assert_has("reboot: Power down");
        self.assert_not("Kernel panic");
        self.assert_not("Attempted to kill init");
    }
}

/// Runs `examples/vm/run-disk.sh ARGS`; `Err(why)` if this machine cannot run the VM.
fn run_disk(name: &str, args: &[&str]) -> Result<Boot, String> {
    let _one = crate::vm::VM.lock().unwrap_or_else(|e| e.into_inner());
    let repo = repo();
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(repo.join("examples/vm/run-disk.sh"))
        .args(args)
        .arg("--out")
        .arg(repo.join("target/vm-disk-test"))
        .env("KENNEL_VM_DISK_CACHE", test_cache())
        // TCG on a busy 2-CPU machine: a boot, the checks and the login take minutes.
        .env("KENNEL_VM_TIMEOUT", "900")
        .env_remove("KENNEL_VM_BINARY")
        .env_remove("KENNEL_VM_KVM")
        .current_dir(&repo)
        .stdin(Stdio::null())
        .output()
        .expect("run bash examples/vm/run-disk.sh");
    let took = started.elapsed().as_secs_f64();
    let mut out = String::from_utf8_lossy(&output.stdout).into_owned();
    out.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.code() == Some(77) {
        return Err(out
            .lines()
            .filter(|l| l.contains("SKIP"))
            .collect::<Vec<_>>()
            .join("; "));
    }
    let times: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("qemu start -> "))
        .collect();
    say(&format!(
        "vm_disk::{name}: {}; run-disk.sh took {took:.0}s (build included)",
        times.join("; ")
    ));
    Ok(Boot {
        out,
        code: output.status.code(),
    })
}

/// The `--check` boot, made once for all the tests that read it.
fn check_boot() -> Option<&'static Boot> {
    static BOOT: OnceLock<Result<Boot, String>> = OnceLock::new();
    match BOOT.get_or_init(|| run_disk("check", &["--check"])) {
        Ok(b) => Some(b),
        Err(why) => {
            skip(
                Missing::Provided,
                &format!("this machine cannot run the VM: {why}"),
            );
            None
        }
    }
}

#[test]
fn vm_disk_boots_read_only_root_and_powers_off_clean() {
    let Some(b) = check_boot() else {
        return;
    };
    // Debian's initramfs mounted the root read-only and ran kennel as /sbin/init.
    b.assert_has("root=/dev/vda ro ");
    b.assert_has("kennel: kennel ");
    b.assert_has("all units up in ");
    b.assert_checks_ok(&["lighttpd-local", "kennel-status"]);
    // `kennel poweroff` from the checks unit powered the machine off ...
    b.assert_has("checks: kennel poweroff");
    b.assert_powered_off();
    // ... and left both file systems clean: no journal to replay (run-disk.sh runs
    // `dumpe2fs -h` and `e2fsck -fn` on the boot's copies after qemu exited).
    b.assert_has("FS root.img: clean");
    b.assert_has("FS data.img: clean");
    b.assert_not("recovery complete");
    b.assert_not("INFO: recovery required");
}

#[test]
fn vm_disk_daemon_answers_through_the_forwarded_port() {
    let Some(b) = check_boot() else {
        return;
    };
    // The guest got its address from `ip=dhcp` (qemu's user network), and lighttpd
    // answered the host's request through hostfwd.
    b.assert_checks_ok(&["net-address"]);
    let line = b
        .out
        .lines()
        .find(|l| l.starts_with("qemu start -> daemon answers: "))
        .unwrap_or_else(|| panic!("no daemon timing line:\n{}", b.out));
    assert!(
        !line.contains("never"),
        "lighttpd never answered through the forwarded port:\n{}",
        b.out
    );
}

#[test]
fn vm_disk_root_is_checked_and_remounted_read_write() {
    let Some(b) = check_boot() else {
        return;
    };
    b.assert_checks_ok(&["root-rw", "root-uuid"]);
    // kennel said it checked the root (fsck) before remounting it.
    assert!(
        b.out
            .lines()
            .any(|l| l.starts_with("kennel: ") && l.contains("fsck") && l.contains("vda")),
        "no `kennel: ... fsck ... vda` line on the console:\n{}",
        b.out
    );
}

#[test]
fn vm_disk_fstab_entries_are_mounted() {
    let Some(b) = check_boot() else {
        return;
    };
    b.assert_checks_ok(&[
        "tmp-tmpfs",
        "tmp-mode",
        "data-by-uuid",
        "bind-shared",
        "swap",
        "kennel-mounts",
    ]);
}

#[test]
fn vm_disk_early_setup_sysctl_machine_id_hostname() {
    let Some(b) = check_boot() else {
        return;
    };
    b.assert_checks_ok(&["sysctl", "machine-id", "hostname"]);
}

#[test]
fn vm_disk_console_login_on_ttys0() {
    let Some(b) = check_boot() else {
        return;
    };
    b.assert_checks_ok(&["getty-ttyS0", "login"]);
    // What the command typed in the login shell printed: `LOGIN-$((6*7)) $(tty)`.
    b.assert_has("LOGIN-42 /dev/ttyS0");
}

#[test]
fn vm_disk_every_check_passes() {
    let Some(b) = check_boot() else {
        return;
    };
    // run-disk.sh's verdict: every check, the daemon, the login, clean file systems.
    assert_eq!(b.code, Some(0), "run-disk.sh --check failed:\n{}", b.out);
    b.assert_has("CHECKS DONE all ok");
}

#[test]
fn vm_disk_broken_fstab_line_gives_emergency_mode_naming_it() {
    let b = match run_disk("broken-fstab", &["--broken-fstab"]) {
        Ok(b) => b,
        Err(why) => {
            skip(
                Missing::Provided,
                &format!("this machine cannot run the VM: {why}"),
            );
            return;
        }
    };
    // The script checks for EMERGENCY with the line's UUID near it, and types
    // `kennel poweroff` into the emergency shell.
    assert_eq!(
        b.code,
        Some(0),
        "run-disk.sh --broken-fstab failed:\n{}",
        b.out
    );
    // kennel names the line: its number in the boot's fstab (disk.sh's comment and five
    // lines, then the broken one: line 7) or its mount point, and its source.
    let named = b.out.lines().any(|l| {
        l.contains("EMERGENCY")
            && l.contains("0badf00d")
            && (l.contains("/etc/fstab:7") || l.contains("/broken"))
    });
    assert!(
        named,
        "no EMERGENCY line naming the broken fstab line (/etc/fstab:7, UUID=0badf00d-...):\n{}",
        b.out
    );
    b.assert_has("EMERGENCY");
    b.assert_not("all units up");
    b.assert_powered_off();
}
