//! Layers and images (docs/images.md): imports of images built by umoci and skopeo match
//! `umoci unpack` file for file; a unit runs on an image with its defaults; commit, export
//! and `umoci unpack` of the export reproduce the unit's view; unsafe tars, digest
//! mismatches and interrupted imports leave nothing behind; gc keeps what is in use.

#[path = "images_util.rs"]
pub(crate) mod util;

use std::fs;
use std::process::{Command, Stdio};

use crate::harness::{Sandbox, KENNEL};
use util::{image_layers, layer_entries, listing, oci_layout, raw_tar, run, umoci_image, Raw};

/// The init layer's files and kennel's mount points: not part of an image.
const NOT_IMAGE: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf"];

impl Sandbox {
    /// A store command on this sandbox's state directory.
    fn store(&self, args: &[&str]) -> String {
        let state = self.p("state");
        let mut all = args.to_vec();
        all.extend(["--state-dir", &state]);
        self.ok(&all)
    }
}

fn kennel_store(s: &Sandbox, args: &[&str]) -> std::process::Output {
    Command::new(KENNEL)
        .args(args)
        .args(["--state-dir", &s.p("state")])
        .env("KENNEL_SOCKET", &s.socket)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn oci_and_docker_archive_imports_match_umoci_unpack() {
    let s = Sandbox::new();
    let (oci, reference) = umoci_image(&s.path("build"));
    let archive = s.p("web.tar");
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:v1", oci.display()),
            &format!("docker-archive:{archive}:web:1"),
        ],
    );
    let oci_tar = s.p("oci.tar");
    run(
        "tar",
        &["-C", &oci.display().to_string(), "-cf", &oci_tar, "."],
    );

    s.store(&[
        "image",
        "import",
        &oci.display().to_string(),
        "--name",
        "web:oci",
    ]);
    s.store(&["image", "import", &archive]); // named by the archive: docker.io/library/web:1 -> web:1
    s.store(&["image", "import", &oci_tar, "--name", "web:ocitar"]);
    let want = listing(&reference, &[], &[]);
    assert!(!want.iter().any(|l| l.starts_with("etc/b|")));
    assert!(want.iter().any(|l| l.starts_with("data/keep/only|")));
    for image in ["web:oci", "web:1", "web:ocitar"] {
        let got = listing(
            &s.path(&format!("mnt-{image}")),
            &image_layers(&s.state, image),
            &[],
        );
        assert_eq!(got, want, "{image} differs from umoci unpack");
    }
    // The three imports share their layers.
    let digests: Vec<String> = layer_entries(&s.state)
        .into_iter()
        .filter(|n| n.starts_with("sha256-"))
        .collect();
    assert_eq!(digests.len(), 4, "{digests:?}");

    // A unit on the image: its Cmd, Env and WorkingDir, without service.command.
    s.unit("web", "[container]\nimage = \"web:1\"\n").up();
    s.wait_state("web", "up");
    s.wait_log("web", "stdout", "started");
    assert_eq!(
        s.ok(&[
            "exec",
            "web",
            "sh",
            "-c",
            "echo $FOO; pwd; cat /data/keep/*; ls /opq"
        ]),
        "bar\n/data\ninserted\nnew1\n"
    );
    assert_eq!(
        s.ok(&["exec", "web", "ls", "/etc"]),
        "a\nc\nfifo\nhostname\nhosts\nresolv.conf\n"
    );
}

#[test]
fn a_missing_image_is_a_spawn_failure() {
    let s = Sandbox::new();
    s.unit(
        "web",
        "[container]\nimage = \"web:1\"\n[restart]\npolicy = \"no\"\n",
    )
    .up();
    s.wait_for("the spawn failure", || {
        s.detail("web")
            .contains("image web:1 not found in STATE/images")
    });
}

#[test]
fn commit_then_export_reproduces_the_unit_view() {
    let s = Sandbox::new();
    let (oci, _) = umoci_image(&s.path("build"));
    s.store(&[
        "image",
        "import",
        &oci.display().to_string(),
        "--name",
        "web:1",
    ]);
    s.unit("web", "[container]\nimage = \"web:1\"\npersist = true\n")
        .up();
    s.wait_state("web", "up");
    s.ok(&["exec", "web", "sh", "-c", "echo hello > /data/new; rm /etc/c; echo more >> /etc/a; rm -r /opq; mkdir /opq; echo z > /opq/z; echo '10.0.0.9 x' >> /etc/hosts"]);
    // A running unit: frozen while its layer is read.
    s.store(&["commit", "web", "web:2"]);
    let out = s.p("export.tar");
    s.store(&["image", "export", "web:2", "-o", &out]);
    let layout = s.path("export");
    fs::create_dir(&layout).unwrap();
    run("tar", &["-C", &layout.display().to_string(), "-xf", &out]);
    let unpacked = s.path("unpacked");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:2", layout.display()),
            &unpacked.display().to_string(),
        ],
    );
    let exported = listing(&unpacked.join("rootfs"), &[], &[]);

    // The unit's view: its writable layer over the layers it was started on.
    let mut view_layers = vec![s.state.join("containers/web/upper")];
    view_layers.extend(image_layers(&s.state, "web:1"));
    let view = listing(&s.path("mnt-view"), &view_layers, NOT_IMAGE);
    assert_eq!(exported, view);
    assert!(exported.iter().any(|l| l.starts_with("data/new|")));
    assert!(!exported
        .iter()
        .any(|l| l.starts_with("etc/c|") || l.starts_with("opq/new1|")));
    assert!(
        !exported.iter().any(|l| l.starts_with("etc/hosts|")),
        "the init layer is never committed"
    );
}

#[test]
fn a_stopped_persistent_unit_can_be_committed() {
    let s = Sandbox::new();
    let (oci, _) = umoci_image(&s.path("build"));
    s.store(&[
        "image",
        "import",
        &oci.display().to_string(),
        "--name",
        "web:1",
    ]);
    s.unit("web", "[container]\nimage = \"web:1\"\npersist = true\n")
        .up();
    s.wait_state("web", "up");
    s.ok(&["exec", "web", "sh", "-c", "echo kept > /data/kept"]);
    s.ok(&["stop", "web"]);
    s.store(&["commit", "web", "web:kept"]);
    let view = listing(&s.path("mnt"), &image_layers(&s.state, "web:kept"), &[]);
    assert!(view.iter().any(|l| l.starts_with("data/kept|")), "{view:?}");
}

#[test]
fn unsafe_tars_are_refused_without_writing_outside() {
    let s = Sandbox::new();
    let outside = s.path("outside");
    fs::create_dir(&outside).unwrap();
    let abs = format!("{}/abs", outside.display());
    let outside_s = outside.display().to_string();
    let cases: Vec<(Vec<Raw>, &str)> = vec![
        (
            vec![Raw::File("../../../outside/up", "x")],
            "`..` component is refused",
        ),
        (vec![Raw::File(&abs, "x")], "absolute paths are refused"),
        (
            vec![
                Raw::Symlink("link", &outside_s),
                Raw::File("link/through", "x"),
            ],
            "its parent link is a symlink",
        ),
        (
            vec![
                Raw::Symlink("up", "../../../../outside"),
                Raw::File("up/x", "x"),
            ],
            "points outside the layer",
        ),
        (
            vec![Raw::Link("hard", "../../../outside/f")],
            "hardlink target",
        ),
    ];
    for (i, (entries, why)) in cases.iter().enumerate() {
        let dir = s.path(&format!("bad{i}"));
        oci_layout(
            &dir,
            &[
                raw_tar(&[Raw::Dir("etc/"), Raw::File("etc/ok", "ok")]),
                raw_tar(entries),
            ],
            false,
        );
        let out = kennel_store(
            &s,
            &[
                "image",
                "import",
                &dir.display().to_string(),
                "--name",
                "bad:1",
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(why), "case {i}: {err}");
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "case {i} wrote outside"
        );
        assert!(!s.path("state/outside").exists() && !s.path("outside/up").exists());
        assert!(!s.path("state/images/bad:1.json").exists());
        assert!(
            layer_entries(&s.state)
                .iter()
                .all(|n| !n.starts_with(".tmp-")),
            "{:?}",
            layer_entries(&s.state)
        );
    }
}

#[test]
fn a_digest_mismatch_is_refused() {
    let s = Sandbox::new();
    let dir = s.path("lying");
    oci_layout(&dir, &[raw_tar(&[Raw::File("f", "1")])], true);
    let out = kennel_store(
        &s,
        &[
            "image",
            "import",
            &dir.display().to_string(),
            "--name",
            "x:1",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("digest mismatch for layer"), "{err}");
    assert_eq!(layer_entries(&s.state), Vec::<String>::new());
    // A blob whose content is not its name.
    let (oci, _) = umoci_image(&s.path("build"));
    let blobs = oci.join("blobs/sha256");
    let big = fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    // The same layer compressed otherwise: the same diff_id, another blob digest.
    let path = big.display().to_string();
    run(
        "sh",
        &[
            "-c",
            &format!("zcat {path} | gzip -1 > {path}.new && mv {path}.new {path}"),
        ],
    );
    let out = kennel_store(
        &s,
        &[
            "image",
            "import",
            &oci.display().to_string(),
            "--name",
            "x:2",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("digest mismatch for layer blob blobs/sha256/"),
        "{err}"
    );
    assert!(!s.path("state/images/x:2.json").exists());
}

#[test]
fn an_import_killed_half_way_leaves_nothing() {
    let s = Sandbox::new();
    let dir = s.path("big");
    let mut data = vec![0u8; 48 << 20];
    let mut x: u64 = 88172645463325252;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    fs::create_dir_all(&dir).unwrap();
    let mut entries = Vec::new();
    let chunks: Vec<String> = (0..48).map(|i| format!("f{i}")).collect();
    let texts: Vec<String> = data
        .chunks(1 << 20)
        .map(|c| c.iter().map(|b| (b'a' + b % 26) as char).collect())
        .collect();
    for (n, t) in chunks.iter().zip(&texts) {
        entries.push(Raw::File(n, t));
    }
    oci_layout(&dir, &[raw_tar(&entries)], false);
    let mut child = Command::new(KENNEL)
        .args([
            "image",
            "import",
            &dir.display().to_string(),
            "--name",
            "big:1",
            "--state-dir",
            &s.p("state"),
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    s.wait_for("the import to start unpacking", || {
        fs::read_dir(s.path("state/layers")).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                e.file_name().to_string_lossy().starts_with(".tmp-")
                    && fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some())
            })
        })
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        layer_entries(&s.state)
            .iter()
            .all(|n| n.starts_with(".tmp-")),
        "{:?}",
        layer_entries(&s.state)
    );
    assert!(
        s.store(&["image", "ls"]).lines().count() == 1,
        "no image is visible"
    );
    // The next import cleans up and completes.
    s.store(&[
        "image",
        "import",
        &dir.display().to_string(),
        "--name",
        "big:1",
    ]);
    let entries = layer_entries(&s.state);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].starts_with("sha256-"));
}

#[test]
fn two_imports_at_once_are_safe() {
    let s = Sandbox::new();
    let (oci, reference) = umoci_image(&s.path("build"));
    let spawn = |tag: &str| {
        Command::new(KENNEL)
            .args([
                "image",
                "import",
                &oci.display().to_string(),
                "--name",
                &format!("web:{tag}"),
                "--state-dir",
                &s.p("state"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("a"), spawn("b"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let want = listing(&reference, &[], &[]);
    for image in ["web:a", "web:b"] {
        assert_eq!(
            listing(
                &s.path(&format!("m-{image}")),
                &image_layers(&s.state, image),
                &[]
            ),
            want
        );
    }
    assert!(layer_entries(&s.state)
        .iter()
        .all(|n| n.starts_with("sha256-")));
}

#[test]
fn gc_never_removes_a_layer_in_use() {
    let s = Sandbox::new();
    let (oci, reference) = umoci_image(&s.path("build"));
    s.store(&[
        "image",
        "import",
        &oci.display().to_string(),
        "--name",
        "web:1",
    ]);
    s.store(&[
        "layer",
        "import",
        &reference.display().to_string(),
        "--name",
        "flat",
    ]);
    let units = s.p("units");
    s.unit(
        "flat",
        "[service]\ncommand = [\"/bin/sleep\", \"1000\"]\n[container]\nrootfs = [\"flat\"]\n",
    );
    let ls = s.store(&["layer", "ls", "--units", &units]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("flat ") && l.contains("-> sha256-")),
        "{ls}"
    );
    assert!(ls.contains("image web:1"), "{ls}");
    assert_eq!(
        s.store(&["layer", "gc", "--units", &units]),
        "",
        "everything is in use"
    );
    s.store(&["image", "rm", "web:1"]);
    let removed = s.store(&["layer", "gc", "--units", &units]);
    assert_eq!(removed.lines().count(), 4, "{removed}");
    let entries = layer_entries(&s.state);
    assert_eq!(
        entries.len(),
        2,
        "flat and its digest layer stay: {entries:?}"
    );
    // The flat layer is the whole image, file for file.
    assert_eq!(
        listing(&s.path("state/layers/flat"), &[], &[]),
        listing(&reference, &[], &[])
    );
}

#[test]
fn store_commands_take_the_daemons_state_dir_and_refuse_another() {
    let s = Sandbox::new();
    let rootfs = s.path("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/motd"), "hi\n").unwrap();
    let rootfs = rootfs.display().to_string();
    s.unit("svc", "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n");
    s.up();
    // No --state-dir: the daemon's (the sandbox's), not the default /var/lib/kennel (which
    // the command sees as an empty tmpfs: a client that took it writes nothing on the host).
    let out = s.output(
        without_var_lib(&s, &["layer", "import", &rootfs, "--name", "mine"]),
        "kennel layer import without --state-dir",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(s.state.join("layers/mine").exists());
    let out = s.output(without_var_lib(&s, &["layer", "ls"]), "kennel layer ls");
    let ls = String::from_utf8_lossy(&out.stdout);
    assert!(ls.lines().any(|l| l.starts_with("mine ")), "{ls}");
    // Another directory is refused, by flag or environment, and nothing is written there.
    let other = s.p("other");
    let err = s.fails(
        &[
            "layer",
            "import",
            &rootfs,
            "--name",
            "x",
            "--state-dir",
            &other,
        ],
        1,
    );
    assert!(err.contains(&s.state.display().to_string()), "{err}");
    assert!(err.contains("--state-dir"), "{err}");
    let mut cmd = Command::new(KENNEL);
    cmd.args(["image", "ls"])
        .env("KENNEL_SOCKET", &s.socket)
        .env("KENNEL_STATE_DIR", &other);
    let out = s.output(cmd, "kennel image ls with KENNEL_STATE_DIR");
    assert_eq!(out.status.code(), Some(1));
    assert!(!s.path("other").exists());
    // The same directory, however written, is fine.
    let same = format!("{}/../state", s.units.display());
    s.ok(&["layer", "ls", "--state-dir", &same]);
    // Without a daemon, the directory given.
    s.ok(&["shutdown"]);
    s.wait_exit();
    s.ok(&[
        "layer",
        "import",
        &rootfs,
        "--name",
        "y",
        "--state-dir",
        &other,
    ]);
    assert!(s.path("other/layers/y").exists());
}

/// `kennel ARGS` for this sandbox's daemon, in a mount namespace of its own where /var/lib
/// is an empty tmpfs: whatever it would write under the default state directory stays there.
fn without_var_lib(s: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg("mount -t tmpfs kennel-test /var/lib || exit 125; exec \"$@\"")
        .args(["sh", KENNEL])
        .args(args)
        .env("KENNEL_SOCKET", &s.socket);
    cmd
}
