//! The control socket: root only (socket mode and SO_PEERCRED) unless `--socket-group`
//! lets a group in, typed error replies for bad input, no client can stall the others, a
//! clear message when no daemon listens, and requests logged as an operator reads them.

use std::os::unix::fs::PermissionsExt;

use crate::harness::Sandbox;

fn sleeper(s: &Sandbox) {
    s.unit("svc", "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n");
}

#[test]
fn non_root_client_is_refused_by_the_socket_mode() {
    let s = Sandbox::new();
    sleeper(&s);
    s.up();
    let mode = std::fs::metadata(&s.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = s.kennel_as_nobody(&["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains(&s.socket.display().to_string()), "{err}");
}

#[test]
fn daemon_refuses_non_root_peers_even_on_an_open_socket() {
    let s = Sandbox::new();
    sleeper(&s);
    s.up();
    s.wait_state("svc", "up");
    std::fs::set_permissions(&s.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    for args in [&["status"][..], &["stop", "svc"], &["shutdown"]] {
        let out = s.kennel_as_nobody(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("root-only"), "{args:?}: {err}");
        assert!(err.contains("uid 65534"), "{args:?}: {err}");
    }
    // Nothing happened, and root is still served.
    assert_eq!(s.state("svc"), "up");
    assert!(s
        .daemon_output()
        .contains("refused a client that is not root"));
}

#[test]
fn malformed_json_gets_bad_request_and_the_connection_stays_usable() {
    let s = Sandbox::new();
    sleeper(&s);
    s.up();
    let mut c = s.connect();
    let r = c.call("{nope");
    assert_eq!(r["error"]["kind"], "bad_request", "{r}");
    let r = c.call(r#"{"version":1,"cmd":"explode"}"#);
    assert_eq!(r["error"]["kind"], "bad_request", "{r}");
    let r = c.call(r#"{"version":1,"cmd":"status","unit":null}"#);
    assert_eq!(r["ok"]["type"], "status", "{r}");
    assert_eq!(r["ok"]["units"][0]["name"], "svc", "{r}");
}

#[test]
fn wrong_protocol_version_gets_a_version_error() {
    let s = Sandbox::new();
    sleeper(&s);
    s.up();
    let mut c = s.connect();
    let r = c.call(r#"{"version":2,"cmd":"status","unit":null}"#);
    assert_eq!(r["error"]["kind"], "version", "{r}");
    let r = c.call(r#"{"cmd":"status","unit":null}"#);
    assert_eq!(r["error"]["kind"], "version", "{r}");
}

#[test]
fn oversized_request_gets_too_large_and_the_daemon_is_unaffected() {
    let s = Sandbox::new();
    sleeper(&s);
    s.up();
    let mut c = s.connect();
    let mut writer = c.writer();
    // The daemon stops reading after 64 KiB: write from another thread so that a full
    // socket buffer cannot block the test, and ignore the error once the daemon closes.
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        let mut line = vec![b'x'; 1 << 20];
        line.push(b'\n');
        let _ = writer.write_all(&line);
    });
    let r = c.reply().expect("a reply");
    assert_eq!(r["error"]["kind"], "too_large", "{r}");
    assert!(c.closed(), "the connection is closed after too_large");
    sender.join().expect("sender thread");
    s.wait_state("svc", "up");
}

#[test]
fn silent_and_half_line_clients_do_not_stall_others() {
    let s = Sandbox::new();
    sleeper(&s);
    s.up();
    let _silent = s.connect();
    let mut half = s.connect();
    half.send(br#"{"version":1,"cmd":"#);
    // Both connections stay open while others are served.
    s.wait_state("svc", "up");
    s.ok(&["stop", "svc"]);
    s.ok(&["start", "svc"]);
    let mut other = s.connect();
    let r = other.call(r#"{"version":1,"cmd":"status","unit":"svc"}"#);
    assert_eq!(r["ok"]["units"][0]["state"], "up", "{r}");
    // The half line, once finished, is answered.
    half.send(b"\"status\",\"unit\":\"svc\"}\n");
    let r = half.reply().expect("a reply");
    assert_eq!(r["ok"]["units"][0]["name"], "svc", "{r}");
}

#[test]
fn client_without_a_daemon_says_how_to_start_one() {
    let s = Sandbox::new();
    let err = s.fails(&["status"], 3);
    assert!(err.contains("no kennel daemon is listening"), "{err}");
    assert!(err.contains(&s.socket.display().to_string()), "{err}");
    assert!(err.contains("kennel up"), "{err}");
    let err = s.fails(&["start", "x"], 3);
    assert!(err.contains("kennel up"), "{err}");
}

#[test]
fn requests_are_logged_as_an_operator_reads_them() {
    let s = Sandbox::new();
    sleeper(&s);
    s.up();
    s.wait_state("svc", "up");
    s.ok(&["exec", "svc", "sh", "-c", "exit 0"]);
    s.ok(&["restart", "--no-wait", "svc"]);
    let out = s.daemon_output();
    assert!(
        out.contains("control request: exec in svc: sh -c 'exit 0'"),
        "{out}"
    );
    assert!(
        out.contains("control request: restart svc (no wait)"),
        "{out}"
    );
    // No Rust struct in sight.
    for debug in ["ExecRequest", "Restart {", "rows:", "Some("] {
        assert!(!out.contains(debug), "{debug}: {out}");
    }
}

/// A gid no group file names: membership can only come from the process's credentials.
const SOCKET_GID: &str = "47311";

/// `kennel status` as uid 65534 with gid `gid` and supplementary `groups` (setpriv).
fn status_as(s: &Sandbox, gid: &str, groups: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.arg("--reuid=65534").arg(format!("--regid={gid}"));
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        cmd.arg(format!("--groups={groups}"));
    }
    cmd.args(["--", crate::harness::KENNEL, "status"])
        .env("KENNEL_SOCKET", &s.socket);
    s.output(
        cmd,
        &format!("kennel status as gid {gid}, groups {groups:?}"),
    )
}

#[test]
fn socket_group_admits_its_processes_by_their_credentials_and_refuses_others() {
    let s = Sandbox::new();
    sleeper(&s);
    s.up_with(&["--socket-group", SOCKET_GID]);
    s.wait_state("svc", "up");
    let meta = std::fs::metadata(&s.socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(
        std::os::unix::fs::MetadataExt::gid(&meta).to_string(),
        SOCKET_GID
    );
    // In the group as a supplementary group, or as the process's own group: admitted.
    for (gid, groups) in [("65534", SOCKET_GID), (SOCKET_GID, "")] {
        let out = status_as(&s, gid, groups);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "gid {gid} groups {groups}: {err}"
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("svc"));
    }
    // Not in it: the socket file's mode refuses it; and the daemon does on an open socket.
    let out = status_as(&s, "65534", "");
    assert_eq!(out.status.code(), Some(1));
    std::fs::set_permissions(&s.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = status_as(&s, "65534", "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("for root and group 47311; uid 65534 is refused"),
        "{err}"
    );
}
