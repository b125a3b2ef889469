//! The `kennel` binary: dispatches to the daemon, the client commands, `run`, `check`, or
//! the hidden helper role used to spawn processes.

mod attach;
mod boot;
mod cli;
mod commands;
mod commit_cmd;
mod control;
mod daemon;
mod image_cmd;
mod import_systemd;
mod net;
mod net_cmd;
mod oci;
mod octal;
mod reaper;
mod run;
mod spawn;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Cmd};
use control::protocol::PowerAction;

fn main() {
    // The helper role is decided before anything else: no runtime, no logging setup.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == spawn::HELPER_ARG)
    {
        spawn::helper::main();
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == spawn::ZYGOTE_ARG)
    {
        spawn::zygote::main();
    }
    // `kennel oci ...`, or run as `kennel-runc`: the OCI runtime (its own command line).
    if let Some(args) = oci::requested() {
        oci::main(args);
    }
    // As the kernel's init (`/sbin/init`), or `kennel boot`: run the machine.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .unwrap_or_default()
        .to_owned();
    // As its DHCP client's script (a symlink of that name, made by the boot).
    if name == boot::net::script::SCRIPT_NAME {
        boot::net::script::main();
    }
    // (`kennel boot --help` is clap's, below.)
    let help = std::env::args_os().any(|a| a == "--help" || a == "-h");
    if name == "init" || (std::env::args_os().nth(1).is_some_and(|a| a == "boot") && !help) {
        boot::main();
    }
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log_level).unwrap_or_else(|e| {
        eprintln!(
            "kennel: invalid --log-level {:?} ({e}); using info",
            cli.log_level
        );
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let code = match cli.command {
        Cmd::Up(a) => up(a),
        Cmd::Run(a) => run::run(&a.command, a.group),
        Cmd::Check(a) => commands::check(a),
        Cmd::Status(a) => commands::status(a),
        Cmd::Start(a) => commands::start(a),
        Cmd::Stop(a) => commands::stop(a),
        Cmd::Restart(a) => commands::restart(a),
        Cmd::Reload(a) => commands::reload(a),
        Cmd::Kill(a) => commands::kill(a),
        Cmd::Shutdown(a) => commands::shutdown(a),
        Cmd::Logs(a) => commands::logs(a),
        Cmd::Notify(a) => commands::notify(a),
        Cmd::Image(a) => image_cmd::image(a),
        Cmd::Network(a) => net_cmd::network(a),
        Cmd::Layer(a) => image_cmd::layer(a),
        Cmd::Commit(a) => commit_cmd::commit(a),
        Cmd::ImportSystemd(a) => import_systemd::import(a),
        Cmd::Exec(a) => attach::exec(a),
        Cmd::Boot => boot::main(),
        Cmd::Mounts(a) => boot::fsmount::show(&a.records),
        Cmd::NetUp => boot::net::up_and_hold(&boot::Cmdline::read()),
        Cmd::Cni(a) => net::cni::command::main(a),
        Cmd::Poweroff(a) => commands::power(a, PowerAction::Poweroff),
        Cmd::Reboot(a) => commands::power(a, PowerAction::Reboot),
        Cmd::Halt(a) => commands::power(a, PowerAction::Halt),
    };
    std::process::exit(code);
}

fn up(a: cli::UpArgs) -> i32 {
    // Absolute paths: they end up in mount options and in containers' specs.
    let abs = |p: std::path::PathBuf| std::path::absolute(&p).unwrap_or(p);
    let opts = daemon::Options {
        generated_units: Vec::new(),
        units: abs(a.units),
        networks: abs(a.networks),
        cni_conf_dir: abs(a.cni_conf_dir),
        cni_path: a
            .cni_path
            .as_deref()
            .map(std::env::split_paths)
            .map(|p| p.map(abs).collect())
            .unwrap_or_else(|| {
                net::cni::DEFAULT_PLUGIN_DIRS
                    .iter()
                    .map(std::path::PathBuf::from)
                    .collect()
            }),
        state_dir: abs(a.state_dir),
        log_dir: abs(a.log_dir),
        socket: abs(a.client.socket),
        cgroup_parent: a.cgroup_parent,
        socket_group: match a.socket_group.as_deref().map(resolve_group).transpose() {
            Ok(g) => g,
            Err(e) => {
                eprintln!("kennel: --socket-group: {e}");
                return commands::EXIT_FAILED;
            }
        },
        boot: false,
        test_panic: false,
        echo: !a.quiet,
        ending: kennel_core::Ending {
            budget: a.stop_budget.or_else(|| {
                let runtime = container_runtime()?;
                (std::process::id() == 1).then(|| {
                    tracing::info!(
                        "PID 1 of a {runtime} container: the shutdown takes at most {} (--stop-budget)",
                        kennel_units::duration::format_duration(CONTAINER_STOP_BUDGET)
                    );
                    CONTAINER_STOP_BUDGET
                })
            }),
            main: a.main,
        },
    };
    match daemon::up(opts) {
        Ok(outcome) => outcome.code,
        Err(e) => {
            eprintln!("kennel: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("kennel: {hint}");
            }
            commands::EXIT_FAILED
        }
    }
}

/// The shutdown budget as PID 1 of a container runtime's container: below podman's and
/// Docker's default stop timeout (10s) and Kubernetes' grace period (30s).
const CONTAINER_STOP_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);

/// Which container runtime made the container kennel runs in, by the marks each leaves:
/// podman's `container` variable and /run/.containerenv, Docker's /.dockerenv, the
/// variables Kubernetes gives every pod.
pub fn container_runtime() -> Option<String> {
    if let Ok(name) = std::env::var("container") {
        return Some(name);
    }
    if std::path::Path::new("/run/.containerenv").exists() {
        return Some("podman".into());
    }
    if std::path::Path::new("/.dockerenv").exists() {
        return Some("docker".into());
    }
    std::env::var_os("KUBERNETES_SERVICE_HOST").map(|_| "kubernetes".into())
}

/// A `--socket-group` that names no group.
#[derive(Debug, thiserror::Error)]
enum GroupError {
    #[error("no group named {0:?} in /etc/group")]
    Unknown(String),
    #[error("look up group {group:?}: {source}")]
    Lookup {
        group: String,
        source: nix::errno::Errno,
    },
}

/// A group name or number to its gid.
fn resolve_group(g: &str) -> Result<u32, GroupError> {
    if let Ok(n) = g.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::Group::from_name(g) {
        Ok(Some(grp)) => Ok(grp.gid.as_raw()),
        Ok(None) => Err(GroupError::Unknown(g.to_string())),
        Err(source) => Err(GroupError::Lookup {
            group: g.to_string(),
            source,
        }),
    }
}
