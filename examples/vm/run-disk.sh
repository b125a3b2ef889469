#!/usr/bin/env bash
# Boot the disk image of examples/vm/disk.sh (Debian 12, kennel as /sbin/init) under qemu
# (TCG): Debian's kernel and initramfs from the image, root=/dev/vda read-only, a second
# disk, user networking with the guest's port 80 forwarded to a free port of 127.0.0.1.
# Builds the images first (disk.sh; cached) and boots copies of them, so a boot never
# changes the build.
#
#   bash examples/vm/run-disk.sh [--check] [--broken-fstab] [--init I] [--rw] [--out DIR]
#                                [-- KERNEL_ARGS...]
#
#   (no option)     boot and stay up for interactive use: the serial console on this
#                   terminal (log in as root, password `kennel`); Ctrl-A X quits qemu.
#   --check         the guest's `checks` unit checks the boot (CHECK NAME ok|FAIL lines)
#                   and waits for a login; meanwhile this script fetches
#                   http://127.0.0.1:PORT/kennel.txt from lighttpd in the guest through
#                   the forwarded port, then logs in on the serial console (root, kennel)
#                   and runs a command there; the checks end (CHECKS DONE) and power the
#                   machine off (`kennel poweroff`). After qemu has exited, `e2fsck -fn`
#                   and `dumpe2fs -h` of the boot's root.img and data.img must say clean.
#   --broken-fstab  add to the boot's copy of /etc/fstab a line for a file system that does
#                   not exist (UUID=0badf00d-..., no nofail): kennel must enter emergency
#                   mode naming that line; the script then types `kennel poweroff` into the
#                   emergency shell.
#   --answer        stop (kill qemu) as soon as the daemon answers through the forwarded
#                   port: the boot time of any of the images, by hand.
#   --init I        boot root-I.img (systemd or busybox as /sbin/init; built with
#                   disk.sh --init I) instead of kennel's root.img; no checks there.
#   --rw            root mounted read-write by the initramfs (`rw` instead of `ro`).
#   --out DIR       the build (default target/vm-disk, or $KENNEL_VM_DISK_OUT); a boot's
#                   copies and console log are in DIR/boot/.
#
# At the end it prints `qemu start -> daemon answers: X.XXs` (the first complete answer of
# lighttpd through the forwarded port) and `qemu start -> all units up: ...`.
# Exit status: 0 if the guest powered off cleanly (`reboot: Power down`, no `Kernel panic`,
# qemu exited 0) and, with --check, every check passed, the daemon answered, the login
# worked and the file systems are clean; with --broken-fstab, if kennel entered emergency
# mode naming the line and powered off. 1 otherwise, 2 for a usage error, 77 if this
# machine cannot run the VM at all (not root, qemu or debootstrap cannot be installed,
# Debian's mirror cannot be reached).
#
# Environment: KENNEL_VM_TIMEOUT (seconds, default 600; 0 = none), KENNEL_VM_KVM=1 (KVM
# instead of TCG), KENNEL_VM_MEM (MiB, default 512), KENNEL_VM_SMP (default 2), and
# disk.sh's variables (KENNEL_VM_BINARY, KENNEL_VM_DISK_CACHE, KENNEL_VM_MIRROR).
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
log() { echo "vm/run-disk: $*" >&2; }
export PATH="$PATH:/usr/sbin:/sbin"

check=0 broken=0 answer=0 init=kennel rootmode=ro
out=${KENNEL_VM_DISK_OUT:-target/vm-disk}
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --broken-fstab) broken=1 ;;
    --answer) answer=1 ;;
    --init) init=${2:?--init needs kennel, systemd or busybox}; shift ;;
    --init=*) init=${1#--init=} ;;
    --rw) rootmode=rw ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --out=*) out=${1#--out=} ;;
    --) shift; extra+=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "vm/run-disk: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$init" in kennel|systemd|busybox) ;; *) echo "vm/run-disk: --init $init: one of kennel, systemd, busybox" >&2; exit 2 ;; esac
if [ $((check + broken + answer)) -gt 1 ]; then
  echo "vm/run-disk: one of --check, --broken-fstab, --answer" >&2
  exit 2
fi
if [ "$init" != kennel ] && { [ $check = 1 ] || [ $broken = 1 ]; }; then
  echo "vm/run-disk: --check and --broken-fstab are for kennel's image" >&2
  exit 2
fi
[ "$(id -u)" = 0 ] || { log "SKIP: needs root (debootstrap, chroot)"; exit 77; }

mkdir -p "$out"
exec 8>"$out/.run.lock"
if ! flock -n 8; then
  log "waiting for another run-disk.sh using $out"
  flock 8
fi

# --- build ------------------------------------------------------------------------------
t_build=$EPOCHREALTIME
set +e
bash "$here/disk.sh" --init "$init" "$out"
rc=$?
set -e
if [ $rc != 0 ]; then
  for c in qemu-system-x86_64 debootstrap mkfs.ext4; do
    command -v "$c" >/dev/null 2>&1 || { log "SKIP: $c is not installed and could not be installed"; exit 77; }
  done
  cache=${KENNEL_VM_DISK_CACHE:-$repo/target/test-cache}
  if ! ls "$cache"/debian-bookworm-vm-*.tar >/dev/null 2>&1 \
    && grep -qiE 'Failed getting release file|Couldn.t download|Temporary failure resolving|unable to fetch' \
      "$cache/debian-bookworm-vm.debootstrap.log" 2>/dev/null; then
    log "SKIP: Debian's mirror cannot be reached (debootstrap: $(grep -m1 -iE '^E:|failed' "$cache/debian-bookworm-vm.debootstrap.log"))"
    exit 77
  fi
  log "build failed (exit $rc)"
  exit 1
fi
out=$(cd "$out" && pwd)
log "built in $(awk -v a="$t_build" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s"

# --- this boot's disks: copies -------------------------------------------------------------
case "$init" in kennel) root_img=root.img ;; *) root_img=root-$init.img ;; esac
boot=$out/boot
rm -rf "$boot"
mkdir -p "$boot"
cp --reflink=auto --sparse=always "$out/$root_img" "$boot/root.img"
cp --reflink=auto --sparse=always "$out/data.img" "$boot/data.img"
broken_line=
if [ $broken = 1 ]; then
  # A file system that does not exist, mounted without nofail: an emergency.
  broken_line="UUID=0badf00d-0000-4000-8000-00000000dead  /broken  ext4  defaults  0 2"
  debugfs -R "cat /etc/fstab" "$boot/root.img" 2>/dev/null >"$boot/fstab"
  echo "$broken_line" >>"$boot/fstab"
  debugfs -w -R "rm /etc/fstab" "$boot/root.img" >/dev/null 2>&1
  debugfs -w -R "write $boot/fstab /etc/fstab" "$boot/root.img" >/dev/null 2>&1
  debugfs -R "cat /etc/fstab" "$boot/root.img" 2>/dev/null | grep -qF "$broken_line" \
    || { log "could not write the broken line into the copy's /etc/fstab"; exit 1; }
  log "the boot's /etc/fstab has: $broken_line"
fi

# A free port on 127.0.0.1 for the guest's port 80 (free now; qemu takes it a moment later).
port=$(perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die "$!\n"; print $s->sockport, "\n"')

# --- boot -------------------------------------------------------------------------------
# ip=dhcp: kennel's network (qemu's user network answers DHCP); Debian's initramfs leaves
# ip= alone unless the root is on NFS.
cmdline="root=/dev/vda $rootmode console=ttyS0 panic=-1 ip=dhcp"
[ $check = 1 ] && cmdline+=" kennelvm.check kennelvm.login"
[ ${#extra[@]} -gt 0 ] && cmdline+=" ${extra[*]}"
if [ "${KENNEL_VM_KVM:-0}" = 1 ]; then accel=(-accel kvm -cpu host); else accel=(-accel tcg); fi
qemu=(qemu-system-x86_64 -m "${KENNEL_VM_MEM:-512}" -smp "${KENNEL_VM_SMP:-2}" "${accel[@]}"
  -kernel "$out/vmlinuz" -initrd "$out/initrd.img" -append "$cmdline"
  -drive "file=$boot/root.img,if=virtio,format=raw"
  -drive "file=$boot/data.img,if=virtio,format=raw"
  -nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$port-:80"
  -nographic -no-reboot)
interactive=0
[ $check = 0 ] && [ $broken = 0 ] && [ $answer = 0 ] && interactive=1
timeout_s=${KENNEL_VM_TIMEOUT:-600}
[ $interactive = 1 ] && timeout_s=0

console=$boot/console.log
run=$(mktemp -d "${TMPDIR:-/tmp}/kennel-vm-disk.XXXXXX")
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
exec 3<>"$run/in"   # qemu's stdin when not interactive: held open, written to by the console driver
exec 4<&0           # the terminal, for interactive use

driver=()
# An emergency under --check (a boot that went wrong) is powered off the same way.
[ $check = 1 ] && driver=(--login "$run/in" "$run/http-done" --emergency "$run/in")
[ $broken = 1 ] && driver=(--emergency "$run/in")
log "booting: ${qemu[*]}"
log "the guest's port 80 is http://127.0.0.1:$port/"
[ $interactive = 1 ] && log "interactive: log in as root (password kennel); Ctrl-A X quits qemu"
t0=$EPOCHREALTIME
perl "$here/disk-console.pl" "$console" "$t0" "${driver[@]}" <"$run/out" &
mpid=$!
if [ $interactive = 1 ]; then
  "${qemu[@]}" <&4 >"$run/out" 2>&1 &
else
  "${qemu[@]}" <&3 >"$run/out" 2>&1 &
fi
qpid=$!

# The host's side: fetch the daemon's page through the forwarded port until it answers
# (the first complete answer is the boot's time to the daemon), for as long as the guest
# runs. Under --check the login waits for this to be over (http-done).
(
  body=
  while kill -0 "$qpid" 2>/dev/null; do
    if body=$(curl -s -m 3 "http://127.0.0.1:$port/kennel.txt" 2>/dev/null) && [[ $body == *"served by lighttpd"* ]]; then
      awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }' >"$run/http-ok"
      break
    fi
    sleep 0.1
  done
  : >"$run/http-done"
) &
hpid=$!

seen() { grep -q -- "$1" "$console" 2>/dev/null; }
elapsed() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }'; }
timed_out=0
while kill -0 "$qpid" 2>/dev/null; do
  if [ "$timeout_s" != 0 ] && [ "$(elapsed)" -ge "$timeout_s" ]; then
    timed_out=1
    log "timeout: no power-off within ${timeout_s}s; killing qemu"
    kill "$qpid" 2>/dev/null || true
    break
  fi
  if [ $answer = 1 ] && [ -f "$run/http-ok" ]; then
    log "the daemon answered; killing qemu (--answer)"
    kill "$qpid" 2>/dev/null || true
    break
  fi
  sleep 0.2
done
set +e
wait "$qpid"
qrc=$?
set -e
qpid=
wait "$hpid" 2>/dev/null
hpid=
wait "$mpid" 2>/dev/null
mpid=

# --- verdict ----------------------------------------------------------------------------
echo
ok=1
problems=()
http_s=
if [ -f "$run/http-ok" ]; then
  http_s=$(cat "$run/http-ok")
  printf 'qemu start -> daemon answers: %.2fs (http://127.0.0.1:%s/kennel.txt)\n' "$http_s" "$port"
else
  echo "qemu start -> daemon answers: never (no answer through the forwarded port)"
  [ $check = 1 ] && problems+=("lighttpd never answered through the forwarded port")
fi
if [ -f "$console.all-units-up" ]; then
  read -r secs line <"$console.all-units-up"
  up=$(sed -n 's/.*all units up in [0-9.]*s (machine up \([0-9.]*\)s).*/\1/p' <<<"$line")
  printf 'qemu start -> all units up: %.2fs (guest uptime %ss)\n' "$secs" "${up:-?}"
elif [ "$init" = kennel ] && [ $broken = 0 ] && [ $answer = 0 ]; then
  echo "qemu start -> all units up: never (no 'all units up' on the console)"
  ok=0
fi
seen 'Kernel panic' && problems+=("Kernel panic on the console")
seen 'Attempted to kill init' && problems+=("'Attempted to kill init' on the console")
[ $timed_out = 1 ] && problems+=("timed out after ${timeout_s}s")
if [ $answer = 1 ]; then
  [ -f "$run/http-ok" ] || problems+=("the daemon never answered")
else
  seen 'reboot: Power down' || problems+=("no 'reboot: Power down': the guest did not power off")
  [ "$qrc" = 0 ] || [ $timed_out = 1 ] || problems+=("qemu exited $qrc")
fi
if [ $check = 1 ]; then
  seen 'CHECKS DONE' || problems+=("no CHECKS DONE")
  grep -q 'CHECK [^ ]* FAIL' "$console" && problems+=("checks failed: $(grep -o 'CHECK [^ ]* FAIL.*' "$console" | tr '\n' ';')")
  seen 'LOGIN-42 /dev/ttyS0' || problems+=("no LOGIN-42 /dev/ttyS0: the console login did not work")
fi
if [ $broken = 1 ]; then
  seen EMERGENCY || problems+=("no EMERGENCY line: kennel did not enter emergency mode")
  grep 'EMERGENCY' "$console" | grep -q '0badf00d' \
    || grep -B2 -A8 'EMERGENCY' "$console" | grep -q '0badf00d' \
    || problems+=("the broken fstab line (UUID=0badf00d-...) is not named near EMERGENCY")
fi
# The file systems after the power-off: clean, and the journal had nothing to replay.
if [ $check = 1 ] && seen 'reboot: Power down'; then
  for img in root.img data.img; do
    state=$(dumpe2fs -h "$boot/$img" 2>/dev/null | sed -n 's/^Filesystem state: *//p')
    features=$(dumpe2fs -h "$boot/$img" 2>/dev/null | sed -n 's/^Filesystem features: *//p')
    fsck_out=$(e2fsck -fn "$boot/$img" 2>&1)
    frc=$?
    if [ "$state" = clean ] && [[ " $features " != *" needs_recovery "* ]] && [ $frc = 0 ]; then
      echo "FS $img: clean (dumpe2fs state clean, no needs_recovery, e2fsck -fn exit 0)"
    else
      echo "FS $img: NOT CLEAN: state '$state', features '$features', e2fsck -fn exit $frc:"
      echo "$fsck_out" | sed 's/^/  /'
      problems+=("$img is not clean after the power-off")
    fi
  done
fi
if grep -qE 'EXT4-fs \(vd[ab]\): (recovery complete|INFO: recovery required)' "$console"; then
  problems+=("a journal recovery at boot: $(grep -m1 -E 'EXT4-fs \(vd[ab]\): (recovery|INFO: recovery)' "$console")")
fi
for p in "${problems[@]}"; do log "FAIL: $p"; done
[ ${#problems[@]} = 0 ] || ok=0
log "console log: $console"
if [ $ok = 1 ]; then log "OK"; exit 0; fi
exit 1
