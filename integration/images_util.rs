//! Helpers of the image tests: images built by umoci and skopeo, crafted OCI layouts with
//! raw tar layers, and file-for-file listings of root filesystems (overlays mounted in a
//! private mount namespace, so nothing stays mounted if a test fails).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a command that must succeed; its stdout.
pub fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// An OCI layout at `DIR/oci` with the image tagged `v1`, built with umoci: a busybox
/// base (files, a setuid file, a symlink, a hardlink, a fifo, a file owned by 1000), a
/// layer that changes, adds and deletes files (whiteouts) and replaces a directory, an
/// `umoci insert --opaque` layer (an opaque directory), an `insert --whiteout` layer, and
/// a config (Cmd, Env, WorkingDir). Returns the layout and `umoci unpack`'s rootfs.
pub fn umoci_image(dir: &Path) -> (PathBuf, PathBuf) {
    let d = |p: &str| dir.join(p).display().to_string();
    let image = format!("{}:v1", d("oci"));
    run("umoci", &["init", "--layout", &d("oci")]);
    run("umoci", &["new", "--image", &image]);
    run("umoci", &["unpack", "--image", &image, &d("b1")]);
    let r = dir.join("b1/rootfs");
    fs::create_dir_all(r.join("bin")).unwrap();
    fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", r.join("bin/sh")).unwrap();
    for applet in ["cat", "ls", "sleep", "echo", "rm", "mkdir"] {
        std::os::unix::fs::symlink("/bin/busybox", r.join("bin").join(applet)).unwrap();
    }
    write(&r.join("etc/a"), "a\n");
    write(&r.join("etc/b"), "b\n");
    write(&r.join("data/keep/f"), "old\n");
    write(&r.join("opq/old1"), "x\n");
    write(&r.join("opq/sub/old2"), "y\n");
    fs::set_permissions(r.join("etc/b"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(r.join("etc/a"), r.join("etc/a-hard")).unwrap();
    run("mkfifo", &[&r.join("etc/fifo").display().to_string()]);
    std::os::unix::fs::chown(r.join("etc/a"), Some(1000), Some(1000)).unwrap();
    run("umoci", &["repack", "--image", &image, &d("b1")]);

    run("umoci", &["unpack", "--image", &image, &d("b2")]);
    let r = dir.join("b2/rootfs");
    fs::remove_file(r.join("etc/b")).unwrap();
    write(&r.join("data/keep/f"), "changed\n");
    fs::remove_dir_all(r.join("opq")).unwrap();
    write(&r.join("opq/new1"), "new\n");
    write(&r.join("etc/c"), "c\n");
    run("umoci", &["repack", "--image", &image, &d("b2")]);

    write(&dir.join("ins/keep/only"), "inserted\n");
    run(
        "umoci",
        &[
            "insert",
            "--image",
            &image,
            "--opaque",
            &d("ins/keep"),
            "/data/keep",
        ],
    );
    run(
        "umoci",
        &["insert", "--image", &image, "--whiteout", "/etc/a-hard"],
    );
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/bin/sh",
            "--config.cmd",
            "-c",
            "--config.cmd",
            "echo started; exec sleep 1000",
            "--config.env",
            "FOO=bar",
            "--config.workingdir",
            "/data",
        ],
    );
    run("umoci", &["unpack", "--image", &image, &d("ref")]);
    (dir.join("oci"), dir.join("ref/rootfs"))
}

/// A file-for-file listing of the tree at `root`: path, mode, owner, type, symlink
/// target, and an md5 of each regular file. `lowers` (top first) are mounted as an
/// overlay at `root` first, in a private mount namespace. `skip`: paths left out.
pub fn listing(root: &Path, lowers: &[PathBuf], skip: &[&str]) -> Vec<String> {
    let list = "cd \"$1\" && find . -mindepth 1 -printf '%P|%m|%U|%G|%y|%l\\n' && find . -type f -exec md5sum {} +";
    let script = if lowers.is_empty() {
        list.to_string()
    } else {
        let l: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        fs::create_dir_all(root).unwrap();
        format!(
            "mount -t overlay overlay -o ro,lowerdir={} \"$1\" && {list}",
            l.join(":")
        )
    };
    let out = run(
        "unshare",
        &[
            "--mount",
            "sh",
            "-c",
            &script,
            "sh",
            &root.display().to_string(),
        ],
    );
    let mut lines: Vec<String> = out
        .lines()
        .map(|l| match l.split_once("  ./") {
            Some((md5, path)) if !l.contains('|') => format!("{path}|md5|{md5}"),
            _ => l.to_string(),
        })
        .filter(|l| {
            let path = l.split('|').next().unwrap_or("");
            !skip
                .iter()
                .any(|s| path == *s || path.starts_with(&format!("{s}/")))
        })
        .collect();
    lines.sort();
    lines
}

/// The layer directories of an image of the store, top first (for an overlay).
pub fn image_layers(state: &Path, image: &str) -> Vec<PathBuf> {
    let (name, tag) = image.split_once(':').unwrap();
    let rec: serde_json::Value =
        serde_json::from_slice(&fs::read(state.join(format!("images/{name}:{tag}.json"))).unwrap())
            .unwrap();
    let mut layers: Vec<PathBuf> = rec["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| state.join("layers").join(l.as_str().unwrap()))
        .collect();
    layers.reverse();
    layers
}

/// One entry of a crafted tar.
pub enum Raw<'a> {
    File(&'a str, &'a str),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Link(&'a str, &'a str),
}

/// A ustar archive written byte by byte: names are taken as they are (`../x`, `/abs`).
pub fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (name, kind, link, data) = match e {
            Raw::File(n, d) => (*n, b'0', "", d.as_bytes()),
            Raw::Dir(n) => (*n, b'5', "", &b""[..]),
            Raw::Symlink(n, t) => (*n, b'2', *t, &b""[..]),
            Raw::Link(n, t) => (*n, b'1', *t, &b""[..]),
        };
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
            let s = format!("{v:0w$o}\0", w = len - 1);
            h[at..at + len].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, if kind == b'5' { 0o755 } else { 0o644 });
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 0);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn sha256(bytes: &[u8], scratch: &Path) -> String {
    fs::write(scratch, bytes).unwrap();
    let out = run("sha256sum", &[&scratch.display().to_string()]);
    out.split_whitespace().next().unwrap().to_string()
}

/// An OCI layout at `dir` with one image (tag `v1`) of the given uncompressed layers;
/// `diff_id_of` may lie about a layer's digest (for the mismatch test).
pub fn oci_layout(dir: &Path, layers: &[Vec<u8>], lie: bool) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let scratch = dir.join("scratch");
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        let hex = sha256(l, &scratch);
        fs::write(blobs.join(&hex), l).unwrap();
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{hex}"), "size": l.len()}));
        let id = if lie {
            sha256(b"something else", &scratch)
        } else {
            hex
        };
        diff_ids.push(format!("sha256:{id}"));
    }
    let blob = |v: serde_json::Value| {
        let b = serde_json::to_vec(&v).unwrap();
        let hex = sha256(&b, &scratch);
        fs::write(blobs.join(&hex), &b).unwrap();
        (format!("sha256:{hex}"), b.len())
    };
    let (cd, cs) = blob(
        serde_json::json!({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}),
    );
    let (md, ms) = blob(
        serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs}, "layers": descs}),
    );
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::remove_file(&scratch).unwrap();
}

/// The entries of `STATE/layers` (hidden ones included).
pub fn layer_entries(state: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(state.join("layers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.retain(|n| n != ".meta" && n != ".lock");
    v.sort();
    v
}
