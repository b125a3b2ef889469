#!/usr/bin/env bash
# Boot a VM whose init is kennel, on Debian's kernel, under qemu (TCG), with the serial
# console on this terminal. Builds everything first (examples/vm/build.sh).
#
#   bash examples/vm/run.sh [--check] [--crashing] [--net] [--panic] [--out DIR] [-- KERNEL_ARGS...]
#
#   (no option)  boot and stay up for interactive use: kennel's output and, from the
#                `console` unit, a shell on the serial line (`kennel status`,
#                `kennel exec -it web sh`, `kennel poweroff`); Ctrl-A X quits qemu.
#   --check      the guest's `checks` unit runs its checks (CHECK NAME ok|FAIL lines), prints
#                CHECKS DONE and powers the machine off (`kennel poweroff`).
#   --crashing   boot the unit set /etc/kennel/units-crashing (a unit that exits 1 at once,
#                one whose command does not exist, and the checks): the boot must go on and
#                the machine power off all the same. Implies --check.
#   --net        boot the unit set /etc/kennel/units-net: `web-bridge`, busybox httpd in a
#                container on the bridge network `kennel` with port 80 published on the
#                guest's 8080, and its checks. The guest gets a NIC on qemu's user network
#                (`ip=dhcp`, the network modules by `modules-load=`) and qemu forwards a free
#                port of the host's 127.0.0.1 to the guest's 8080; the host fetches the page
#                through it until it answers, the guest's checks wait for that request in
#                the container's log, then power off. Implies --check; success also needs
#                the host's fetch to have got the page.
#   --panic      kennel built with the `test-panic` feature and booted with
#                kennel.test_panic=1: it panics once the units are up and must fall into
#                emergency mode (EMERGENCY on the console), not take the kernel down. The
#                script then asks for a power-off through the emergency shell.
#   --out DIR    where the build goes (default target/vm, or $KENNEL_VM_OUT)
#
# At the end it prints `qemu start -> all units up: X.XXs (guest uptime Y.YYs)`.
# Exit status: 0 if the guest powered off cleanly (the kernel's `reboot: Power down`, no
# `Kernel panic`, qemu exited 0) and, with --check/--crashing, every check passed; with
# --panic, if kennel reached emergency mode without a kernel panic. 1 otherwise, 2 for a
# usage error, 77 if this machine cannot run the VM at all (qemu or the kernel cannot be
# installed, not root).
#
# Environment: KENNEL_VM_TIMEOUT (seconds, default 300; 0 = none), KENNEL_VM_KVM=1 to use
# KVM instead of TCG (Debian's kernel hangs on this machine's nested /dev/kvm),
# KENNEL_VM_MEM (MiB, default 512), KENNEL_VM_SMP (default 2), and build.sh's variables.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
log() { echo "vm/run: $*" >&2; }

check=0 crashing=0 panic=0 net=0
out=${KENNEL_VM_OUT:-target/vm}
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --crashing) crashing=1 check=1 ;;
    --net) net=1 check=1 ;;
    --panic) panic=1 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --out=*) out=${1#--out=} ;;
    --) shift; extra+=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "vm/run: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ $panic = 1 ] && [ $check = 1 ]; then
  echo "vm/run: --panic does not go with --check/--crashing/--net" >&2
  exit 2
fi
if [ $net = 1 ] && [ $crashing = 1 ]; then
  echo "vm/run: --net and --crashing are two unit sets: one at a time" >&2
  exit 2
fi
[ "$(id -u)" = 0 ] || { log "SKIP: needs root (apt-get, the initramfs' device nodes)"; exit 77; }

# One run at a time per build directory (the tests of several checkouts' engineers, or a
# test and a manual run, may share it): the lock is held until the end.
mkdir -p "$out"
exec 8>"$out/.run.lock"
if ! flock -n 8; then
  log "waiting for another run.sh using $out"
  flock 8
fi

# --- build ------------------------------------------------------------------------------
if [ $panic = 1 ]; then
  export KENNEL_VM_FEATURES=${KENNEL_VM_FEATURES:-test-panic}
fi
t_build=$EPOCHREALTIME
set +e
bash "$here/build.sh" "$out"
rc=$?
set -e
if [ $rc != 0 ]; then
  # Can this machine run a VM at all? If qemu or the kernel is missing after build.sh tried
  # to install them, it cannot: say so with 77, which the tests treat as a skip.
  mkdir -p "$out"
  if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    log "SKIP: qemu-system-x86_64 is not installed and could not be installed"
    exit 77
  fi
  if [ ! -f "$out/vmlinuz" ] && ! ls "${KENNEL_VM_KERNEL_CACHE:-$out/kernel}"/*/root/boot/vmlinuz-* >/dev/null 2>&1; then
    log "SKIP: Debian's kernel package could not be downloaded"
    exit 77
  fi
  log "build failed (exit $rc)"
  exit 1
fi
out=$(cd "$out" && pwd)
build_s=$(awk -v a="$t_build" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
log "built in ${build_s}s"

# --- boot -------------------------------------------------------------------------------
cmdline="console=ttyS0 rdinit=/sbin/init panic=-1 kennel.hostname=kennel-vm"
[ $check = 1 ] && cmdline+=" kennelvm.check"
[ $crashing = 1 ] && cmdline+=" kennel.units=/etc/kennel/units-crashing"
[ $panic = 1 ] && cmdline+=" kennel.test_panic=1"
nic=(-nic none)
if [ $net = 1 ]; then
  # The modules build.sh put in the initramfs for a bridge network (loaded by kennel before
  # the network comes up); the guest's eth0 from qemu's DHCP.
  cmdline+=" kennel.units=/etc/kennel/units-net ip=dhcp"
  cmdline+=" modules-load=crc32c_generic,virtio_pci,virtio_net,veth,bridge,nf_tables,nft_chain_nat,nft_nat,nft_masq,nft_ct,nft_fib_inet"
  # A free port on the host's 127.0.0.1 for the guest's 8080 (free now; qemu takes it a
  # moment later).
  port=$(perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die "$!\n"; print $s->sockport, "\n"')
  nic=(-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$port-:8080")
fi
[ ${#extra[@]} -gt 0 ] && cmdline+=" ${extra[*]}"
if [ "${KENNEL_VM_KVM:-0}" = 1 ]; then accel=(-accel kvm -cpu host); else accel=(-accel tcg); fi
qemu=(qemu-system-x86_64 -m "${KENNEL_VM_MEM:-512}" -smp "${KENNEL_VM_SMP:-2}" "${accel[@]}"
  -kernel "$out/vmlinuz" -initrd "$out/initramfs.cpio.gz" -append "$cmdline"
  "${nic[@]}" -nographic -no-reboot)
interactive=0
[ $check = 0 ] && [ $panic = 0 ] && interactive=1
timeout_s=${KENNEL_VM_TIMEOUT:-300}
[ $interactive = 1 ] && timeout_s=0

console=$out/console.log
rm -f "$console" "$console.all-units-up" "$console.not-all-units-up"
run=$(mktemp -d "${TMPDIR:-/tmp}/kennel-vm.XXXXXX")
qpid= mpid= hpid=
cleanup() {
  [ -n "$hpid" ] && kill "$hpid" 2>/dev/null
  [ -n "$qpid" ] && kill "$qpid" 2>/dev/null
  [ -n "$mpid" ] && wait "$mpid" 2>/dev/null
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkfifo "$run/in" "$run/out"
exec 3<>"$run/in"   # qemu's stdin when not interactive: held open, written to by --panic
exec 4<&0           # the terminal, for interactive use

log "booting: ${qemu[*]}"
[ $interactive = 1 ] && log "interactive: Ctrl-A X quits qemu"
t0=$EPOCHREALTIME
perl "$here/console.pl" "$console" "$t0" <"$run/out" &
mpid=$!
if [ $interactive = 1 ]; then
  "${qemu[@]}" <&4 >"$run/out" 2>&1 &
else
  "${qemu[@]}" <&3 >"$run/out" 2>&1 &
fi
qpid=$!

if [ $net = 1 ]; then
  log "the guest's port 8080 (web-bridge's port 80) is http://127.0.0.1:$port/"
  # The host's side: fetch the page through the forwarded port until it answers, for as
  # long as the guest runs.
  (
    while kill -0 "$qpid" 2>/dev/null; do
      if body=$(curl -s -m 20 "http://127.0.0.1:$port/" 2>/dev/null) && [[ $body == *"served from a bridge container"* ]]; then
        awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }' >"$run/http-ok"
        break
      fi
      sleep 0.2
    done
  ) &
  hpid=$!
fi

seen() { grep -q -- "$1" "$console" 2>/dev/null; }
elapsed() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }'; }
timed_out=0
# --panic: once EMERGENCY shows, ask for a power-off through the emergency shell, each way
# in turn, until one works.
panic_steps=("kennel poweroff" "kill -TERM 1" "busybox poweroff -f")
panic_step=0 panic_next=0 panic_end=
while kill -0 "$qpid" 2>/dev/null; do
  if [ "$timeout_s" != 0 ] && [ "$(elapsed)" -ge "$timeout_s" ]; then
    timed_out=1
    log "timeout: no power-off within ${timeout_s}s; killing qemu"
    kill "$qpid" 2>/dev/null || true
    break
  fi
  if [ $panic = 1 ] && seen EMERGENCY && [ "$(elapsed)" -ge "$panic_next" ]; then
    if [ $panic_step = 0 ]; then
      sleep 3   # let the emergency shell start on the console
    fi
    if [ $panic_step -lt ${#panic_steps[@]} ]; then
      cmd=${panic_steps[$panic_step]}
      log "emergency mode seen; typing '$cmd' on the console"
      printf '%s\n' "$cmd" >&3
      panic_end=$cmd
      panic_step=$((panic_step + 1))
      panic_next=$(($(elapsed) + 20))
    else
      log "emergency mode did not power off on any request; killing qemu"
      panic_end="killed by run.sh"
      kill "$qpid" 2>/dev/null || true
      break
    fi
  fi
  sleep 0.2
done
set +e
wait "$qpid"
qrc=$?
set -e
qpid=
wait "$mpid" 2>/dev/null
mpid=
if [ -n "$hpid" ]; then
  wait "$hpid" 2>/dev/null
  hpid=
fi

# --- verdict ----------------------------------------------------------------------------
echo
ok=1
if [ -f "$console.all-units-up" ]; then
  read -r secs line <"$console.all-units-up"
  up=$(sed -n 's/.*all units up in [0-9.]*s (machine up \([0-9.]*\)s).*/\1/p' <<<"$line")
  printf 'qemu start -> all units up: %.2fs (guest uptime %ss)\n' "$secs" "${up:-?}"
elif [ -f "$console.not-all-units-up" ]; then
  read -r secs line <"$console.not-all-units-up"
  printf 'qemu start -> all units up: never; kennel said "not all units came up" at %.2fs\n' "$secs"
  [ $crashing = 1 ] || ok=0
else
  echo "qemu start -> all units up: never (no 'all units up' on the console)"
  # The crashing unit set never has all its units up; the others must.
  [ $crashing = 1 ] || ok=0
fi
problems=()
seen 'Kernel panic' && problems+=("Kernel panic on the console")
seen 'Attempted to kill init' && problems+=("'Attempted to kill init' on the console")
[ $timed_out = 1 ] && problems+=("timed out after ${timeout_s}s")
if [ $panic = 1 ]; then
  seen EMERGENCY || problems+=("no EMERGENCY line: kennel did not enter emergency mode")
  if seen 'reboot: Power down'; then
    log "panic mode ended by: $panic_end (the guest powered off)"
  else
    log "panic mode ended by: ${panic_end:-nothing} (the guest did not power off: qemu killed)"
  fi
else
  seen 'reboot: Power down' || problems+=("no 'reboot: Power down': the guest did not power off")
  [ "$qrc" = 0 ] || problems+=("qemu exited $qrc")
  if [ $check = 1 ]; then
    seen 'CHECKS DONE' || problems+=("no CHECKS DONE")
    grep -q 'CHECK [^ ]* FAIL' "$console" && problems+=("checks failed: $(grep -o 'CHECK [^ ]* FAIL.*' "$console" | tr '\n' ';')")
  fi
fi
if [ $net = 1 ]; then
  if [ -f "$run/http-ok" ]; then
    printf 'qemu start -> the host got web-bridge'"'"'s page through the forwarded port: %.2fs\n' "$(cat "$run/http-ok")"
  else
    problems+=("the host never got web-bridge's page through http://127.0.0.1:$port/")
  fi
fi
for p in "${problems[@]}"; do log "FAIL: $p"; done
[ ${#problems[@]} = 0 ] || ok=0
log "console log: $console"
if [ $ok = 1 ]; then log "OK"; exit 0; fi
exit 1
