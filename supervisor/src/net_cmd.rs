//! `kennel network ls|inspect`: the bridge networks, their leases and members, from the
//! daemon (`networks` request, docs/control.md).

use std::io::Write;

use clap::{Args, Subcommand};

use crate::cli::ClientArgs;
use crate::commands::{EXIT_FAILED, EXIT_NO_DAEMON, EXIT_OK};
use crate::control::client::{Client, ClientError};
use crate::control::protocol::{NetworkRow, ReplyBody, RequestBody};

#[derive(Debug, Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    pub cmd: NetworkCmd,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// List the networks: name, subnet, gateway, bridge, members (running / leases).
    Ls(NetworkLsArgs),
    /// One network: its settings, and every unit with a lease (address, running or not).
    Inspect(NetworkInspectArgs),
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Print the networks as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    /// The network.
    pub name: String,
    /// Print it as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn network(a: NetworkArgs) -> i32 {
    let (client, name, json) = match &a.cmd {
        NetworkCmd::Ls(l) => (&l.client, None, l.json),
        NetworkCmd::Inspect(i) => (&i.client, Some(i.name.clone()), i.json),
    };
    let inspect = name.is_some();
    let reply =
        Client::connect(&client.socket).and_then(|mut c| c.call(RequestBody::Networks { name }));
    let networks = match reply {
        Ok(ReplyBody::Networks { networks }) => networks,
        Ok(other) => {
            eprintln!("kennel: unexpected reply {other:?}");
            return EXIT_NO_DAEMON;
        }
        Err(e) => {
            eprintln!("kennel: {e}");
            return match e {
                ClientError::Daemon(_) | ClientError::Denied { .. } => EXIT_FAILED,
                _ => EXIT_NO_DAEMON,
            };
        }
    };
    let text = if json {
        let value = if inspect {
            serde_json::to_string_pretty(&networks.first())
        } else {
            serde_json::to_string_pretty(&networks)
        };
        value.unwrap_or_default() + "\n"
    } else if inspect {
        networks.iter().map(inspect_text).collect()
    } else {
        ls_table(&networks)
    };
    match std::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("kennel: {e}");
            EXIT_FAILED
        }
    }
}

fn ls_table(networks: &[NetworkRow]) -> String {
    let header = [
        "NAME", "SUBNET", "GATEWAY", "BRIDGE", "INTERNAL", "RUNNING", "LEASES",
    ];
    let rows: Vec<[String; 7]> = networks
        .iter()
        .map(|n| {
            let subnet = match &n.subnet6 {
                Some(s6) => format!("{} {s6}", n.subnet),
                None => n.subnet.clone(),
            };
            [
                n.name.clone(),
                subnet,
                n.gateway.clone(),
                n.bridge.clone(),
                if n.internal { "yes" } else { "no" }.to_string(),
                n.leases.iter().filter(|l| l.running).count().to_string(),
                n.leases.len().to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            l.push_str(&format!("{c:<w$}  ", w = widths[i]));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &rows {
        line(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

fn inspect_text(n: &NetworkRow) -> String {
    let mut out = format!("name: {}\n", n.name);
    out.push_str(&format!(
        "file: {}\n",
        n.file.as_deref().unwrap_or("(built in)")
    ));
    out.push_str(&format!("subnet: {}\n", n.subnet));
    if let Some(s6) = &n.subnet6 {
        out.push_str(&format!("subnet6: {s6}\n"));
    }
    out.push_str(&format!("gateway: {}\n", n.gateway));
    if let Some(g6) = &n.gateway6 {
        out.push_str(&format!("gateway6: {g6}\n"));
    }
    out.push_str(&format!("bridge: {}\n", n.bridge));
    out.push_str(&format!("internal: {}\n", n.internal));
    if let Some(mtu) = n.mtu {
        out.push_str(&format!("mtu: {mtu}\n"));
    }
    match &n.dns {
        Some(d) => out.push_str(&format!("dns: {}\n", d.join(" "))),
        None => out.push_str("dns: (the host's)\n"),
    }
    out.push_str("leases:\n");
    for l in &n.leases {
        let state = if l.running { "running" } else { "stopped" };
        out.push_str(&format!(
            "  {}  {}  {state}\n",
            l.unit,
            l.addresses.join(" ")
        ));
    }
    out
}
