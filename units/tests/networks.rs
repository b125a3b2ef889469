//! Bridge networks in unit files: `network = "bridge[:NAME]"`, `address`, `ports`,
//! `aliases`, and the cross-unit checks against the networks directory.

use std::fs;
use std::path::{Path, PathBuf};

use kennel_units::{check_paths_with, load_paths_with, Network, Networks};

fn dir(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("kennel-units-networks")
        .join(test);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    for (name, text) in files {
        if let Some(parent) = Path::new(name).parent() {
            fs::create_dir_all(d.join(parent)).unwrap();
        }
        fs::write(d.join(name), text).unwrap();
    }
    d
}

fn unit(container: &str) -> String {
    format!("[service]\ncommand = [\"/bin/true\"]\n[container]\nrootfs = [\"base\"]\n{container}\n")
}

fn errors(d: &Path, diags: Vec<kennel_units::Diagnostic>) -> Vec<String> {
    let prefix = format!("{}/", d.display());
    diags
        .iter()
        .map(|x| x.to_string().replace(&prefix, "D/"))
        .collect()
}

#[test]
fn bridge_units_load_with_their_keys() {
    let d = dir(
        "load",
        &[
            ("nets/back.toml", "subnet = \"10.90.0.0/24\"\n"),
            (
                "units/a.toml",
                &unit("network = \"bridge\"\naddress = \"10.89.0.10\"\nports = [\"8080:80\", \"127.0.0.1:5353:53/udp\", \"9000-9003:9000-9003\"]\naliases = [\"db\"]"),
            ),
            ("units/b.toml", &unit("network = \"bridge:back\"")),
        ],
    );
    let nets = Networks::load(&d.join("nets")).unwrap();
    assert_eq!(nets.names().collect::<Vec<_>>(), ["back", "kennel"]);
    let set = load_paths_with(&[d.join("units")], &nets).unwrap();
    let a = set.get("a").unwrap().container.as_ref().unwrap();
    assert_eq!(a.network, Network::Bridge("kennel".into()));
    assert_eq!(a.address, Some("10.89.0.10".parse().unwrap()));
    assert_eq!(a.ports.len(), 3);
    assert_eq!(a.aliases, ["db"]);
    // The daemon makes the namespace: the container does not create one.
    assert!(!a.namespaces.contains(&kennel_units::Namespace::Net));
    let b = set.get("b").unwrap().container.as_ref().unwrap();
    assert_eq!(b.network, Network::Bridge("back".into()));
}

#[test]
fn check_reports_network_problems_at_the_value() {
    let d = dir(
        "check",
        &[
            ("a.toml", &unit("network = \"bridge:backk\"")),
            ("b.toml", &unit("network = \"bridge\"\naddress = \"10.90.0.5\"")),
            ("c.toml", &unit("network = \"bridge\"\naddress = \"10.89.0.7\"\nports = [\"8080:80\"]")),
            ("d.toml", &unit("network = \"bridge\"\naddress = \"10.89.0.7\"\nports = [\"8000-8080:8000-8080\"]")),
            ("e.toml", &unit("network = \"host\"\nports = [\"80:80\"]\naddress = \"10.89.0.9\"\naliases = [\"x\"]")),
            ("f.toml", &unit("network = \"bridge\"\nports = [\"9000-9003:1-2\", \"70000:1\", \"1:1\", \"1:2\"]")),
            ("g.toml", &unit("network = \"bridge\"\naddress = \"10.89.0.1\"")),
            ("h.toml", &unit("network = \"bridge\"\naddress = \"fd00::1\"")),
        ],
    );
    let nets = dir(
        "check-nets",
        &[("back.toml", "subnet = \"10.90.0.0/24\"\n")],
    );
    let nets = Networks::load(&nets).unwrap();
    let e = errors(
        &d,
        check_paths_with(std::slice::from_ref(&d), &nets).unwrap_err(),
    );
    let expected = [
        "D/a.toml:5:11: container.network: unknown network \"backk\"; did you mean \"back\"?; define it in a file backk.toml of the networks directory (kennel --networks)",
        "D/b.toml:6:11: container.address: 10.90.0.5 is not an address of network \"kennel\" (10.89.0.0/16, not the gateway 10.89.0.1, the network or the broadcast address); pick another",
        "D/d.toml:6:11: container.address: 10.89.0.7 is already unit \"c\"'s on network \"kennel\"; pick another",
        "D/d.toml:7:10: container.ports: host port 8000/tcp is already published by unit \"c\" (8080:80/tcp); pick another host port",
        "D/e.toml:6:9: container.ports: needs network = \"bridge\" or \"bridge:NAME\" (the container has no address of its own on a network kennel manages)",
        "D/e.toml:7:11: container.address: needs network = \"bridge\" or \"bridge:NAME\" (the container has no address of its own on a network kennel manages)",
        "D/e.toml:8:11: container.aliases: needs network = \"bridge\" or \"bridge:NAME\" (the container has no address of its own on a network kennel manages)",
        "D/f.toml:6:10: container.ports[0]: invalid port mapping \"9000-9003:1-2\": the host range has 4 ports and the container range 2; make them the same length",
        "D/f.toml:6:27: container.ports[1]: invalid port mapping \"70000:1\": \"70000\" is not a port (1..=65535)",
        "D/f.toml:6:45: container.ports[3]: host port 1 is already published by container.ports[2]",
        "D/g.toml:6:11: container.address: 10.89.0.1 is not an address of network \"kennel\" (10.89.0.0/16, not the gateway 10.89.0.1, the network or the broadcast address); pick another",
        "D/h.toml:6:11: container.address: expected an IPv4 address (on a network with subnet6, the IPv6 address is the one at the same offset)",
    ];
    assert_eq!(e, expected);
}

#[test]
fn network_files_are_checked_with_positions() {
    let d = dir(
        "netfiles",
        &[
            ("a.toml", "subnet = \"10.90.0.1/24\"\n"),
            (
                "b.toml",
                "subnet = \"10.91.0.0/24\"\nbridge = \"kennel0\"\n",
            ),
            (
                "c.toml",
                "subnet = \"10.92.0.0/24\"\nbridge = \"kennel0\"\n",
            ),
        ],
    );
    let e = errors(&d, Networks::load(&d).unwrap_err());
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e.iter().any(|x| x
            == "D/c.toml:1:1: bridge \"kennel0\" is also network \"b\"'s; set a bridge of its own"),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|x| x.starts_with("D/a.toml:1:10: subnet: invalid subnet")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|x| x.contains("kennel0") && x.contains("built-in")),
        "{e:?}"
    );
    // A missing directory: only the built-in network.
    let none = Networks::load(&d.join("missing")).unwrap();
    assert_eq!(none.names().collect::<Vec<_>>(), ["kennel"]);
}
