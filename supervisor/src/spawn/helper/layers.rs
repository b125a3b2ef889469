//! A container's directories on the host (`STATE/containers/NAME`), made ready by the
//! helper before it creates any namespace: the writable layer (`upper`, with overlayfs's
//! `work`), the init layer (`init`) and the mount point (`rootfs`).
//!
//! A start needs an empty writable layer (unless `persist`) and an init layer holding
//! exactly this start's files. Making them anew means creating inodes and deleting the old
//! ones, which some file systems make slow (docs/performance.md, "Why the start path looks
//! like this"). So a start keeps what the previous run left in the state this start
//! needs:
//!
//! - the writable layer, when that run wrote nothing that stayed: `upper` is empty and
//!   looks as a new directory does, and `work` holds only what overlayfs leaves there
//!   ([`keep_writable`]); the container cannot tell it from a new one. Only when the
//!   daemon knows that run's processes are all gone (the start plan's
//!   `Writable::KeepIfBlank`);
//! - the init layer, when it holds exactly this start's files and nothing else
//!   ([`init_layer_holds`]). It is only ever a read-only lower layer, so keeping it
//!   unchanged is safe even if the previous run's overlay still existed.
//!
//! Anything else is moved into [`TRASH`] in one rename (the daemon deletes it off the
//! start's critical path) and made anew.
//!
//! The overlay itself: the previous run's init hands the daemon a detached clone of its
//! overlay mount, which comes back with the next start's spec when the daemon knows that
//! run is gone and the overlay is made of what this start's would be
//! (`rootfs::overlay_key`). It is mounted as it is when its layers are all kept
//! (`reuse_writable`: an empty writable layer, or none; the init layer as this start
//! writes it); else this start makes a new writable layer, as that overlay holds it.
//!
//! Every file-system call goes through a [`Sys`] ([`prepare_dirs`] passes the real one,
//! [`LinuxSys`]); tests pass a recorder and assert which directories are made, kept,
//! moved into the trash and written.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::UtimensatFlags;
use nix::sys::time::TimeSpec;

use kennel_core::start::{Overlay, Writable};

use crate::spawn::spec::{ContainerSpec, SpawnFailure};
use crate::spawn::sys::{Kind, LinuxSys, Stat, Sys};

use super::rootfs::fail;

/// The directories of one container under `STATE/containers/NAME`.
pub struct Dirs {
    /// `STATE/containers/NAME` itself, which holds the trash.
    pub dir: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub init: PathBuf,
    pub rootfs: PathBuf,
    /// The overlay a previous run handed back, to mount as it is ([`prepare_dirs`]).
    pub overlay: Option<OwnedFd>,
    /// One it handed back that this start does not mount, to close once the service runs.
    pub declined: Option<OwnedFd>,
}

impl Dirs {
    pub fn new(dir: &Path) -> Dirs {
        Dirs {
            dir: dir.to_path_buf(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            init: dir.join("init"),
            rootfs: dir.join("rootfs"),
            overlay: None,
            declined: None,
        }
    }
}

/// Where [`prepare_dirs`] moves the previous run's writable and init layers, under the
/// container's directory, when it cannot keep them (and overlayfs's scratch directory of
/// a writable layer it keeps: [`clear_workdir`]); the daemon deletes what is there off the
/// start's critical path.
pub const TRASH: &str = ".trash";

/// The name (before `-PID-NANOS`) in the trash of overlayfs's scratch directory `work/work`
/// of a kept writable layer ([`clear_workdir`]); the others are `upper`, `work`, `init`.
pub const SCRATCH: &str = "scratch";

/// Moves `p` into `TRASH` as `LABEL-PID-NANOS` (one rename: deleting a layer can take tens
/// of milliseconds, most of it waiting for the disk); if that fails, deletes it here. (The
/// PID of a helper forked into its pid namespace is 1: the time makes the name unique.)
fn discard(sys: &dyn Sys, dir: &Path, p: &Path, label: &str) -> Result<(), SpawnFailure> {
    if sys.lstat(p).is_err() {
        return Ok(());
    }
    let trash = dir.join(TRASH);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos());
    let aside = trash.join(format!("{label}-{}-{nanos}", std::process::id()));
    if sys.create_dir_all(&trash).is_ok() && sys.rename(p, &aside).is_ok() {
        return Ok(());
    }
    match sys.remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fail("remove old writable layer", p, e)),
    }
}

/// On the host side: an empty writable layer (unless `persist`), the init layer with this
/// start's files, and the mount point; each kept from the previous run where it already
/// is what this start needs and the start plan allows it (`ContainerPlan::writable`; see
/// the module's doc). `held`: the overlay the previous run handed back (`Overlay::Held`),
/// returned in `Dirs::overlay` when its layers are all kept, for
/// [`super::rootfs::build`] to mount.
pub fn prepare_dirs(c: &ContainerSpec, held: Option<OwnedFd>) -> Result<Dirs, SpawnFailure> {
    prepare_dirs_with(&LinuxSys, c, held)
}

/// [`prepare_dirs`], making its file-system calls through `sys`.
pub fn prepare_dirs_with(
    sys: &dyn Sys,
    c: &ContainerSpec,
    held: Option<OwnedFd>,
) -> Result<Dirs, SpawnFailure> {
    let mut d = Dirs::new(&c.dir);
    let made = Made::here(sys);
    let mkdir = |p: &Path| {
        sys.create_dir_all(p)
            .map_err(|e| fail("create directory", p, e))
    };
    let reset = |p: &Path, label| discard(sys, &c.dir, p, label);
    let init_kept = init_layer_holds(sys, &d.init, &c.init_files, &made);
    // An overlay the plan passes but that did not come still holds the writable layer: as
    // if that run were not known to be gone.
    let writable = match (c.plan.writable, c.plan.overlay, &held) {
        (Writable::KeepIfBlank, Overlay::Held, None) => Writable::New,
        (w, _, _) => w,
    };
    let read_only = writable == Writable::None;
    if let Some(held) = held {
        let writable_kept = match writable {
            Writable::None => true,
            Writable::KeepIfBlank => reuse_writable(sys, &d, &made),
            Writable::Persist | Writable::New => false,
        };
        if init_kept && writable_kept && sound_overlay(&held) {
            d.overlay = Some(held);
        } else {
            // Closed later, off the start's path: the last reference to a detached mount
            // unmounts it, waiting for an RCU grace period.
            d.declined = Some(held);
        }
        if d.overlay.is_none() && !read_only {
            // That overlay still holds the writable layer (overlayfs marks its upper and
            // work directories in use): a new overlay gets a new one.
            reset(&d.upper, "upper")?;
            reset(&d.work, "work")?;
        }
    } else if !read_only {
        let keep = match writable {
            // A layer a non-persistent run left (overlayfs's `volatile` mark is in its
            // work directory, and overlayfs refuses to mount over it) was never meant to
            // be kept: a unit switched to `persist = true` starts a new one.
            Writable::Persist => sys.stat(&d.work.join("work/incompat/volatile")).is_err(),
            // Kept from a run that left it empty only when the daemon knows that run's
            // processes are all gone (the plan says so): one of them could still write
            // into `upper` through its overlay.
            Writable::KeepIfBlank => keep_writable(sys, &d, &made),
            Writable::New | Writable::None => false,
        };
        if !keep {
            reset(&d.upper, "upper")?;
            reset(&d.work, "work")?;
        }
    }
    if !read_only {
        mkdir(&d.upper)?;
        mkdir(&d.work)?;
    }
    if !init_kept {
        reset(&d.init, "init")?;
        for (path, content) in &c.init_files {
            let rel = path.strip_prefix("/").unwrap_or(path);
            let host = d.init.join(rel);
            if let Some(parent) = host.parent() {
                mkdir(parent)?;
            }
            sys.write(&host, content.as_bytes())
                .map_err(|e| fail("write init layer file", &host, e))?;
            let _ = sys.chmod(&host, 0o644);
        }
    }
    mkdir(&d.init)?;
    mkdir(&d.rootfs)?;
    for layer in &c.layers {
        if sys.stat(layer).map_or(true, |k| k != Kind::Dir) {
            return Err(fail("open layer", layer, "not a directory"));
        }
    }
    Ok(d)
}

/// What a directory this process makes looks like: its owner, and the mode its umask
/// leaves of 0777.
struct Made {
    uid: u32,
    gid: u32,
    dir_mode: u32,
}

impl Made {
    fn here(sys: &dyn Sys) -> Made {
        let mask = sys.umask();
        let (uid, gid) = sys.effective_ids();
        Made {
            uid,
            gid,
            dir_mode: 0o777 & !mask.bits(),
        }
    }

    fn owns(&self, m: &Stat) -> bool {
        m.uid == self.uid && m.gid == self.gid
    }

    /// `m` is a directory (not a symlink to one) as this process would make it.
    fn dir_like(&self, m: &Stat) -> bool {
        m.kind == Kind::Dir && self.owns(m) && m.mode == self.dir_mode
    }
}

/// Keeps the writable layer the previous run left, made ready for the next mount: true if
/// `upper` is blank ([`blank_upper`]) and `work` could be emptied ([`clear_workdir`]);
/// then `upper` is stripped of overlayfs's attributes and its times are set to now, and
/// the container cannot tell it from a new directory (only its inode number and birth
/// time differ, as they differ between any two new directories). False if anything is
/// unexpected: the caller then discards both directories.
fn keep_writable(sys: &dyn Sys, d: &Dirs, made: &Made) -> bool {
    let Some(overlay_xattrs) = blank_upper(sys, &d.upper, made) else {
        return false;
    };
    if !clear_workdir(sys, &d.dir, &d.work) {
        return false;
    }
    // overlayfs keeps its instance's uuid on the upper root (`trusted.overlay.uuid`, Linux
    // 6.6+), made at a first mount and read back at the next ones; the container sees it
    // as the fsid in statfs(2). Removed, this mount makes a new one, as on a new layer.
    if !overlay_xattrs
        .iter()
        .all(|name| remove_xattr(sys, &d.upper, name))
    {
        return false;
    }
    times_now(sys, &d.upper)
}

/// Sets `upper`'s times to now, as a new directory's: they are `/`'s in the container.
fn times_now(sys: &dyn Sys, upper: &Path) -> bool {
    sys.utimensat(
        upper,
        &TimeSpec::UTIME_NOW,
        &TimeSpec::UTIME_NOW,
        UtimensatFlags::NoFollowSymlink,
    )
    .is_ok()
}

/// Whether the writable layer under an overlay the previous run handed back can go on
/// as it is: `upper` is blank ([`blank_upper`]; overlayfs's own attributes are that
/// overlay's, which stays the same instance), and its times are set to now, so that `/`
/// looks as new as in [`keep_writable`]. `work` is that overlay's and is left alone.
fn reuse_writable(sys: &dyn Sys, d: &Dirs, made: &Made) -> bool {
    blank_upper(sys, &d.upper, made).is_some() && times_now(sys, &d.upper)
}

/// Whether `held` (a detached mount the daemon passed) is an overlay whose upper file
/// system has not failed a write since it was mounted: a `volatile` overlay then fails
/// every later sync for good (overlayfs.rst), which a new instance would not.
fn sound_overlay(held: &OwnedFd) -> bool {
    use std::os::fd::{AsRawFd, FromRawFd};
    const OVERLAYFS_SUPER_MAGIC: libc::c_long = 0x794c_7630;
    // SAFETY: openat on a descriptor we own with a NUL-terminated path.
    let fd = unsafe {
        libc::openat(
            held.as_raw_fd(),
            c".".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    let root = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fstatfs writes into a zeroed, correctly sized buffer.
    let kind = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        (libc::fstatfs(root.as_raw_fd(), &mut st) == 0).then_some(st.f_type as libc::c_long)
    };
    // SAFETY: syncfs on a descriptor we own (no I/O for a volatile overlay: it reports the
    // error state).
    kind == Some(OVERLAYFS_SUPER_MAGIC) && unsafe { libc::syncfs(root.as_raw_fd()) } == 0
}

/// If `upper` is an empty directory as this process makes them, whose only extended
/// attributes are overlayfs's own (`trusted.overlay.*`): the names of those. The
/// container sees this directory's owner, mode, times and attributes as its `/`'s: a
/// `chmod`, `chown` or `setfattr` of `/` lands here, and then it is not blank.
fn blank_upper(sys: &dyn Sys, upper: &Path, made: &Made) -> Option<Vec<CString>> {
    let meta = sys.lstat(upper).ok()?;
    if !made.dir_like(&meta) || !sys.is_empty_dir(upper).ok()? {
        return None;
    }
    let names = xattr_names(sys, upper)?;
    names
        .iter()
        .all(|n| n.as_bytes().starts_with(b"trusted.overlay."))
        .then_some(names)
}

/// Clears overlayfs's work directory of what a mount leaves there: its own `work`
/// directory, which after a `volatile` mount holds `incompat/volatile/dirty`. overlayfs
/// refuses to mount at all over `incompat/volatile` ("overlay with incompat feature
/// 'volatile' cannot be mounted", so that a writable layer whose unsynced writes a crash
/// may have lost is not used again); the kernel's docs allow removing it where the upper
/// layer is known intact, and here the upper layer is empty, which is a valid new layer
/// whatever happened before. The rest of `work/work` is overlayfs's scratch space, which
/// a mount empties anyway. It goes into the trash in one rename: deleting its directories
/// frees their blocks, which on a file system mounted with `discard` is a synchronous
/// discard each, on the start's path (docs/performance.md). True if `work` is then empty;
/// false if anything else is there (an `index` directory of `index=on`, a symlink).
fn clear_workdir(sys: &dyn Sys, dir: &Path, work: &Path) -> bool {
    if !sys.lstat(work).is_ok_and(|m| m.kind == Kind::Dir) {
        return false;
    }
    let scratch = work.join("work");
    match sys.lstat(&scratch) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Ok(m) if m.kind == Kind::Dir => {
            if discard(sys, dir, &scratch, SCRATCH).is_err() {
                return false;
            }
        }
        _ => return false,
    }
    sys.is_empty_dir(work).unwrap_or(false)
}

/// The names of `path`'s extended attributes (not following a symlink), or None if they
/// cannot be read or take more than 4 KiB (far more than overlayfs's own).
fn xattr_names(sys: &dyn Sys, path: &Path) -> Option<Vec<CString>> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = match sys.llistxattr(&c, &mut buf) {
        Ok(n) => n,
        // A file system without extended attributes has none.
        Err(Errno::EOPNOTSUPP) => 0,
        Err(_) => return None,
    };
    buf.truncate(n);
    buf.split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| CString::new(name).ok())
        .collect()
}

fn remove_xattr(sys: &dyn Sys, path: &Path, name: &CString) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    matches!(sys.lremovexattr(&c, name), Ok(()) | Err(Errno::ENODATA))
}

/// The init layer's entries, by path relative to it: each file's content, and each
/// directory its files need (None). None if a path is not a plain absolute or relative
/// one (no `..`), which is then never taken as matching.
fn init_entries(files: &[(PathBuf, String)]) -> Option<BTreeMap<PathBuf, Option<&str>>> {
    let mut want = BTreeMap::new();
    for (path, content) in files {
        let rel = path.strip_prefix("/").unwrap_or(path);
        let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if rel.as_os_str().is_empty() || !plain {
            return None;
        }
        let mut parent = rel.parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            want.insert(p.to_path_buf(), None);
            parent = p.parent();
        }
        want.insert(rel.to_path_buf(), Some(content.as_str()));
    }
    Some(want)
}

/// Whether `init` holds exactly `files` as [`prepare_dirs`] writes them: each file with
/// its content, mode 0644 and this process's owner, the directories they need as this
/// process makes them, and nothing else anywhere under it.
fn init_layer_holds(sys: &dyn Sys, init: &Path, files: &[(PathBuf, String)], made: &Made) -> bool {
    let Some(want) = init_entries(files) else {
        return false;
    };
    if !sys.lstat(init).is_ok_and(|m| made.dir_like(&m)) {
        return false;
    }
    let mut seen = 0;
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        let Ok(names) = sys.read_dir(&init.join(&dir)) else {
            return false;
        };
        for name in names {
            let path = init.join(&dir).join(&name);
            // Of the entry itself, not following a symlink.
            let Ok(meta) = sys.lstat(&path) else {
                return false;
            };
            let rel = dir.join(&name);
            match want.get(&rel) {
                Some(None) if made.dir_like(&meta) => dirs.push(rel),
                Some(Some(content))
                    if meta.kind == Kind::File
                        && made.owns(&meta)
                        && meta.mode == 0o644
                        && meta.len == content.len() as u64
                        && sys.read(&path).is_ok_and(|b| b == content.as_bytes()) => {}
                _ => return false,
            }
            seen += 1;
        }
    }
    seen == want.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::utimensat;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
    }

    /// How this test process makes directories (without touching its umask, which other
    /// tests' threads share): as `dir` was made.
    fn made_as(dir: &Path) -> Made {
        let m = fs::metadata(dir).unwrap_or_else(|e| panic!("stat {}: {e}", dir.display()));
        Made {
            uid: m.uid(),
            gid: m.gid(),
            dir_mode: m.mode() & 0o7777,
        }
    }

    fn files() -> Vec<(PathBuf, String)> {
        vec![
            ("/etc/hostname".into(), "web\n".into()),
            ("/etc/hosts".into(), "127.0.0.1\tlocalhost\n".into()),
            ("/etc/resolv.conf".into(), "nameserver 192.0.2.53\n".into()),
        ]
    }

    /// Writes `files` into `init` as prepare_dirs does.
    fn write(init: &Path, files: &[(PathBuf, String)]) {
        for (path, content) in files {
            let host = init.join(path.strip_prefix("/").unwrap_or(path));
            if let Some(parent) = host.parent() {
                fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
            }
            fs::write(&host, content).unwrap_or_else(|e| panic!("write: {e}"));
            fs::set_permissions(&host, fs::Permissions::from_mode(0o644))
                .unwrap_or_else(|e| panic!("chmod: {e}"));
        }
    }

    #[test]
    fn init_entries_are_the_files_and_the_directories_they_need() {
        let files = files();
        let want = init_entries(&files).unwrap_or_default();
        let got: Vec<(String, Option<&str>)> = want
            .iter()
            .map(|(p, c)| (p.display().to_string(), *c))
            .collect();
        assert_eq!(
            got,
            [
                ("etc".to_string(), None),
                ("etc/hostname".to_string(), Some("web\n")),
                ("etc/hosts".to_string(), Some("127.0.0.1\tlocalhost\n")),
                (
                    "etc/resolv.conf".to_string(),
                    Some("nameserver 192.0.2.53\n")
                ),
            ]
        );
        let deep = [("/a/b/c".into(), "x".into())];
        let deep = init_entries(&deep).unwrap_or_default();
        assert_eq!(deep.len(), 3);
        assert_eq!(deep.get(Path::new("a/b")), Some(&None));
        assert!(init_entries(&[("/etc/../x".into(), String::new())]).is_none());
        assert!(init_entries(&[("/".into(), String::new())]).is_none());
        assert_eq!(init_entries(&[]).map(|w| w.len()), Some(0));
    }

    #[test]
    fn an_init_layer_holds_exactly_its_files_or_is_rewritten() {
        let dir = tempdir();
        let init = dir.path().join("init");
        fs::create_dir(&init).unwrap_or_else(|e| panic!("mkdir: {e}"));
        let made = made_as(&init);
        assert!(
            !init_layer_holds(&LinuxSys, &init, &files(), &made),
            "empty"
        );
        write(&init, &files());
        assert!(init_layer_holds(&LinuxSys, &init, &files(), &made));
        assert!(!init_layer_holds(
            &LinuxSys,
            &dir.path().join("none"),
            &files(),
            &made
        ));

        // Other content, even of the same length.
        let mut other = files();
        other[0].1 = "api\n".into();
        assert!(!init_layer_holds(&LinuxSys, &init, &other, &made));
        // A file fewer expected, or one more.
        assert!(!init_layer_holds(&LinuxSys, &init, &files()[..2], &made));
        let mut more = files();
        more.push(("/etc/extra".into(), String::new()));
        assert!(!init_layer_holds(&LinuxSys, &init, &more, &made));

        let hostname = init.join("etc/hostname");
        let check = |what: &str, expect: bool| {
            assert_eq!(
                init_layer_holds(&LinuxSys, &init, &files(), &made),
                expect,
                "{what}"
            );
        };
        fs::set_permissions(&hostname, fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
        check("mode 0600", false);
        fs::set_permissions(&hostname, fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
        check("mode back to 0644", true);

        for extra in ["stray", "etc/stray"] {
            let p = init.join(extra);
            fs::write(&p, "").unwrap_or_else(|e| panic!("write: {e}"));
            check(extra, false);
            fs::remove_file(&p).unwrap_or_else(|e| panic!("rm: {e}"));
        }
        let empty = init.join("etc/empty.d");
        fs::create_dir(&empty).unwrap_or_else(|e| panic!("mkdir: {e}"));
        check("an extra empty directory", false);
        fs::remove_dir(&empty).unwrap_or_else(|e| panic!("rmdir: {e}"));
        check("as written", true);

        // A symlink to a file with the right content is not that file.
        let real = dir.path().join("hostname");
        fs::write(&real, "web\n").unwrap_or_else(|e| panic!("write: {e}"));
        fs::remove_file(&hostname).unwrap_or_else(|e| panic!("rm: {e}"));
        std::os::unix::fs::symlink(&real, &hostname).unwrap_or_else(|e| panic!("ln: {e}"));
        check("a symlink", false);

        // Another mode for directories than this process makes.
        let strict = Made {
            dir_mode: made.dir_mode ^ 0o020,
            ..made
        };
        fs::remove_file(&hostname).unwrap_or_else(|e| panic!("rm: {e}"));
        write(&init, &files());
        assert!(init_layer_holds(&LinuxSys, &init, &files(), &made));
        assert!(!init_layer_holds(&LinuxSys, &init, &files(), &strict));
    }

    /// A container directory as a run that wrote nothing leaves it after a volatile mount.
    fn left_by_a_run(dir: &Path) -> Dirs {
        let d = Dirs::new(dir);
        for p in [&d.upper, &d.work.join("work/incompat/volatile")] {
            fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        }
        fs::write(d.work.join("work/incompat/volatile/dirty"), "")
            .unwrap_or_else(|e| panic!("write dirty: {e}"));
        d
    }

    #[test]
    fn an_empty_writable_layer_is_kept_and_its_work_directory_emptied() {
        let dir = tempdir();
        let d = left_by_a_run(dir.path());
        let made = made_as(&d.upper);
        // A run that made and removed a file in `/` left upper's times behind.
        let old = TimeSpec::new(1_000_000_000, 0);
        utimensat(None, &d.upper, &old, &old, UtimensatFlags::NoFollowSymlink)
            .unwrap_or_else(|e| panic!("utimensat: {e}"));
        assert!(keep_writable(&LinuxSys, &d, &made));
        let mtime = fs::symlink_metadata(&d.upper).map_or(0, |m| m.mtime());
        assert!(mtime > 1_000_000_000, "upper's times were left: {mtime}");
        let left: Vec<_> = fs::read_dir(&d.work)
            .map(|e| e.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in work: {left:?}");
        assert!(d.upper.is_dir());
        // overlayfs's scratch directory was moved into the trash, not deleted here.
        let trashed = trashed(&d);
        assert_eq!(trashed.len(), 1, "{trashed:?}");
        assert!(trashed[0].join("incompat/volatile/dirty").is_file());
        // Kept again: nothing to remove is fine too.
        assert!(keep_writable(&LinuxSys, &d, &made));
    }

    /// What is in the trash of the container directory `d`.
    fn trashed(d: &Dirs) -> Vec<PathBuf> {
        fs::read_dir(d.dir.join(TRASH))
            .map(|e| e.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    /// overlayfs's scratch directory goes into the trash whatever it holds: a mount
    /// would empty it anyway, and the upper layer (checked blank) is what the container
    /// sees.
    #[test]
    fn whatever_overlayfs_left_in_its_scratch_directory_goes_to_the_trash() {
        let dir = tempdir();
        let d = left_by_a_run(dir.path());
        let made = made_as(&d.upper);
        fs::write(d.work.join("work/#12"), "half a copy-up")
            .unwrap_or_else(|e| panic!("write: {e}"));
        fs::write(d.work.join("work/incompat/volatile/dirty"), "x")
            .unwrap_or_else(|e| panic!("write: {e}"));
        assert!(keep_writable(&LinuxSys, &d, &made));
        assert!(!d.work.join("work").exists());
        let trashed = trashed(&d);
        assert_eq!(trashed.len(), 1, "{trashed:?}");
        assert!(trashed[0].join("#12").is_file());
    }

    #[test]
    fn a_writable_layer_is_not_kept_when_anything_is_unexpected() {
        type Spoil = fn(&Dirs);
        let cases: [(&str, Spoil); 6] = [
            ("a file in upper", |d| {
                let _ = fs::write(d.upper.join("marker"), "");
            }),
            ("an empty directory in upper", |d| {
                let _ = fs::create_dir(d.upper.join("gone"));
            }),
            ("upper's mode changed", |d| {
                let _ = fs::set_permissions(&d.upper, fs::Permissions::from_mode(0o700));
            }),
            ("an attribute on upper", |d| {
                let (p, n) = (
                    CString::new(d.upper.as_os_str().as_bytes()).unwrap_or_default(),
                    c"user.kennel-test",
                );
                // SAFETY: valid C strings and a one-byte value.
                let rc =
                    unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
                assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
            }),
            ("an index directory in work", |d| {
                let _ = fs::create_dir(d.work.join("index"));
            }),
            ("work/work is a symlink", |d| {
                let _ = fs::remove_dir_all(d.work.join("work"));
                let _ = std::os::unix::fs::symlink(&d.upper, d.work.join("work"));
            }),
        ];
        for (what, spoil) in cases {
            let dir = tempdir();
            let d = left_by_a_run(dir.path());
            let made = made_as(&d.upper);
            spoil(&d);
            assert!(!keep_writable(&LinuxSys, &d, &made), "{what}");
        }
        let dir = tempdir();
        let d = Dirs::new(dir.path());
        assert!(
            !keep_writable(&LinuxSys, &d, &made_as(dir.path())),
            "no upper"
        );
        fs::create_dir(&d.upper).unwrap_or_else(|e| panic!("mkdir: {e}"));
        assert!(!keep_writable(&LinuxSys, &d, &made_as(&d.upper)), "no work");
    }

    /// overlayfs's own attributes on the upper root are removed, so that the next mount
    /// makes a new instance uuid as on a new layer. trusted.* needs CAP_SYS_ADMIN (tests
    /// run as root, as in CI).
    #[test]
    fn overlayfs_attributes_on_a_kept_upper_are_removed() {
        let dir = tempdir();
        let d = left_by_a_run(dir.path());
        let made = made_as(&d.upper);
        let p = CString::new(d.upper.as_os_str().as_bytes()).unwrap_or_default();
        let uuid = [7u8; 16];
        // SAFETY: valid C strings and a 16-byte value.
        let rc = unsafe {
            libc::lsetxattr(
                p.as_ptr(),
                c"trusted.overlay.uuid".as_ptr(),
                uuid.as_ptr().cast(),
                uuid.len(),
                0,
            )
        };
        assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
        assert_eq!(xattr_names(&LinuxSys, &d.upper).map(|n| n.len()), Some(1));
        assert!(keep_writable(&LinuxSys, &d, &made));
        assert_eq!(xattr_names(&LinuxSys, &d.upper), Some(Vec::new()));
    }
}

#[cfg(test)]
mod recorded;
