#!/usr/bin/env bash
# kennel's quickstart, on a fresh Debian 12 machine, as root:
#   bash examples/quickstart/run.sh            # a guided tour that ends by itself
#   bash examples/quickstart/run.sh --foreground   # just run kennel up; Ctrl-C stops it
# It installs busybox-static, builds kennel, and supervises the units in this directory:
# a notify-ready "db", a oneshot "migrate", a tcp-ready and health-checked "web" that
# requires both, a crashing "flaky" unit (backoff, then the start limit) and a "ticker"
# whose log rotates; and two containers on a busybox layer: "site" (httpd serving a
# read-only volume) and "worker" (own network, a named volume, a memory limit). The tour:
# check, start, status, the containers, exec, the start limit, logs, the rotated log,
# restart, shutdown.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "quickstart: run as root" >&2; exit 1; }
if ! command -v busybox >/dev/null; then
  echo "== installing busybox-static"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static
fi
command -v cargo >/dev/null || { echo "quickstart: needs Rust (cargo); see https://rustup.rs" >&2; exit 1; }
echo "== building kennel"
(cd "$repo" && cargo build --release --quiet)
export PATH="$repo/target/release:$PATH"
work=/tmp/kennel-quickstart
rm -rf "$work"; mkdir -p "$work/www" "$work/logs" "$work/state/layers"
echo "<h1>hello from kennel</h1>" > "$work/www/index.html"
echo "== building a busybox layer for the containers (site, worker)"
bash "$repo/examples/layers/busybox.sh" "$work/state/layers/busybox"
export KENNEL_SOCKET="$work/kennel.sock"
up=(kennel up --units "$here" --state-dir "$work/state" --log-dir "$work/logs")

if [ "${1:-}" = "--foreground" ]; then
  echo "== kennel up (Ctrl-C for an ordered shutdown); in another shell: KENNEL_SOCKET=$KENNEL_SOCKET kennel status"
  exec "${up[@]}"
fi

echo "== kennel check $here"
kennel check "$here"
echo "== starting kennel in the background (its output: $work/kennel.out)"
"${up[@]}" >"$work/kennel.out" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$KENNEL_SOCKET" ] && break; sleep 0.1; done
echo "== kennel start web: waits for db (notify), migrate (oneshot), then web's port"
kennel start web
kennel status
echo "== curl-ing web through busybox wget"
busybox wget -q -O - http://127.0.0.1:8080/
echo "== the containers: site (httpd on a busybox layer, read-only volume) and worker"
kennel start site worker
busybox wget -q -O - http://127.0.0.1:8081/
kennel status site worker
echo "== kennel exec: a command inside the worker container (its namespaces, cgroup, rootfs)"
kennel exec worker sh -c 'echo "hostname: $(hostname)"; ps; ls -l /data'
echo "== kennel exec -i: bytes in and out"
echo "hello through a pipe" | kennel exec -i worker tr a-z A-Z
echo "   (an interactive shell: kennel exec -it worker sh)"
echo "== letting flaky crash for a while (growing delays, then the start limit)"
sleep 9
kennel status
echo "== kennel logs -n 5 flaky"
kennel logs -n 5 flaky
echo "== ticker's log rotates at 4K, keeping 2 files"
for _ in $(seq 300); do [ -f "$work/logs/ticker.log.1" ] && break; sleep 0.1; done
ls -l "$work"/logs/ticker.log*
kennel logs -n 2 ticker
echo "== kennel restart web"
kennel restart web
kennel status web
echo "== kennel shutdown: stops web, then migrate/ticker, then db"
kennel shutdown
wait $pid || true
trap - EXIT
echo "== the daemon's own output (ticker's echoed lines left out):"
grep -v '^ticker | ' "$work/kennel.out" || true
echo "== done. Logs are in $work/logs; run with --foreground to keep kennel up."
