//! Reaping as PID 1: orphans re-parented to kennel are collected, however many, so no
//! zombie is left in the namespace; and nothing a unit forked outlives its main process.

use crate::harness::{proc_state, Sandbox};

#[test]
fn orphan_storm_leaves_no_zombie() {
    let s = Sandbox::new();
    s.unit(
        "steady",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n",
    );
    s.up();
    s.wait_state("steady", "up");
    let baseline = s.namespace_pids().len();

    // 10,000 double-forked orphans (4 loops in parallel to keep it quick): each `( : & )`
    // subshell exits at once, leaving its background child to kennel.
    s.script_unit(
        "storm",
        "for j in 1 2 3 4; do\n\
           ( i=0; while [ $i -lt 2500 ]; do ( : & ); i=$((i+1)); done ) &\n\
         done\n\
         wait\n\
         echo storm over",
        "type = \"oneshot\"\n[restart]\npolicy = \"no\"\n",
    );
    s.ok(&["reload"]);
    assert_eq!(s.state("storm"), "exited");
    s.wait_log("storm", "stdout", "storm over");

    s.wait_for(
        "the namespace to be back to its baseline, without zombies",
        || {
            let pids = s.namespace_pids();
            pids.len() == baseline && pids.iter().all(|&p| proc_state(p) != Some('Z'))
        },
    );
    assert_eq!(s.state("steady"), "up");
}

#[test]
fn what_a_unit_left_behind_is_killed_when_its_main_process_ends() {
    let s = Sandbox::new();
    s.unit(
        "steady",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n",
    );
    // A double-forked, setsid'd `sleep 100017` outlives the oneshot that started it, out
    // of its process group and session.
    s.script_unit(
        "spawner",
        "( setsid /bin/sleep 100017 & )\n\
         while ! pgrep -f 'sleep 100017' > /dev/null; do sleep 0.05; done\n\
         touch $D/spawned",
        "type = \"oneshot\"\n",
    );
    s.up();
    s.wait_state("spawner", "exited");
    assert!(s.path("spawned").exists());
    let leftover = |p: &i32| {
        std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"/bin/sleep\x00100017\x00")
    };
    s.wait_for("the setsid'd sleep to be gone", || {
        !s.namespace_pids().iter().any(leftover)
    });
    assert_eq!(s.state("steady"), "up");
}
