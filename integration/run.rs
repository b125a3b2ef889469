//! `kennel run` (the tini use case), each promise checked twice: as PID 1 of its own pid
//! namespace (`as_pid_1`) and as a plain child of the test (`as_a_child`, where kennel is
//! a child subreaper): exit codes, signal forwarding, `-g`, and reaping orphans.

use crate::harness::{alive, children, Run, Sandbox};

/// A test body run both ways: `|ns| { .. }` with `ns` true for the pid-namespace variant.
macro_rules! both_ways {
    ($name:ident, |$ns:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($ns: bool) $body

            #[test]
            fn as_pid_1() {
                body(true)
            }

            #[test]
            fn as_a_child() {
                body(false)
            }
        }
    };
}

both_ways!(exit_code_is_passed_through, |ns| {
    assert_eq!(Run::new(ns, &["--", "/bin/sh", "-c", "exit 3"]).code(), 3);
    assert_eq!(Run::new(ns, &["/bin/sh", "-c", "exit 0"]).code(), 0);
});

both_ways!(death_by_signal_n_exits_128_plus_n, |ns| {
    let kill = Run::new(ns, &["--", "/bin/sh", "-c", "kill -KILL $$"]).code();
    assert_eq!(kill, 128 + libc::SIGKILL);
    let term = Run::new(ns, &["--", "/bin/sh", "-c", "kill -TERM $$"]).code();
    assert_eq!(term, 128 + libc::SIGTERM);
});

both_ways!(sigterm_is_forwarded_to_the_command, |ns| {
    let s = Sandbox::new();
    let script = s.script(
        "trapper",
        "trap 'kill $p; exit 42' TERM\nsleep 100000 & p=$!\ntouch $D/ready\nwait $p",
    );
    let mut run = Run::new(ns, &["--", &script]);
    s.wait_file_exists("ready");
    run.signal(libc::SIGTERM);
    assert_eq!(run.code(), 42);
});

both_ways!(other_signals_are_forwarded_to_the_command, |ns| {
    let s = Sandbox::new();
    let script = s.script(
        "trapper",
        "for sig in HUP INT USR1 USR2 WINCH; do trap \"echo $sig >> $D/got\" $sig; done\n\
         trap 'kill $p; exit 42' TERM\nsleep 100000 & p=$!\ntouch $D/ready\n\
         while :; do wait $p; done",
    );
    let mut run = Run::new(ns, &["--", &script]);
    s.wait_file_exists("ready");
    let mut want = Vec::new();
    for (sig, name) in [
        (libc::SIGHUP, "HUP"),
        (libc::SIGINT, "INT"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGWINCH, "WINCH"),
    ] {
        run.signal(sig);
        want.push(name.to_string());
        s.wait_for(&format!("the command to get SIG{name}"), || {
            s.lines("got") == want
        });
    }
    run.signal(libc::SIGTERM);
    assert_eq!(run.code(), 42);
});

both_ways!(group_flag_forwards_to_the_whole_process_group, |ns| {
    let s = Sandbox::new();
    // The command's background subshell (kennel's grandchild) traps TERM too; the command
    // waits for it before exiting, so both records are there when kennel run exits.
    let script = s.script(
        "family",
        "trap 'wait $p; echo child >> $D/got; exit 42' TERM\n\
         ( trap 'echo grandchild >> $D/got; exit 0' TERM; touch $D/grandchild.ready\n\
           while :; do sleep 1 & wait $!; done ) &\n\
         p=$!\n\
         while [ ! -e $D/grandchild.ready ]; do sleep 0.05; done\n\
         touch $D/ready\n\
         wait $p",
    );
    let mut run = Run::new(ns, &["-g", "--", &script]);
    s.wait_file_exists("ready");
    run.signal(libc::SIGTERM);
    assert_eq!(run.code(), 42);
    assert_eq!(s.lines("got"), ["grandchild", "child"]);
});

both_ways!(missing_command_exits_127, |ns| {
    assert_eq!(Run::new(ns, &["--", "/nonexistent/command"]).code(), 127);
    assert_eq!(Run::new(ns, &["--", "kennel-no-such-command"]).code(), 127);
});

both_ways!(non_executable_command_exits_126, |ns| {
    let s = Sandbox::new();
    let path = s.path("not-executable");
    std::fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write");
    let path = path.display().to_string();
    assert_eq!(Run::new(ns, &["--", &path]).code(), 126);
});

both_ways!(orphans_are_reparented_to_kennel_and_reaped, |ns| {
    let s = Sandbox::new();
    // One long-lived orphan and 200 short-lived ones, then the command waits.
    let script = s.script(
        "orphaner",
        "( sleep 100000 & )\n\
         i=0; while [ $i -lt 200 ]; do ( : & ); i=$((i+1)); done\n\
         trap 'exit 0' TERM\n\
         touch $D/ready\n\
         while :; do sleep 1 & wait $!; done",
    );
    let mut run = Run::new(ns, &["--", &script]);
    s.wait_file_exists("ready");
    let kennel = run.pid();
    let comm = |p: i32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
    // kennel's children: the command and the long-lived orphan, nothing else (no zombie).
    s.wait_for(
        "kennel run's children to be the command and one orphan",
        || {
            let kids = children(kennel);
            kids.len() == 2 && kids.iter().all(|&p| alive(p))
        },
    );
    let orphan = children(kennel)
        .into_iter()
        .find(|&p| comm(p).trim() == "sleep")
        .expect("the orphaned sleep is kennel's child");
    // SAFETY: kill(2) on a process this test created.
    unsafe {
        libc::kill(orphan, libc::SIGKILL);
    }
    s.wait_for("the killed orphan to be reaped", || {
        children(kennel).len() == 1 && !alive(orphan)
    });
    run.signal(libc::SIGTERM);
    assert_eq!(run.code(), 0);
});
