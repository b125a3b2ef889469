//! `[[socket]]` and `service.activate`: the typed result with defaults, and every problem
//! with its `FILE:LINE:COL`.

use std::fs;
use std::path::{Path, PathBuf};

use kennel_units::{load_dir, parse_unit, Activate, Listen, UnixKind};

fn errors(text: &str) -> Vec<String> {
    match parse_unit("web", Path::new("u/web.toml"), text) {
        Ok(unit) => panic!("expected errors, parsed {unit:?}"),
        Err(diags) => diags.iter().map(ToString::to_string).collect(),
    }
}

const S: &str = "[service]\ncommand = [\"a\"]\n"; // lines 1-2

#[test]
fn sockets_with_defaults_and_every_key() {
    let text = format!(
        "{S}activate = \"socket\"\n\
         [[socket]]\nlisten = \"tcp:127.0.0.1:8080\"\n\
         [[socket]]\nlisten = \"udp:[::1]:53\"\nname = \"dns\"\nreuse_port = true\n\
         [[socket]]\nlisten = \"unix:/run/web.sock\"\nkind = \"seqpacket\"\nbacklog = 16\n\
         mode = \"0660\"\nuser = \"www-data\"\ngroup = \"1000\"\n"
    );
    let u = parse_unit("web", Path::new("web.toml"), &text).unwrap();
    assert_eq!(u.service.activate, Activate::Socket);
    assert_eq!(u.sockets.len(), 3);
    let tcp = &u.sockets[0];
    assert_eq!(tcp.listen, Listen::Tcp("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(
        (tcp.name.as_str(), tcp.backlog, tcp.reuse_port, tcp.mode),
        ("web", 4096, false, 0o666)
    );
    assert_eq!(
        u.sockets[1].listen,
        Listen::Udp("[::1]:53".parse().unwrap())
    );
    assert_eq!(
        (u.sockets[1].name.as_str(), u.sockets[1].reuse_port),
        ("dns", true)
    );
    let unix = &u.sockets[2];
    assert_eq!(
        unix.listen,
        Listen::Unix {
            path: "/run/web.sock".into(),
            kind: UnixKind::Seqpacket
        }
    );
    assert_eq!((unix.backlog, unix.mode), (16, 0o660));
    assert_eq!(unix.user.as_deref(), Some("www-data"));
    assert_eq!(unix.group.as_deref(), Some("1000"));
    // Inline tables too; activate defaults to "up".
    let u = parse_unit(
        "web",
        Path::new("web.toml"),
        &format!("socket = [{{ listen = \"tcp:0.0.0.0:80\" }}]\n{S}"),
    )
    .unwrap();
    assert_eq!(u.service.activate, Activate::Up);
    assert_eq!(u.sockets.len(), 1);
}

#[test]
fn socket_problems_at_their_position() {
    assert_eq!(
        errors(&format!(
            "{S}[[socket]]\nlisten = \"tcp:localhost:80\"\n[[socket]]\nname = \"a:b\"\n"
        )),
        [
            "u/web.toml:4:10: socket[0].listen: invalid address \"tcp:localhost:80\": \"localhost\" is not an IP address (names are not resolved; 0.0.0.0 or [::] for every address)",
            "u/web.toml:5:1: socket[1].listen is required",
            "u/web.toml:6:8: socket[1].name: \"a:b\" may hold only printable ASCII characters other than ':' and space",
        ]
    );
    assert_eq!(
        errors(&format!(
            "{S}[[socket]]\nlisten = \"tcp:0.0.0.0:80\"\n[[socket]]\nlisten = \"tcp:127.0.0.1:80\"\n"
        )),
        ["u/web.toml:6:10: socket[1].listen: tcp:127.0.0.1:80 clashes with socket[0] (tcp:0.0.0.0:80); listen once, or set reuse_port on both"]
    );
    assert_eq!(
        errors(&format!(
            "{S}[[socket]]\nlisten = \"udp:127.0.0.1:53\"\nkind = \"datagram\"\nbacklog = 5\nmode = \"0600\"\n"
        )),
        [
            "u/web.toml:5:8: socket[0].kind: only for unix: sockets (tcp: is a stream, udp: datagrams)",
            "u/web.toml:6:11: socket[0].backlog: a datagram socket has no backlog",
            "u/web.toml:7:8: socket[0].mode: only for unix: sockets (a file has a mode and an owner, a port has not)",
        ]
    );
    assert_eq!(
        errors(&format!(
            "{S}[[socket]]\nlisten = \"unix:/x\"\nmode = \"0999\"\nbogus = 1\n"
        )),
        [
            "u/web.toml:5:8: socket[0].mode: \"0999\" is not an octal mode such as \"0660\"",
            "u/web.toml:6:1: unknown key \"bogus\" in [socket[0]]",
        ]
    );
    assert_eq!(
        errors("[service]\ncommand = [\"a\"]\nactivate = \"socket\"\n"),
        ["u/web.toml:3:12: service.activate: \"socket\" needs at least one [[socket]] to listen on"]
    );
    assert_eq!(
        errors("[service]\ncommand = [\"a\"]\nactivate = \"sockets\"\n"),
        ["u/web.toml:3:12: service.activate: invalid value \"sockets\": expected one of \"up\", \"socket\"; did you mean \"socket\"?"]
    );
}

#[test]
fn the_same_address_in_two_units_is_an_error_at_the_second() {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kennel-units-sockets");
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    let unit = |listen: &str, reuse: bool| {
        format!("{S}[[socket]]\nlisten = \"{listen}\"\nreuse_port = {reuse}\n")
    };
    fs::write(d.join("a.toml"), unit("unix:/run/a.sock", false)).unwrap();
    fs::write(d.join("b.toml"), unit("unix:/run/a.sock", false)).unwrap();
    fs::write(d.join("c.toml"), unit("tcp:127.0.0.1:80", true)).unwrap();
    fs::write(d.join("e.toml"), unit("tcp:127.0.0.1:80", true)).unwrap();
    let diags = load_dir(&d).unwrap_err();
    let all: Vec<String> = diags
        .iter()
        .map(|x| x.to_string().replace(&format!("{}/", d.display()), "D/"))
        .collect();
    assert_eq!(
        all,
        ["D/b.toml:4:10: socket: unix:/run/a.sock clashes with unit \"a\"'s unix:/run/a.sock; listen once, or set reuse_port on both"]
    );
}
