//! Sockets held by kennel (docs/sockets.md): a unit's `[[socket]]`s reach its service as
//! `LISTEN_FDS` (with `LISTEN_PID` its own pid and `LISTEN_FDNAMES`), stay open while the
//! service is stopped or restarting (a connection then waits instead of being refused),
//! start a socket-activated unit on the first connection, serve host traffic from inside a
//! container with a network namespace of its own, and come from systemd `.socket` files.
//! The service is `integration/sockets/serve.c`. Unix sockets in the test's directory;
//! TCP only on loopback in a network namespace the test made.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::ctr::Rig;
use crate::harness::Sandbox;

/// The layer holding `/bin/serve`, built once per test process.
fn serve_layer() -> &'static Path {
    static LAYER: OnceLock<PathBuf> = OnceLock::new();
    LAYER.get_or_init(|| crate::ctr::c_layer("sockets-layer", "sockets/serve.c", "serve"))
}

/// The service on the host: the layer's binary by its path.
fn serve() -> String {
    serve_layer().join("bin/serve").display().to_string()
}

/// One request on a stream socket: `text` out, the one-line answer back.
fn ask(stream: &mut impl ReadWrite, text: &str) -> String {
    stream
        .write_all(text.as_bytes())
        .expect("write the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    answer
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Unit `name` running serve, with more `[service]` lines and then more sections.
fn serve_unit(s: &Sandbox, name: &str, service: &str, more: &str) {
    s.unit(
        name,
        &format!("[service]\ncommand = [\"{}\"]\n{service}{more}", serve()),
    );
}

/// The permission bits of the file at `path`.
fn mode_of(path: &Path) -> u32 {
    let meta = std::fs::metadata(path).expect("stat the socket");
    meta.permissions().mode() & 0o7777
}

fn ask_unix(path: &Path, text: &str) -> String {
    let mut c = UnixStream::connect(path).expect("connect to the held socket");
    ask(&mut c, text)
}

#[test]
fn a_unit_gets_listen_fds_and_serves_on_its_held_sockets() {
    let s = Sandbox::new();
    let sockets = format!(
        "[[socket]]\nlisten = \"unix:{}\"\nname = \"main\"\nmode = \"0600\"\n\
         [[socket]]\nlisten = \"unix:{}\"\nkind = \"datagram\"\nname = \"dgram\"\n",
        s.p("run/web.sock"),
        s.p("run/web.dgram"),
    );
    serve_unit(&s, "web", "", &sockets);
    s.up();
    s.wait_state("web", "up");
    s.wait_log("web", "stdout", "serving");
    let serving: Vec<String> = s
        .records("web")
        .into_iter()
        .filter(|r| r.stream == "stdout")
        .map(|r| r.text)
        .collect();
    assert_eq!(serving, ["serving LISTEN_FDS=2 LISTEN_FDNAMES=main:dgram"]);
    let pid = s.pid("web");
    // LISTEN_PID was the service's own pid (serve.c refuses to run otherwise), and the
    // stream socket answers.
    assert_eq!(
        ask_unix(&s.path("run/web.sock"), "hello"),
        format!("main pid={pid} got=hello\n")
    );
    assert_eq!(mode_of(&s.path("run/web.sock")), 0o600);
    // The datagram socket.
    let me = UnixDatagram::bind(s.path("client.dgram")).expect("bind the client");
    me.send_to(b"ping", s.path("run/web.dgram"))
        .expect("send a datagram");
    let mut buf = [0u8; 256];
    let n = me.recv(&mut buf).expect("the answer");
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        format!("dgram pid={pid} got=ping\n")
    );
    // kennel's shutdown removes the sockets' files.
    s.ok(&["shutdown"]);
    s.wait_exit();
    assert!(!s.path("run/web.sock").exists());
}

#[test]
fn a_connection_waits_while_the_service_is_stopped_or_restarting() {
    let s = Sandbox::new();
    let socket = format!("[[socket]]\nlisten = \"unix:{}\"\n", s.p("web.sock"));
    serve_unit(
        &s,
        "web",
        "",
        &format!("[restart]\ndelay = \"2s\"\n{socket}"),
    );
    s.up();
    s.wait_state("web", "up");
    let first = s.pid("web");
    let path = s.path("web.sock");

    // Stopped: the connection is accepted by the kernel into the backlog and waits.
    s.ok(&["stop", "web"]);
    assert_eq!(s.state("web"), "inactive");
    let mut waiting = UnixStream::connect(&path).expect("connect while stopped");
    waiting.write_all(b"while-stopped").expect("write");
    s.ok(&["start", "web"]);
    let second = s.pid("web");
    assert_ne!(first, second);
    let mut answer = String::new();
    waiting.read_to_string(&mut answer).expect("read");
    assert_eq!(answer, format!("web pid={second} got=while-stopped\n"));

    // Crashed, waiting for its restart delay: the same.
    assert_eq!(ask_unix(&path, "crash"), "");
    s.wait_for("web to be waiting for its restart", || {
        s.detail("web").starts_with("restart in")
    });
    let mut waiting = UnixStream::connect(&path).expect("connect while restarting");
    waiting.write_all(b"while-restarting").expect("write");
    let mut answer = String::new();
    waiting.read_to_string(&mut answer).expect("read");
    let third = s.pid("web");
    assert_eq!(answer, format!("web pid={third} got=while-restarting\n"));
    assert_ne!(third, second);
}

#[test]
fn a_socket_activated_unit_starts_on_its_first_connection() {
    let s = Sandbox::new();
    let socket = format!("[[socket]]\nlisten = \"unix:{}\"\n", s.p("lazy.sock"));
    serve_unit(&s, "lazy", "activate = \"socket\"\n", &socket);
    s.up();
    // Bound at `kennel up`, not started.
    s.wait_for("the socket", || s.path("lazy.sock").exists());
    let st = s.status("lazy");
    assert_eq!(st["state"], "inactive", "{st}");
    assert!(st["pid"].is_null(), "{st}");

    let answer = ask_unix(&s.path("lazy.sock"), "first");
    let pid = s.pid("lazy");
    assert_eq!(answer, format!("lazy pid={pid} got=first\n"));
    s.wait_log("lazy", "kennel", "activity on its socket");

    // It ends (successfully, so not restarted): the next connection starts it again.
    assert_eq!(
        ask_unix(&s.path("lazy.sock"), "exit"),
        format!("lazy pid={pid} got=exit\n")
    );
    s.wait_state("lazy", "exited");
    let answer = ask_unix(&s.path("lazy.sock"), "again");
    let again = s.pid("lazy");
    assert_ne!(again, pid);
    assert_eq!(answer, format!("lazy pid={again} got=again\n"));
}

#[test]
fn a_container_without_a_network_serves_a_host_tcp_socket() {
    if !crate::skip::need_root() {
        return;
    }
    let s = Rig::with_net();
    s.unit(
        "site",
        &format!(
            "[service]\ncommand = [\"/bin/serve\"]\n\
             [container]\nrootfs = [\"busybox\", \"{}\"]\nnetwork = \"none\"\n\
             [[socket]]\nlisten = \"tcp:127.0.0.1:8080\"\nname = \"http\"\n",
            serve_layer().display()
        ),
    );
    s.up();
    s.wait_state("site", "up");
    // Its own network namespace (only lo), not kennel's.
    let kennels = std::fs::read_link(s.netns().expect("the test's netns"))
        .expect("readlink the netns")
        .display()
        .to_string();
    assert_ne!(s.net_ns("site"), kennels);
    // Connected to from kennel's (the "host's") network namespace: served from inside.
    let netns = s.netns().expect("netns");
    let answer = std::thread::spawn(move || {
        let ns = std::fs::File::open(&netns).expect("open the netns");
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let mut c = std::net::TcpStream::connect("127.0.0.1:8080").expect("connect");
        ask(&mut c, "GET")
    })
    .join()
    .expect("the client thread");
    assert!(answer.starts_with("http pid="), "{answer}");
    assert!(answer.ends_with(" got=GET\n"), "{answer}");
}

#[test]
fn a_socket_file_and_its_service_are_activated_on_the_first_connection() {
    let s = Sandbox::new();
    std::fs::write(
        s.units.join("echo.socket"),
        format!(
            "[Unit]\nDescription=echo's socket\n[Socket]\nListenStream={}\n\
             FileDescriptorName=echo\nSocketMode=0660\nBacklog=8\n\
             [Install]\nWantedBy=sockets.target\n",
            s.p("echo.sock")
        ),
    )
    .expect("write echo.socket");
    std::fs::write(
        s.units.join("echo.service"),
        format!("[Service]\nExecStart={}\n", serve()),
    )
    .expect("write echo.service");
    // The pair loads with no warning: a service without [Install] is the socket's.
    let check = s.ok(&["check", &s.units.display().to_string()]);
    assert_eq!(check.trim(), "1 unit OK");
    s.up();
    s.wait_for("the socket", || s.path("echo.sock").exists());
    assert_eq!(s.state("echo"), "inactive");
    assert_eq!(mode_of(&s.path("echo.sock")), 0o660);
    let answer = ask_unix(&s.path("echo.sock"), "hi");
    let pid = s.pid("echo");
    assert_eq!(answer, format!("echo pid={pid} got=hi\n"));
}

#[test]
fn a_socket_that_cannot_be_bound_fails_the_start_saying_why() {
    let s = Sandbox::new();
    // A file that is not a socket is never replaced.
    std::fs::write(s.path("taken"), "mine\n").expect("write the file");
    let socket = format!("[[socket]]\nlisten = \"unix:{}\"\n", s.p("taken"));
    serve_unit(
        &s,
        "web",
        "",
        &format!("[restart]\npolicy = \"no\"\n{socket}"),
    );
    s.up();
    s.wait_state("web", "failed");
    let detail = s.detail("web");
    assert!(
        detail.contains(&format!(
            "bind unix:{}: the path exists and is not a socket",
            s.p("taken")
        )),
        "{detail}"
    );
    assert_eq!(s.read("taken").as_deref(), Some("mine\n"));
}

#[test]
fn a_reload_that_changes_or_removes_a_units_sockets_lets_go_of_the_old_ones() {
    let s = Sandbox::new();
    let socket = |path: &str| format!("[[socket]]\nlisten = \"unix:{}\"\n", s.p(path));
    serve_unit(&s, "web", "", &socket("old.sock"));
    serve_unit(&s, "gone", "", &socket("gone.sock"));
    s.up();
    s.wait_state("web", "up");
    s.wait_state("gone", "up");
    assert!(ask_unix(&s.path("old.sock"), "a").starts_with("web pid="));

    serve_unit(&s, "web", "", &socket("new.sock"));
    s.remove_unit("gone");
    s.ok(&["reload"]);
    s.wait_state("web", "up");
    s.wait_for("the old sockets' files to go, the new one to come", || {
        !s.path("old.sock").exists() && !s.path("gone.sock").exists() && s.path("new.sock").exists()
    });
    let answer = ask_unix(&s.path("new.sock"), "b");
    let pid = s.pid("web");
    assert_eq!(answer, format!("web pid={pid} got=b\n"));
}
