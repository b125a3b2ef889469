//! The few filesystem calls std does not offer (mknod, xattrs, times of a symlink), on
//! paths, with errors that name the path.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{io, ImageError, Result};

/// A 0/0 character device: an overlay whiteout.
pub fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| ImageError::BadEntry {
        entry: path.display().to_string(),
        reason: "a NUL in the path".into(),
    })
}

pub(crate) fn mkdir(path: &Path) -> Result<()> {
    fs::create_dir(path).map_err(io("mkdir", path))
}

pub(crate) fn remove(path: &Path) -> Result<()> {
    fs::remove_file(path).map_err(io("remove", path))
}

pub(crate) fn mknod(path: &Path, mode: libc::mode_t, dev: libc::dev_t) -> Result<()> {
    let c = cpath(path)?;
    // SAFETY: a valid C string; mknod does not keep the pointer.
    if unsafe { libc::mknod(c.as_ptr(), mode, dev) } != 0 {
        return Err(io("mknod", path)(io::Error::last_os_error()));
    }
    Ok(())
}

/// Sets an xattr on `path` itself (not on a symlink's target).
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let c = cpath(path)?;
    let n = CString::new(name).map_err(|_| ImageError::InvalidName(format!("xattr {name:?}")))?;
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(io("setxattr", path)(io::Error::last_os_error()));
    }
    Ok(())
}

/// Reads an xattr of `path` itself; `None` when it has none by that name.
pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let c = cpath(path).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

/// Sets the modification (and access) time of `path` itself; best effort.
pub(crate) fn set_mtime(path: &Path, mtime: u64) {
    let Ok(c) = cpath(path) else { return };
    let t = libc::timespec {
        tv_sec: mtime as _,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: a valid C string and two timespecs.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
}
