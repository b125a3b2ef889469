//! `kennel oci ...`, also kennel run as `kennel-runc` (argv[0]): an OCI runtime with runc's
//! command line, for podman/conmon, containerd's runc shim and CRI-O (docs/oci.md).
//!
//! A bundle's `config.json` is parsed with `oci-spec`, checked against what kennel
//! honours (everything else is refused, naming the field: `config.rs`), and translated
//! into the same [`SpawnSpec`](crate::spawn::SpawnSpec) + `ContainerSpec` a unit's
//! `[container]` becomes (`bundle.rs`); the helper (spawn/helper/) builds the container
//! from it as for a unit, and waits before exec until `start` (its start gate). State
//! lives under `--root` (`state.rs`), one directory and lock per container.
//!
//! Every command runs in this one process, single-threaded (no tokio runtime): `create`
//! forks the helper itself.

mod bundle;
mod cgroup;
mod cmd;
mod config;
mod defaults;
mod hooks;
mod log;
mod state;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The runtime-spec version kennel implements (what `--version` and `state` report).
pub const OCI_VERSION: &str = "1.0.2-dev";

/// The name under which the binary behaves as `kennel oci` (a symlink).
pub const RUNC_NAME: &str = "kennel-runc";

/// Default `--root`.
pub const DEFAULT_ROOT: &str = "/run/kennel-runc";

/// kennel as an OCI runtime, with runc's command line.
#[derive(Debug, Parser)]
#[command(
    name = "kennel-runc",
    about = "kennel as an OCI runtime (runc's command line)",
    disable_version_flag = true
)]
pub struct OciCli {
    /// Where container state is kept (a tmpfs such as /run).
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Write the runtime's log (errors; with --debug, debug messages) to this file
    /// instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// The log's format: text or json (one object per line, as runc writes for conmon).
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd's cgroup manager (cgroupsPath `slice:prefix:name`): not supported yet.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode (true, false or auto): only false (and auto as root) is supported.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Path to criu (checkpoint/restore): accepted for compatibility, never used.
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Print the version of kennel and of the runtime spec.
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<OciCmd>,
}

#[derive(Debug, Subcommand)]
pub enum OciCmd {
    /// Create a container from a bundle: every namespace, mount, cgroup and security
    /// setting in place; its process waits for `start`.
    Create(CreateArgs),
    /// Let a created container's process run its program.
    Start(IdArg),
    /// create + start (and, unless -d, wait for the container and exit with its code).
    Run(RunArgs),
    /// Print a container's state (the runtime spec's state JSON).
    State(IdArg),
    /// Send a signal (default SIGTERM) to a container's process.
    Kill(KillArgs),
    /// Delete a stopped (with --force, any) container and its state.
    Delete(DeleteArgs),
    /// List the containers under --root.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Print a default config.json (as runc's) into the bundle directory.
    Spec(SpecArgs),
    /// Print what this runtime supports (the runtime spec's features.json).
    Features,
    /// Run a process in a running container (its namespaces and cgroup).
    Exec(ExecArgs),
    /// List a container's processes (the pids of its cgroup).
    Ps(PsArgs),
    /// Freeze every process of a container (the cgroup freezer).
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Change a running container's resources (its cgroup).
    Update(UpdateArgs),
    /// A container's statistics and OOM events, as JSON lines.
    Events(EventsArgs),
    /// Checkpoint a container: not supported.
    Checkpoint(Rest),
    /// Restore a container: not supported.
    Restore(Rest),
}

#[derive(Debug, Args)]
pub struct IdArg {
    pub id: String,
}

/// Arguments of a command kennel does not implement (kept so the error names it).
#[derive(Debug, Args)]
pub struct Rest {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub id: String,
    /// The bundle directory (holding config.json); default the current directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container process's pid (on the host) to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// A Unix socket to which the master of the container's terminal is sent
    /// (process.terminal = true), with SCM_RIGHTS.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Do not use pivot_root: not supported (kennel always pivots, or chroots from an
    /// initramfs).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring: accepted (kennel never creates one).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N descriptors after stdio (3..3+N) to the container: only 0 is supported yet.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach: return once the container runs.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container after it exits (do not delete it).
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    pub id: String,
    /// The process as a runtime-spec process JSON (else ARGS, with the container's
    /// process as the base).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// A terminal for the process (its master goes to --console-socket).
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs, leaving it to the caller's subreaper.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// KEY=VALUE added to the environment (repeatable).
    #[arg(short, long)]
    pub env: Vec<String>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// uid[:gid].
    #[arg(short, long)]
    pub user: Option<String>,
    /// A capability added to every set (repeatable).
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Not supported yet (other than 0).
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub id: String,
    /// The runtime spec's LinuxResources JSON (`linux.resources` of config.json), a file
    /// or `-` for stdin.
    #[arg(short, long)]
    pub resources: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g); -1 for none.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory + swap limit in bytes (suffixes k, m, g); -1 for none.
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Memory soft limit in bytes (suffixes k, m, g).
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Maximum number of tasks; 0 or -1 for none.
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// CPU CFS quota in microseconds per period; -1 for none.
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs to use (cpuset), e.g. 0-1.
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use (cpuset).
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    pub id: String,
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often a stats event is printed (5s, 500ms, 1m; a bare number is seconds).
    #[arg(long, default_value = "5s")]
    pub interval: String,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    pub id: String,
    /// table (`ps` output for the container's processes) or json (a list of pids).
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Options for ps (table only; default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    pub id: String,
    /// A signal name (TERM, SIGTERM) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process of the container's cgroup.
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub id: String,
    /// Kill a container that still runs (SIGKILL), then delete it.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// table or json.
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Print only the ids.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Where to write config.json; default the current directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
}

/// Whether this process runs as `kennel-runc` (or was asked for `kennel oci`): returns
/// the arguments for [`OciCli`] (argv[0] and what follows the `oci`).
pub fn requested() -> Option<Vec<std::ffi::OsString>> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    if name == RUNC_NAME {
        return Some(args);
    }
    if args.get(1).is_some_and(|a| a == "oci") {
        let mut rest = vec![std::ffi::OsString::from("kennel oci")];
        rest.extend(args.into_iter().skip(2));
        return Some(rest);
    }
    None
}

/// Runs `kennel oci ARGS`; never returns.
pub fn main(args: Vec<std::ffi::OsString>) -> ! {
    let cli = OciCli::parse_from(args);
    let logger = match log::Log::open(cli.log.as_deref(), &cli.log_format, cli.debug) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kennel oci: {e}");
            std::process::exit(1);
        }
    };
    let code = match cmd::run(&cli, &logger) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&e.to_string());
            1
        }
    };
    std::process::exit(code)
}
