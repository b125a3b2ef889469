#!/usr/bin/env bash
# kennel side by side with crun, runc, tini, s6, busybox init (and Horust): container start,
# restart, exec, reaping, footprint and idle CPU, control round trip, VM boot, scale,
# kennel as PID 1 of a podman container (memory and time to all services up, the static
# kennel beside tini-static and s6), and a Debian disk boot with kennel, systemd or busybox
# init as /sbin/init (time until its daemon answers; the images are examples/vm/disk.sh's),
# and container start on a bridge network against none, beside crun + the CNI bridge plugin
# and podman + netavark, the CNI path's own cost and the latency of a DNS lookup of a unit's
# name beside podman's aardvark-dns (bench/net.py; all of it in network
# namespaces the bench makes, never the host's), and podman run and exec with kennel as its
# OCI runtime beside crun and runc (bench/ocipodman.py).
#
#   bash bench/run.sh [--quick] [--out DIR]
#
#   --quick    a few runs of each (CI checks that the benchmark runs end to end; the numbers
#              are not for quoting): footprint at 1 and 100 units, 10 s idle, 100-unit scale.
#   --out DIR  where performance.md, performance-start.svg, performance-rss.svg and
#              performance.json go (default: docs). Only the part of performance.md between
#              the bench:begin/bench:end markers is rewritten; other sections are kept.
#
#   BENCH_ARGS="--only start,exec" runs only those parts (start, restart, exec, reaping,
#   footprint, vm, entrypoint, disk, net, ocipodman); they replace their parts of DIR/performance.json's last run, and the
#   report says which parts were measured again, when.
#
# Needs root. Installs what it needs from Debian (crun runc tini s6 busybox-static hyperfine
# qemu-system-x86 cpio kmod xz-utils file gcc python3 podman conmon musl-tools
# containernetworking-plugins netavark iproute2), builds
# kennel (release) unless KENNEL=path is given, the static kennel (`rustup target add
# x86_64-unknown-linux-musl`, then the musl release build) unless KENNEL_STATIC=path is
# given (the entrypoint part's, and the VM's /sbin/init; a failure skips the entrypoint part
# and says why in the report), and in the full mode tries `cargo install horust` (into
# target/bench-tools; a failure is recorded in the report and the run goes on).
# Everything runs in namespaces and cgroups of its own and is removed at the end: the OCI
# bundles' overlays and crun's cgroup mask live in a private mount namespace, each kennel
# and s6 is PID 1 of its own pid namespace, crun/runc containers are under a cgroup of their
# own, qemu is killed when the marker is seen, podman's containers, image and store (its own,
# under the work directory) are removed.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$(pwd)
quick=0
out=docs
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --out=*) out=${1#--out=} ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "bench: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "needs root (namespaces, cgroups, mounts)"; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"

# --- the peers and tools, from Debian ---------------------------------------------------
packages=(crun runc tini s6 busybox-static hyperfine qemu-system-x86 cpio kmod xz-utils file
  gcc libc6-dev python3 util-linux procps podman conmon musl-tools binutils debootstrap e2fsprogs
  containernetworking-plugins netavark iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- kennel -----------------------------------------------------------------------------
if [ -n "${KENNEL:-}" ]; then
  kennel=$(realpath "$KENNEL")
else
  log "building kennel (release)"
  cargo build --release -p kennel >&2
  kennel=$repo/target/release/kennel
fi
[ -x "$kennel" ] || { log "no kennel binary at $kennel"; exit 1; }

# --- the static kennel, for the entrypoint and vm parts (what goes into an image) ---------
static= static_note=
want_static=1
case "${BENCH_ARGS:-}" in *--only*) case "$BENCH_ARGS" in *entrypoint*|*vm*) ;; *) want_static=0 ;; esac ;; esac
if [ -n "${KENNEL_STATIC:-}" ]; then
  static=$(realpath "$KENNEL_STATIC")
elif [ $want_static = 1 ]; then
  musl=x86_64-unknown-linux-musl
  log "building the static kennel ($musl, release)"
  if { rustup target list --installed 2>/dev/null | grep -qx $musl || rustup target add $musl >&2; } &&
    cargo build --release --locked --target $musl -p kennel >&2; then
    static=$repo/target/$musl/release/kennel
  else
    static_note="the static kennel did not build (rustup target add $musl, cargo build --target $musl)"
    log "$static_note (continuing without the entrypoint part; the vm part's build.sh tries again)"
  fi
fi

# --- Horust, the closest Rust peer (full mode; --quick uses it only if already built) -----
horust= horust_note=
tools=$repo/target/bench-tools
footprint=1  # Horust is measured only in the footprint part
case "${BENCH_ARGS:-}" in *--only*) case "$BENCH_ARGS" in *footprint*) ;; *) footprint=0 ;; esac ;; esac
if [ -x "$tools/bin/horust" ]; then
  horust=$tools/bin/horust
elif [ $quick = 0 ] && [ $footprint = 1 ]; then
  log "cargo install horust (into $tools)"
  mkdir -p "$tools"
  if cargo install --quiet horust --root "$tools" >"$tools/horust-install.log" 2>&1; then
    horust=$tools/bin/horust
  else
    horust_note="cargo install horust failed: $(grep -m1 -E '^error' "$tools/horust-install.log" || tail -n1 "$tools/horust-install.log")"
    log "$horust_note (continuing without it)"
  fi
elif [ $footprint = 0 ]; then
  horust_note="not built (not needed by BENCH_ARGS=$BENCH_ARGS)"
else
  horust_note="not built (--quick does not build it; the full run does)"
fi

# --- run, in a private mount namespace --------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/kennel-bench.XXXXXX")
chmod 755 "$work"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
cmd="bash bench/run.sh"
[ $quick = 1 ] && cmd+=" --quick"
[ -n "${BENCH_ARGS:-}" ] && cmd="BENCH_ARGS=\"$BENCH_ARGS\" $cmd"
args=(--out "$out" --work "$work" --kennel "$kennel" --outer-ns "/proc/$$/ns/mnt" --command "$cmd")
[ $quick = 1 ] && args+=(--quick)
[ -n "$horust" ] && args+=(--horust "$horust" --horust-version "$(cargo install --list --root "$tools" 2>/dev/null | awk '/^horust /{print $2; exit}' | tr -d :)")
[ -n "$horust_note" ] && args+=(--horust-note "$horust_note")
[ -n "$static" ] && args+=(--kennel-static "$static")
[ -n "$static_note" ] && args+=(--kennel-static-note "$static_note")
log "uptime: $(uptime)"
unshare --mount --propagation private -- /usr/bin/python3 "$repo/bench/bench.py" "${args[@]}" ${BENCH_ARGS:-}
log "uptime: $(uptime)"
