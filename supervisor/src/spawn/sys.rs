//! The system calls the helper builds a container's filesystem with, behind one trait.
//!
//! [`Sys`] is the narrow interface between the spawn code that decides *which* calls to
//! make (layers.rs, rootfs.rs, the mount parts of userns.rs) and the kernel: mounts and
//! the new mount API, `pivot_root`, device nodes, the files and directories of mount
//! targets and of the writable and init layers, their attributes and times, the
//! file-system ids. [`LinuxSys`] makes each call exactly as the code made it before the
//! trait existed, and is the only implementation the binary uses: callers pass it
//! explicitly (`rootfs::build` is `build_with(&LinuxSys, ..)`), nothing is chosen by
//! `cfg!(test)`. The unit tests pass a [`recorder::Recorder`] instead, which writes every
//! call down as a typed [`recorder::Call`] and answers from a small scripted model of the
//! file tree and a table of failures, so that the order and arguments of a start's calls
//! are asserted without root.
//!
//! What only reads (`lstat`, `stat`, `statvfs`, reading mountinfo, the permitted
//! capabilities) is answered, not recorded; everything that changes the system is recorded.

use std::ffi::{CStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use caps::errors::CapsError;
use caps::{CapSet, CapsHashSet};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::statvfs::FsFlags;
use nix::sys::time::TimeSpec;

#[cfg(test)]
pub mod recorder;

/// What a path is, as far as the spawn code asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    /// A device node, a socket, a fifo.
    Other,
}

/// What `lstat` tells of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    /// The permission bits with setuid, setgid and sticky (`& 0o7777`).
    pub mode: u32,
    pub len: u64,
}

impl Stat {
    fn of(m: &fs::Metadata) -> Stat {
        Stat {
            kind: Kind::of(m.file_type()),
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
            len: m.len(),
        }
    }
}

impl Kind {
    fn of(t: fs::FileType) -> Kind {
        if t.is_dir() {
            Kind::Dir
        } else if t.is_symlink() {
            Kind::Symlink
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Other
        }
    }
}

/// The system calls of building a container's filesystem. Errors are what the real call
/// returns: an [`Errno`] for what nix or a raw system call reports, an [`io::Error`] for
/// what `std::fs` reports (their messages differ, and the helper's messages are kept).
pub trait Sys {
    /// mount(2).
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno>;
    /// umount2(2).
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno>;
    /// mount_setattr(2): set and clear the properties of `attr` on the mount at `path`
    /// under `dirfd` (with `AT_EMPTY_PATH` and an empty path: the mount `dirfd` is), with
    /// `AT_RECURSIVE` also on every mount under it. Linux 5.12.
    fn mount_setattr(
        &self,
        dirfd: RawFd,
        path: &CStr,
        flags: libc::c_int,
        attr: &libc::mount_attr,
    ) -> Result<(), Errno>;
    /// open_tree(2): a descriptor of the mount at `path` (a detached copy with
    /// `OPEN_TREE_CLONE`). Linux 5.2.
    fn open_tree(&self, dirfd: RawFd, path: &CStr, flags: libc::c_uint) -> Result<OwnedFd, Errno>;
    /// move_mount(2): attach the mount `from` (with `MOVE_MOUNT_F_EMPTY_PATH` and an
    /// empty path: the descriptor itself) at `to`. Linux 5.2.
    fn move_mount(
        &self,
        from_dirfd: RawFd,
        from_path: &CStr,
        to_dirfd: RawFd,
        to_path: &CStr,
        flags: libc::c_uint,
    ) -> Result<(), Errno>;
    /// pivot_root(2).
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno>;
    /// chroot(2).
    fn chroot(&self, path: &Path) -> Result<(), Errno>;
    /// chdir(2).
    fn chdir(&self, path: &Path) -> Result<(), Errno>;
    /// mknod(2).
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: libc::dev_t) -> Result<(), Errno>;

    /// `fs::create_dir`.
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    /// `fs::remove_dir`.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// `fs::write`.
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// A symlink at `at` pointing to `to`.
    fn symlink(&self, to: &Path, at: &Path) -> io::Result<()>;
    /// `fs::set_permissions` with these mode bits.
    fn chmod(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// `fs::create_dir_all`.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// `fs::rename`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// `fs::remove_dir_all`.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// lremovexattr(2).
    fn lremovexattr(&self, path: &CStr, name: &CStr) -> Result<(), Errno>;
    /// utimensat(2) relative to the working directory.
    fn utimensat(
        &self,
        path: &Path,
        atime: &TimeSpec,
        mtime: &TimeSpec,
        flags: UtimensatFlags,
    ) -> Result<(), Errno>;

    /// What `path` is, not following a last symlink.
    fn lstat(&self, path: &Path) -> io::Result<Stat>;
    /// What `path` is, following symlinks.
    fn stat(&self, path: &Path) -> io::Result<Kind>;
    /// `fs::canonicalize`.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// `fs::read_to_string` (of `/proc/self/mountinfo`).
    fn read_to_string(&self, path: &Path) -> io::Result<String>;
    /// The mount flags of the file system at `path` (statvfs(3)).
    fn statvfs(&self, path: &Path) -> Result<FsFlags, Errno>;
    /// `fs::read`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The names in the directory `path`; an error if any entry cannot be read.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;
    /// Whether the directory `path` has no entry (reads one at most).
    fn is_empty_dir(&self, path: &Path) -> io::Result<bool>;
    /// llistxattr(2): `path`'s attribute names, NUL-terminated, into `buf`; their length.
    fn llistxattr(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno>;
    /// This process's umask (read by setting it, and setting it back at once: the
    /// helper is single-threaded).
    fn umask(&self) -> Mode;
    /// This process's effective uid and gid.
    fn effective_ids(&self) -> (u32, u32);

    /// Sets the file-system uid and gid (setfsuid(2), setfsgid(2)), keeping the
    /// parent-death signal, which any change of ids clears.
    fn set_fs_ids(&self, uid: u32, gid: u32);
    /// This process's capabilities of `set`.
    fn read_caps(&self, set: CapSet) -> Result<CapsHashSet, CapsError>;
    /// Sets this process's capabilities of `set` to `caps`.
    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> Result<(), CapsError>;
}

/// The real system calls: what the binary uses, always.
pub struct LinuxSys;

impl Sys for LinuxSys {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno> {
        nix::mount::umount2(target, flags)
    }

    fn mount_setattr(
        &self,
        dirfd: RawFd,
        path: &CStr,
        flags: libc::c_int,
        attr: &libc::mount_attr,
    ) -> Result<(), Errno> {
        // SAFETY: a valid C string and a correctly sized, initialized struct, which the
        // kernel only reads.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                dirfd,
                path.as_ptr(),
                flags,
                attr as *const libc::mount_attr,
                std::mem::size_of::<libc::mount_attr>(),
            )
        };
        if rc < 0 {
            Err(Errno::last())
        } else {
            Ok(())
        }
    }

    fn open_tree(&self, dirfd: RawFd, path: &CStr, flags: libc::c_uint) -> Result<OwnedFd, Errno> {
        // SAFETY: open_tree with a NUL-terminated path; the result is a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
        if fd < 0 {
            return Err(Errno::last());
        }
        let fd = RawFd::try_from(fd).map_err(|_| Errno::EBADF)?;
        // SAFETY: open_tree just returned this descriptor; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn move_mount(
        &self,
        from_dirfd: RawFd,
        from_path: &CStr,
        to_dirfd: RawFd,
        to_path: &CStr,
        flags: libc::c_uint,
    ) -> Result<(), Errno> {
        // SAFETY: move_mount with descriptors the caller holds and NUL-terminated paths.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                from_dirfd,
                from_path.as_ptr(),
                to_dirfd,
                to_path.as_ptr(),
                flags,
            )
        };
        if rc != 0 {
            Err(Errno::last())
        } else {
            Ok(())
        }
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn chroot(&self, path: &Path) -> Result<(), Errno> {
        nix::unistd::chroot(path)
    }

    fn chdir(&self, path: &Path) -> Result<(), Errno> {
        nix::unistd::chdir(path)
    }

    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: libc::dev_t) -> Result<(), Errno> {
        nix::sys::stat::mknod(path, kind, perm, dev)
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        fs::write(path, data)
    }

    fn symlink(&self, to: &Path, at: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(to, at)
    }

    fn chmod(&self, path: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn lremovexattr(&self, path: &CStr, name: &CStr) -> Result<(), Errno> {
        // SAFETY: two valid C strings.
        let rc = unsafe { libc::lremovexattr(path.as_ptr(), name.as_ptr()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Errno::last())
        }
    }

    fn utimensat(
        &self,
        path: &Path,
        atime: &TimeSpec,
        mtime: &TimeSpec,
        flags: UtimensatFlags,
    ) -> Result<(), Errno> {
        nix::sys::stat::utimensat(None, path, atime, mtime, flags)
    }

    fn lstat(&self, path: &Path) -> io::Result<Stat> {
        fs::symlink_metadata(path).map(|m| Stat::of(&m))
    }

    fn stat(&self, path: &Path) -> io::Result<Kind> {
        fs::metadata(path).map(|m| Kind::of(m.file_type()))
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        fs::canonicalize(path)
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        fs::read_to_string(path)
    }

    fn statvfs(&self, path: &Path) -> Result<FsFlags, Errno> {
        nix::sys::statvfs::statvfs(path).map(|st| st.flags())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }

    fn is_empty_dir(&self, path: &Path) -> io::Result<bool> {
        fs::read_dir(path).map(|mut e| e.next().is_none())
    }

    fn llistxattr(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        // SAFETY: llistxattr writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        usize::try_from(n).map_err(|_| Errno::last())
    }

    fn umask(&self) -> Mode {
        let mask = nix::sys::stat::umask(Mode::empty());
        nix::sys::stat::umask(mask);
        mask
    }

    fn effective_ids(&self) -> (u32, u32) {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    }

    fn set_fs_ids(&self, uid: u32, gid: u32) {
        let mut pdeathsig: libc::c_int = 0;
        // SAFETY: prctl writes the signal number into a local int; setfsgid/setfsuid take
        // ids.
        unsafe {
            libc::prctl(
                libc::PR_GET_PDEATHSIG,
                &mut pdeathsig as *mut libc::c_int,
                0,
                0,
                0,
            );
            libc::setfsgid(gid);
            libc::setfsuid(uid);
            if pdeathsig != 0 {
                libc::prctl(libc::PR_SET_PDEATHSIG, pdeathsig, 0, 0, 0);
            }
        }
    }

    fn read_caps(&self, set: CapSet) -> Result<CapsHashSet, CapsError> {
        caps::read(None, set)
    }

    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> Result<(), CapsError> {
        caps::set(None, set, caps)
    }
}
