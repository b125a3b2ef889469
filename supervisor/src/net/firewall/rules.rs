//! What kennel's rules are: pure functions from a network or a unit's published ports to
//! the nf_tables rules (chain, expressions, tag), and the fixed skeleton of kennel's table.
//! No I/O here; `netlink.rs` sends what these return.

use std::net::IpAddr;

use super::expr::{
    CmpOp, Expr, Verdict, CT_STATE, CT_STATUS, META_IIFNAME, META_L4PROTO, META_NFPROTO,
    META_OIFNAME, NFPROTO_IPV4, NFPROTO_IPV6, PAYLOAD_NETWORK, PAYLOAD_TRANSPORT, REG_1, REG_2,
};
use super::{FirewallError, NetworkRules, PortRule, Proto};

/// kennel's one table: `table inet kennel` (filter and nat chains, IPv4 and IPv6).
pub const TABLE: &str = "kennel";

/// A chain of kennel's table: its name and, for a base chain, (type, hook, priority).
pub struct ChainSpec {
    pub name: &'static str,
    pub base: Option<(&'static str, u32, i32)>,
}

/// `NF_INET_*` hooks.
const HOOK_PREROUTING: u32 = 0;
const HOOK_FORWARD: u32 = 2;
const HOOK_OUTPUT: u32 = 3;
const HOOK_POSTROUTING: u32 = 4;

pub const FORWARD: &str = "forward";
pub const INTERNAL: &str = "internal";
pub const ISOLATION: &str = "isolation";
pub const OUTBOUND: &str = "outbound";
pub const PREROUTING: &str = "prerouting";
pub const OUTPUT: &str = "output";
pub const POSTROUTING: &str = "postrouting";
pub const PUBLISHED: &str = "published";

/// The chains, regular ones first (a jump needs its target to exist).
pub const CHAINS: &[ChainSpec] = &[
    ChainSpec {
        name: INTERNAL,
        base: None,
    },
    ChainSpec {
        name: ISOLATION,
        base: None,
    },
    ChainSpec {
        name: OUTBOUND,
        base: None,
    },
    ChainSpec {
        name: PUBLISHED,
        base: None,
    },
    ChainSpec {
        name: FORWARD,
        base: Some(("filter", HOOK_FORWARD, 0)),
    },
    ChainSpec {
        name: PREROUTING,
        base: Some(("nat", HOOK_PREROUTING, -100)),
    },
    ChainSpec {
        name: OUTPUT,
        base: Some(("nat", HOOK_OUTPUT, -100)),
    },
    ChainSpec {
        name: POSTROUTING,
        base: Some(("nat", HOOK_POSTROUTING, 100)),
    },
];

/// Who a rule belongs to; stored in the rule's userdata as an nft comment
/// (`comment "kennel network=NAME"`), which is how kennel finds its rules again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tag {
    /// The fixed skeleton made with the table.
    Base,
    Network(String),
    Unit(String),
}

impl Tag {
    pub fn comment(&self) -> String {
        match self {
            Tag::Base => "kennel".to_string(),
            Tag::Network(n) => format!("kennel network={n}"),
            Tag::Unit(u) => format!("kennel unit={u}"),
        }
    }

    /// The inverse of `comment`; None for a rule kennel did not tag.
    pub fn parse(comment: &str) -> Option<Tag> {
        if comment == "kennel" {
            return Some(Tag::Base);
        }
        let rest = comment.strip_prefix("kennel ")?;
        if let Some(n) = rest.strip_prefix("network=") {
            return Some(Tag::Network(n.to_string()));
        }
        rest.strip_prefix("unit=").map(|u| Tag::Unit(u.to_string()))
    }

    /// nft's userdata encoding of a comment: TLV (type 0 = comment, length, bytes + NUL).
    pub fn userdata(&self) -> Result<Vec<u8>, FirewallError> {
        let c = self.comment();
        let len = u8::try_from(c.len() + 1).map_err(|_| FirewallError::NameTooLong(c.clone()))?;
        let mut v = vec![0u8, len];
        v.extend_from_slice(c.as_bytes());
        v.push(0);
        Ok(v)
    }

    /// Reads the comment out of a rule's userdata (other TLVs are skipped).
    pub fn from_userdata(mut ud: &[u8]) -> Option<Tag> {
        while ud.len() >= 2 {
            let (t, l) = (ud[0], usize::from(ud[1]));
            let v = ud.get(2..2 + l)?;
            if t == 0 {
                let s = std::str::from_utf8(v.strip_suffix(&[0]).unwrap_or(v)).ok()?;
                return Tag::parse(s);
            }
            ud = &ud[2 + l..];
        }
        None
    }
}

/// One rule to add: the chain it goes to (appended), its expressions, its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub chain: &'static str,
    pub exprs: Vec<Expr>,
    pub tag: Tag,
}

/// The skeleton's rules, made once with the table.
pub fn base_rules() -> Vec<RuleSpec> {
    let r = |chain, exprs| RuleSpec {
        chain,
        exprs,
        tag: Tag::Base,
    };
    vec![
        r(FORWARD, vec![Expr::Verdict(Verdict::Jump(INTERNAL))]),
        r(
            FORWARD,
            [
                ct_bits(CT_STATE, 2 | 4),
                vec![Expr::Verdict(Verdict::Accept)],
            ]
            .concat(),
        ),
        r(
            FORWARD,
            [
                ct_bits(CT_STATUS, 0x20),
                vec![Expr::Verdict(Verdict::Accept)],
            ]
            .concat(),
        ),
        r(FORWARD, vec![Expr::Verdict(Verdict::Jump(ISOLATION))]),
        r(FORWARD, vec![Expr::Verdict(Verdict::Jump(OUTBOUND))]),
        r(PREROUTING, fib_local_jump_published()),
        r(OUTPUT, fib_local_jump_published()),
    ]
}

fn fib_local_jump_published() -> Vec<Expr> {
    vec![
        Expr::FibDaddrType { dreg: REG_1 },
        // RTN_LOCAL
        cmp_u32(CmpOp::Eq, 2),
        Expr::Verdict(Verdict::Jump(PUBLISHED)),
    ]
}

/// `ct KEY & BITS != 0` (ct state established,related / ct status dnat).
fn ct_bits(key: u32, bits: u32) -> Vec<Expr> {
    vec![
        Expr::Ct { key, dreg: REG_1 },
        Expr::Mask {
            reg: REG_1,
            mask: bits.to_ne_bytes().to_vec(),
        },
        cmp_u32(CmpOp::Neq, 0),
    ]
}

fn cmp_u32(op: CmpOp, v: u32) -> Expr {
    Expr::Cmp {
        op,
        sreg: REG_1,
        data: v.to_ne_bytes().to_vec(),
    }
}

/// `iifname/oifname OP NAME`: a 16-byte NUL-padded name, as nft compares it.
fn ifname(key: u32, op: CmpOp, name: &str) -> Vec<Expr> {
    let mut data = name.as_bytes().to_vec();
    data.resize(16, 0);
    vec![
        Expr::Meta { key, dreg: REG_1 },
        Expr::Cmp {
            op,
            sreg: REG_1,
            data,
        },
    ]
}

fn nfproto(ip: &IpAddr) -> Vec<Expr> {
    let p = if ip.is_ipv4() {
        NFPROTO_IPV4
    } else {
        NFPROTO_IPV6
    };
    vec![
        Expr::Meta {
            key: META_NFPROTO,
            dreg: REG_1,
        },
        Expr::Cmp {
            op: CmpOp::Eq,
            sreg: REG_1,
            data: vec![p],
        },
    ]
}

fn addr_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `ip saddr/daddr ADDR/PREFIX` (`src` chooses saddr); includes the nfproto check.
fn addr_match(src: bool, op: CmpOp, ip: &IpAddr, prefix: u8) -> Vec<Expr> {
    let (offset, len) = match (ip, src) {
        (IpAddr::V4(_), true) => (12, 4),
        (IpAddr::V4(_), false) => (16, 4),
        (IpAddr::V6(_), true) => (8, 16),
        (IpAddr::V6(_), false) => (24, 16),
    };
    let mut v = nfproto(ip);
    v.push(Expr::Payload {
        base: PAYLOAD_NETWORK,
        offset,
        len,
        dreg: REG_1,
    });
    let bits = usize::from(prefix).min(len as usize * 8);
    let mut mask = vec![0u8; len as usize];
    for (i, m) in mask.iter_mut().enumerate() {
        let b = bits.saturating_sub(i * 8).min(8);
        *m = if b == 0 { 0 } else { 0xffu8 << (8 - b) };
    }
    let net: Vec<u8> = addr_bytes(ip)
        .iter()
        .zip(&mask)
        .map(|(a, m)| a & m)
        .collect();
    if bits < len as usize * 8 {
        v.push(Expr::Mask { reg: REG_1, mask });
    }
    v.push(Expr::Cmp {
        op,
        sreg: REG_1,
        data: net,
    });
    v
}

/// The rules of one network (see docs/networking.md, "Firewall rules").
pub fn network_rules(n: &NetworkRules) -> Result<Vec<RuleSpec>, FirewallError> {
    check_ifname(&n.bridge)?;
    let tag = Tag::Network(n.name.clone());
    tag.userdata()?;
    let b = n.bridge.as_str();
    let mut out = Vec::new();
    let mut r = |chain, exprs: Vec<Vec<Expr>>| {
        out.push(RuleSpec {
            chain,
            exprs: exprs.concat(),
            tag: tag.clone(),
        })
    };
    let drop = || vec![Expr::Verdict(Verdict::Drop)];
    let accept = || vec![Expr::Verdict(Verdict::Accept)];
    let masq = || vec![Expr::Masquerade];
    if n.internal {
        // No way out, nothing in (before the established / dnat accepts).
        r(
            INTERNAL,
            vec![
                ifname(META_IIFNAME, CmpOp::Eq, b),
                ifname(META_OIFNAME, CmpOp::Neq, b),
                drop(),
            ],
        );
        r(
            INTERNAL,
            vec![
                ifname(META_OIFNAME, CmpOp::Eq, b),
                ifname(META_IIFNAME, CmpOp::Neq, b),
                drop(),
            ],
        );
    }
    // Isolation: nothing new enters the bridge from elsewhere except published ports.
    r(
        ISOLATION,
        vec![
            ifname(META_OIFNAME, CmpOp::Eq, b),
            ifname(META_IIFNAME, CmpOp::Neq, b),
            drop(),
        ],
    );
    r(OUTBOUND, vec![ifname(META_IIFNAME, CmpOp::Eq, b), accept()]);
    for (ip, prefix) in &n.subnets {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if *prefix > max {
            return Err(FirewallError::Invalid(format!(
                "subnet {ip}/{prefix}: prefix over {max}"
            )));
        }
        // Hairpin: a container reaching a published port of its own network through a
        // host address; the reply must come back through the host.
        r(
            POSTROUTING,
            vec![
                ifname(META_OIFNAME, CmpOp::Eq, b),
                ct_bits(CT_STATUS, 0x20),
                addr_match(true, CmpOp::Eq, ip, *prefix),
                masq(),
            ],
        );
        if !n.internal {
            r(
                POSTROUTING,
                vec![
                    addr_match(true, CmpOp::Eq, ip, *prefix),
                    ifname(META_OIFNAME, CmpOp::Neq, b),
                    masq(),
                ],
            );
        }
    }
    if n.subnets.iter().any(|(ip, _)| ip.is_ipv4()) {
        // The host itself through 127.0.0.1 (route_localnet on the bridge).
        let lo: IpAddr = [127, 0, 0, 0].into();
        r(
            POSTROUTING,
            vec![
                ifname(META_OIFNAME, CmpOp::Eq, b),
                addr_match(true, CmpOp::Eq, &lo, 8),
                masq(),
            ],
        );
    }
    Ok(out)
}

fn check_ifname(name: &str) -> Result<(), FirewallError> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\0']) {
        return Err(FirewallError::Invalid(format!(
            "bridge name {name:?}: 1 to 15 bytes, no '/' or space"
        )));
    }
    Ok(())
}

/// The DNAT rules of one unit's published ports (in chain `published`, which the
/// prerouting and output chains jump to for packets to a local address).
pub fn port_rules(unit: &str, ports: &[PortRule]) -> Result<Vec<RuleSpec>, FirewallError> {
    let tag = Tag::Unit(unit.to_string());
    tag.userdata()?;
    let mut out = Vec::new();
    for p in ports {
        let bad =
            |why: &str| FirewallError::Invalid(format!("{unit}: port {}: {why}", p.host_port));
        if p.count == 0 || p.host_port == 0 || p.container_port == 0 {
            return Err(bad("ports and counts start at 1"));
        }
        let host_last = u32::from(p.host_port) + u32::from(p.count) - 1;
        let cont_last = u32::from(p.container_port) + u32::from(p.count) - 1;
        if host_last > 65535 || cont_last > 65535 {
            return Err(bad("the range ends past 65535"));
        }
        let host_ip = p.host_ip.filter(|h| !h.is_unspecified());
        if let Some(h) = host_ip {
            if h.is_ipv4() != p.container_ip.is_ipv4() {
                return Err(bad(&format!(
                    "host address {h} and container address {} are of different families",
                    p.container_ip
                )));
            }
            if h.is_ipv6() && h.is_loopback() {
                return Err(FirewallError::NotSupported(format!(
                    "{unit}: publishing on [::1]: IPv6 has no route_localnet, so the host's ::1 cannot be forwarded to a container; publish on 127.0.0.1 or on the host's IPv6 address"
                )));
            }
        }
        let mut head = nfproto(&p.container_ip);
        match host_ip {
            Some(h) => head.extend(addr_match(false, CmpOp::Eq, &h, 128).split_off(2)),
            // ::1 cannot be forwarded (see above): leave it to the host's own sockets.
            None if p.container_ip.is_ipv6() => head.extend(
                addr_match(
                    false,
                    CmpOp::Neq,
                    &IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                    128,
                )
                .split_off(2),
            ),
            None => {}
        }
        let l4: u8 = match p.proto {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        };
        head.push(Expr::Meta {
            key: META_L4PROTO,
            dreg: REG_1,
        });
        head.push(Expr::Cmp {
            op: CmpOp::Eq,
            sreg: REG_1,
            data: vec![l4],
        });
        head.push(Expr::Payload {
            base: PAYLOAD_TRANSPORT,
            offset: 2,
            len: 2,
            dreg: REG_1,
        });
        let family = if p.container_ip.is_ipv4() {
            NFPROTO_IPV4
        } else {
            NFPROTO_IPV6
        };
        let to_addr = Expr::Immediate {
            dreg: REG_1,
            data: addr_bytes(&p.container_ip),
        };
        if p.host_port == p.container_port {
            // Same ports: one rule for the whole range, the port kept as it is.
            let mut e = head.clone();
            if p.count == 1 {
                e.push(Expr::Cmp {
                    op: CmpOp::Eq,
                    sreg: REG_1,
                    data: p.host_port.to_be_bytes().to_vec(),
                });
            } else {
                e.push(Expr::Cmp {
                    op: CmpOp::Gte,
                    sreg: REG_1,
                    data: p.host_port.to_be_bytes().to_vec(),
                });
                e.push(Expr::Cmp {
                    op: CmpOp::Lte,
                    sreg: REG_1,
                    data: (host_last as u16).to_be_bytes().to_vec(),
                });
            }
            e.push(to_addr.clone());
            e.push(Expr::Dnat {
                family,
                addr_reg: REG_1,
                proto_reg: None,
            });
            out.push(RuleSpec {
                chain: PUBLISHED,
                exprs: e,
                tag: tag.clone(),
            });
        } else {
            // Shifted ports: one rule a port (nft's NAT maps a range onto a range freely,
            // not port by port).
            for i in 0..p.count {
                let mut e = head.clone();
                e.push(Expr::Cmp {
                    op: CmpOp::Eq,
                    sreg: REG_1,
                    data: (p.host_port + i).to_be_bytes().to_vec(),
                });
                e.push(to_addr.clone());
                e.push(Expr::Immediate {
                    dreg: REG_2,
                    data: (p.container_port + i).to_be_bytes().to_vec(),
                });
                e.push(Expr::Dnat {
                    family,
                    addr_reg: REG_1,
                    proto_reg: Some(REG_2),
                });
                out.push(RuleSpec {
                    chain: PUBLISHED,
                    exprs: e,
                    tag: tag.clone(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(host: u16, count: u16, cont: u16) -> PortRule {
        PortRule {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: host,
            count,
            container_ip: [10, 89, 0, 2].into(),
            container_port: cont,
        }
    }

    #[test]
    fn tags_round_trip_through_userdata() {
        for t in [
            Tag::Base,
            Tag::Network("backend".into()),
            Tag::Unit("web=1".into()),
        ] {
            assert_eq!(Tag::from_userdata(&t.userdata().unwrap()), Some(t));
        }
        assert_eq!(Tag::from_userdata(b"\x00\x04abc\x00"), None);
        assert!(Tag::Unit("x".repeat(300)).userdata().is_err());
    }

    #[test]
    fn a_same_port_range_is_one_rule_a_shifted_one_a_rule_a_port() {
        assert_eq!(port_rules("u", &[port(9000, 4, 9000)]).unwrap().len(), 1);
        assert_eq!(port_rules("u", &[port(9000, 4, 8000)]).unwrap().len(), 4);
    }

    #[test]
    fn bad_ports_are_refused() {
        assert!(port_rules("u", &[port(0, 1, 80)]).is_err());
        assert!(port_rules("u", &[port(65535, 2, 65535)]).is_err());
        assert!(port_rules("u", &[port(80, 0, 80)]).is_err());
        let mut p = port(80, 1, 80);
        p.host_ip = Some("::1".parse().unwrap());
        p.container_ip = "fd00::2".parse().unwrap();
        assert!(matches!(
            port_rules("u", &[p]),
            Err(FirewallError::NotSupported(_))
        ));
        let mut p = port(80, 1, 80);
        p.host_ip = Some("fd00::1".parse().unwrap());
        assert!(port_rules("u", &[p]).is_err());
    }

    #[test]
    fn subnet_masks_cover_the_prefix() {
        let e = addr_match(true, CmpOp::Eq, &[10, 89, 7, 9].into(), 20);
        assert!(e.contains(&Expr::Mask {
            reg: REG_1,
            mask: vec![255, 255, 240, 0]
        }));
        assert!(e.contains(&Expr::Cmp {
            op: CmpOp::Eq,
            sreg: REG_1,
            data: vec![10, 89, 0, 0]
        }));
        let full = addr_match(true, CmpOp::Eq, &[10, 0, 0, 1].into(), 32);
        assert!(!full.iter().any(|x| matches!(x, Expr::Mask { .. })));
    }

    #[test]
    fn internal_networks_get_no_masquerade_out() {
        let mut n = NetworkRules {
            name: "n".into(),
            bridge: "kbr-n".into(),
            subnets: vec![([10, 89, 0, 0].into(), 24)],
            internal: false,
        };
        let masq_out = |rules: &[RuleSpec]| {
            rules
                .iter()
                .filter(|r| {
                    r.exprs.contains(&Expr::Cmp {
                        op: CmpOp::Neq,
                        sreg: REG_1,
                        data: {
                            let mut d = b"kbr-n".to_vec();
                            d.resize(16, 0);
                            d
                        },
                    }) && r.chain == POSTROUTING
                })
                .count()
        };
        assert_eq!(masq_out(&network_rules(&n).unwrap()), 1);
        n.internal = true;
        let rules = network_rules(&n).unwrap();
        assert_eq!(masq_out(&rules), 0);
        assert_eq!(rules.iter().filter(|r| r.chain == INTERNAL).count(), 2);
        n.bridge = "a-very-long-bridge-name".into();
        assert!(network_rules(&n).is_err());
    }
}
