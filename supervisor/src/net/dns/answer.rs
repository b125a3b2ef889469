//! What to do with one query, decided without I/O: answer it from the network's table,
//! refuse it, or forward it to the upstreams. The wire format is `simple-dns`'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::{RData, A, AAAA, PTR};
use simple_dns::{
    Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, OPCODE, QCLASS, QTYPE, RCODE, TYPE,
};

use super::table::Table;

/// The search domain of kennel's networks: `NAME.dns.kennel` is NAME.
pub const DOMAIN: &str = "dns.kennel";

/// The TTL of kennel's own answers. Zero: a unit that restarts elsewhere or moves is seen
/// at the next query, and the server is on the same host as its clients, so a cache would
/// save them nothing.
pub const TTL: u32 = 0;

/// The largest UDP reply a client without EDNS takes (RFC 1035).
const CLASSIC_UDP: usize = 512;

/// How the query came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the server does with a query.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send this reply.
    Reply(Vec<u8>),
    /// Not a name of this network: relay the query to the upstreams. `udp_limit` is the
    /// largest reply the client takes over UDP (512, or its EDNS buffer size).
    Forward { udp_limit: usize },
    /// Not a query worth a reply (too short to carry an id, or a response).
    Drop,
}

/// Decides the fate of `query` from `src`, received on a network whose table is `table`.
pub fn respond(table: &Table, src: IpAddr, query: &[u8], transport: Transport) -> Outcome {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return Outcome::Drop;
    }
    if !table.in_subnets(src) {
        return Outcome::Reply(error_reply(query, RCODE::Refused));
    }
    let Ok(packet) = Packet::parse(query) else {
        // A query this parser does not know (a new record type, say) is not for one of
        // kennel's names: the upstreams may know it.
        return match query[2] >> 3 & 0x0f {
            0 => Outcome::Forward {
                udp_limit: CLASSIC_UDP,
            },
            _ => Outcome::Reply(error_reply(query, RCODE::NotImplemented)),
        };
    };
    if packet.opcode() != OPCODE::StandardQuery {
        return Outcome::Reply(error_reply(query, RCODE::NotImplemented));
    }
    let udp_limit = packet.opt().map_or(CLASSIC_UDP, |o| {
        usize::from(o.udp_packet_size).max(CLASSIC_UDP)
    });
    let [question] = packet.questions.as_slice() else {
        return Outcome::Reply(error_reply(query, RCODE::FormatError));
    };
    let ours = matches!(question.qclass, QCLASS::CLASS(CLASS::IN) | QCLASS::ANY);
    let records = match classify(table, &question.qname) {
        Some(found) if ours => found,
        _ => return Outcome::Forward { udp_limit },
    };
    let mut reply = reply_to(&packet, question);
    reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    match &records {
        Found::NoSuchName => *reply.rcode_mut() = RCODE::NameError,
        Found::Addrs(addrs) => {
            for addr in addrs.iter() {
                let rdata = match (*addr, question.qtype) {
                    (IpAddr::V4(a), QTYPE::TYPE(TYPE::A) | QTYPE::ANY) => RData::A(A::from(a)),
                    (IpAddr::V6(a), QTYPE::TYPE(TYPE::AAAA) | QTYPE::ANY) => {
                        RData::AAAA(AAAA::from(a))
                    }
                    _ => continue,
                };
                reply.answers.push(ResourceRecord::new(
                    question.qname.clone(),
                    CLASS::IN,
                    TTL,
                    rdata,
                ));
            }
        }
        Found::Pointer(target) => {
            if matches!(question.qtype, QTYPE::TYPE(TYPE::PTR) | QTYPE::ANY) {
                reply.answers.push(ResourceRecord::new(
                    question.qname.clone(),
                    CLASS::IN,
                    TTL,
                    RData::PTR(PTR(Name::new_unchecked(target))),
                ));
            }
        }
        Found::Empty => {}
    }
    let limit = match transport {
        Transport::Udp => udp_limit,
        Transport::Tcp => usize::from(u16::MAX),
    };
    match reply.build_bytes_vec_compressed() {
        Ok(bytes) if bytes.len() <= limit => Outcome::Reply(bytes),
        // Too many addresses for the client's UDP buffer: it retries over TCP.
        Ok(_) => {
            reply.answers.clear();
            reply.set_flags(PacketFlag::TRUNCATION);
            Outcome::Reply(
                reply
                    .build_bytes_vec()
                    .unwrap_or_else(|_| error_reply(query, RCODE::ServerFailure)),
            )
        }
        Err(_) => Outcome::Reply(error_reply(query, RCODE::ServerFailure)),
    }
}

/// What the table says about a name.
enum Found<'t> {
    /// A name of the network (the addresses of every family; the query picks).
    Addrs(&'t [IpAddr]),
    /// A reverse name of an address of the network: its name.
    Pointer(String),
    /// Under kennel's domain (or a reverse name of the network's subnets) but unknown.
    NoSuchName,
    /// Kennel's domain itself: it exists, with no record of its own.
    Empty,
}

/// Kennel's answer about `qname`, or None when the upstreams should answer.
fn classify<'t>(table: &'t Table, qname: &Name) -> Option<Found<'t>> {
    let labels: Vec<String> = qname
        .as_bytes()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let domain: Vec<&str> = DOMAIN.split('.').collect();
    if let Some(host) = labels.strip_suffix(domain.as_slice()) {
        return Some(match host {
            [] => Found::Empty,
            [name] => table.lookup(name).map_or(Found::NoSuchName, Found::Addrs),
            _ => Found::NoSuchName,
        });
    }
    if let [name] = labels.as_slice() {
        // An unknown single label may still be the upstreams' (a host's LAN name).
        return table.lookup(name).map(Found::Addrs);
    }
    let addr = reverse_addr(&labels)?;
    match table.reverse(addr) {
        Some(name) => Some(Found::Pointer(format!("{name}.{DOMAIN}"))),
        None if table.in_subnets(addr) => Some(Found::NoSuchName),
        None => None,
    }
}

/// The address a full reverse name (`4.3.2.1.in-addr.arpa`, 32 nibbles `.ip6.arpa`) stands for.
fn reverse_addr(labels: &[&str]) -> Option<IpAddr> {
    if let Some([d, c, b, a]) = labels.strip_suffix(&["in-addr", "arpa"]) {
        let octet = |s: &str| s.parse::<u8>().ok();
        return Some(IpAddr::V4(Ipv4Addr::new(
            octet(a)?,
            octet(b)?,
            octet(c)?,
            octet(d)?,
        )));
    }
    let nibbles = labels.strip_suffix(&["ip6", "arpa"])?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut v = 0u128;
    for n in nibbles.iter().rev() {
        let [c] = n.as_bytes() else { return None };
        v = v << 4 | u128::from((*c as char).to_digit(16)? as u8);
    }
    Some(IpAddr::V6(Ipv6Addr::from(v)))
}

/// An empty reply to `query` with its question, id and RD flag, RA set (the upstreams
/// recurse for the client).
fn reply_to<'a>(query: &Packet<'a>, question: &Question<'a>) -> Packet<'a> {
    let mut reply = Packet::new_reply(query.id());
    reply.questions.push(question.clone());
    reply.set_flags(PacketFlag::RECURSION_AVAILABLE);
    if query.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    reply
}

/// A reply to `query` with no answer and `rcode`: with the question when it parses, else
/// the bare header (id, opcode, RD).
pub fn error_reply(query: &[u8], rcode: RCODE) -> Vec<u8> {
    if let Ok(packet) = Packet::parse(query) {
        if let [question] = packet.questions.as_slice() {
            let mut reply = reply_to(&packet, question);
            *reply.opcode_mut() = packet.opcode();
            *reply.rcode_mut() = rcode;
            if let Ok(bytes) = reply.build_bytes_vec() {
                return bytes;
            }
        }
    }
    let mut header = [0u8; 12];
    header[..2].copy_from_slice(&query[..2.min(query.len())]);
    // QR, the query's opcode and RD; RA; the rcode.
    header[2] = 0x80 | (query.get(2).copied().unwrap_or(0) & 0x79);
    header[3] = 0x80 | (rcode as u8 & 0x0f);
    header.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table() -> Table {
        let mut t = Table::default();
        t.set_subnets(vec![(ip("10.89.0.0"), 24), (ip("fd00:89::"), 64)]);
        t.set("web", vec![ip("10.89.0.2"), ip("fd00:89::2")]);
        t.set("db", vec![ip("10.89.0.3")]);
        t
    }

    fn query(name: &str, qtype: TYPE) -> Vec<u8> {
        let mut q = Packet::new_query(7);
        q.set_flags(PacketFlag::RECURSION_DESIRED);
        q.questions.push(Question::new(
            Name::new_unchecked(name),
            qtype.into(),
            CLASS::IN.into(),
            false,
        ));
        q.build_bytes_vec().unwrap()
    }

    fn ask(name: &str, qtype: TYPE) -> (RCODE, Vec<String>) {
        let client = ip("10.89.0.9");
        match respond(&table(), client, &query(name, qtype), Transport::Udp) {
            Outcome::Reply(bytes) => {
                let p = Packet::parse(&bytes).unwrap();
                assert_eq!(p.id(), 7);
                let answers = p
                    .answers
                    .iter()
                    .map(|rr| match &rr.rdata {
                        RData::A(a) => Ipv4Addr::from(a.address).to_string(),
                        RData::AAAA(a) => Ipv6Addr::from(a.address).to_string(),
                        RData::PTR(p) => p.0.to_string(),
                        other => format!("{other:?}"),
                    })
                    .collect();
                (p.rcode(), answers)
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn names_and_families() {
        assert_eq!(
            ask("web", TYPE::A),
            (RCODE::NoError, vec!["10.89.0.2".into()])
        );
        assert_eq!(
            ask("WEB.Dns.Kennel", TYPE::AAAA),
            (RCODE::NoError, vec!["fd00:89::2".into()])
        );
        assert_eq!(ask("db", TYPE::AAAA), (RCODE::NoError, vec![]));
        assert_eq!(ask("db", TYPE::MX), (RCODE::NoError, vec![]));
        assert_eq!(ask("nope.dns.kennel", TYPE::A), (RCODE::NameError, vec![]));
        assert_eq!(ask("a.web.dns.kennel", TYPE::A), (RCODE::NameError, vec![]));
        assert_eq!(ask("dns.kennel", TYPE::A), (RCODE::NoError, vec![]));
    }

    #[test]
    fn reverse_names_of_the_network() {
        assert_eq!(
            ask("3.0.89.10.in-addr.arpa", TYPE::PTR),
            (RCODE::NoError, vec!["db.dns.kennel".into()])
        );
        let v6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.9.8.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(
            ask(v6, TYPE::PTR),
            (RCODE::NoError, vec!["web.dns.kennel".into()])
        );
        assert_eq!(
            ask("77.0.89.10.in-addr.arpa", TYPE::PTR),
            (RCODE::NameError, vec![])
        );
        let q = query("1.1.1.1.in-addr.arpa", TYPE::PTR);
        assert_eq!(
            respond(&table(), ip("10.89.0.9"), &q, Transport::Udp),
            Outcome::Forward { udp_limit: 512 }
        );
    }

    #[test]
    fn other_names_are_forwarded() {
        for name in ["example.com", "unknown"] {
            let q = query(name, TYPE::A);
            assert_eq!(
                respond(&table(), ip("10.89.0.9"), &q, Transport::Udp),
                Outcome::Forward { udp_limit: 512 }
            );
        }
    }

    #[test]
    fn outsiders_are_refused_and_junk_dropped() {
        let q = query("web", TYPE::A);
        let Outcome::Reply(r) = respond(&table(), ip("10.90.0.9"), &q, Transport::Udp) else {
            panic!()
        };
        assert_eq!(Packet::parse(&r).unwrap().rcode(), RCODE::Refused);
        assert_eq!(
            respond(&table(), ip("10.89.0.9"), &q[..5], Transport::Udp),
            Outcome::Drop
        );
        let mut response = q.clone();
        response[2] |= 0x80;
        assert_eq!(
            respond(&table(), ip("10.89.0.9"), &response, Transport::Udp),
            Outcome::Drop
        );
    }

    #[test]
    fn too_many_addresses_truncate_over_udp_only() {
        let mut t = table();
        let many: Vec<IpAddr> = (1..=60)
            .map(|i| IpAddr::V4(Ipv4Addr::new(10, 89, 0, i)))
            .collect();
        t.set("big", many);
        let q = query("big", TYPE::A);
        let Outcome::Reply(udp) = respond(&t, ip("10.89.0.9"), &q, Transport::Udp) else {
            panic!()
        };
        let p = Packet::parse(&udp).unwrap();
        assert!(p.has_flags(PacketFlag::TRUNCATION));
        assert!(p.answers.is_empty());
        let Outcome::Reply(tcp) = respond(&t, ip("10.89.0.9"), &q, Transport::Tcp) else {
            panic!()
        };
        assert_eq!(Packet::parse(&tcp).unwrap().answers.len(), 60);
    }

    #[test]
    fn error_reply_of_an_unparsable_query_keeps_the_id() {
        let junk = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let r = error_reply(&junk, RCODE::ServerFailure);
        assert_eq!(&r[..2], &[0xab, 0xcd]);
        assert_eq!(r[2], 0x81);
        assert_eq!(r[3] & 0x0f, 2);
    }
}
