//! Root filesystem tars for the podman tests, made in the test: busybox-static and the
//! static kennel alone (no libc at all), and a debootstrapped Debian 12 (glibc) with the
//! static kennel added. The Debian rootfs takes about a minute to debootstrap, so its tar
//! is built once and cached under the cargo target directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{skip, Missing};
use crate::podman_util::{run, test_cache};

/// Where the cached Debian rootfs tar is, under the target directory.
const DEBIAN_TAR: &str = "debian-bookworm-minbase.tar";

/// The mirror this machine installs from (/etc/apt/sources.list.d/debian.sources).
const MIRROR: &str = "http://deb.debian.org/debian";

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

/// Put the static kennel (stripped) at `root/REL` and the unit files at
/// `root/etc/kennel/units/NAME.toml`.
fn add_kennel(root: &Path, kennel: &Path, rel: &str, units: &[(&str, &str)]) {
    let dest = root.join(rel);
    fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
    run(
        "strip",
        &[
            "-o",
            &dest.display().to_string(),
            &kennel.display().to_string(),
        ],
    );
    for (name, toml) in units {
        write(&root.join(format!("etc/kennel/units/{name}.toml")), toml);
    }
}

/// `DIR/busybox.tar`: [`busybox_root`] with the static kennel as `/bin/kennel` and the
/// units. No libc: the test asserts it.
pub fn busybox_tar(dir: &Path, kennel: &Path, units: &[(&str, &str)]) -> PathBuf {
    let root = busybox_root(dir);
    add_kennel(&root, kennel, "bin/kennel", units);
    let tar = dir.join("busybox.tar");
    tar_dir(&root, &tar);
    tar
}

/// `DIR/busybox-root`: busybox-static with its applets as symlinks, `/etc/passwd` and
/// `/etc/group` (root and nobody), `/tmp`.
pub fn busybox_root(dir: &Path) -> PathBuf {
    let root = dir.join("busybox-root");
    fs::create_dir_all(root.join("bin")).expect("mkdir bin");
    fs::copy("/bin/busybox", root.join("bin/busybox")).expect("copy busybox");
    for applet in [
        "sh", "httpd", "sleep", "cat", "echo", "ls", "ps", "head", "tr", "setsid", "wget", "id",
        "cut", "tty", "grep", "touch",
    ] {
        symlink("busybox", root.join("bin").join(applet)).expect("symlink applet");
    }
    write(
        &root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    write(&root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n");
    fs::create_dir_all(root.join("tmp")).expect("mkdir tmp");
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod");
    root
}

/// The names in a tar.
pub fn tar_names(tar: &Path) -> Vec<String> {
    run("tar", &["-tf", &tar.display().to_string()])
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect()
}

/// `DIR/debian.tar`: the cached Debian rootfs with the static kennel as
/// `/usr/local/bin/kennel` and the units appended (`/bin` is a symlink to `usr/bin` in
/// Debian 12, so nothing is added through it). `None` after a skip when the rootfs cannot
/// be built here.
pub fn debian_tar(dir: &Path, kennel: &Path, units: &[(&str, &str)]) -> Option<PathBuf> {
    let base = cached_debian()?;
    let tar = dir.join("debian.tar");
    fs::copy(&base, &tar).expect("copy the Debian tar");
    let extra = dir.join("debian-extra");
    add_kennel(&extra, kennel, "usr/local/bin/kennel", units);
    run(
        "tar",
        &[
            "-C",
            &extra.display().to_string(),
            "--numeric-owner",
            "-rf",
            &tar.display().to_string(),
            "./usr/local/bin/kennel",
            "./etc/kennel",
        ],
    );
    Some(tar)
}

/// The cached `debootstrap --variant=minbase bookworm` tar.
fn cached_debian() -> Option<PathBuf> {
    cached_debootstrap(DEBIAN_TAR, &[])
}

/// The cached tar `NAME` (under the target directory) of `debootstrap --variant=minbase
/// [--include=PACKAGES] bookworm`, built (under a lock, so that tests running at once
/// build it once) if missing. `None` (the test skipped, loudly) if debootstrap is missing
/// or fails.
pub fn cached_debootstrap(name: &str, include: &[&str]) -> Option<PathBuf> {
    let cache = test_cache();
    fs::create_dir_all(&cache).expect("mkdir test-cache");
    let tar = cache.join(name);
    let lock = fs::File::create(cache.join(format!("{name}.lock"))).expect("lock file");
    // SAFETY: flock on a descriptor we own; released when `lock` is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        panic!("flock: {}", std::io::Error::last_os_error());
    }
    if tar.is_file() {
        return Some(tar);
    }
    if Command::new("debootstrap")
        .arg("--version")
        .output()
        .is_err()
    {
        skip(
            Missing::Provided,
            "debootstrap is not installed (apt-get install debootstrap)",
        );
        return None;
    }
    let root = cache.join(format!("{name}.tmp"));
    if root.exists() {
        run(
            "rm",
            &["-rf", "--one-file-system", &root.display().to_string()],
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "debootstrap of Debian 12 into {} (once; cached as {})",
        root.display(),
        tar.display()
    );
    let mut cmd = Command::new("debootstrap");
    cmd.arg("--variant=minbase");
    if !include.is_empty() {
        cmd.arg(format!("--include={}", include.join(",")));
    }
    let out = cmd
        .arg("bookworm")
        .arg(&root)
        .arg(MIRROR)
        .output()
        .expect("run debootstrap");
    if !out.status.success() {
        let _ = fs::remove_dir_all(&root);
        skip(
            Missing::Provided,
            &format!(
                "debootstrap from {MIRROR} failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
        );
        return None;
    }
    let partial = cache.join(format!("{name}.partial"));
    tar_dir(&root, &partial);
    fs::rename(&partial, &tar).expect("rename the Debian tar");
    run(
        "rm",
        &["-rf", "--one-file-system", &root.display().to_string()],
    );
    Some(tar)
}

/// `tar` of everything in `root`, with numeric owners (an image's files are root's).
pub fn tar_dir(root: &Path, tar: &Path) {
    run(
        "tar",
        &[
            "-C",
            &root.display().to_string(),
            "--numeric-owner",
            "-cf",
            &tar.display().to_string(),
            ".",
        ],
    );
}
