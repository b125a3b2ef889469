//! `[container]` (rootfs layers, namespaces, network, volumes, ...) and `[resources]`
//! (cgroup limits of any unit).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;

use toml_edit::{Item, Key, TableLike, Value};

use super::value::{describe, describe_value, Ctx};
use crate::container::{check_cpu_list, check_hostname};
use crate::model::{CgroupAccess, Container, IdMap, Layer, Namespace, Network, Resources, Volume};
use crate::name::check_unit_name;
use crate::suggest::did_you_mean;

const CONTAINER_KEYS: &[&str] = &[
    "image",
    "rootfs",
    "namespaces",
    "uid_map",
    "gid_map",
    "hostname",
    "network",
    "address",
    "ports",
    "aliases",
    "cni_args",
    "init",
    "read_only",
    "persist",
    "cgroup",
    "hosts",
    "dns",
    "volumes",
    "capabilities",
    "no_new_privileges",
    "seccomp",
    "devices",
    "limits",
    "oom_score_adj",
];
const RESOURCES_KEYS: &[&str] = &[
    "memory_max",
    "cpu",
    "cpu_weight",
    "pids_max",
    "io_weight",
    "cpuset",
];
const VOLUME_TYPES: &[&str] = &["bind", "tmpfs", "volume"];
const BIND_KEYS: &[&str] = &["type", "source", "target", "read_only", "idmap"];
const TMPFS_KEYS: &[&str] = &["type", "target", "size"];
const NAMED_KEYS: &[&str] = &["type", "name", "target", "read_only", "idmap"];

/// The smallest `memory_max` (64K): below this a process cannot even start.
const MIN_MEMORY_MAX: u64 = 64 << 10;

/// The unit named by `network = "unit:NAME"`, with the position of the value.
pub(crate) type NetworkUnit = (String, Option<Range<usize>>);

/// What the cross-unit network checks need of one unit (`crate::load`): its bridge
/// network, static address and published ports, each with its position (line, col).
#[derive(Debug, Default)]
pub(crate) struct NetRefs {
    pub(crate) network: Option<(String, usize, usize)>,
    /// `network = "cni:NAME"`: NAME, for `kennel check` (which looks for its configuration).
    pub(crate) cni: Option<(String, usize, usize)>,
    pub(crate) address: Option<(IpAddr, usize, usize)>,
    pub(crate) ports: Vec<(crate::network::PortMap, usize, usize)>,
}

/// `[container]` of the unit `unit`; `header` is where to report a missing `rootfs` (and
/// a unit name that is not a valid default hostname). Also returns the unit named by
/// `network = "unit:NAME"`, with its position, when it is a valid name other than `unit`.
pub(crate) fn container(
    cx: &mut Ctx,
    t: &dyn TableLike,
    header: Option<Range<usize>>,
    unit: &str,
    net: &mut NetRefs,
) -> (Option<Container>, Option<NetworkUnit>) {
    cx.check_keys(t, Some("container"), CONTAINER_KEYS);
    // image: the store is runtime state, so only the syntax is checked here.
    let image = t.get("image").and_then(|item| {
        let s = cx.string("container.image", item, "an image such as \"web:1\"")?;
        crate::image::ImageRef::parse(&s)
            .map_err(|e| cx.error(item.span(), format!("container.image: {e}")))
            .ok()
    });
    let has_image = t.get("image").is_some();
    let rootfs = match t.get("rootfs") {
        Some(item) => rootfs(cx, item, has_image),
        None if has_image => Some(Vec::new()),
        None => {
            cx.error(header.clone(), "container.rootfs is required");
            None
        }
    };
    let mut c = Container::new(Vec::new(), unit);

    // namespaces: keyword -> (index, span) of the entries actually written.
    let listed = t.get("namespaces").map(|item| namespaces(cx, item));
    let mut ns = match &listed {
        Some(m) => m.keys().copied().collect(),
        None => Namespace::defaults(),
    };
    ns.insert(Namespace::Mount);

    // network
    let mut network_unit = None;
    let network_item = t.get("network");
    let network = match network_item {
        None => Some(Network::None),
        Some(item) => network(cx, item, unit),
    };
    match &network {
        Some(Network::None) if !ns.contains(&Namespace::Net) => {
            let (span, path) = match (network_item, t.get("namespaces")) {
                (Some(item), _) => (item.span(), "container.network"),
                (None, item) => (item.and_then(Item::span), "container.namespaces"),
            };
            let default = if network_item.is_none() {
                " (the default)"
            } else {
                ""
            };
            cx.error(
                span,
                format!("{path}: network = \"none\"{default} needs the \"net\" namespace; add \"net\" to container.namespaces or set network = \"host\""),
            );
        }
        Some(Network::None) | None => {}
        // The daemon makes the namespace; the container joins it.
        Some(Network::Bridge(_) | Network::Cni(_)) => {
            ns.remove(&Namespace::Net);
        }
        Some(other) => {
            if let Some((i, span)) = listed.as_ref().and_then(|m| m.get(&Namespace::Net)) {
                let why = match other {
                    Network::Unit(name) => format!(
                        "network = \"unit:{name}\" (the container joins {name}'s network namespace)"
                    ),
                    _ => "network = \"host\" (the container shares the host's network namespace)"
                        .to_string(),
                };
                cx.error(
                    span.clone(),
                    format!(
                        "container.namespaces[{i}]: \"net\" cannot be used with {why}; remove it"
                    ),
                );
            }
            ns.remove(&Namespace::Net);
            if let Network::Unit(name) = other {
                network_unit = Some((name.clone(), network_item.and_then(Item::span)));
            }
        }
    }
    c.network = network.unwrap_or(Network::None);
    if let (Network::Bridge(n), Some(item)) = (&c.network, network_item) {
        let (line, col) = cx.pos(item.span());
        net.network = Some((n.clone(), line, col));
    }
    if let (Network::Cni(n), Some(item)) = (&c.network, network_item) {
        let (line, col) = cx.pos(item.span());
        net.cni = Some((n.clone(), line, col));
    }
    addressing(cx, t, &mut c, net);

    // hostname
    match t.get("hostname") {
        Some(item) => {
            if let Some(name) = cx.string("container.hostname", item, "a hostname string") {
                match check_hostname(&name) {
                    Ok(()) => c.hostname = name,
                    Err(e) => cx.error(item.span(), format!("container.hostname: {e}")),
                }
            }
            if !ns.contains(&Namespace::Uts) {
                cx.error(
                    item.span(),
                    "container.hostname: needs the \"uts\" namespace; add \"uts\" to container.namespaces",
                );
            }
        }
        None if ns.contains(&Namespace::Uts) && check_hostname(unit).is_err() => cx.error(
            header,
            format!("container.hostname: the default hostname, the unit name {unit:?}, is not a valid hostname; set container.hostname"),
        ),
        None => {}
    }

    // init
    c.init = ns.contains(&Namespace::Pid);
    if let Some(item) = t.get("init") {
        if let Some(init) = cx.boolean("container.init", item) {
            if init && !ns.contains(&Namespace::Pid) {
                cx.error(
                    item.span(),
                    "container.init: needs the \"pid\" namespace (kennel's init runs as PID 1 in it); add \"pid\" to container.namespaces or set init = false",
                );
            }
            c.init = init;
        }
    }
    // uid_map, gid_map
    let uid_map = t
        .get("uid_map")
        .map(|item| (item, id_map(cx, "container.uid_map", item)));
    let gid_map = t
        .get("gid_map")
        .map(|item| (item, id_map(cx, "container.gid_map", item)));
    if !ns.contains(&Namespace::User) {
        for (key, entry) in [("uid_map", &uid_map), ("gid_map", &gid_map)] {
            if let Some((item, _)) = entry {
                cx.error(
                    item.span(),
                    format!("container.{key}: needs the \"user\" namespace; add \"user\" to container.namespaces"),
                );
            }
        }
    }
    c.uid_map = uid_map.and_then(|(_, m)| m).unwrap_or_default();
    c.gid_map = match gid_map {
        Some((_, m)) => m.unwrap_or_default(),
        None => c.uid_map.clone(),
    };
    c.namespaces = ns;

    // read_only, persist
    if let Some(item) = t.get("read_only") {
        c.read_only = cx.boolean("container.read_only", item).unwrap_or(false);
    }
    if let Some(item) = t.get("persist") {
        c.persist = cx.boolean("container.persist", item).unwrap_or(false);
        if c.persist && c.read_only {
            cx.error(
                item.span(),
                "container.persist: cannot be true with read_only = true (a read-only container has no writable layer to keep)",
            );
        }
    }

    // cgroup
    if let Some(item) = t.get("cgroup") {
        c.cgroup = cgroup(cx, item, &c.namespaces).unwrap_or_default();
    }

    // cni_args
    if let Some(item) = t.get("cni_args") {
        if !matches!(c.network, Network::Cni(_)) {
            cx.error(
                item.span(),
                "container.cni_args: needs network = \"cni:NAME\" (they are the CNI plugins' CNI_ARGS); remove it or set the network",
            );
        } else if let Some(args) = cx.table("container.cni_args", item) {
            for (k, v) in args.iter() {
                let path = format!("container.cni_args.{k}");
                if k.is_empty() || k.contains(['=', ';']) {
                    let span = args.key(k).and_then(Key::span);
                    cx.error(
                        span,
                        format!("{path}: a key without '=' or ';' (CNI_ARGS is K=V;K=V)"),
                    );
                    continue;
                }
                let Some(s) = cx.string(&path, v, "a string such as \"10.0.0.5\"") else {
                    continue;
                };
                if s.contains(';') {
                    cx.error(
                        v.span(),
                        format!("{path}: a value without ';' (CNI_ARGS is K=V;K=V)"),
                    );
                } else {
                    c.cni_args.insert(k.to_string(), s);
                }
            }
        }
    }

    // hosts, dns
    if let Some(item) = t.get("hosts") {
        if let Some(hosts) = cx.table("container.hosts", item) {
            for (name, v) in hosts.iter() {
                let path = format!("container.hosts.{name}");
                if let Err(e) = check_hostname(name) {
                    let span = hosts.key(name).and_then(Key::span);
                    cx.error(span, format!("{path}: {e}"));
                } else if let Some(addr) = ip(cx, &path, v) {
                    c.hosts.insert(name.to_string(), addr);
                }
            }
        }
    }
    if let Some(item) = t.get("dns") {
        if let Some(values) = cx.array(
            "container.dns",
            item,
            "an array of IP addresses such as [\"192.0.2.53\"]",
        ) {
            let mut servers = Vec::new();
            for (i, v) in values.iter().enumerate() {
                let path = format!("container.dns[{i}]");
                match v.as_str() {
                    Some(s) => match s.parse::<IpAddr>() {
                        Ok(_) => servers.push(s.to_string()),
                        Err(_) => cx.error(v.span(), format!("{path}: invalid IP address {s:?}")),
                    },
                    None => cx.error(
                        v.span(),
                        format!(
                            "{path}: expected an IP address string, found {}",
                            describe_value(v)
                        ),
                    ),
                }
            }
            c.dns = Some(servers);
        }
    }

    // volumes
    if let Some(item) = t.get("volumes") {
        let user = c.namespaces.contains(&Namespace::User);
        c.volumes = volumes(cx, item, user);
    }
    c.security = super::security::security(cx, t);

    match rootfs {
        Some(rootfs) => {
            c.rootfs = rootfs;
            c.image = image;
            (Some(c), network_unit)
        }
        // The network unit is still returned: the cross-unit checks see it.
        None => (None, network_unit),
    }
}

/// `cgroup`: `"none"` or `"delegate"`; `delegate` needs the container's own cgroup
/// namespace (its root is the delegated subtree) and no user namespace (the subtree's
/// files belong to the host's root).
fn cgroup(
    cx: &mut Ctx,
    item: &Item,
    namespaces: &std::collections::BTreeSet<Namespace>,
) -> Option<CgroupAccess> {
    let s = cx.string("container.cgroup", item, "\"none\" or \"delegate\"")?;
    let Some(access) = CgroupAccess::from_keyword(&s) else {
        let hint = did_you_mean(&s, CgroupAccess::KEYWORDS.iter().copied());
        cx.error(
            item.span(),
            format!(
                "container.cgroup: unknown value {s:?}: expected \"none\" or \"delegate\"{hint}"
            ),
        );
        return None;
    };
    if access == CgroupAccess::Delegate {
        if !namespaces.contains(&Namespace::Cgroup) {
            cx.error(
                item.span(),
                "container.cgroup: \"delegate\" needs the \"cgroup\" namespace (the delegated subtree is its root); add \"cgroup\" to container.namespaces",
            );
            return None;
        }
        if namespaces.contains(&Namespace::User) {
            cx.error(
                item.span(),
                "container.cgroup: \"delegate\" cannot be used with the \"user\" namespace yet (the delegated subtree belongs to the host's root, not the container's)",
            );
            return None;
        }
    }
    Some(access)
}

/// `rootfs`: an array of layer names and absolute paths, each listed once; not empty
/// unless the container has an `image`.
fn rootfs(cx: &mut Ctx, item: &Item, has_image: bool) -> Option<Vec<Layer>> {
    let values = cx.array(
        "container.rootfs",
        item,
        "an array of layers such as [\"busybox\", \"/srv/layers/site\"]",
    )?;
    if values.is_empty() && !has_image {
        cx.error(item.span(), "container.rootfs: must not be empty");
        return None;
    }
    let mut layers = Vec::new();
    let mut ok = true;
    for (i, v) in values.iter().enumerate() {
        let path = format!("container.rootfs[{i}]");
        let layer = match v.as_str() {
            Some(s) if s.starts_with('/') && !s.contains('\0') => Layer::Path(PathBuf::from(s)),
            Some(s) if check_unit_name(s).is_ok() => Layer::Named(s.to_string()),
            Some(s) => {
                let tag = if s.contains(':') {
                    " (layer names have no tags)"
                } else {
                    ""
                };
                cx.error(
                    v.span(),
                    format!("{path}: invalid layer {s:?}: expected a layer name (letters, digits and _ . @ -, not starting with \".\"){tag} or an absolute path"),
                );
                ok = false;
                continue;
            }
            None => {
                cx.error(
                    v.span(),
                    format!(
                        "{path}: expected a layer name or an absolute path string, found {}",
                        describe_value(v)
                    ),
                );
                ok = false;
                continue;
            }
        };
        if layers.contains(&layer) {
            cx.error(v.span(), format!("{path}: this layer is already listed"));
            ok = false;
        } else {
            layers.push(layer);
        }
    }
    ok.then_some(layers)
}

/// `namespaces`: the listed namespaces with the index and span of their first entry.
fn namespaces(cx: &mut Ctx, item: &Item) -> BTreeMap<Namespace, (usize, Option<Range<usize>>)> {
    let mut listed = BTreeMap::new();
    let Some(values) = cx.array(
        "container.namespaces",
        item,
        "an array of namespaces such as [\"pid\", \"mount\", \"net\"]",
    ) else {
        return listed;
    };
    let keywords: Vec<&str> = Namespace::ALL.iter().map(|n| n.keyword()).collect();
    for (i, v) in values.iter().enumerate() {
        let path = format!("container.namespaces[{i}]");
        match v.as_str() {
            Some(s) => match Namespace::from_keyword(s) {
                Some(ns) => {
                    listed.entry(ns).or_insert((i, v.span()));
                }
                None => {
                    let list = keywords
                        .iter()
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let hint = did_you_mean(s, keywords.iter().copied());
                    cx.error(
                        v.span(),
                        format!("{path}: unknown namespace {s:?}: expected one of {list}{hint}"),
                    );
                }
            },
            None => cx.error(
                v.span(),
                format!(
                    "{path}: expected a namespace string, found {}",
                    describe_value(v)
                ),
            ),
        }
    }
    listed
}

/// The most ranges a `uid_map` or `gid_map` of the kernel takes.
const MAX_ID_RANGES: usize = 340;

/// `uid_map` / `gid_map`: an array of ranges, each `{ container = 0, host = 100000, size =
/// 65536 }` or the string `"0 100000 65536"`; the container's root (id 0) mapped, no
/// overlaps inside or outside, and no range reaching the host's root (id 0), which would
/// defeat the user namespace.
fn id_map(cx: &mut Ctx, path: &str, item: &Item) -> Option<Vec<IdMap>> {
    let values = cx.array(
        path,
        item,
        "an array of ranges such as [{ container = 0, host = 100000, size = 65536 }]",
    )?;
    if values.is_empty() {
        cx.error(item.span(), format!("{path}: must not be empty"));
        return None;
    }
    if values.len() > MAX_ID_RANGES {
        cx.error(
            item.span(),
            format!(
                "{path}: at most {MAX_ID_RANGES} ranges (the kernel's limit), found {}",
                values.len()
            ),
        );
        return None;
    }
    let mut maps: Vec<(IdMap, Option<Range<usize>>)> = Vec::new();
    let mut ok = true;
    for (i, v) in values.iter().enumerate() {
        let at = format!("{path}[{i}]");
        match id_range(cx, &at, v) {
            Some(m) => maps.push((m, v.span())),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    for (i, (m, span)) in maps.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if m.host == 0 {
            cx.error(
                span.clone(),
                format!("{at}: maps onto the host's root (host id 0), which would make the container's ids host root again; use an unprivileged host range such as host = 100000"),
            );
            ok = false;
        }
        for (j, (other, _)) in maps.iter().enumerate().take(i) {
            let overlap =
                |a: u32, b: u32| u64::from(a) < end(b, other.size) && u64::from(b) < end(a, m.size);
            // Container ids first: one error per pair.
            let clash = [
                ("container", m.container, other.container),
                ("host", m.host, other.host),
            ]
            .into_iter()
            .find(|&(_, a, b)| overlap(a, b));
            if let Some((side, start, _)) = clash {
                cx.error(
                    span.clone(),
                    format!(
                        "{at}: {side} ids {start}..{} overlap those of {path}[{j}]",
                        end(start, m.size)
                    ),
                );
                ok = false;
            }
        }
    }
    if ok && IdMap::to_host(&maps.iter().map(|(m, _)| *m).collect::<Vec<_>>(), 0).is_none() {
        cx.error(
            item.span(),
            format!("{path}: must map container id 0 (the container's root), e.g. {{ container = 0, host = 100000, size = 65536 }}"),
        );
        ok = false;
    }
    ok.then(|| maps.into_iter().map(|(m, _)| m).collect())
}

/// One range of an id map: a table `{ container, host, size }` or a string
/// `"CONTAINER HOST SIZE"`; neither range may pass 2^32 - 1.
fn id_range(cx: &mut Ctx, at: &str, v: &Value) -> Option<IdMap> {
    let expected = "a range { container = 0, host = 100000, size = 65536 } or \"0 100000 65536\"";
    let (container, host, size) = if let Some(s) = v.as_str() {
        let nums: Vec<Option<u32>> = s.split_whitespace().map(|n| n.parse().ok()).collect();
        match nums.as_slice() {
            [Some(c), Some(h), Some(n)] => (*c, *h, *n),
            _ => {
                cx.error(
                    v.span(),
                    format!("{at}: invalid range {s:?}: expected three ids \"CONTAINER HOST SIZE\" such as \"0 100000 65536\""),
                );
                return None;
            }
        }
    } else if let Some(t) = v.as_inline_table() {
        let mut ok = true;
        for (key, _) in t.iter() {
            if !["container", "host", "size"].contains(&key) {
                let hint = did_you_mean(key, ["container", "host", "size"]);
                cx.error(
                    t.key(key).and_then(Key::span),
                    format!("{at}: unknown key {key:?}: expected container, host and size{hint}"),
                );
                ok = false;
            }
        }
        let field = |cx: &mut Ctx, key: &str, min: u32| match t.get(key) {
            Some(val) => {
                let item = Item::Value(val.clone());
                let n = cx.int(
                    &format!("{at}.{key}"),
                    &item,
                    i64::from(min),
                    i64::from(u32::MAX),
                );
                n.and_then(|n| u32::try_from(n).ok())
            }
            None => {
                cx.error(v.span(), format!("{at}: {key} is required"));
                None
            }
        };
        let (c, h, n) = (
            field(cx, "container", 0),
            field(cx, "host", 0),
            field(cx, "size", 1),
        );
        match (c, h, n, ok) {
            (Some(c), Some(h), Some(n), true) => (c, h, n),
            _ => return None,
        }
    } else {
        cx.error(
            v.span(),
            format!("{at}: expected {expected}, found {}", describe_value(v)),
        );
        return None;
    };
    if size == 0 {
        cx.error(v.span(), format!("{at}: size must be at least 1"));
        return None;
    }
    let last = u64::from(u32::MAX);
    if u64::from(container) + u64::from(size) - 1 > last
        || u64::from(host) + u64::from(size) - 1 > last
    {
        cx.error(
            v.span(),
            format!("{at}: the range passes the largest id, {last}"),
        );
        return None;
    }
    Some(IdMap {
        container,
        host,
        size,
    })
}

/// `network`: `"none"`, `"host"` or `"unit:NAME"`, NAME a valid unit name other than `unit`.
fn network(cx: &mut Ctx, item: &Item, unit: &str) -> Option<Network> {
    let expected = "\"none\", \"host\", \"unit:NAME\", \"bridge\", \"bridge:NAME\" or \"cni:NAME\"";
    let s = cx.string("container.network", item, &format!("one of {expected}"))?;
    match s.as_str() {
        "none" => return Some(Network::None),
        "host" => return Some(Network::Host),
        "bridge" => return Some(Network::Bridge(crate::network::DEFAULT_NETWORK.to_string())),
        _ => {}
    }
    for (prefix, what) in [("bridge:", "network"), ("cni:", "CNI network")] {
        if let Some(name) = s.strip_prefix(prefix) {
            if let Err(e) = check_unit_name(name) {
                let e = e.to_string().replace("unit name", &format!("{what} name"));
                cx.error(item.span(), format!("container.network: {e}"));
                return None;
            }
            return Some(match prefix {
                "bridge:" => Network::Bridge(name.to_string()),
                _ => Network::Cni(name.to_string()),
            });
        }
    }
    if let Some(name) = s.strip_prefix("unit:") {
        if let Err(e) = check_unit_name(name) {
            cx.error(item.span(), format!("container.network: {e}"));
            return None;
        }
        if name == unit {
            cx.error(
                item.span(),
                "container.network: a unit cannot join its own network namespace",
            );
            return None;
        }
        return Some(Network::Unit(name.to_string()));
    }
    let hint = did_you_mean(&s, ["none", "host", "unit:", "bridge", "bridge:", "cni:"]);
    cx.error(
        item.span(),
        format!("container.network: invalid value {s:?}: expected {expected}{hint}"),
    );
    None
}

/// `address`, `ports`, `aliases`: only on a bridge network (`ports` on a CNI one too).
fn addressing(cx: &mut Ctx, t: &dyn TableLike, c: &mut Container, net: &mut NetRefs) {
    let bridge = matches!(c.network, Network::Bridge(_));
    let cni = matches!(c.network, Network::Cni(_));
    let needs = |key: &str| {
        format!("container.{key}: needs network = \"bridge\" or \"bridge:NAME\" (the container has no address of its own on a network kennel manages)")
    };
    if let Some(item) = t.get("address") {
        if let Some(s) = cx.string("container.address", item, "an IP address string") {
            match s.parse::<IpAddr>() {
                Ok(IpAddr::V6(_)) if bridge => cx.error(
                    item.span(),
                    "container.address: expected an IPv4 address (on a network with subnet6, the IPv6 address is the one at the same offset)",
                ),
                Ok(a) if bridge => {
                    c.address = Some(a);
                    let (line, col) = cx.pos(item.span());
                    net.address = Some((a, line, col));
                }
                Ok(_) => cx.error(item.span(), needs("address")),
                Err(_) => cx.error(
                    item.span(),
                    format!("container.address: invalid IP address {s:?}"),
                ),
            }
        }
    }
    if let Some(item) = t.get("ports") {
        if !bridge && !cni {
            cx.error(item.span(), needs("ports"));
        } else if let Some(values) = cx.array(
            "container.ports",
            item,
            "an array of port mappings such as [\"8080:80\"]",
        ) {
            let mut seen: Vec<(usize, crate::network::PortMap)> = Vec::new();
            for (i, v) in values.iter().enumerate() {
                let path = format!("container.ports[{i}]");
                let Some(s) = v.as_str() else {
                    cx.error(
                        v.span(),
                        format!(
                            "{path}: expected a string such as \"8080:80\", found {}",
                            describe_value(v)
                        ),
                    );
                    continue;
                };
                match crate::network::PortMap::parse(s) {
                    Ok(p) => {
                        if let Some((j, _)) = seen.iter().find(|(_, q)| q.clashes(&p)) {
                            cx.error(v.span(), format!("{path}: host port {} is already published by container.ports[{j}]", p.host_port));
                            continue;
                        }
                        c.ports.push(p);
                        seen.push((i, p));
                        let (line, col) = cx.pos(v.span());
                        net.ports.push((p, line, col));
                    }
                    Err(e) => cx.error(v.span(), format!("{path}: {e}")),
                }
            }
        }
    }
    if let Some(item) = t.get("aliases") {
        if !bridge {
            cx.error(item.span(), needs("aliases"));
        } else if let Some(values) = cx.array(
            "container.aliases",
            item,
            "an array of names such as [\"db\"]",
        ) {
            for (i, v) in values.iter().enumerate() {
                let path = format!("container.aliases[{i}]");
                match v.as_str() {
                    Some(s) => match check_hostname(s) {
                        Ok(()) => c.aliases.push(s.to_string()),
                        Err(e) => cx.error(v.span(), format!("{path}: {e}")),
                    },
                    None => cx.error(
                        v.span(),
                        format!(
                            "{path}: expected a name string, found {}",
                            describe_value(v)
                        ),
                    ),
                }
            }
        }
    }
}

/// An IP address string (IPv4 or IPv6), as written.
fn ip(cx: &mut Ctx, path: &str, item: &Item) -> Option<String> {
    let s = cx.string(path, item, "an IP address string")?;
    match s.parse::<IpAddr>() {
        Ok(_) => Some(s),
        Err(_) => {
            cx.error(item.span(), format!("{path}: invalid IP address {s:?}"));
            None
        }
    }
}

/// `volumes`: an array of inline tables or `[[container.volumes]]` tables.
fn volumes(cx: &mut Ctx, item: &Item, user: bool) -> Vec<Volume> {
    let entries = cx.table_array(
        "container.volumes",
        item,
        "[{ source = \"/srv\", target = \"/srv\" }]",
    );
    let mut out = Vec::new();
    // target -> index of the volume that mounts there
    let mut targets: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for (i, t, span) in entries {
        let path = format!("container.volumes[{i}]");
        // The target is checked for uniqueness even when the rest of the volume is wrong.
        let (target, volume) = volume(cx, &path, t, span, user);
        let Some(target) = target else { continue };
        if let Some(first) = targets.get(&target) {
            let span = t.get("target").and_then(Item::span);
            let shown = target.display().to_string();
            cx.error(
                span,
                format!(
                    "{path}.target: {shown:?} is already the target of container.volumes[{first}]"
                ),
            );
            continue;
        }
        targets.insert(target, i);
        out.extend(volume);
    }
    out
}

/// One volume, and its target if valid (even when the rest is not); `span` is where to
/// report a missing key.
fn volume(
    cx: &mut Ctx,
    path: &str,
    t: &dyn TableLike,
    span: Option<Range<usize>>,
    user: bool,
) -> (Option<PathBuf>, Option<Volume>) {
    let kind = volume_type(cx, path, t);
    let target = match t.get("target") {
        Some(item) => target(cx, path, item),
        None => {
            if kind.is_some() {
                let what = kind.map_or("", |(_, what)| what);
                cx.error(
                    span.clone(),
                    format!("{path}: target is required for {what}"),
                );
            }
            None
        }
    };
    let Some((kind, what)) = kind else {
        return (target, None);
    };
    let volume = volume_of(cx, path, t, span, (kind, what), target.clone(), user);
    (target, volume)
}

/// A volume's `type` and its description (`"a bind volume"`), after checking the keys of
/// that type; `None` if the type is invalid.
fn volume_type(
    cx: &mut Ctx,
    path: &str,
    t: &dyn TableLike,
) -> Option<(&'static str, &'static str)> {
    let kind = match t.get("type") {
        None => "bind",
        Some(item) => {
            let list = VOLUME_TYPES
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            let s = cx.string(&format!("{path}.type"), item, &format!("one of {list}"))?;
            match VOLUME_TYPES.iter().find(|&&c| c == s) {
                Some(c) => c,
                None => {
                    let hint = did_you_mean(&s, VOLUME_TYPES.iter().copied());
                    cx.error(
                        item.span(),
                        format!("{path}.type: invalid value {s:?}: expected one of {list}{hint}"),
                    );
                    return None;
                }
            }
        }
    };
    let (keys, what) = match kind {
        "tmpfs" => (TMPFS_KEYS, "a tmpfs volume"),
        "volume" => (NAMED_KEYS, "a named volume"),
        _ => (BIND_KEYS, "a bind volume"),
    };
    for (key, _) in t.iter() {
        if keys.contains(&key) {
            continue;
        }
        let takers: Vec<&str> = [
            (BIND_KEYS, "bind"),
            (TMPFS_KEYS, "tmpfs"),
            (NAMED_KEYS, "named"),
        ]
        .into_iter()
        .filter(|(k, _)| k.contains(&key))
        .map(|(_, name)| name)
        .collect();
        let hint = if takers.is_empty() {
            did_you_mean(key, keys.iter().copied())
        } else {
            format!(" (only {} volumes take it)", takers.join(" and "))
        };
        cx.error(
            t.key(key).and_then(Key::span),
            format!("{path}: unknown key {key:?} for {what}{hint}"),
        );
    }
    Some((kind, what))
}

/// The rest of a volume of type `kind` (`what`), with its `target` if valid.
fn volume_of(
    cx: &mut Ctx,
    path: &str,
    t: &dyn TableLike,
    span: Option<Range<usize>>,
    (kind, what): (&str, &str),
    target: Option<PathBuf>,
    user: bool,
) -> Option<Volume> {
    let required = |cx: &mut Ctx, key: &str| {
        let item = t.get(key);
        if item.is_none() {
            cx.error(
                span.clone(),
                format!("{path}: {key} is required for {what}"),
            );
        }
        item
    };
    let idmap = |cx: &mut Ctx| {
        let item = t.get("idmap")?;
        let b = cx.boolean(&format!("{path}.idmap"), item);
        if !user {
            cx.error(
                item.span(),
                format!("{path}.idmap: only means something with the \"user\" namespace; add \"user\" to container.namespaces or remove it"),
            );
        }
        b
    };
    let read_only = |cx: &mut Ctx| {
        t.get("read_only")
            .and_then(|item| cx.boolean(&format!("{path}.read_only"), item))
            .unwrap_or(false)
    };
    match kind {
        "tmpfs" => {
            let mut size = None;
            if let Some(item) = t.get("size") {
                match cx.size(&format!("{path}.size"), item) {
                    Some(0) => {
                        cx.error(item.span(), format!("{path}.size: must be greater than 0"))
                    }
                    n => size = n,
                }
            }
            Some(Volume::Tmpfs {
                target: target?,
                size,
            })
        }
        "volume" => {
            let name = required(cx, "name").and_then(|item| {
                let name = cx.string(&format!("{path}.name"), item, "a volume name string")?;
                match check_unit_name(&name) {
                    Ok(()) => Some(name),
                    Err(_) => {
                        cx.error(
                            item.span(),
                            format!("{path}.name: invalid volume name {name:?}: use only letters, digits and _ . @ -, not starting with \".\""),
                        );
                        None
                    }
                }
            });
            let read_only = read_only(cx);
            Some(Volume::Named {
                name: name?,
                target: target?,
                read_only,
                idmap: idmap(cx).unwrap_or(true),
            })
        }
        _ => {
            let source = required(cx, "source")
                .and_then(|item| cx.abs_path(&format!("{path}.source"), item));
            let read_only = read_only(cx);
            Some(Volume::Bind {
                source: source?,
                target: target?,
                read_only,
                idmap: idmap(cx).unwrap_or(true),
            })
        }
    }
}

/// A volume `target`: absolute, normalized, not `/`.
fn target(cx: &mut Ctx, path: &str, item: &Item) -> Option<PathBuf> {
    let path = format!("{path}.target");
    let s = cx.abs_path(&path, item)?;
    let text = s.to_str().unwrap_or_default();
    if text == "/" {
        cx.error(
            item.span(),
            format!("{path}: must not be \"/\" (the container's root)"),
        );
        return None;
    }
    if text[1..]
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        cx.error(
            item.span(),
            format!("{path}: must be a normalized path (no empty, \".\" or \"..\" components, no trailing \"/\"), found {text:?}"),
        );
        return None;
    }
    Some(s)
}

/// `[resources]`.
pub(crate) fn resources(cx: &mut Ctx, t: &dyn TableLike) -> Resources {
    cx.check_keys(t, Some("resources"), RESOURCES_KEYS);
    let mut r = Resources::default();
    if let Some(item) = t.get("memory_max") {
        match cx.size("resources.memory_max", item) {
            Some(n) if n < MIN_MEMORY_MAX => cx.error(
                item.span(),
                format!(
                    "resources.memory_max: must be at least 64K, found {:?}",
                    item.as_str().unwrap_or_default()
                ),
            ),
            n => r.memory_max = n,
        }
    }
    if let Some(item) = t.get("cpu") {
        r.cpu_millis = cpu(cx, item);
    }
    for (key, field) in [
        ("cpu_weight", &mut r.cpu_weight),
        ("io_weight", &mut r.io_weight),
    ] {
        if let Some(item) = t.get(key) {
            *field = cx
                .int(&format!("resources.{key}"), item, 1, 10_000)
                .and_then(|n| u32::try_from(n).ok());
        }
    }
    if let Some(item) = t.get("pids_max") {
        r.pids_max = cx
            .int("resources.pids_max", item, 1, i64::MAX)
            .and_then(|n| u64::try_from(n).ok());
    }
    if let Some(item) = t.get("cpuset") {
        if let Some(list) = cx.string(
            "resources.cpuset",
            item,
            "a CPU list string such as \"0-3\"",
        ) {
            match check_cpu_list(&list) {
                Ok(()) => r.cpuset = Some(list),
                Err(e) => cx.error(item.span(), format!("resources.cpuset: {e}")),
            }
        }
    }
    r
}

/// `cpu`: a number of cores in (0, 1024], as thousandths (at least 1).
fn cpu(cx: &mut Ctx, item: &Item) -> Option<u32> {
    let (cores, shown) = match item.as_value() {
        Some(Value::Float(f)) => (*f.value(), f.value().to_string()),
        Some(Value::Integer(n)) => (*n.value() as f64, n.value().to_string()),
        _ => {
            cx.error(
                item.span(),
                format!(
                    "resources.cpu: expected a number of cores such as 0.5 or 2, found {}",
                    describe(item)
                ),
            );
            return None;
        }
    };
    if !(cores > 0.0 && cores <= 1024.0) {
        cx.error(
            item.span(),
            format!("resources.cpu: must be greater than 0 and at most 1024, found {shown}"),
        );
        return None;
    }
    Some(((cores * 1000.0).round() as u32).max(1))
}
