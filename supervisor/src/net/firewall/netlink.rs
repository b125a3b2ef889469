//! The nf_tables netlink conversation: one socket (netlink-socket2), messages built with
//! netlink-bindings; changes go in atomic batches (all or nothing), reads are dumps of
//! kennel's own table only.

use std::io;

use netlink_bindings::nftables::{self, Chained, Nfgenmsg};
use netlink_socket2::{NetlinkSocket, ReplyError};

use super::expr::{self, NFPROTO_INET};
use super::rules::{ChainSpec, RuleSpec, Tag, TABLE};

/// `NFNL_SUBSYS_NFTABLES`: the res_id of a batch's begin and end messages.
const SUBSYS_NFTABLES: u16 = 10;
/// `NF_ACCEPT`: the policy of kennel's base chains.
const POLICY_ACCEPT: u32 = 1;

/// One change in a batch.
pub enum Op<'a> {
    NewTable,
    NewChain(&'a ChainSpec),
    NewRule(&'a RuleSpec),
    DelRule {
        chain: &'a str,
        handle: u64,
    },
    #[cfg_attr(not(test), allow(dead_code))]
    DelTable,
}

/// A rule of kennel's table as read back: where it is and whose it is.
#[derive(Debug)]
pub struct Listed {
    pub chain: String,
    pub handle: u64,
    pub tag: Option<Tag>,
}

pub struct Nl {
    sock: NetlinkSocket,
}

fn inet() -> Nfgenmsg {
    let mut h = Nfgenmsg::new();
    h.nfgen_family = NFPROTO_INET;
    h
}

fn batch_header() -> Nfgenmsg {
    let mut h = Nfgenmsg::new();
    h.set_res_id(SUBSYS_NFTABLES);
    h
}

fn is_enoent(e: &ReplyError) -> bool {
    e.as_io_error().raw_os_error() == Some(libc::ENOENT)
}

impl Nl {
    /// Opens the socket now, so that it belongs to the calling thread's network namespace
    /// (netlink-socket2 opens it at the first request).
    pub fn open() -> Result<Nl, ReplyError> {
        let mut nl = Nl {
            sock: NetlinkSocket::new(),
        };
        let request = nftables::Request::new().op_getgen_do(&Nfgenmsg::new());
        nl.sock.request(&request)?.recv_one()?;
        Ok(nl)
    }

    pub fn table_exists(&mut self) -> Result<bool, ReplyError> {
        let mut request = nftables::Request::new().op_gettable_do(&inet());
        request.encode().push_name_bytes(TABLE.as_bytes());
        let mut reply = self.sock.request(&request)?;
        match reply.recv_one() {
            Ok(_) => Ok(true),
            Err(e) if is_enoent(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every rule of kennel's table (none when the table does not exist).
    pub fn rules(&mut self) -> Result<Vec<Listed>, ReplyError> {
        let mut request = nftables::Request::new().op_getrule_dump(&inet());
        request.encode().push_table_bytes(TABLE.as_bytes());
        let mut reply = self.sock.request(&request)?;
        let mut out = Vec::new();
        while let Some(item) = reply.recv() {
            let (_, attrs) = match item {
                Ok(x) => x,
                Err(e) if is_enoent(&e) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            out.push(Listed {
                chain: attrs.get_chain()?.to_string_lossy().into_owned(),
                handle: attrs.get_handle()?,
                tag: attrs.get_userdata().ok().and_then(Tag::from_userdata),
            });
        }
        Ok(out)
    }

    /// Sends `ops` as one transaction (the kernel applies all of them or none), or as
    /// several of at most BATCH_OPS changes each (more do not fit in the socket's
    /// buffers), each of them atomic. Returns how many transactions it took.
    pub fn apply(&mut self, ops: &[Op]) -> Result<usize, ApplyError> {
        let mut rest = ops;
        let mut sent = 0;
        while !rest.is_empty() {
            let mut c = Chained::new(self.sock.reserve_seq(rest.len() as u32 + 2));
            c.request().op_batch_begin_do(&batch_header());
            let mut n = 0;
            for op in rest {
                encode(&mut c, op)?;
                n += 1;
                if n == BATCH_OPS || c.buf().len() > BATCH_BYTES {
                    break;
                }
            }
            c.request().op_batch_end_do(&batch_header());
            let c = c.finalize();
            self.sock
                .request_chained(&c)
                .map_err(ApplyError::Io)?
                .recv_all()
                .map_err(ApplyError::Kernel)?;
            rest = &rest[n..];
            sent += 1;
        }
        Ok(sent)
    }
}

/// A batch is one sendmsg, which the socket's send buffer bounds (net.core.wmem_default,
/// 208 KiB by default): stay well below it.
const BATCH_BYTES: usize = 128 * 1024;
/// Each message of a batch is acknowledged, and the kernel queues all the acks before we
/// read one: past a few hundred the receive buffer overflows (ENOBUFS).
const BATCH_OPS: usize = 100;

fn encode(c: &mut Chained, op: &Op) -> Result<(), ApplyError> {
    let table = TABLE.as_bytes();
    match op {
        Op::NewTable => {
            // NLM_F_CREATE without EXCL: no error if it exists.
            c.request()
                .set_create()
                .op_newtable_do(&inet())
                .encode()
                .push_name_bytes(table);
        }
        Op::NewChain(spec) => {
            let req = c.request().set_create().op_newchain_do(&inet());
            let mut e = req
                .into_encoder()
                .push_table_bytes(table)
                .push_name_bytes(spec.name.as_bytes());
            if let Some((kind, hook, prio)) = spec.base {
                e = e
                    .nested_hook()
                    .push_num(hook)
                    .push_priority(prio)
                    .end_nested()
                    .push_type_bytes(kind.as_bytes())
                    .push_policy(POLICY_ACCEPT);
            }
            drop(e);
        }
        Op::NewRule(rule) => {
            let ud = rule
                .tag
                .userdata()
                .map_err(|e| ApplyError::Rule(e.to_string()))?;
            let e = c
                .request()
                .set_create()
                .set_append()
                .op_newrule_do(&inet())
                .into_encoder()
                .push_table_bytes(table)
                .push_chain_bytes(rule.chain.as_bytes())
                .push_userdata(&ud)
                .nested_expressions();
            drop(expr::push_all(e, &rule.exprs).end_nested());
        }
        Op::DelRule { chain, handle } => {
            c.request()
                .op_delrule_do(&inet())
                .encode()
                .push_table_bytes(table)
                .push_chain_bytes(chain.as_bytes())
                .push_handle(*handle);
        }
        Op::DelTable => {
            c.request()
                .op_deltable_do(&inet())
                .encode()
                .push_name_bytes(table);
        }
    }
    Ok(())
}

#[derive(Debug)]
pub enum ApplyError {
    Io(io::Error),
    Kernel(ReplyError),
    Rule(String),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Io(e) => write!(f, "{e}"),
            ApplyError::Kernel(e) => write!(f, "{e}"),
            ApplyError::Rule(e) => write!(f, "{e}"),
        }
    }
}
