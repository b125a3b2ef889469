//! Supervision of plain services: start, readiness, restart, stop, shutdown.

use crate::harness::Sandbox;

#[test]
fn simple_unit_comes_up_and_shuts_down_on_sigterm() {
    let mut s = Sandbox::new();
    s.unit(
        "sleeper",
        "[service]\ncommand = [\"/bin/sleep\", \"1000\"]\n",
    );
    s.up();
    s.wait_state("sleeper", "up");
    let pid = s.status("sleeper")["pid"].as_i64().expect("pid");
    assert!(pid > 1);
    s.signal_daemon(libc::SIGTERM);
    let st = s.wait_exit();
    assert_eq!(st.code(), Some(0), "{}", s.daemon_output());
}
