//! Unit tests of the tar -> layer conversion with crafted tars (run as root: whiteouts
//! are device nodes, opaque directories trusted xattrs).

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// An entry of a crafted tar: raw name bytes (anything, `..` and `/` included).
enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Link(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Mode(&'a str, u32),
}

fn tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (name, data): (&str, &[u8]) = match e {
            E::File(n, d) => {
                h.set_entry_type(EntryType::Regular);
                h.set_size(d.len() as u64);
                (n, d)
            }
            E::Mode(n, m) => {
                h.set_entry_type(EntryType::Regular);
                h.set_mode(*m);
                (n, b"")
            }
            E::Dir(n) => {
                h.set_entry_type(EntryType::Directory);
                h.set_mode(0o755);
                (n, b"")
            }
            E::Symlink(n, t) | E::Link(n, t) => {
                h.set_entry_type(if matches!(e, E::Symlink(..)) {
                    EntryType::Symlink
                } else {
                    EntryType::Link
                });
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
                (n, b"")
            }
            E::Char(n, ma, mi) => {
                h.set_entry_type(EntryType::Char);
                h.set_device_major(*ma).unwrap();
                h.set_device_minor(*mi).unwrap();
                (n, b"")
            }
        };
        // Raw name: the builder's own setters refuse `..` and absolute paths.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn run(entries: &[E], opts: UnpackOptions) -> (tempfile::TempDir, Result<UnpackStats>) {
    let root = tempfile::tempdir().unwrap();
    let layer = root.path().join("layer");
    fs::create_dir(&layer).unwrap();
    let r = unpack(&tar(entries)[..], &layer, &opts);
    (root, r)
}

fn ok(entries: &[E]) -> tempfile::TempDir {
    let (d, r) = run(entries, UnpackOptions::default());
    r.unwrap();
    d
}

fn refused(entries: &[E]) -> String {
    let (root, r) = run(entries, UnpackOptions::default());
    // Nothing outside the layer, ever.
    let names: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["layer"], "something was written outside the layer");
    r.unwrap_err().to_string()
}

fn wh(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| is_whiteout(&m))
}

#[test]
fn whiteouts_become_char_devices() {
    let d = ok(&[
        E::Dir("etc/"),
        E::File("etc/.wh.passwd", b""),
        E::File("./etc/group", b"g"),
    ]);
    let l = d.path().join("layer");
    assert!(wh(&l.join("etc/passwd")));
    assert!(!l.join("etc/.wh.passwd").exists());
    assert_eq!(fs::read(l.join("etc/group")).unwrap(), b"g");
}

#[test]
fn opaque_marker_applies_whatever_the_order() {
    for entries in [
        vec![
            E::Dir("d/"),
            E::File("d/.wh..wh..opq", b""),
            E::File("d/new", b"n"),
        ],
        vec![
            E::Dir("d/"),
            E::File("d/new", b"n"),
            E::File("d/.wh..wh..opq", b""),
        ],
        vec![
            E::File("d/.wh..wh..opq", b""),
            E::Dir("d/"),
            E::File("d/new", b"n"),
        ],
    ] {
        let d = ok(&entries);
        let l = d.path().join("layer");
        assert_eq!(
            get_xattr(&l.join("d"), OPAQUE_XATTR).as_deref(),
            Some(&b"y"[..])
        );
        // Siblings of the marker, from this layer, stay.
        assert_eq!(fs::read(l.join("d/new")).unwrap(), b"n");
        assert!(!l.join("d/.wh..wh..opq").exists());
    }
}

#[test]
fn a_file_of_the_same_layer_wins_over_its_whiteout() {
    for entries in [
        vec![E::File("a", b"1"), E::File(".wh.a", b"")],
        vec![E::File(".wh.a", b""), E::File("a", b"1")],
    ] {
        let d = ok(&entries);
        assert_eq!(fs::read(d.path().join("layer/a")).unwrap(), b"1");
    }
    // A directory replacing a whited-out one is opaque, whatever the order.
    for entries in [
        vec![E::File(".wh.d", b""), E::Dir("d/"), E::File("d/x", b"")],
        vec![E::Dir("d/"), E::File("d/x", b""), E::File(".wh.d", b"")],
    ] {
        let d = ok(&entries);
        assert_eq!(
            get_xattr(&d.path().join("layer/d"), OPAQUE_XATTR).as_deref(),
            Some(&b"y"[..])
        );
    }
}

#[test]
fn unsafe_paths_are_refused() {
    assert!(refused(&[E::File("../escape", b"x")]).contains("`..`"));
    assert!(refused(&[E::File("a/../../escape", b"x")]).contains("`..`"));
    assert!(refused(&[E::File("/abs", b"x")]).contains("absolute"));
    let e = refused(&[E::Symlink("link", ".."), E::File("link/escape", b"x")]);
    assert!(e.contains("symlink to \"..\" points outside"), "{e}");
    let e = refused(&[E::Symlink("link", "/"), E::File("link/escape", b"x")]);
    assert!(e.contains("its parent link is a symlink"), "{e}");
    let e = refused(&[E::Symlink("d/up", "../../..")]);
    assert!(e.contains("points outside"), "{e}");
    let e = refused(&[E::Link("hard", "../escape")]);
    assert!(e.contains("hardlink target"), "{e}");
    let e = refused(&[E::Symlink("s", "/"), E::Link("hard", "s/etc/passwd")]);
    assert!(e.contains("goes through a symlink"), "{e}");
    let e = refused(&[E::Char("dev/null", 1, 3)]);
    assert!(e.contains("device node (char 1:3) refused"), "{e}");
    let e = refused(&[E::Char("wh", 0, 0)]);
    assert!(e.contains("refused"), "{e}");
    assert!(refused(&[E::File(".wh.", b"")]).contains("whiteout must name a file"));
}

#[test]
fn symlinks_and_hardlinks_inside_are_kept() {
    let d = ok(&[
        E::Symlink("bin/sh", "busybox"),
        E::Symlink("abs", "/etc/passwd"),
        E::Symlink("a/b/up", "../../x"),
        E::File("x", b"data"),
        E::Link("x2", "./x"),
    ]);
    let l = d.path().join("layer");
    assert_eq!(
        fs::read_link(l.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(l.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    let (a, b) = (
        fs::metadata(l.join("x")).unwrap(),
        fs::metadata(l.join("x2")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino());
}

#[test]
fn setuid_bits_are_kept_unless_stripped() {
    let entries = [E::Mode("su", 0o4755)];
    let d = ok(&entries);
    assert_eq!(
        fs::metadata(d.path().join("layer/su"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o4755
    );
    let (d, r) = run(
        &entries,
        UnpackOptions {
            strip_setuid: true,
            ..Default::default()
        },
    );
    r.unwrap();
    assert_eq!(
        fs::metadata(d.path().join("layer/su"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
}

#[test]
fn pack_turns_whiteouts_and_opaque_dirs_back_into_markers() {
    let d = ok(&[
        E::Dir("d/"),
        E::File("d/.wh..wh..opq", b""),
        E::File("d/f", b"1"),
        E::File("e/.wh.gone", b""),
    ]);
    let l = d.path().join("layer");
    let bytes = crate::pack::pack(&l, Vec::new(), &Default::default()).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        names.push(String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned());
    }
    assert_eq!(names, ["d", "d/.wh..wh..opq", "d/f", "e", "e/.wh.gone"]);
    // And back: the same layer, the same digest.
    let again = tempfile::tempdir().unwrap();
    unpack(&bytes[..], again.path(), &UnpackOptions::default()).unwrap();
    let bytes2 = crate::pack::pack(again.path(), Vec::new(), &Default::default()).unwrap();
    assert_eq!(crate::Digest::of(&bytes), crate::Digest::of(&bytes2));
}

#[test]
fn a_truncated_end_of_archive_is_tolerated() {
    let mut t = tar(&[E::File("f", b"123")]);
    t.truncate(512 + 3); // umoci 0.4 insert: no padding, no end blocks
    let d = tempfile::tempdir().unwrap();
    unpack(&t[..], d.path(), &UnpackOptions::default()).unwrap();
    assert_eq!(fs::read(d.path().join("f")).unwrap(), b"123");
}
