//! The calls [`prepare_dirs_with`] makes, in order, for each state the previous run left
//! the container's directory in: a recorder in place of the file system (its model starts
//! with what the test says is there; the trash's names end in `PID-NANOS`, written `*`).

use super::*;
use crate::spawn::sys::recorder::Recorder;
use kennel_core::start::ContainerPlan;

/// A container whose start plan keeps a blank writable layer when the previous run is
/// known gone, else makes a new one.
fn container(previous_run_gone: bool) -> ContainerSpec {
    let writable = if previous_run_gone {
        Writable::KeepIfBlank
    } else {
        Writable::New
    };
    ContainerSpec {
        dir: "/c".into(),
        layers: vec!["/layers/base".into()],
        init_files: vec![
            ("/etc/hostname".into(), "web\n".into()),
            ("/etc/hosts".into(), "127.0.0.1\tlocalhost\n".into()),
        ],
        plan: ContainerPlan {
            writable,
            ..ContainerPlan::default()
        },
        ..Default::default()
    }
}

/// The layer, and nothing of the container yet.
fn first() -> Recorder {
    Recorder::new().dirs(["/layers/base"])
}

/// What a run that wrote nothing leaves after a `volatile` mount (overlayfs's instance
/// uuid on upper, its scratch directory in work), and the init layer as
/// [`container`] writes it.
fn left_by_a_run() -> Recorder {
    first()
        .dirs(["/c", "/c/upper", "/c/work", "/c/rootfs"])
        .xattr("/c/upper", "trusted.overlay.uuid")
        .dirs([
            "/c/work/work",
            "/c/work/work/incompat",
            "/c/work/work/incompat/volatile",
        ])
        .files(["/c/work/work/incompat/volatile/dirty"])
        .dirs(["/c/init", "/c/init/etc"])
        .file("/c/init/etc/hostname", "web\n")
        .file("/c/init/etc/hosts", "127.0.0.1\tlocalhost\n")
}

fn prepare(rec: &Recorder, c: &ContainerSpec) -> Result<Dirs, SpawnFailure> {
    prepare_dirs_with(rec, c, None)
}

/// The init layer written as [`container`] has it.
const INIT_WRITTEN: &[&str] = &[
    "create_dir_all /c/init/etc",
    "write /c/init/etc/hostname \"web\\n\"",
    "chmod /c/init/etc/hostname 0644",
    "create_dir_all /c/init/etc",
    "write /c/init/etc/hosts \"127.0.0.1\\tlocalhost\\n\"",
    "chmod /c/init/etc/hosts 0644",
];

#[test]
fn a_first_start_makes_every_directory_and_writes_the_init_layer() {
    let rec = first();
    assert!(prepare(&rec, &container(false)).is_ok());
    rec.assert_calls(
        &[
            &["create_dir_all /c/upper", "create_dir_all /c/work"],
            INIT_WRITTEN,
            &["create_dir_all /c/init", "create_dir_all /c/rootfs"],
        ]
        .concat(),
    );
}

#[test]
fn after_a_run_that_wrote_nothing_both_layers_are_kept() {
    let rec = left_by_a_run();
    assert!(prepare(&rec, &container(true)).is_ok());
    rec.assert_calls(&[
        // overlayfs's scratch directory (and its `volatile` mark) into the trash.
        "create_dir_all /c/.trash",
        "rename /c/work/work -> /c/.trash/scratch-*",
        // upper made to look new: a new overlay instance, `/` with new times.
        "lremovexattr /c/upper trusted.overlay.uuid",
        "utimensat /c/upper NOW NOW NOFOLLOW",
        "create_dir_all /c/upper",
        "create_dir_all /c/work",
        // The init layer holds this start's files: not written again.
        "create_dir_all /c/init",
        "create_dir_all /c/rootfs",
    ]);
    let work: Vec<String> = rec.tree_under("/c/work");
    assert_eq!(work, ["/c/work dir"]);
    assert!(rec
        .tree_under("/c/.trash")
        .iter()
        .any(|l| l.ends_with("/incompat/volatile/dirty file \"\"")));
}

#[test]
fn a_writable_layer_is_made_anew_unless_that_run_is_known_gone() {
    let rec = left_by_a_run();
    assert!(prepare(&rec, &container(false)).is_ok());
    rec.assert_calls(&[
        "create_dir_all /c/.trash",
        "rename /c/upper -> /c/.trash/upper-*",
        "create_dir_all /c/.trash",
        "rename /c/work -> /c/.trash/work-*",
        "create_dir_all /c/upper",
        "create_dir_all /c/work",
        "create_dir_all /c/init",
        "create_dir_all /c/rootfs",
    ]);
}

#[test]
fn a_writable_layer_that_is_not_blank_is_made_anew() {
    type Spoil = fn(Recorder) -> Recorder;
    let spoiled: [(&str, Spoil); 4] = [
        ("a file in upper", |r| r.files(["/c/upper/marker"])),
        ("upper's mode changed", |r| r.mode("/c/upper", 0o700)),
        ("an attribute of the container's on upper", |r| {
            r.xattr("/c/upper", "user.mark")
        }),
        ("an index directory in work", |r| r.dirs(["/c/work/index"])),
    ];
    for (what, spoil) in spoiled {
        let rec = spoil(left_by_a_run());
        assert!(prepare(&rec, &container(true)).is_ok(), "{what}");
        let t = rec.transcript();
        assert!(
            t.iter()
                .any(|l| l.starts_with("rename /c/upper -> /c/.trash/upper-"))
                && t.iter()
                    .any(|l| l.starts_with("rename /c/work -> /c/.trash/work-"))
                && !t.iter().any(|l| l.starts_with("lremovexattr")),
            "{what}: {t:#?}"
        );
    }
}

#[test]
fn an_init_layer_with_other_files_is_moved_to_the_trash_and_written() {
    let rec = left_by_a_run().file("/c/init/etc/hostname", "api\n");
    assert!(prepare(&rec, &container(true)).is_ok());
    rec.assert_calls(
        &[
            &[
                "create_dir_all /c/.trash",
                "rename /c/work/work -> /c/.trash/scratch-*",
                "lremovexattr /c/upper trusted.overlay.uuid",
                "utimensat /c/upper NOW NOW NOFOLLOW",
                "create_dir_all /c/upper",
                "create_dir_all /c/work",
                "create_dir_all /c/.trash",
                "rename /c/init -> /c/.trash/init-*",
            ][..],
            INIT_WRITTEN,
            &["create_dir_all /c/init", "create_dir_all /c/rootfs"],
        ]
        .concat(),
    );
}

#[test]
fn what_cannot_be_moved_to_the_trash_is_deleted_here() {
    let rec = left_by_a_run().fail_on("rename /c/upper", Errno::EXDEV);
    assert!(prepare(&rec, &container(false)).is_ok());
    rec.assert_first_calls(&[
        "create_dir_all /c/.trash",
        "rename /c/upper -> /c/.trash/upper-* -> EXDEV",
        "remove_dir_all /c/upper",
    ]);
    let rec = left_by_a_run()
        .fail_on("rename /c/upper", Errno::EXDEV)
        .fail_on("remove_dir_all /c/upper", Errno::EACCES);
    assert_eq!(
        prepare(&rec, &container(false))
            .err()
            .map(|e| e.to_string()),
        Some("remove old writable layer /c/upper: Permission denied (os error 13)".into())
    );
}

#[test]
fn read_only_and_persist_leave_the_writable_layer_alone() {
    // read_only: no writable layer at all.
    let rec = left_by_a_run();
    let mut ro = ContainerSpec {
        read_only: true,
        ..container(false)
    };
    ro.plan.writable = Writable::None;
    assert!(prepare(&rec, &ro).is_ok());
    rec.assert_calls(&["create_dir_all /c/init", "create_dir_all /c/rootfs"]);

    // persist: kept as the run left it, whatever it holds...
    let mut persist = ContainerSpec {
        persist: true,
        ..container(false)
    };
    persist.plan.writable = Writable::Persist;
    let rec = left_by_a_run()
        .files(["/c/upper/data"])
        .file("/c/work/work/incompat/volatile/dirty", "")
        .mode("/c/upper", 0o700);
    // ...but for the `volatile` mark of a run that was not persistent.
    assert!(prepare(&rec, &persist).is_ok());
    rec.assert_first_calls(&[
        "create_dir_all /c/.trash",
        "rename /c/upper -> /c/.trash/upper-*",
        "create_dir_all /c/.trash",
        "rename /c/work -> /c/.trash/work-*",
    ]);
    let rec = Recorder::new()
        .dirs([
            "/layers/base",
            "/c/upper",
            "/c/work",
            "/c/init",
            "/c/init/etc",
        ])
        .files(["/c/upper/data"])
        .file("/c/init/etc/hostname", "web\n")
        .file("/c/init/etc/hosts", "127.0.0.1\tlocalhost\n");
    assert!(prepare(&rec, &persist).is_ok());
    rec.assert_calls(&[
        "create_dir_all /c/upper",
        "create_dir_all /c/work",
        "create_dir_all /c/init",
        "create_dir_all /c/rootfs",
    ]);
}

#[test]
fn a_layer_must_be_a_directory() {
    let rec = Recorder::new().files(["/layers/base"]);
    assert_eq!(
        prepare(&rec, &container(false))
            .err()
            .map(|e| e.to_string()),
        Some("open layer /layers/base: not a directory".into())
    );
    let rec = Recorder::new()
        .dirs(["/store/base"])
        .symlink_at("/layers/base", "/store/base");
    assert!(prepare(&rec, &container(false)).is_ok(), "a symlink to one");
    let rec = Recorder::new();
    assert_eq!(
        prepare(&rec, &container(false))
            .err()
            .map(|e| e.to_string()),
        Some("open layer /layers/base: not a directory".into())
    );
}
