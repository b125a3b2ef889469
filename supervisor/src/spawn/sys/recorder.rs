//! The recording double of [`Sys`] for unit tests: every call that changes the system is
//! written down as a [`Call`] (with the error it was answered with), in order; reads are
//! answered from a small model of the file tree the test describes. A test scripts
//! failures by a piece of a call's line (`fail_on("pivot_root", Errno::EINVAL)`) and
//! compares the transcript, one line per call, with what it expects.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::{CStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use caps::errors::CapsError;
use caps::{CapSet, CapsHashSet};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::statvfs::FsFlags;
use nix::sys::time::TimeSpec;

use super::{Kind, Stat, Sys};

/// A place an `*at` call names: a directory descriptor, by what the recorder knows it as
/// (`AT_FDCWD` shows as nothing), and a path under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub fd: Option<String>,
    pub path: String,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.fd, self.path.as_str()) {
            (None, p) => write!(f, "{p}"),
            (Some(fd), "") => write!(f, "[{fd}]"),
            (Some(fd), p) => write!(f, "[{fd}]/{p}"),
        }
    }
}

/// One call that changes the system, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount2 {
        target: PathBuf,
        flags: MntFlags,
    },
    MountSetattr {
        at: At,
        flags: libc::c_int,
        set: u64,
        clear: u64,
        propagation: u64,
        userns: Option<String>,
    },
    /// Names the descriptor it returned `tree:PATH`.
    OpenTree {
        at: At,
        flags: libc::c_uint,
    },
    MoveMount {
        from: At,
        to: At,
        flags: libc::c_uint,
    },
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    Chroot(PathBuf),
    Chdir(PathBuf),
    Mknod {
        path: PathBuf,
        /// 'c' or 'b'.
        kind: char,
        mode: u32,
        major: u64,
        minor: u64,
    },
    Mkdir(PathBuf),
    RemoveDir(PathBuf),
    Write {
        path: PathBuf,
        data: Vec<u8>,
    },
    Symlink {
        at: PathBuf,
        to: PathBuf,
    },
    Chmod {
        path: PathBuf,
        mode: u32,
    },
    CreateDirAll(PathBuf),
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    RemoveDirAll(PathBuf),
    Lremovexattr {
        path: PathBuf,
        name: String,
    },
    /// Times as `sec.nsec`, or `NOW` / `OMIT`.
    Utimensat {
        path: PathBuf,
        atime: String,
        mtime: String,
        follow: bool,
    },
    SetFsIds {
        uid: u32,
        gid: u32,
    },
    SetCaps {
        /// The set's name (`Effective`).
        set: String,
        /// Sorted names.
        caps: Vec<String>,
    },
}

/// The names of the bits of `bits` in `names`, `A|B`, what is left in hex; `0` for none.
fn bit_names(bits: u64, names: &[(u64, &str)]) -> String {
    let mut left = bits;
    let mut out: Vec<String> = Vec::new();
    for (bit, name) in names {
        if bits & bit == *bit && *bit != 0 {
            out.push((*name).to_string());
            left &= !bit;
        }
    }
    if left != 0 {
        out.push(format!("{left:#x}"));
    }
    if out.is_empty() {
        "0".into()
    } else {
        out.join("|")
    }
}

const AT_FLAGS: &[(u64, &str)] = &[
    (libc::AT_EMPTY_PATH as u64, "EMPTY_PATH"),
    (libc::AT_RECURSIVE as u64, "RECURSIVE"),
];
const OPEN_TREE_FLAGS: &[(u64, &str)] = &[
    (libc::OPEN_TREE_CLONE as u64, "CLONE"),
    (libc::OPEN_TREE_CLOEXEC as u64, "CLOEXEC"),
    (libc::AT_RECURSIVE as u64, "RECURSIVE"),
];
const MOVE_MOUNT_FLAGS: &[(u64, &str)] = &[(libc::MOVE_MOUNT_F_EMPTY_PATH as u64, "F_EMPTY_PATH")];
const MOUNT_ATTRS: &[(u64, &str)] = &[
    (libc::MOUNT_ATTR_RDONLY, "RDONLY"),
    (libc::MOUNT_ATTR_NOSUID, "NOSUID"),
    (libc::MOUNT_ATTR_NODEV, "NODEV"),
    (libc::MOUNT_ATTR_NOEXEC, "NOEXEC"),
    (libc::MOUNT_ATTR_IDMAP, "IDMAP"),
];

fn ms(flags: MsFlags) -> String {
    let names: Vec<&str> = flags
        .iter_names()
        .map(|(n, _)| n.trim_start_matches("MS_"))
        .collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

fn opt(s: Option<impl fmt::Display>) -> String {
    s.map_or("-".into(), |s| s.to_string())
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => write!(
                f,
                "mount {} {} {} {} {}",
                opt(source.as_ref().map(|p| p.display())),
                target.display(),
                opt(fstype.as_ref()),
                ms(*flags),
                opt(data.as_ref())
            ),
            Call::Umount2 { target, flags } => {
                let names: Vec<&str> = flags
                    .iter_names()
                    .map(|(n, _)| n.trim_start_matches("MNT_"))
                    .collect();
                write!(f, "umount2 {} {}", target.display(), names.join("|"))
            }
            Call::MountSetattr {
                at,
                flags,
                set,
                clear,
                propagation,
                userns,
            } => {
                write!(
                    f,
                    "mount_setattr {at} {} set={}",
                    bit_names(*flags as u64, AT_FLAGS),
                    bit_names(*set, MOUNT_ATTRS)
                )?;
                if *clear != 0 {
                    write!(f, " clear={}", bit_names(*clear, MOUNT_ATTRS))?;
                }
                if *propagation != 0 {
                    write!(f, " propagation={propagation:#x}")?;
                }
                match userns {
                    Some(u) => write!(f, " userns=[{u}]"),
                    None => Ok(()),
                }
            }
            Call::OpenTree { at, flags } => write!(
                f,
                "open_tree {at} {}",
                bit_names(u64::from(*flags), OPEN_TREE_FLAGS)
            ),
            Call::MoveMount { from, to, flags } => write!(
                f,
                "move_mount {from} -> {to} {}",
                bit_names(u64::from(*flags), MOVE_MOUNT_FLAGS)
            ),
            Call::PivotRoot { new_root, put_old } => {
                write!(f, "pivot_root {} {}", new_root.display(), put_old.display())
            }
            Call::Chroot(p) => write!(f, "chroot {}", p.display()),
            Call::Chdir(p) => write!(f, "chdir {}", p.display()),
            Call::Mknod {
                path,
                kind,
                mode,
                major,
                minor,
            } => write!(
                f,
                "mknod {} {kind} {major}:{minor} {mode:04o}",
                path.display()
            ),
            Call::Mkdir(p) => write!(f, "mkdir {}", p.display()),
            Call::RemoveDir(p) => write!(f, "rmdir {}", p.display()),
            Call::Write { path, data } => write!(
                f,
                "write {} {:?}",
                path.display(),
                String::from_utf8_lossy(data)
            ),
            Call::Symlink { at, to } => write!(f, "symlink {} -> {}", at.display(), to.display()),
            Call::Chmod { path, mode } => write!(f, "chmod {} {mode:04o}", path.display()),
            Call::CreateDirAll(p) => write!(f, "create_dir_all {}", p.display()),
            Call::Rename { from, to } => {
                write!(f, "rename {} -> {}", from.display(), to.display())
            }
            Call::RemoveDirAll(p) => write!(f, "remove_dir_all {}", p.display()),
            Call::Lremovexattr { path, name } => {
                write!(f, "lremovexattr {} {name}", path.display())
            }
            Call::Utimensat {
                path,
                atime,
                mtime,
                follow,
            } => write!(
                f,
                "utimensat {} {atime} {mtime}{}",
                path.display(),
                if *follow { "" } else { " NOFOLLOW" }
            ),
            Call::SetFsIds { uid, gid } => write!(f, "set_fs_ids {uid} {gid}"),
            Call::SetCaps { set, caps } => write!(f, "set_caps {set} {}", caps.join(",")),
        }
    }
}

/// What a path of the model of the file tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
    Other,
}

/// A path of the model: what it is, its owner, mode and extended attributes' names.
#[derive(Debug, Clone)]
struct Entry {
    node: Node,
    uid: u32,
    gid: u32,
    mode: u32,
    xattrs: Vec<String>,
}

/// The owner of what the model starts with and of what the calls make.
const UID: u32 = 0;
const GID: u32 = 0;
/// The umask the recorder reports, and applies to what the calls make.
const UMASK: u32 = 0o022;

impl Entry {
    fn new(node: Node) -> Entry {
        let mode = match node {
            Node::Dir => 0o777 & !UMASK,
            Node::File(_) => 0o666 & !UMASK,
            Node::Symlink(_) => 0o777,
            Node::Other => 0o666 & !UMASK,
        };
        Entry {
            node,
            uid: UID,
            gid: GID,
            mode,
            xattrs: Vec::new(),
        }
    }
}

fn time(t: &TimeSpec) -> String {
    match t.tv_nsec() {
        libc::UTIME_NOW => "NOW".into(),
        libc::UTIME_OMIT => "OMIT".into(),
        n => format!("{}.{n:09}", t.tv_sec()),
    }
}

/// Whether `line` is `pattern`, where a `*` in `pattern` stands for any run of characters.
fn matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The recording [`Sys`]. Each call that changes the system is recorded, then answered:
/// with the error of the first failure rule whose text its line contains, else as the
/// model says (creating what exists already is `EEXIST`), else success.
#[derive(Default)]
pub struct Recorder {
    calls: RefCell<Vec<(Call, Option<Errno>)>>,
    failures: Vec<(String, Errno)>,
    tree: RefCell<BTreeMap<PathBuf, Entry>>,
    files: BTreeMap<PathBuf, String>,
    fs_flags: BTreeMap<PathBuf, FsFlags>,
    canonical: BTreeMap<PathBuf, PathBuf>,
    permitted: CapsHashSet,
    /// What the recorder knows each open descriptor as.
    fds: RefCell<BTreeMap<RawFd, String>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Every call whose line contains `text` fails with `e`.
    pub fn fail_on(mut self, text: &str, e: Errno) -> Recorder {
        self.failures.push((text.into(), e));
        self
    }

    fn put(self, path: &str, node: Node) -> Recorder {
        self.tree.borrow_mut().insert(path.into(), Entry::new(node));
        self
    }

    /// These directories exist (as this process makes them, as what follows).
    pub fn dirs<'a>(self, paths: impl IntoIterator<Item = &'a str>) -> Recorder {
        paths.into_iter().fold(self, |r, p| r.put(p, Node::Dir))
    }

    /// These files exist (empty).
    pub fn files<'a>(self, paths: impl IntoIterator<Item = &'a str>) -> Recorder {
        paths
            .into_iter()
            .fold(self, |r, p| r.put(p, Node::File(Vec::new())))
    }

    /// The file `path` holds `data`.
    pub fn file(self, path: &str, data: &str) -> Recorder {
        self.put(path, Node::File(data.into()))
    }

    /// `at` is a symlink to `to`.
    pub fn symlink_at(self, at: &str, to: &str) -> Recorder {
        self.put(at, Node::Symlink(to.into()))
    }

    /// `path` (which exists) has mode `mode`.
    pub fn mode(self, path: &str, mode: u32) -> Recorder {
        if let Some(e) = self.tree.borrow_mut().get_mut(Path::new(path)) {
            e.mode = mode;
        }
        self
    }

    /// `path` (which exists) has the extended attribute `name`.
    pub fn xattr(self, path: &str, name: &str) -> Recorder {
        if let Some(e) = self.tree.borrow_mut().get_mut(Path::new(path)) {
            e.xattrs.push(name.into());
        }
        self
    }

    /// Everything the model has at and under `dir`, one `PATH KIND` line each, in order.
    pub fn tree_under(&self, dir: &str) -> Vec<String> {
        self.tree
            .borrow()
            .iter()
            .filter(|(p, _)| p.starts_with(dir))
            .map(|(p, e)| {
                let kind = match &e.node {
                    Node::Dir => "dir".to_string(),
                    Node::File(d) => format!("file {:?}", String::from_utf8_lossy(d)),
                    Node::Symlink(to) => format!("symlink {}", to.display()),
                    Node::Other => "other".to_string(),
                };
                format!("{} {kind}", p.display())
            })
            .collect()
    }

    /// The file `path` holds `text` (for `read_to_string`).
    pub fn file_text(mut self, path: &str, text: &str) -> Recorder {
        self.files.insert(path.into(), text.into());
        self
    }

    /// statvfs of `path` reports `flags` (else none).
    pub fn fs_flags(mut self, path: &str, flags: FsFlags) -> Recorder {
        self.fs_flags.insert(path.into(), flags);
        self
    }

    /// `fs::canonicalize(path)` is `to` (else `path` itself).
    pub fn canonical(mut self, path: &str, to: &str) -> Recorder {
        self.canonical.insert(path.into(), to.into());
        self
    }

    /// The permitted capabilities.
    pub fn permitted(mut self, caps: CapsHashSet) -> Recorder {
        self.permitted = caps;
        self
    }

    /// Calls of this descriptor show it as `[name]`.
    pub fn name_fd(&self, fd: &OwnedFd, name: &str) {
        self.fds.borrow_mut().insert(fd.as_raw_fd(), name.into());
    }

    /// The calls made so far, with the error each was answered with.
    pub fn calls(&self) -> Vec<(Call, Option<Errno>)> {
        self.calls.borrow().clone()
    }

    /// The calls made so far, one line each; a failed one ends with ` -> ERRNO`.
    pub fn transcript(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .map(|(c, e)| match e {
                None => c.to_string(),
                Some(e) => format!("{c} -> {e:?}"),
            })
            .collect()
    }

    /// Panics, showing both, unless the transcript is `expected` (where a `*` in a line
    /// stands for any run of characters).
    #[track_caller]
    pub fn assert_calls(&self, expected: &[&str]) {
        let got = self.transcript();
        let same = |(g, e): (&String, &&str)| matches(e, g);
        if got.len() != expected.len() || !got.iter().zip(expected).all(same) {
            let first = got
                .iter()
                .zip(expected)
                .position(|p| !same(p))
                .unwrap_or(got.len().min(expected.len()));
            panic!(
                "calls differ from line {}\n--- made:\n{}\n--- expected:\n{}\n",
                first + 1,
                got.join("\n"),
                expected.join("\n")
            );
        }
    }

    /// [`Recorder::assert_calls`] for the first `expected.len()` calls.
    #[track_caller]
    pub fn assert_first_calls(&self, expected: &[&str]) {
        let got = self.transcript();
        let n = expected.len().min(got.len());
        let first = Recorder::default();
        first.calls.replace(self.calls.borrow()[..n].to_vec());
        first.assert_calls(expected);
    }

    fn fd_name(&self, fd: RawFd) -> Option<String> {
        if fd == libc::AT_FDCWD {
            return None;
        }
        Some(
            self.fds
                .borrow()
                .get(&fd)
                .cloned()
                .unwrap_or_else(|| format!("fd {fd}")),
        )
    }

    fn at(&self, fd: RawFd, path: &CStr) -> At {
        At {
            fd: self.fd_name(fd),
            path: path.to_string_lossy().into_owned(),
        }
    }

    /// Records `call` and answers it from the failure rules, else with `model`'s answer.
    fn record(&self, call: Call, model: Result<(), Errno>) -> Result<(), Errno> {
        let line = call.to_string();
        let result = match self.failures.iter().find(|(t, _)| line.contains(t)) {
            Some((_, e)) => Err(*e),
            None => model,
        };
        self.calls.borrow_mut().push((call, result.err()));
        result
    }

    /// `path` does not exist yet in the model: else `EEXIST`.
    fn absent(&self, path: &Path) -> Result<(), Errno> {
        if self.tree.borrow().contains_key(path) {
            Err(Errno::EEXIST)
        } else {
            Ok(())
        }
    }

    /// Records a call that makes `path` a `node`, which then is in the model if it worked.
    fn create(&self, call: Call, path: &Path, node: Node) -> Result<(), Errno> {
        let r = self.record(call, self.absent(path));
        if r.is_ok() {
            self.tree.borrow_mut().insert(path.into(), Entry::new(node));
        }
        r
    }

    fn entry(&self, path: &Path) -> Result<Entry, Errno> {
        self.tree.borrow().get(path).cloned().ok_or(Errno::ENOENT)
    }

    fn node(&self, path: &Path) -> io::Result<Node> {
        Ok(self.entry(path)?.node)
    }

    /// The paths of the model at and under `dir`.
    fn under(&self, dir: &Path) -> Vec<PathBuf> {
        self.tree
            .borrow()
            .keys()
            .filter(|p| p.starts_with(dir))
            .cloned()
            .collect()
    }
}

fn kind(n: &Node) -> Kind {
    match n {
        Node::Dir => Kind::Dir,
        Node::File(_) => Kind::File,
        Node::Symlink(_) => Kind::Symlink,
        Node::Other => Kind::Other,
    }
}

fn cpath(p: &CStr) -> PathBuf {
    PathBuf::from(p.to_string_lossy().into_owned())
}

impl Sys for Recorder {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        let call = Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.into(),
            fstype: fstype.map(String::from),
            flags,
            data: data.map(String::from),
        };
        self.record(call, Ok(()))
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno> {
        let call = Call::Umount2 {
            target: target.into(),
            flags,
        };
        self.record(call, Ok(()))
    }

    fn mount_setattr(
        &self,
        dirfd: RawFd,
        path: &CStr,
        flags: libc::c_int,
        attr: &libc::mount_attr,
    ) -> Result<(), Errno> {
        let userns = (attr.attr_set & libc::MOUNT_ATTR_IDMAP != 0)
            .then(|| self.fd_name(attr.userns_fd as RawFd))
            .flatten();
        let call = Call::MountSetattr {
            at: self.at(dirfd, path),
            flags,
            set: attr.attr_set,
            clear: attr.attr_clr,
            propagation: attr.propagation,
            userns,
        };
        self.record(call, Ok(()))
    }

    fn open_tree(&self, dirfd: RawFd, path: &CStr, flags: libc::c_uint) -> Result<OwnedFd, Errno> {
        let at = self.at(dirfd, path);
        let name = format!("tree:{at}");
        self.record(Call::OpenTree { at, flags }, Ok(()))?;
        // A real descriptor, so that it can be held and closed as the real one.
        let fd = OwnedFd::from(std::fs::File::open("/dev/null").map_err(|_| Errno::EMFILE)?);
        self.fds.borrow_mut().insert(fd.as_raw_fd(), name);
        Ok(fd)
    }

    fn move_mount(
        &self,
        from_dirfd: RawFd,
        from_path: &CStr,
        to_dirfd: RawFd,
        to_path: &CStr,
        flags: libc::c_uint,
    ) -> Result<(), Errno> {
        let call = Call::MoveMount {
            from: self.at(from_dirfd, from_path),
            to: self.at(to_dirfd, to_path),
            flags,
        };
        self.record(call, Ok(()))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        let call = Call::PivotRoot {
            new_root: new_root.into(),
            put_old: put_old.into(),
        };
        self.record(call, Ok(()))
    }

    fn chroot(&self, path: &Path) -> Result<(), Errno> {
        self.record(Call::Chroot(path.into()), Ok(()))
    }

    fn chdir(&self, path: &Path) -> Result<(), Errno> {
        self.record(Call::Chdir(path.into()), Ok(()))
    }

    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: libc::dev_t) -> Result<(), Errno> {
        let call = Call::Mknod {
            path: path.into(),
            kind: if kind == SFlag::S_IFBLK { 'b' } else { 'c' },
            mode: perm.bits(),
            major: nix::sys::stat::major(dev),
            minor: nix::sys::stat::minor(dev),
        };
        self.create(call, path, Node::Other)
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        Ok(self.create(Call::Mkdir(path.into()), path, Node::Dir)?)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let model = match self.node(path) {
            Ok(Node::Dir) => Ok(()),
            Ok(_) => Err(Errno::ENOTDIR),
            Err(_) => Err(Errno::ENOENT),
        };
        self.record(Call::RemoveDir(path.into()), model)?;
        self.tree.borrow_mut().remove(path);
        Ok(())
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let call = Call::Write {
            path: path.into(),
            data: data.to_vec(),
        };
        let model = match self.node(path) {
            Ok(Node::Dir) => Err(Errno::EISDIR),
            _ => Ok(()),
        };
        self.record(call, model)?;
        let mut tree = self.tree.borrow_mut();
        let e = tree
            .entry(path.into())
            .or_insert_with(|| Entry::new(Node::File(Vec::new())));
        e.node = Node::File(data.to_vec());
        Ok(())
    }

    fn symlink(&self, to: &Path, at: &Path) -> io::Result<()> {
        let call = Call::Symlink {
            at: at.into(),
            to: to.into(),
        };
        Ok(self.create(call, at, Node::Symlink(to.into()))?)
    }

    fn chmod(&self, path: &Path, mode: u32) -> io::Result<()> {
        let model = self.entry(path).map(|_| ());
        let call = Call::Chmod {
            path: path.into(),
            mode,
        };
        self.record(call, model)?;
        if let Some(e) = self.tree.borrow_mut().get_mut(path) {
            e.mode = mode & 0o7777;
        }
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let missing: Vec<&Path> = path
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && self.entry(p).is_err())
            .collect();
        let model = match path.ancestors().find(|p| self.entry(p).is_ok()) {
            Some(p) if !matches!(self.entry(p).map(|e| e.node), Ok(Node::Dir)) => {
                Err(Errno::ENOTDIR)
            }
            _ => Ok(()),
        };
        self.record(Call::CreateDirAll(path.into()), model)?;
        for p in missing {
            self.tree
                .borrow_mut()
                .insert(p.into(), Entry::new(Node::Dir));
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let model = self.entry(from).map(|_| ());
        let call = Call::Rename {
            from: from.into(),
            to: to.into(),
        };
        self.record(call, model)?;
        let moved = self.under(from);
        let mut tree = self.tree.borrow_mut();
        for p in moved {
            if let (Some(e), Ok(rel)) = (tree.remove(&p), p.strip_prefix(from)) {
                tree.insert(to.join(rel), e);
            }
        }
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let model = self.entry(path).map(|_| ());
        self.record(Call::RemoveDirAll(path.into()), model)?;
        for p in self.under(path) {
            self.tree.borrow_mut().remove(&p);
        }
        Ok(())
    }

    fn lremovexattr(&self, path: &CStr, name: &CStr) -> Result<(), Errno> {
        let (path, name) = (cpath(path), name.to_string_lossy().into_owned());
        let model = match self.entry(&path) {
            Ok(e) if e.xattrs.contains(&name) => Ok(()),
            Ok(_) => Err(Errno::ENODATA),
            Err(e) => Err(e),
        };
        let call = Call::Lremovexattr {
            path: path.clone(),
            name: name.clone(),
        };
        self.record(call, model)?;
        if let Some(e) = self.tree.borrow_mut().get_mut(&path) {
            e.xattrs.retain(|n| *n != name);
        }
        Ok(())
    }

    fn utimensat(
        &self,
        path: &Path,
        atime: &TimeSpec,
        mtime: &TimeSpec,
        flags: UtimensatFlags,
    ) -> Result<(), Errno> {
        let call = Call::Utimensat {
            path: path.into(),
            atime: time(atime),
            mtime: time(mtime),
            follow: matches!(flags, UtimensatFlags::FollowSymlink),
        };
        self.record(call, self.entry(path).map(|_| ()))
    }

    fn lstat(&self, path: &Path) -> io::Result<Stat> {
        let e = self.entry(path)?;
        Ok(Stat {
            kind: kind(&e.node),
            uid: e.uid,
            gid: e.gid,
            mode: e.mode,
            len: match &e.node {
                Node::File(d) => d.len() as u64,
                _ => 0,
            },
        })
    }

    fn stat(&self, path: &Path) -> io::Result<Kind> {
        let mut p = path.to_path_buf();
        for _ in 0..8 {
            match self.node(&p)? {
                Node::Symlink(to) => p = to,
                n => return Ok(kind(&n)),
            }
        }
        Err(Errno::ELOOP.into())
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(self
            .canonical
            .get(path)
            .cloned()
            .unwrap_or_else(|| path.into()))
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| Errno::ENOENT.into())
    }

    fn statvfs(&self, path: &Path) -> Result<FsFlags, Errno> {
        Ok(self.fs_flags.get(path).copied().unwrap_or(FsFlags::empty()))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.node(path)? {
            Node::File(d) => Ok(d),
            Node::Dir => Err(Errno::EISDIR.into()),
            _ => Err(Errno::EINVAL.into()),
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        if self.node(path)? != Node::Dir {
            return Err(Errno::ENOTDIR.into());
        }
        Ok(self
            .tree
            .borrow()
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(OsString::from))
            .collect())
    }

    fn is_empty_dir(&self, path: &Path) -> io::Result<bool> {
        self.read_dir(path).map(|names| names.is_empty())
    }

    fn llistxattr(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        let e = self.entry(&cpath(path))?;
        let list: Vec<u8> = e.xattrs.iter().flat_map(|n| n.bytes().chain([0])).collect();
        let dst = buf.get_mut(..list.len()).ok_or(Errno::ERANGE)?;
        dst.copy_from_slice(&list);
        Ok(list.len())
    }

    fn umask(&self) -> Mode {
        Mode::from_bits_truncate(UMASK)
    }

    fn effective_ids(&self) -> (u32, u32) {
        (UID, GID)
    }

    fn set_fs_ids(&self, uid: u32, gid: u32) {
        let _ = self.record(Call::SetFsIds { uid, gid }, Ok(()));
    }

    fn read_caps(&self, _set: CapSet) -> Result<CapsHashSet, CapsError> {
        Ok(self.permitted.clone())
    }

    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> Result<(), CapsError> {
        let mut names: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        names.sort();
        let call = Call::SetCaps {
            set: format!("{set:?}"),
            caps: names,
        };
        self.record(call, Ok(()))
            .map_err(|e| CapsError::from(e.desc()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stands_for_any_run_of_characters_and_nothing_else_does() {
        assert!(matches(
            "rename /a -> /t/upper-*",
            "rename /a -> /t/upper-1-99"
        ));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*c", "a-b-c"));
        assert!(!matches("a*c", "a-b-cd"));
        assert!(!matches(
            "rename /a -> /t/upper-*",
            "rename /b -> /t/upper-1"
        ));
        assert!(!matches("exact", "exact line"));
        assert!(matches("exact", "exact"));
    }

    #[test]
    fn a_failure_rule_answers_and_marks_the_call() {
        let rec = Recorder::new().fail_on("pivot_root", Errno::EINVAL);
        assert_eq!(rec.chdir(Path::new("/r")), Ok(()));
        assert_eq!(
            rec.pivot_root(Path::new("."), Path::new(".")),
            Err(Errno::EINVAL)
        );
        rec.assert_calls(&["chdir /r", "pivot_root . . -> EINVAL"]);
        assert_eq!(rec.calls()[1].1, Some(Errno::EINVAL));
    }
}
