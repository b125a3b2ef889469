//! `[container]` and `[resources]`: every key with its value and default, every error with
//! its exact `FILE:LINE:COL: message`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kennel_units::{
    parse_unit, CgroupAccess, Container, IdMap, Layer, Namespace, Network, Resources, Unit, Volume,
};

fn parse(text: &str) -> Unit {
    parse_named("web", text)
}

fn parse_named(name: &str, text: &str) -> Unit {
    match parse_unit(name, Path::new("u/web.toml"), text) {
        Ok(unit) => unit,
        Err(diags) => panic!(
            "unexpected errors:\n{}",
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn errors(text: &str) -> Vec<String> {
    errors_named("web", text)
}

fn errors_named(name: &str, text: &str) -> Vec<String> {
    match parse_unit(name, Path::new("u/web.toml"), text) {
        Ok(unit) => panic!("expected errors, parsed {unit:?}"),
        Err(diags) => diags.iter().map(ToString::to_string).collect(),
    }
}

const S: &str = "[service]\ncommand = [\"/bin/httpd\"]\n"; // lines 1-2

/// A `[container]` section (line 3) with `rootfs` (line 4) and then `rest` (line 5 on).
fn c(rest: &str) -> String {
    format!("{S}[container]\nrootfs = [\"busybox\"]\n{rest}")
}

fn container(rest: &str) -> Container {
    parse(&c(rest)).container.unwrap()
}

fn ns(names: &[Namespace]) -> BTreeSet<Namespace> {
    names.iter().copied().collect()
}

fn p(s: &str) -> std::path::PathBuf {
    s.into()
}

// ---------------------------------------------------------------------------------------
// [container]: values and defaults

#[test]
fn every_container_key_is_parsed() {
    let unit = parse(&format!(
        r#"{S}[container]
rootfs = ["busybox", "/srv/layers/site", "base_2.1@x"]
namespaces = ["pid", "uts", "ipc", "net", "cgroup", "pid", "user"]
uid_map = [{{ container = 0, host = 100000, size = 65536 }}]
gid_map = ["0 200000 65536"]
hostname = "www.example"
network = "none"
init = false
read_only = true
persist = false
cgroup = "none"
hosts = {{ db = "127.0.0.1", "cache.local" = "::1" }}
dns = ["192.0.2.53", "2001:db8::53"]
volumes = [
  {{ source = "/srv/www", target = "/www", read_only = true }},
  {{ type = "bind", source = "/srv/conf", target = "/etc/site", idmap = false }},
  {{ type = "tmpfs", target = "/tmp", size = "64M" }},
  {{ type = "tmpfs", target = "/run" }},
  {{ type = "volume", name = "data", target = "/data" }},
  {{ type = "volume", name = "cache", target = "/data/cache", read_only = true }},
]
"#
    ));
    let expected = Container {
        image: None,
        rootfs: vec![
            Layer::Named("busybox".into()),
            Layer::Path(p("/srv/layers/site")),
            Layer::Named("base_2.1@x".into()),
        ],
        namespaces: Namespace::ALL.into_iter().collect(),
        uid_map: vec![IdMap {
            container: 0,
            host: 100000,
            size: 65536,
        }],
        gid_map: vec![IdMap {
            container: 0,
            host: 200000,
            size: 65536,
        }],
        hostname: "www.example".into(),
        network: Network::None,
        address: None,
        ports: Vec::new(),
        aliases: Vec::new(),
        cni_args: Default::default(),
        init: false,
        read_only: true,
        persist: false,
        cgroup: CgroupAccess::None,
        hosts: BTreeMap::from([
            ("db".into(), "127.0.0.1".into()),
            ("cache.local".into(), "::1".into()),
        ]),
        dns: Some(vec!["192.0.2.53".into(), "2001:db8::53".into()]),
        volumes: vec![
            Volume::Bind {
                source: p("/srv/www"),
                target: p("/www"),
                read_only: true,
                idmap: true,
            },
            Volume::Bind {
                source: p("/srv/conf"),
                target: p("/etc/site"),
                read_only: false,
                idmap: false,
            },
            Volume::Tmpfs {
                target: p("/tmp"),
                size: Some(64 << 20),
            },
            Volume::Tmpfs {
                target: p("/run"),
                size: None,
            },
            Volume::Named {
                name: "data".into(),
                target: p("/data"),
                read_only: false,
                idmap: true,
            },
            Volume::Named {
                name: "cache".into(),
                target: p("/data/cache"),
                read_only: true,
                idmap: true,
            },
        ],
        security: Default::default(),
    };
    assert_eq!(unit.container, Some(expected));
    assert!(unit.resources.is_empty());
    assert!(unit.service.requires.is_empty() && unit.service.after.is_empty());
}

#[test]
fn container_defaults() {
    let unit = parse(&c(""));
    let got = unit.container.unwrap();
    assert_eq!(
        got,
        Container::new(vec![Layer::Named("busybox".into())], "web")
    );
    assert_eq!(got.namespaces, Namespace::defaults());
    assert_eq!(got.hostname, "web");
    assert_eq!(got.network, Network::None);
    assert!(got.init && !got.read_only && !got.persist);
    assert_eq!(got.cgroup, CgroupAccess::None);
    assert!(got.hosts.is_empty() && got.volumes.is_empty());
    assert_eq!(got.dns, None);
    assert!(unit.resources.is_empty());
}

#[test]
fn container_as_inline_and_dotted_tables() {
    let unit = parse(&format!("container = {{ rootfs = [\"/l\"] }}\n{S}"));
    assert_eq!(unit.container.unwrap().rootfs, [Layer::Path(p("/l"))]);
    let unit = parse("container.rootfs = [\"a\"]\nservice.command = [\"x\"]\n");
    assert_eq!(unit.container.unwrap().rootfs, [Layer::Named("a".into())]);
    let unit = parse(&c("[container.hosts]\ndb = \"10.0.0.2\"\n"));
    assert_eq!(unit.container.unwrap().hosts["db"], "10.0.0.2");
}

#[test]
fn mount_is_implied_and_init_follows_pid() {
    let got = container("namespaces = [\"uts\", \"net\"]\n");
    assert_eq!(
        got.namespaces,
        ns(&[Namespace::Mount, Namespace::Uts, Namespace::Net])
    );
    assert!(!got.init);
    let got = container("namespaces = [\"mount\", \"net\", \"pid\"]\n");
    assert_eq!(
        got.namespaces,
        ns(&[Namespace::Mount, Namespace::Net, Namespace::Pid])
    );
    assert!(got.init);
    let got = container("namespaces = []\nnetwork = \"host\"\n");
    assert_eq!(got.namespaces, ns(&[Namespace::Mount]));
    assert!(!got.init);
    // A hostname is only checked and used with uts; the default stays the unit name.
    let got = parse_named("a_b", &c("namespaces = [\"net\"]\n"))
        .container
        .unwrap();
    assert_eq!(got.hostname, "a_b");
}

#[test]
fn network_modes_and_the_net_namespace() {
    let got = container("network = \"host\"\n");
    assert_eq!(got.network, Network::Host);
    let mut expected = Namespace::defaults();
    expected.remove(&Namespace::Net);
    assert_eq!(got.namespaces, expected);

    let unit = parse(&c("network = \"unit:db\"\n"));
    let got = unit.container.as_ref().unwrap();
    assert_eq!(got.network, Network::Unit("db".into()));
    assert_eq!(got.network_unit(), Some("db"));
    assert_eq!(got.namespaces, expected);
    assert_eq!(unit.service.requires, ["db"]);
    assert_eq!(unit.service.after, ["db"]);

    let got = container("network = \"none\"\nnamespaces = [\"net\"]\n");
    assert_eq!(got.network, Network::None);
    assert_eq!(got.namespaces, ns(&[Namespace::Mount, Namespace::Net]));
}

#[test]
fn network_unit_is_merged_into_requires_and_after_once() {
    let unit = parse(
        "[service]\ncommand = [\"a\"]\nafter = [\"db\", \"log\"]\nrequires = [\"auth\"]\n[container]\nrootfs = [\"x\"]\nnetwork = \"unit:db\"\n",
    );
    assert_eq!(unit.service.after, ["db", "log", "auth"]);
    assert_eq!(unit.service.requires, ["auth", "db"]);
    let unit = parse(
        "[service]\ncommand = [\"a\"]\nrequires = [\"db\"]\n[container]\nrootfs = [\"x\"]\nnetwork = \"unit:db\"\n",
    );
    assert_eq!(unit.service.after, ["db"]);
    assert_eq!(unit.service.requires, ["db"]);
}

#[test]
fn volumes_as_an_array_of_tables() {
    let got = container(
        "[[container.volumes]]\nsource = \"/srv/www\"\ntarget = \"/www\"\n\n[[container.volumes]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\nsize = \"1G\"\n",
    );
    assert_eq!(
        got.volumes,
        [
            Volume::Bind {
                source: p("/srv/www"),
                target: p("/www"),
                read_only: false,
                idmap: true
            },
            Volume::Tmpfs {
                target: p("/tmp"),
                size: Some(1 << 30)
            },
        ]
    );
    assert_eq!(got.volumes[1].target(), &p("/tmp"));
}

#[test]
fn empty_dns_means_no_nameservers() {
    assert_eq!(container("dns = []\n").dns, Some(vec![]));
}

// ---------------------------------------------------------------------------------------
// [container]: errors

#[test]
fn rootfs_errors() {
    assert_eq!(
        errors(&format!("{S}[container]\nhostname = \"x\"\n")),
        ["u/web.toml:3:1: container.rootfs is required"]
    );
    assert_eq!(
        errors(&format!("{S}[container]\nrootfs = []\n")),
        ["u/web.toml:4:10: container.rootfs: must not be empty"]
    );
    assert_eq!(
        errors(&format!("{S}[container]\nrootfs = \"busybox\"\n")),
        ["u/web.toml:4:10: container.rootfs: expected an array of layers such as [\"busybox\", \"/srv/layers/site\"], found string \"busybox\""]
    );
    assert_eq!(
        errors(&format!(
            "{S}[container]\nrootfs = [\"busybox:1.36\", \"lib/x\", \".hidden\", 3, \"\", \"a\", \"/l\", \"a\", \"/l\"]\n"
        )),
        [
            "u/web.toml:4:11: container.rootfs[0]: invalid layer \"busybox:1.36\": expected a layer name (letters, digits and _ . @ -, not starting with \".\") (layer names have no tags) or an absolute path",
            "u/web.toml:4:27: container.rootfs[1]: invalid layer \"lib/x\": expected a layer name (letters, digits and _ . @ -, not starting with \".\") or an absolute path",
            "u/web.toml:4:36: container.rootfs[2]: invalid layer \".hidden\": expected a layer name (letters, digits and _ . @ -, not starting with \".\") or an absolute path",
            "u/web.toml:4:47: container.rootfs[3]: expected a layer name or an absolute path string, found integer 3",
            "u/web.toml:4:50: container.rootfs[4]: invalid layer \"\": expected a layer name (letters, digits and _ . @ -, not starting with \".\") or an absolute path",
            "u/web.toml:4:65: container.rootfs[7]: this layer is already listed",
            "u/web.toml:4:70: container.rootfs[8]: this layer is already listed",
        ]
    );
    assert_eq!(
        errors(&format!("container = 1\n{S}")),
        ["u/web.toml:1:13: container: expected a table, found integer 1"]
    );
}

#[test]
fn unknown_keys_in_container_and_resources() {
    assert_eq!(
        errors(&c(
            "hostnmae = \"x\"\nvolume = []\nzzz = 1\n[resources]\nmemory = \"1G\"\ncpus = 2\n"
        )),
        [
            "u/web.toml:5:1: unknown key \"hostnmae\" in [container]; did you mean \"hostname\"?",
            "u/web.toml:6:1: unknown key \"volume\" in [container]; did you mean \"volumes\"?",
            "u/web.toml:7:1: unknown key \"zzz\" in [container]",
            "u/web.toml:9:1: unknown key \"memory\" in [resources]; did you mean \"memory_max\"?",
            "u/web.toml:10:1: unknown key \"cpus\" in [resources]; did you mean \"cpu\"?",
        ]
    );
}

#[test]
fn namespace_errors() {
    assert_eq!(
        errors(&c("namespaces = [\"pdi\", \"usr\", \"mnt\", \"network\", 1, \"zz\"]\n")),
        [
            "u/web.toml:5:14: container.namespaces: network = \"none\" (the default) needs the \"net\" namespace; add \"net\" to container.namespaces or set network = \"host\"",
            "u/web.toml:5:15: container.namespaces[0]: unknown namespace \"pdi\": expected one of \"pid\", \"mount\", \"uts\", \"ipc\", \"net\", \"cgroup\", \"user\"; did you mean \"pid\"?",
            "u/web.toml:5:22: container.namespaces[1]: unknown namespace \"usr\": expected one of \"pid\", \"mount\", \"uts\", \"ipc\", \"net\", \"cgroup\", \"user\"; did you mean \"user\"?",
            "u/web.toml:5:29: container.namespaces[2]: unknown namespace \"mnt\": expected one of \"pid\", \"mount\", \"uts\", \"ipc\", \"net\", \"cgroup\", \"user\"; did you mean \"mount\"?",
            "u/web.toml:5:36: container.namespaces[3]: unknown namespace \"network\": expected one of \"pid\", \"mount\", \"uts\", \"ipc\", \"net\", \"cgroup\", \"user\"; did you mean \"net\"?",
            "u/web.toml:5:47: container.namespaces[4]: expected a namespace string, found integer 1",
            "u/web.toml:5:50: container.namespaces[5]: unknown namespace \"zz\": expected one of \"pid\", \"mount\", \"uts\", \"ipc\", \"net\", \"cgroup\", \"user\"",
        ]
    );
    assert_eq!(
        errors(&c("namespaces = \"pid\"\nnetwork = \"host\"\n")),
        ["u/web.toml:5:14: container.namespaces: expected an array of namespaces such as [\"pid\", \"mount\", \"net\"], found string \"pid\""]
    );
}

#[test]
fn network_errors() {
    assert_eq!(
        errors(&c("network = \"hots\"\n")),
        ["u/web.toml:5:11: container.network: invalid value \"hots\": expected \"none\", \"host\", \"unit:NAME\", \"bridge\", \"bridge:NAME\" or \"cni:NAME\"; did you mean \"host\"?"]
    );
    assert_eq!(
        errors(&c("network = \"brige\"\n")),
        ["u/web.toml:5:11: container.network: invalid value \"brige\": expected \"none\", \"host\", \"unit:NAME\", \"bridge\", \"bridge:NAME\" or \"cni:NAME\"; did you mean \"bridge\"?"]
    );
    assert_eq!(
        errors(&c("network = true\n")),
        ["u/web.toml:5:11: container.network: expected one of \"none\", \"host\", \"unit:NAME\", \"bridge\", \"bridge:NAME\" or \"cni:NAME\", found boolean true"]
    );
    assert_eq!(
        errors(&c("network = \"unit:a b\"\n")),
        ["u/web.toml:5:11: container.network: invalid unit name \"a b\": use only letters, digits and _ . @ -, not starting with \".\""]
    );
    assert_eq!(
        errors(&c("network = \"unit:\"\n")),
        ["u/web.toml:5:11: container.network: invalid unit name \"\": use only letters, digits and _ . @ -, not starting with \".\""]
    );
    assert_eq!(
        errors(&c("network = \"unit:web\"\n")),
        ["u/web.toml:5:11: container.network: a unit cannot join its own network namespace"]
    );
    assert_eq!(
        errors(&c("network = \"bridge:a b\"\n")),
        ["u/web.toml:5:11: container.network: invalid network name \"a b\": use only letters, digits and _ . @ -, not starting with \".\""]
    );
}

#[test]
fn network_and_net_namespace_must_agree() {
    assert_eq!(
        errors(&c("namespaces = [\"pid\", \"net\"]\nnetwork = \"host\"\n")),
        ["u/web.toml:5:22: container.namespaces[1]: \"net\" cannot be used with network = \"host\" (the container shares the host's network namespace); remove it"]
    );
    assert_eq!(
        errors(&c("namespaces = [\"net\"]\nnetwork = \"unit:db\"\n")),
        ["u/web.toml:5:15: container.namespaces[0]: \"net\" cannot be used with network = \"unit:db\" (the container joins db's network namespace); remove it"]
    );
    assert_eq!(
        errors(&c("namespaces = [\"pid\"]\nnetwork = \"none\"\n")),
        ["u/web.toml:6:11: container.network: network = \"none\" needs the \"net\" namespace; add \"net\" to container.namespaces or set network = \"host\""]
    );
    assert_eq!(
        errors(&c("namespaces = [\"pid\"]\n")),
        ["u/web.toml:5:14: container.namespaces: network = \"none\" (the default) needs the \"net\" namespace; add \"net\" to container.namespaces or set network = \"host\""]
    );
}

#[test]
fn hostname_errors() {
    assert_eq!(
        errors(&c("hostname = \"web_1\"\n")),
        ["u/web.toml:5:12: container.hostname: invalid hostname \"web_1\": use labels of 1 to 63 letters, digits and -, separated by \".\", not starting or ending with \"-\", 253 characters at most"]
    );
    assert_eq!(
        errors(&c("hostname = 7\n")),
        ["u/web.toml:5:12: container.hostname: expected a hostname string, found integer 7"]
    );
    assert_eq!(
        errors(&c("namespaces = [\"net\"]\nhostname = \"web\"\n")),
        ["u/web.toml:6:12: container.hostname: needs the \"uts\" namespace; add \"uts\" to container.namespaces"]
    );
    assert_eq!(
        errors_named("getty@tty1", &c("")),
        ["u/web.toml:3:1: container.hostname: the default hostname, the unit name \"getty@tty1\", is not a valid hostname; set container.hostname"]
    );
    let got = parse_named("getty@tty1", &c("hostname = \"getty\"\n"))
        .container
        .unwrap();
    assert_eq!(got.hostname, "getty");
}

#[test]
fn init_read_only_persist_errors() {
    assert_eq!(
        errors(&c("namespaces = [\"net\"]\ninit = true\n")),
        ["u/web.toml:6:8: container.init: needs the \"pid\" namespace (kennel's init runs as PID 1 in it); add \"pid\" to container.namespaces or set init = false"]
    );
    assert_eq!(
        errors(&c("init = \"yes\"\nread_only = 1\npersist = \"no\"\n")),
        [
            "u/web.toml:5:8: container.init: expected true or false, found string \"yes\"",
            "u/web.toml:6:13: container.read_only: expected true or false, found integer 1",
            "u/web.toml:7:11: container.persist: expected true or false, found string \"no\"",
        ]
    );
    assert_eq!(
        errors(&c("read_only = true\npersist = true\n")),
        ["u/web.toml:6:11: container.persist: cannot be true with read_only = true (a read-only container has no writable layer to keep)"]
    );
    assert!(container("persist = true\n").persist);
}

#[test]
fn cgroup_values_and_errors() {
    assert_eq!(container("cgroup = \"none\"\n").cgroup, CgroupAccess::None);
    assert_eq!(
        container("cgroup = \"delegate\"\n").cgroup,
        CgroupAccess::Delegate
    );
    assert_eq!(
        errors(&c("cgroup = \"delegated\"\n")),
        ["u/web.toml:5:10: container.cgroup: unknown value \"delegated\": expected \"none\" or \"delegate\"; did you mean \"delegate\"?"]
    );
    assert_eq!(
        errors(&c("cgroup = true\n")),
        ["u/web.toml:5:10: container.cgroup: expected \"none\" or \"delegate\", found boolean true"]
    );
    assert_eq!(
        errors(&c("namespaces = [\"pid\", \"net\"]\ncgroup = \"delegate\"\n")),
        ["u/web.toml:6:10: container.cgroup: \"delegate\" needs the \"cgroup\" namespace (the delegated subtree is its root); add \"cgroup\" to container.namespaces"]
    );
    assert_eq!(
        errors(&c(
            "namespaces = [\"pid\", \"net\", \"cgroup\", \"user\"]\nuid_map = [\"0 100000 65536\"]\ncgroup = \"delegate\"\n"
        )),
        ["u/web.toml:7:10: container.cgroup: \"delegate\" cannot be used with the \"user\" namespace yet (the delegated subtree belongs to the host's root, not the container's)"]
    );
    // Without a cgroup namespace, "none" is fine.
    assert_eq!(
        container("namespaces = [\"pid\", \"net\"]\ncgroup = \"none\"\n").cgroup,
        CgroupAccess::None
    );
}

#[test]
fn hosts_and_dns_errors() {
    assert_eq!(
        errors(&c("hosts = { db = \"10.0.0.300\", \"a b\" = \"::1\", ok = 1 }\ndns = [\"1.1.1.1\", \"dns.google\", 8]\n")),
        [
            "u/web.toml:5:16: container.hosts.db: invalid IP address \"10.0.0.300\"",
            "u/web.toml:5:30: container.hosts.a b: invalid hostname \"a b\": use labels of 1 to 63 letters, digits and -, separated by \".\", not starting or ending with \"-\", 253 characters at most",
            "u/web.toml:5:50: container.hosts.ok: expected an IP address string, found integer 1",
            "u/web.toml:6:19: container.dns[1]: invalid IP address \"dns.google\"",
            "u/web.toml:6:33: container.dns[2]: expected an IP address string, found integer 8",
        ]
    );
    assert_eq!(
        errors(&c("hosts = [\"db\"]\ndns = \"1.1.1.1\"\n")),
        [
            "u/web.toml:5:9: container.hosts: expected a table, found array",
            "u/web.toml:6:7: container.dns: expected an array of IP addresses such as [\"192.0.2.53\"], found string \"1.1.1.1\"",
        ]
    );
}

#[test]
fn volume_errors_inline() {
    let text = c(r#"volumes = [
  { target = "/www" },
  { source = "/srv", target = "/www", size = "1M" },
  { type = "tmpfs", target = "tmp", read_only = true, sise = "1M" },
  { type = "volume", target = "/data", source = "/x" },
  { type = "tmfps", target = "/t" },
  { type = "volume", name = "../x", target = "/v/../w" },
  { source = "srv", target = "/" },
  { source = "/s", target = "/a/" },
  { type = "tmpfs", target = "/b", size = "0" },
  { type = "tmpfs", target = "/c", size = "lots" },
  "/srv:/srv",
  { source = "/s", target = "/d", read_only = "yes" },
  { source = "/s", target = "/e//f" },
  { source = "/s", target = "/g/." },
  { type = 1, target = "/h" },
]
"#);
    assert_eq!(
        errors(&text),
        [
            "u/web.toml:6:3: container.volumes[0]: source is required for a bind volume",
            "u/web.toml:7:31: container.volumes[1].target: \"/www\" is already the target of container.volumes[0]",
            "u/web.toml:7:39: container.volumes[1]: unknown key \"size\" for a bind volume (only tmpfs volumes take it)",
            "u/web.toml:8:30: container.volumes[2].target: must be an absolute path, found \"tmp\"",
            "u/web.toml:8:37: container.volumes[2]: unknown key \"read_only\" for a tmpfs volume (only bind and named volumes take it)",
            "u/web.toml:8:55: container.volumes[2]: unknown key \"sise\" for a tmpfs volume; did you mean \"size\"?",
            "u/web.toml:9:3: container.volumes[3]: name is required for a named volume",
            "u/web.toml:9:40: container.volumes[3]: unknown key \"source\" for a named volume (only bind volumes take it)",
            "u/web.toml:10:12: container.volumes[4].type: invalid value \"tmfps\": expected one of \"bind\", \"tmpfs\", \"volume\"; did you mean \"tmpfs\"?",
            "u/web.toml:11:29: container.volumes[5].name: invalid volume name \"../x\": use only letters, digits and _ . @ -, not starting with \".\"",
            "u/web.toml:11:46: container.volumes[5].target: must be a normalized path (no empty, \".\" or \"..\" components, no trailing \"/\"), found \"/v/../w\"",
            "u/web.toml:12:14: container.volumes[6].source: must be an absolute path, found \"srv\"",
            "u/web.toml:12:30: container.volumes[6].target: must not be \"/\" (the container's root)",
            "u/web.toml:13:29: container.volumes[7].target: must be a normalized path (no empty, \".\" or \"..\" components, no trailing \"/\"), found \"/a/\"",
            "u/web.toml:14:43: container.volumes[8].size: must be greater than 0",
            "u/web.toml:15:43: container.volumes[9].size: invalid size \"lots\": expected a number of bytes with an optional K, M, G or T suffix (e.g. \"4096\", \"512K\", \"10M\", \"1G\")",
            "u/web.toml:16:3: container.volumes[10]: expected a table, found string \"/srv:/srv\"",
            "u/web.toml:17:47: container.volumes[11].read_only: expected true or false, found string \"yes\"",
            "u/web.toml:18:29: container.volumes[12].target: must be a normalized path (no empty, \".\" or \"..\" components, no trailing \"/\"), found \"/e//f\"",
            "u/web.toml:19:29: container.volumes[13].target: must be a normalized path (no empty, \".\" or \"..\" components, no trailing \"/\"), found \"/g/.\"",
            "u/web.toml:20:12: container.volumes[14].type: expected one of \"bind\", \"tmpfs\", \"volume\", found integer 1",
        ]
    );
}

#[test]
fn volume_errors_in_an_array_of_tables() {
    let text = c(
        "\n[[container.volumes]]\ntype = \"volume\"\nname = \"data\"\ntarget = \"/data\"\n\n[[container.volumes]]\ntarget = \"/data\"\nsize = \"1M\"\n",
    );
    assert_eq!(
        errors(&text),
        [
            "u/web.toml:11:1: container.volumes[1]: source is required for a bind volume",
            "u/web.toml:12:10: container.volumes[1].target: \"/data\" is already the target of container.volumes[0]",
            "u/web.toml:13:1: container.volumes[1]: unknown key \"size\" for a bind volume (only tmpfs volumes take it)",
        ]
    );
    assert_eq!(
        errors(&c("volumes = { source = \"/a\", target = \"/b\" }\n")),
        ["u/web.toml:5:11: container.volumes: expected an array of tables such as [{ source = \"/srv\", target = \"/srv\" }], found table"]
    );
}

#[test]
fn every_problem_of_a_container_at_once() {
    let text = format!(
        "{S}[container]\nrootfs = []\nnamespaces = [\"pid\", \"usr\"]\nhostname = \"-x\"\n[resources]\ncpu = 0\n"
    );
    assert_eq!(
        errors(&text),
        [
            "u/web.toml:4:10: container.rootfs: must not be empty",
            "u/web.toml:5:14: container.namespaces: network = \"none\" (the default) needs the \"net\" namespace; add \"net\" to container.namespaces or set network = \"host\"",
            "u/web.toml:5:22: container.namespaces[1]: unknown namespace \"usr\": expected one of \"pid\", \"mount\", \"uts\", \"ipc\", \"net\", \"cgroup\", \"user\"; did you mean \"user\"?",
            "u/web.toml:6:12: container.hostname: invalid hostname \"-x\": use labels of 1 to 63 letters, digits and -, separated by \".\", not starting or ending with \"-\", 253 characters at most",
            "u/web.toml:6:12: container.hostname: needs the \"uts\" namespace; add \"uts\" to container.namespaces",
            "u/web.toml:8:7: resources.cpu: must be greater than 0 and at most 1024, found 0",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// [resources]

fn resources(body: &str) -> Resources {
    parse(&format!("{S}[resources]\n{body}")).resources
}

#[test]
fn every_resources_key_is_parsed() {
    let r = resources(
        "memory_max = \"256M\"\ncpu = 0.5\ncpu_weight = 100\npids_max = 256\nio_weight = 10000\ncpuset = \"0,2-3\"\n",
    );
    assert_eq!(
        r,
        Resources {
            memory_max: Some(256 << 20),
            cpu_millis: Some(500),
            cpu_weight: Some(100),
            pids_max: Some(256),
            io_weight: Some(10000),
            cpuset: Some("0,2-3".into()),
        }
    );
    // Any unit, container or not; no [container] needed.
    assert_eq!(parse(S).container, None);
}

#[test]
fn resources_defaults_and_edges() {
    assert!(resources("").is_empty());
    assert_eq!(resources("").memory_max, None);
    assert_eq!(resources("cpu = 2").cpu_millis, Some(2000));
    assert_eq!(resources("cpu = 1024").cpu_millis, Some(1_024_000));
    assert_eq!(resources("cpu = 0.0004").cpu_millis, Some(1));
    assert_eq!(resources("cpu = 0.0125").cpu_millis, Some(13));
    assert_eq!(resources("cpu = 1.2344").cpu_millis, Some(1234));
    assert_eq!(resources("memory_max = \"64K\"").memory_max, Some(65536));
    assert_eq!(resources("cpu_weight = 1").cpu_weight, Some(1));
    assert_eq!(resources("pids_max = 1").pids_max, Some(1));
    assert_eq!(resources("cpuset = \"7\"").cpuset.as_deref(), Some("7"));
    let unit = parse(&format!("resources = {{ pids_max = 10 }}\n{S}"));
    assert_eq!(unit.resources.pids_max, Some(10));
    let unit = parse(&c("[resources]\nmemory_max = \"1G\"\n"));
    assert_eq!(unit.resources.memory_max, Some(1 << 30));
    assert!(unit.container.is_some());
}

#[test]
fn resources_errors() {
    let text = format!(
        "{S}[resources]\nmemory_max = \"1K\"\ncpu = 1025\ncpu_weight = 0\npids_max = 0\nio_weight = 10001\ncpuset = \"3-1\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            "u/web.toml:4:14: resources.memory_max: must be at least 64K, found \"1K\"",
            "u/web.toml:5:7: resources.cpu: must be greater than 0 and at most 1024, found 1025",
            "u/web.toml:6:14: resources.cpu_weight: must be in 1..=10000, found 0",
            "u/web.toml:7:12: resources.pids_max: must be at least 1, found 0",
            "u/web.toml:8:13: resources.io_weight: must be in 1..=10000, found 10001",
            "u/web.toml:9:10: resources.cpuset: invalid CPU list \"3-1\": the range 3-1 is reversed",
        ]
    );
    let text = format!(
        "{S}[resources]\nmemory_max = 100\ncpu = \"1\"\ncpu_weight = 1.5\npids_max = \"max\"\nio_weight = true\ncpuset = 0\n"
    );
    assert_eq!(
        errors(&text),
        [
            "u/web.toml:4:14: resources.memory_max: expected a size string such as \"10M\", found integer 100",
            "u/web.toml:5:7: resources.cpu: expected a number of cores such as 0.5 or 2, found string \"1\"",
            "u/web.toml:6:14: resources.cpu_weight: expected an integer, found float 1.5",
            "u/web.toml:7:12: resources.pids_max: expected an integer, found string \"max\"",
            "u/web.toml:8:13: resources.io_weight: expected an integer, found boolean true",
            "u/web.toml:9:10: resources.cpuset: expected a CPU list string such as \"0-3\", found integer 0",
        ]
    );
    let text = format!(
        "{S}[resources]\ncpu = -0.5\ncpuset = \"0, 1\"\nmemory_max = \"1 G\"\n[container]\nrootfs = [\"a\"]\n"
    );
    assert_eq!(
        errors(&text),
        [
            "u/web.toml:4:7: resources.cpu: must be greater than 0 and at most 1024, found -0.5",
            "u/web.toml:5:10: resources.cpuset: invalid CPU list \"0, 1\": expected CPU numbers and ranges such as \"0\", \"0-3\" or \"0,2-3\"",
            "u/web.toml:6:14: resources.memory_max: invalid size \"1 G\": expected a number of bytes with an optional K, M, G or T suffix (e.g. \"4096\", \"512K\", \"10M\", \"1G\")",
        ]
    );
    assert_eq!(
        errors(&format!("{S}[resources]\ncpu = nan\n")),
        ["u/web.toml:4:7: resources.cpu: must be greater than 0 and at most 1024, found NaN"]
    );
}

#[test]
fn user_namespace_and_id_maps() {
    let m = |container, host, size| IdMap {
        container,
        host,
        size,
    };
    // Without maps: empty (the daemon reads /etc/subuid and /etc/subgid at start).
    let k = container("namespaces = [\"pid\", \"net\", \"user\"]\n");
    assert!(k.namespaces.contains(&Namespace::User));
    assert!(k.uid_map.is_empty() && k.gid_map.is_empty());
    assert!(!container("").namespaces.contains(&Namespace::User));
    // Tables and strings; gid_map follows uid_map when not set.
    let k = container(
        "namespaces = [\"pid\", \"net\", \"user\"]\nuid_map = [{ container = 0, host = 100000, size = 1000 }, \"1000 300000 10\"]\n",
    );
    assert_eq!(k.uid_map, [m(0, 100000, 1000), m(1000, 300000, 10)]);
    assert_eq!(k.gid_map, k.uid_map);
    let k = container(
        "namespaces = [\"net\", \"user\"]\ninit = false\nuid_map = [\"0 100000 65536\"]\ngid_map = [\"0 200000 65536\"]\n",
    );
    assert_eq!(k.gid_map, [m(0, 200000, 65536)]);
}

#[test]
fn id_map_errors() {
    let u = "namespaces = [\"pid\", \"net\", \"user\"]\n"; // line 5
    assert_eq!(
        errors(&c("uid_map = [\"0 100000 10\"]\ngid_map = [\"0 100000 10\"]\n")),
        [
            "u/web.toml:5:11: container.uid_map: needs the \"user\" namespace; add \"user\" to container.namespaces",
            "u/web.toml:6:11: container.gid_map: needs the \"user\" namespace; add \"user\" to container.namespaces",
        ]
    );
    assert_eq!(
        errors(&c(&format!(
            "{u}uid_map = [\"0 0 10\", \"5 100000 10\", {{ container = 100, host = 100005, size = 1 }}, \"x\", {{ container = 1, hots = 2 }}, 7]\n"
        ))),
        [
            "u/web.toml:6:83: container.uid_map[3]: invalid range \"x\": expected three ids \"CONTAINER HOST SIZE\" such as \"0 100000 65536\"",
            "u/web.toml:6:88: container.uid_map[4]: host is required",
            "u/web.toml:6:88: container.uid_map[4]: size is required",
            "u/web.toml:6:105: container.uid_map[4]: unknown key \"hots\": expected container, host and size; did you mean \"host\"?",
            "u/web.toml:6:117: container.uid_map[5]: expected a range { container = 0, host = 100000, size = 65536 } or \"0 100000 65536\", found integer 7",
        ]
    );
    assert_eq!(
        errors(&c(&format!(
            "{u}uid_map = [\"0 0 10\", \"5 100000 10\", {{ container = 100, host = 100005, size = 1 }}]\n"
        ))),
        [
            "u/web.toml:6:12: container.uid_map[0]: maps onto the host's root (host id 0), which would make the container's ids host root again; use an unprivileged host range such as host = 100000",
            "u/web.toml:6:22: container.uid_map[1]: container ids 5..15 overlap those of container.uid_map[0]",
            "u/web.toml:6:37: container.uid_map[2]: host ids 100005..100006 overlap those of container.uid_map[1]",
        ]
    );
    assert_eq!(
        errors(&c(&format!("{u}uid_map = [\"1 100000 10\"]\ngid_map = []\n"))),
        [
            "u/web.toml:6:11: container.uid_map: must map container id 0 (the container's root), e.g. { container = 0, host = 100000, size = 65536 }",
            "u/web.toml:7:11: container.gid_map: must not be empty",
        ]
    );
    assert_eq!(
        errors(&c(&format!(
            "{u}uid_map = [\"0 4294967295 2\", {{ container = 9, host = 1, size = 0 }}]\n"
        ))),
        [
            "u/web.toml:6:12: container.uid_map[0]: the range passes the largest id, 4294967295",
            "u/web.toml:6:64: container.uid_map[1].size: must be at least 1, found 0",
        ]
    );
}

#[test]
fn idmap_of_a_volume_needs_the_user_namespace() {
    assert_eq!(
        errors(&c("volumes = [{ source = \"/srv\", target = \"/srv\", idmap = false }, { type = \"tmpfs\", target = \"/t\", idmap = true }]\n")),
        [
            "u/web.toml:5:56: container.volumes[0].idmap: only means something with the \"user\" namespace; add \"user\" to container.namespaces or remove it",
            "u/web.toml:5:98: container.volumes[1]: unknown key \"idmap\" for a tmpfs volume (only bind and named volumes take it)",
        ]
    );
}

#[test]
fn cni_args_need_a_cni_network_and_plain_pairs() {
    let got = container("network = \"cni:net1\"\ncni_args = { IP = \"10.0.0.5\" }\n");
    assert_eq!(got.cni_args.get("IP").map(String::as_str), Some("10.0.0.5"));
    let errs = errors(&c(
        "network = \"bridge\"\ncni_args = { IP = \"10.0.0.5\" }\n",
    ));
    assert!(
        errs.iter()
            .any(|e| e.contains("container.cni_args: needs network = \"cni:NAME\"")),
        "{errs:?}"
    );
    let errs = errors(&c("network = \"cni:n\"\ncni_args = { IP = \"a;b\" }\n"));
    assert!(
        errs.iter()
            .any(|e| e.contains("container.cni_args.IP: a value without ';'")),
        "{errs:?}"
    );
}

#[test]
fn commands_around_the_main_one_are_refused_in_a_container() {
    let text = "[service]\ncommand = [\"/bin/httpd\"]\nstart_pre = [[\"/bin/a\"]]\nstop = [[\"/bin/b\"]]\nreload_signal = \"HUP\"\n[container]\nrootfs = [\"busybox\"]\n";
    assert_eq!(
        errors(text),
        [
            "u/web.toml:3:1: service.start_pre is not supported in a [container] unit yet (its commands would run outside the container); only plain units run commands around the main one",
            "u/web.toml:4:1: service.stop is not supported in a [container] unit yet (its commands would run outside the container); only plain units run commands around the main one",
        ]
    );
}

#[test]
fn kill_mode_is_refused_in_a_container() {
    let text = "[service]\ncommand = [\"/bin/httpd\"]\nkill_mode = \"mixed\"\nsend_sigkill = false\n[container]\nrootfs = [\"busybox\"]\n";
    assert_eq!(
        errors(text),
        ["u/web.toml:3:1: service.kill_mode does not apply to a [container] unit: the stop signal goes to the container's init, which forwards it to the service"]
    );
}

#[test]
fn a_forking_service_is_refused_in_a_container() {
    let text = "[service]\ncommand = [\"/bin/httpd\"]\ntype = \"forking\"\n[container]\nrootfs = [\"busybox\"]\n";
    assert_eq!(
        errors(text),
        ["u/web.toml:3:1: type = \"forking\" is not supported in a [container] unit: run the daemon in the foreground (its init is the container's PID 1)"]
    );
}
