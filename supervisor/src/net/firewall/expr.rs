//! nf_tables rule expressions as plain data, and their netlink encoding (through the
//! netlink-bindings crate, generated from the kernel's own nftables spec).

use netlink_bindings::nftables::{PushExprAttrs, PushExprListAttrs};
use netlink_bindings::traits::Pusher;

/// The verdict register and the 16-byte data registers nft itself uses.
pub const REG_VERDICT: u32 = 0;
pub const REG_1: u32 = 1;
pub const REG_2: u32 = 2;

/// `NFT_META_*` keys.
pub const META_IIFNAME: u32 = 6;
pub const META_OIFNAME: u32 = 7;
pub const META_NFPROTO: u32 = 15;
pub const META_L4PROTO: u32 = 16;

/// `NFT_CT_*` keys.
pub const CT_STATE: u32 = 0;
pub const CT_STATUS: u32 = 2;

/// `NFT_PAYLOAD_*` bases.
pub const PAYLOAD_NETWORK: u32 = 1;
pub const PAYLOAD_TRANSPORT: u32 = 2;

/// `NFPROTO_*`.
pub const NFPROTO_INET: u8 = 1;
pub const NFPROTO_IPV4: u8 = 2;
pub const NFPROTO_IPV6: u8 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq = 0,
    Neq = 1,
    Lte = 3,
    Gte = 5,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Jump(&'static str),
}

/// One expression of a rule; the subset kennel's rules use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `meta KEY => reg`
    Meta { key: u32, dreg: u32 },
    /// `cmp OP reg DATA`
    Cmp { op: CmpOp, sreg: u32, data: Vec<u8> },
    /// `payload load LEN @ BASE + OFFSET => reg`
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// `bitwise reg = (reg & MASK) ^ 0`
    Mask { reg: u32, mask: Vec<u8> },
    /// `ct load KEY => reg`
    Ct { key: u32, dreg: u32 },
    /// `fib daddr type => reg`
    FibDaddrType { dreg: u32 },
    /// `immediate reg DATA`
    Immediate { dreg: u32, data: Vec<u8> },
    /// `immediate reg 0 VERDICT`
    Verdict(Verdict),
    /// `nat dnat FAMILY addr_min reg [proto_min reg]`
    Dnat {
        family: u8,
        addr_reg: u32,
        proto_reg: Option<u32>,
    },
    /// `masq`
    Masquerade,
}

/// `NFTA_FIB_F_DADDR` and `NFT_FIB_RESULT_ADDRTYPE`.
const FIB_F_DADDR: u32 = 2;
const FIB_RESULT_ADDRTYPE: u32 = 3;
/// `NF_NAT_RANGE_MAP_IPS`, `NF_NAT_RANGE_PROTO_SPECIFIED`, `NFT_NAT_DNAT`.
const NAT_MAP_IPS: u32 = 1;
const NAT_PROTO_SPECIFIED: u32 = 2;
const NAT_DNAT: u32 = 1;
/// `NF_ACCEPT`, `NF_DROP`, `NFT_JUMP`.
const NF_ACCEPT: u32 = 1;
const NF_DROP: u32 = 0;
const NFT_JUMP: u32 = -3i32 as u32;

/// Appends `exprs` to a rule's expression list.
pub fn push_all<P: Pusher>(mut list: PushExprListAttrs<P>, exprs: &[Expr]) -> PushExprListAttrs<P> {
    for e in exprs {
        list = push(list.nested_elem(), e);
    }
    list
}

/// Encodes one expression as one element of the list; returns the list.
fn push<P: Pusher>(elem: PushExprAttrs<PushExprListAttrs<P>>, e: &Expr) -> PushExprListAttrs<P> {
    match e {
        Expr::Meta { key, dreg } => elem
            .nested_data_meta()
            .push_key(*key)
            .push_dreg(*dreg)
            .end_nested()
            .end_nested(),
        Expr::Cmp { op, sreg, data } => elem
            .nested_data_cmp()
            .push_sreg(*sreg)
            .push_op(*op as u32)
            .nested_data()
            .push_value(data)
            .end_nested()
            .end_nested()
            .end_nested(),
        Expr::Payload {
            base,
            offset,
            len,
            dreg,
        } => elem
            .nested_data_payload()
            .push_dreg(*dreg)
            .push_base(*base)
            .push_offset(*offset)
            .push_len(*len)
            .end_nested()
            .end_nested(),
        Expr::Mask { reg, mask } => elem
            .nested_data_bitwise()
            .push_sreg(*reg)
            .push_dreg(*reg)
            .push_len(mask.len() as u32)
            .nested_mask()
            .push_value(mask)
            .end_nested()
            .nested_xor()
            .push_value(&vec![0; mask.len()])
            .end_nested()
            .end_nested()
            .end_nested(),
        Expr::Ct { key, dreg } => elem
            .nested_data_ct()
            .push_dreg(*dreg)
            .push_key(*key)
            .end_nested()
            .end_nested(),
        Expr::FibDaddrType { dreg } => elem
            .nested_data_fib()
            .push_dreg(*dreg)
            .push_result(FIB_RESULT_ADDRTYPE)
            .push_flags(FIB_F_DADDR)
            .end_nested()
            .end_nested(),
        Expr::Immediate { dreg, data } => elem
            .nested_data_immediate()
            .push_dreg(*dreg)
            .nested_data()
            .push_value(data)
            .end_nested()
            .end_nested()
            .end_nested(),
        Expr::Verdict(v) => {
            let verdict = elem
                .nested_data_immediate()
                .push_dreg(REG_VERDICT)
                .nested_data()
                .nested_verdict();
            let verdict = match v {
                Verdict::Accept => verdict.push_code(NF_ACCEPT),
                Verdict::Drop => verdict.push_code(NF_DROP),
                Verdict::Jump(chain) => verdict
                    .push_code(NFT_JUMP)
                    .push_chain_bytes(chain.as_bytes()),
            };
            verdict.end_nested().end_nested().end_nested().end_nested()
        }
        Expr::Dnat {
            family,
            addr_reg,
            proto_reg,
        } => {
            let mut nat = elem
                .nested_data_nat()
                .push_type(NAT_DNAT)
                .push_family(u32::from(*family))
                .push_reg_addr_min(*addr_reg)
                .push_reg_addr_max(*addr_reg);
            let mut flags = NAT_MAP_IPS;
            if let Some(p) = proto_reg {
                nat = nat.push_reg_proto_min(*p).push_reg_proto_max(*p);
                flags |= NAT_PROTO_SPECIFIED;
            }
            nat.push_flags(flags).end_nested().end_nested()
        }
        // The masq expression has no attributes: its name alone.
        Expr::Masquerade => elem.push_name(c"masq").end_nested(),
    }
}
