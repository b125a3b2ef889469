//! The command line: one `Args` struct per subcommand; the doc comments are the `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// kennel: a supervisor and init system for containers.
#[derive(Debug, Parser)]
#[command(name = "kennel", version, about, propagate_version = true)]
pub struct Cli {
    /// Log level of kennel's own messages (error, warn, info, debug, trace), or a tracing
    /// filter such as `kennel=debug`.
    #[arg(long, global = true, env = "KENNEL_LOG", default_value = "info")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the supervisor in the foreground on a unit directory.
    Up(UpArgs),
    /// Run one command as a child that gets every signal, with orphans reaped (like tini).
    Run(RunArgs),
    /// Validate unit files and print every problem as FILE:LINE:COL: message.
    Check(CheckArgs),
    /// Show units: state, pid, uptime, restarts, last exit, ready, health, memory, CPU,
    /// tasks, detail.
    Status(StatusArgs),
    /// Start units and wait until they are up (a oneshot: exited successfully).
    Start(UnitsArgs),
    /// Stop units (and, first, what requires them) and wait until they are stopped.
    Stop(UnitsArgs),
    /// Stop then start units, and wait until they are up again.
    Restart(UnitsArgs),
    /// Re-read the unit directory: start new units, stop removed ones, restart changed ones.
    /// With units: run their reload commands (or send their reload_signal) and wait.
    Reload(ReloadArgs),
    /// Send a signal to a running unit: every process of its cgroup, or its main process.
    Kill(KillArgs),
    /// Stop every unit in reverse dependency order and end the daemon.
    Shutdown(ClientArgs),
    /// Print a unit's log (from the files when no daemon runs).
    Logs(LogsArgs),
    /// Be the init of a machine (what kennel does as /sbin/init): mounts, hostname,
    /// modules, units, and power-off at the end. Must be PID 1.
    Boot,
    /// What `kennel boot` did with /etc/fstab: each line's mount or swap, and whether it is
    /// still in place.
    Mounts(MountsArgs),
    /// What `kennel boot` does for the network (ip=, boot.toml's [[network]]), then wait for
    /// the DHCP clients it started. For tests, in a network namespace of their own.
    #[command(hide = true)]
    NetUp,
    /// One CNI operation (ADD, CHECK, DEL) of a network's plugin chain for a container's
    /// network namespace: what the daemon runs as a child for `network = "cni:NAME"`.
    #[command(hide = true)]
    Cni(CniArgs),
    /// Stop every unit in order and power the machine off (kennel as its init).
    Poweroff(ClientArgs),
    /// Stop every unit in order and reboot the machine.
    Reboot(ClientArgs),
    /// Stop every unit in order and halt the machine.
    Halt(ClientArgs),
    /// Run a command inside a running unit: its namespaces, cgroup, user and environment.
    Exec(ExecArgs),
    /// Send an sd_notify message (READY=1 ...) to $NOTIFY_SOCKET, from inside a service.
    Notify(NotifyArgs),
    /// Bridge networks: ls, inspect (settings, leases, members).
    Network(crate::net_cmd::NetworkArgs),
    /// Images: import (OCI layout, docker-archive), export, ls, rm.
    Image(crate::image_cmd::ImageArgs),
    /// Layers: import a root filesystem, export, ls, gc.
    Layer(crate::image_cmd::LayerArgs),
    /// Save a unit's writable layer as a new image on top of the unit's layers.
    Commit(crate::image_cmd::CommitArgs),
    /// Write the kennel TOML unit equivalent to systemd .service files, with what kennel
    /// reads differently or not at all as comments.
    ImportSystemd(ImportSystemdArgs),
}

#[derive(Debug, Args)]
pub struct ImportSystemdArgs {
    /// systemd .service files (an instance of a template: a symlink NAME@INSTANCE.service
    /// to NAME@.service). Drop-ins (FILE.d/*.conf) beside them are read too, and the
    /// .socket files beside them that name them ([[socket]] tables); a .socket file given
    /// imports its service.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write DIR/NAME.toml for each (an existing file is not overwritten); without it, the
    /// TOML goes to stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MountsArgs {
    /// The records `kennel boot` wrote.
    #[arg(long, default_value = "/run/kennel/mounts.json")]
    pub records: std::path::PathBuf,
}

/// Where the client finds the daemon.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// The daemon's control socket.
    #[arg(long, env = "KENNEL_SOCKET", default_value = "/run/kennel/kennel.sock")]
    pub socket: PathBuf,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Directory of unit files (NAME.toml).
    #[arg(long, default_value = "/etc/kennel/units")]
    pub units: PathBuf,
    /// Directory of network files (NAME.toml), the bridge networks units join with
    /// `network = "bridge:NAME"`; a missing directory: only the built-in network `kennel`.
    #[arg(long, default_value = "/etc/kennel/networks")]
    pub networks: PathBuf,
    /// Directory of CNI network configurations (NAME.conflist, .conf, .json), the networks
    /// units join with `network = "cni:NAME"`.
    #[arg(long, default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// Where CNI plugins are looked up: directories separated by `:` (default
    /// /usr/lib/cni:/opt/cni/bin). The ADD records are kept in STATE/cni.
    #[arg(long, value_name = "DIRS")]
    pub cni_path: Option<String>,
    /// State directory.
    #[arg(long, default_value = "/var/lib/kennel")]
    pub state_dir: PathBuf,
    /// Directory of the services' logs (NAME.log and its rotations).
    #[arg(long, default_value = "/var/log/kennel")]
    pub log_dir: PathBuf,
    /// Cgroup under which each unit gets its own (a path relative to the hierarchy root,
    /// e.g. `/kennel`); default: kennel's own cgroup.
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// Let this group (name or gid) use the control socket too (mode 0660; every peer is
    /// still checked with SO_PEERCRED). Default: root only.
    #[arg(long)]
    pub socket_group: Option<String>,
    /// Do not echo service output to kennel's stdout (it still goes to the log files).
    #[arg(long)]
    pub quiet: bool,
    /// The main unit: when its run ends and no other follows (its restart policy, its start
    /// limit, a stop), kennel stops the other units and exits with that run's exit code
    /// (128+N if killed by signal N), as tini does with its child.
    #[arg(long, value_name = "UNIT")]
    pub main: Option<String>,
    /// Time for the whole shutdown (e.g. `8s`): when it is spent, every unit still running
    /// gets SIGKILL. Default: 8s when kennel is PID 1 of a container (podman, Docker,
    /// Kubernetes; below their 10s and 30s stop timeouts), none otherwise.
    #[arg(long, value_name = "DURATION", value_parser = parse_budget)]
    pub stop_budget: Option<std::time::Duration>,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn parse_budget(s: &str) -> Result<std::time::Duration, String> {
    kennel_units::duration::parse_duration(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Forward signals to the command's whole process group, not just the command.
    #[arg(short = 'g', long)]
    pub group: bool,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Unit files or directories of unit files. A file is checked with the other units of
    /// its directory as context (its dependencies), their own problems not printed.
    #[arg(default_value = "/etc/kennel/units")]
    pub paths: Vec<PathBuf>,
    /// Directory of network files (NAME.toml): their problems are reported too, and units
    /// are checked against them (unknown network, address outside it or taken).
    #[arg(long, default_value = "/etc/kennel/networks")]
    pub networks: PathBuf,
    /// Directory of CNI network configurations: each `network = "cni:NAME"` must have one
    /// there (as `kennel up --cni-conf-dir`).
    #[arg(long, default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// Treat the warnings of systemd unit files (what kennel reads differently or not at
    /// all) as errors.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only these units (in this order).
    pub units: Vec<String>,
    /// Print JSON (the protocol's status rows) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Say only whether every unit (or every unit named) is ready: up (and not unhealthy)
    /// or a oneshot that finished successfully. Exit 0 if so, 1 if not (naming the units
    /// that are not), 3 without a daemon: a container healthcheck.
    #[arg(long, conflicts_with = "json")]
    pub ready: bool,
    /// Run CNI's CHECK for each running unit on a CNI network (`network = "cni:NAME"`), or
    /// for those named: one line a unit, `ok` or what failed. Exit 0 if every CHECK
    /// passed, 1 if not.
    #[arg(long, conflicts_with_all = ["json", "ready"])]
    pub check: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct UnitsArgs {
    /// Unit names.
    #[arg(required = true)]
    pub units: Vec<String>,
    /// Return once the daemon accepted the request instead of waiting for the outcome.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// Units to reload (their `reload` commands or `reload_signal`) instead of re-reading
    /// the unit directory.
    pub units: Vec<String>,
    /// Return once the daemon accepted the new units instead of waiting for the outcome.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The unit.
    pub unit: String,
    /// The signal: a name (`TERM`, `SIGHUP`) or a number; default SIGTERM.
    #[arg(short, long, default_value = "SIGTERM")]
    pub signal: String,
    /// Only the main process.
    #[arg(long, conflicts_with = "all")]
    pub main: bool,
    /// Every process of the unit's cgroup (the default).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The unit.
    pub unit: String,
    /// Keep printing lines as they are written.
    #[arg(short, long)]
    pub follow: bool,
    /// Print only the last N lines.
    #[arg(short = 'n', long)]
    pub lines: Option<usize>,
    /// Where to read the log when no daemon answers (default /var/log/kennel). With a
    /// daemon, its own log directory is used, and another one given here is refused.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Send READY=1.
    #[arg(long)]
    pub ready: bool,
    /// Send STATUS=TEXT.
    #[arg(long)]
    pub status: Option<String>,
    /// More VAR=VALUE assignments to send as they are.
    pub assignments: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open and pass it to the command.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a terminal (a PTY); this terminal goes into raw mode meanwhile.
    #[arg(short, long)]
    pub tty: bool,
    /// Run as this user (name, uid or uid:gid) instead of the unit's.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Set an environment variable (KEY=VALUE); may be repeated.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory instead of the unit's.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// The unit.
    pub unit: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct CniArgs {
    #[command(subcommand)]
    pub command: CniCmd,
}

#[derive(Debug, Subcommand)]
pub enum CniCmd {
    /// Run the chain's ADD; print the result (CNI 1.0.0 JSON) on stdout.
    Add(CniOpArgs),
    /// Run the chain's CHECK against the cached result of the ADD.
    Check(CniOpArgs),
    /// Run the chain's DEL in reverse, with the configuration and result the ADD cached.
    Del(CniOpArgs),
    /// List the attachments the cache holds (network, container id, ifname, netns,
    /// addresses), one JSON object a line.
    Ls(CniLsArgs),
}

#[derive(Debug, Args)]
pub struct CniLsArgs {
    /// Where each ADD's configuration and result are kept.
    #[arg(long, default_value = "/var/lib/kennel/cni")]
    pub cache_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CniOpArgs {
    /// The network: NAME.conflist, or a .conflist/.conf/.json whose "name" is NAME.
    #[arg(long)]
    pub network: String,
    /// Where the network configurations are.
    #[arg(long, default_value = "/etc/cni/net.d")]
    pub conf_dir: PathBuf,
    /// Where plugins are looked up, in order (repeat; default /usr/lib/cni, /opt/cni/bin).
    #[arg(long)]
    pub plugin_dir: Vec<PathBuf>,
    /// Where each ADD's configuration and result are kept for DEL and CHECK.
    #[arg(long, default_value = "/var/lib/kennel/cni")]
    pub cache_dir: PathBuf,
    /// CNI_CONTAINERID.
    #[arg(long)]
    pub container_id: String,
    /// CNI_NETNS: the network namespace's path (required for add and check; del without it
    /// uses the one the add cached).
    #[arg(long)]
    pub netns: Option<PathBuf>,
    /// CNI_IFNAME.
    #[arg(long, default_value = "eth0")]
    pub ifname: String,
    /// A CNI_ARGS pair KEY=VALUE (repeat).
    #[arg(long)]
    pub arg: Vec<String>,
    /// Capability arguments, a JSON object (e.g. {"portMappings":[...]}).
    #[arg(long)]
    pub capability_args: Option<String>,
    /// How long one plugin call may take before it is killed (e.g. 60s).
    #[arg(long, default_value = "60s", value_parser = parse_budget)]
    pub timeout: std::time::Duration,
}
