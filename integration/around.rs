//! Commands around the main one (`start_pre`, `start_post`, `reload`, `stop`,
//! `stop_post`) run by the real daemon, `kennel reload UNIT` and `kennel kill`.

use crate::harness::Sandbox;

#[test]
fn commands_run_in_order_around_the_main_process_and_reload_waits() {
    let s = Sandbox::new();
    let step = |name: &str| s.script(name, &format!("echo {name} $MAINPID >> $D/steps"));
    let (pre, post, reload, stop, stop_post) = (
        step("pre"),
        step("post"),
        step("reload"),
        step("stopcmd"),
        step("stoppost"),
    );
    s.script_unit(
        "web",
        "echo main >> $D/steps\ntrap 'exit 0' TERM\nwhile :; do sleep 1 & wait $!; done",
        &format!(
            "start_pre = [[\"-\", \"/bin/false\"], [\"{pre}\"]]\nstart_post = [[\"{post}\"]]\n\
             reload = [[\"{reload}\"]]\nstop = [[\"{stop}\"]]\nstop_post = [[\"{stop_post}\"]]\n"
        ),
    );
    s.up();
    s.wait_state("web", "up");
    let main = s.pid("web");
    s.ok(&["reload", "web"]);
    s.ok(&["stop", "web"]);
    assert_eq!(
        s.lines("steps"),
        [
            "pre".to_string(),
            "main".to_string(),
            format!("post {main}"),
            format!("reload {main}"),
            format!("stopcmd {main}"),
            "stoppost".to_string(),
        ]
    );
}

#[test]
fn a_failed_start_pre_fails_the_start_without_running_the_main_command() {
    let s = Sandbox::new();
    s.script_unit(
        "web",
        "touch $D/main-ran\nsleep 100000",
        "start_pre = [[\"/bin/sh\", \"-c\", \"exit 3\"]]\n[restart]\npolicy = \"no\"\n",
    );
    s.up();
    s.wait_state("web", "failed");
    assert!(s.read("main-ran").is_none());
    s.wait_log("web", "kennel", "start_pre /bin/sh: exited 3; failed");
}

#[test]
fn kill_sends_a_signal_to_the_main_process() {
    let s = Sandbox::new();
    s.script_unit(
        "web",
        "trap 'echo got USR1 >> $D/signals' USR1\ntouch $D/trapped\n\
         while :; do sleep 1 & wait $!; done",
        "reload_signal = \"SIGUSR1\"\n",
    );
    s.up();
    s.wait_file_exists("trapped");
    s.ok(&["kill", "web", "-s", "USR1", "--main"]);
    s.wait_for("the first USR1", || s.lines("signals").len() == 1);
    s.ok(&["reload", "web"]);
    s.wait_for("the second USR1", || s.lines("signals").len() == 2);
    assert_eq!(s.state("web"), "up");
}

#[test]
fn a_forking_daemon_with_a_pid_file_is_the_main_process() {
    let s = Sandbox::new();
    s.script_unit(
        "daemon",
        "export D\nsetsid sh -c 'echo $$ > $D/daemon.pid; trap \"exit 0\" TERM; \
         while :; do sleep 1 & wait $!; done' &\n\
         while [ ! -s $D/daemon.pid ]; do sleep 0.01; done\nexit 0",
        "type = \"forking\"\npid_file = \"PIDFILE\"\n",
    );
    // The pid file lives in the sandbox.
    let unit = s.units.join("daemon.toml");
    let text = std::fs::read_to_string(&unit).expect("unit");
    let file = s.path("daemon.pid").display().to_string();
    std::fs::write(&unit, text.replace("PIDFILE", &file)).expect("unit");
    s.up();
    s.wait_state("daemon", "up");
    let pid: i64 = s.wait_file("daemon.pid").trim().parse().expect("pid");
    assert_eq!(s.pid("daemon"), pid);
    s.wait_log("daemon", "kennel", &format!("the daemon is pid {pid}"));
    s.ok(&["stop", "daemon"]);
    assert_eq!(s.state("daemon"), "inactive");
    s.wait_log("daemon", "kennel", "exited with code 0; stopped");
}

#[test]
fn directories_are_made_before_the_start_and_the_runtime_one_goes_after_the_stop() {
    let s = Sandbox::new();
    // /run and /var/lib of kennel's own mount namespace, never the host's.
    s.before_up("mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib");
    s.script_unit(
        "web",
        "stat -c %a $RUNTIME_DIRECTORY > $D/mode\necho $RUNTIME_DIRECTORY $STATE_DIRECTORY > $D/dirs\n\
         trap 'exit 0' TERM\nwhile :; do sleep 1 & wait $!; done",
        "runtime_directory = [\"kennel-test-web\"]\nruntime_directory_mode = \"0700\"\n\
         state_directory = [\"kennel-test-web\"]\nstart_pre = [[\"/bin/sh\", \"-c\", \"test -d /run/kennel-test-web\"]]\n",
    );
    s.script_unit(
        "look",
        "while [ ! -e $D/look ]; do sleep 0.05; done\n\
         for d in /run/kennel-test-web /var/lib/kennel-test-web; do \
         if [ -e $d ]; then echo $d present; else echo $d gone; fi; done > $D/after.tmp\n\
         mv $D/after.tmp $D/after\n\
         exec sleep 100000",
        "",
    );
    s.up();
    s.wait_state("web", "up");
    assert_eq!(s.wait_file("mode"), "700\n");
    assert_eq!(
        s.wait_file("dirs"),
        "/run/kennel-test-web /var/lib/kennel-test-web\n"
    );
    s.ok(&["stop", "web"]);
    s.touch("look");
    assert_eq!(
        s.wait_file("after"),
        "/run/kennel-test-web gone\n/var/lib/kennel-test-web present\n"
    );
}

#[test]
fn a_missing_path_skips_a_conditioned_start_and_fails_an_asserted_one() {
    let s = Sandbox::new();
    let missing = s.path("missing").display().to_string();
    s.script_unit(
        "maybe",
        "touch $D/maybe-ran\nsleep 100000",
        &format!("condition_path_exists = [\"{missing}\"]\n"),
    );
    s.script_unit(
        "must",
        "touch $D/must-ran\nsleep 100000",
        &format!("assert_path_exists = [\"{missing}\"]\n"),
    );
    s.up();
    s.wait_state("maybe", "exited");
    s.wait_state("must", "failed");
    s.wait_log("maybe", "kennel", "skipped: condition_path_exists");
    assert!(s.read("maybe-ran").is_none());
    assert!(s.read("must-ran").is_none());
    // Once the path is there, a start runs it.
    s.touch("missing");
    s.ok(&["start", "maybe"]);
    s.wait_file_exists("maybe-ran");
}
