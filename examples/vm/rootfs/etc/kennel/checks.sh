#!/bin/sh
# Boot checks, run by the `checks` unit once the other units are up (busybox sh).
# Prints `CHECK NAME ok` or `CHECK NAME FAIL DETAIL` per check, then `CHECKS DONE`, then,
# if the kernel command line has `kennelvm.check` (examples/vm/run.sh --check), powers the
# machine off with `kennel poweroff`.
#   checks.sh            the full set (unit set /etc/kennel/units)
#   checks.sh crashing   the unit set /etc/kennel/units-crashing (no running container there)
set -u
mode=${1:-full}
failed=0

ok() { echo "CHECK $1 ok"; }
fail() {
  name=$1
  shift
  echo "CHECK $name FAIL $*"
  failed=1
}

# --- mounts kennel made at boot -----------------------------------------------------------
# A mount point and its filesystem type, as /proc/self/mounts shows them.
mounted() { awk -v m="$1" -v t="$2" '$2 == m && $3 == t { f = 1 } END { exit !f }' /proc/self/mounts; }
for mt in /proc:proc /sys:sysfs /dev:devtmpfs /dev/pts:devpts /dev/shm:tmpfs /run:tmpfs \
  /sys/fs/cgroup:cgroup2; do
  m=${mt%%:*}
  t=${mt#*:}
  name=mount-$(echo "${m#/}" | tr / -)
  if mounted "$m" "$t"; then ok "$name"; else
    fail "$name" "no $t on $m: $(awk -v m="$m" '$2 == m' /proc/self/mounts | tr '\n' ';')"
  fi
done

# --- hostname ---------------------------------------------------------------------------
h=$(hostname)
if [ "$h" = kennel-vm ]; then ok hostname; else fail hostname "hostname is '$h'"; fi

# --- cgroup v2 with controllers -----------------------------------------------------------
ctrls=$(cat /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null)
case " $ctrls " in
  *" memory "*) ok cgroup-controllers ;;
  *) fail cgroup-controllers "root cgroup.subtree_control is '$ctrls'" ;;
esac

# --- kennel: PID 1, its socket ------------------------------------------------------------
comm=$(cat /proc/1/comm)
if kennel status >/dev/null 2>&1; then ok kennel-status; else
  fail kennel-status "kennel status: $(kennel status 2>&1 | tail -n 3 | tr '\n' ' ')"
fi
echo "checks: PID 1 is '$comm'"
kennel status 2>&1 | sed 's/^/checks: /'

# The pid of a unit's main process, from `kennel status NAME --json`.
unit_pid() { kennel status "$1" --json 2>/dev/null | sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' | head -n 1; }
unit_state() { kennel status "$1" --json 2>/dev/null | sed -n 's/.*"state": *"\([^"]*\)".*/\1/p' | head -n 1; }

if [ "$mode" = full ]; then
  # --- the web container --------------------------------------------------------------------
  # With a pid namespace, the unit's pid is kennel's helper on the host side; the
  # container's PID 1 (kennel's small init) is its child, the service the init's child.
  wpid=$(unit_pid web)
  child=
  if [ -n "$wpid" ]; then
    child=$(cat "/proc/$wpid/task/$wpid/children" 2>/dev/null | awk '{ print $1 }')
  fi
  if [ -z "$wpid" ] || [ -z "$child" ]; then
    fail web-running "web pid '$wpid', its child '$child'; status: $(kennel status web 2>&1 | tail -n 1)"
    tail -n 5 /var/log/kennel/web.log 2>&1 | sed 's/^/checks: web.log: /'
  else
    ok web-running
    echo "checks: web helper pid $wpid, container init pid $child"
    for ns in pid mnt uts net ipc cgroup; do
      a=$(readlink "/proc/$child/ns/$ns")
      b=$(readlink "/proc/1/ns/$ns")
      if [ -n "$a" ] && [ "$a" != "$b" ]; then ok "web-ns-$ns"; else
        fail "web-ns-$ns" "container $a, PID 1 $b"
      fi
    done
    # The container's root is an overlay (its mount namespace, seen from here).
    # mountinfo: field 5 is the mount point, the type follows the "-" separator; the last
    # mount on / is the one the container sees.
    root=$(awk '$5 == "/" { for (i = 6; i < NF; i++) if ($i == "-") t = $(i + 1) } END { print t }' \
      "/proc/$child/mountinfo" 2>/dev/null)
    if [ "$root" = overlay ]; then ok web-overlay-root; else
      fail web-overlay-root "the container's / is '$root'"
    fi
    # The service (the last of the processes under the unit's pid) has the container's
    # root: here, on an initramfs root, kennel enters the rootfs with chroot, which moves
    # the init's root alone (not pivot_root, which moves every process's).
    svc=$child
    while next=$(awk '{ print $1 }' "/proc/$svc/task/$svc/children" 2>/dev/null) && [ -n "$next" ]; do
      svc=$next
    done
    sr=$(stat -L -c %d:%i "/proc/$svc/root/" 2>&1)
    cr=$(kennel exec web stat -c %d:%i / 2>&1)
    if [ -n "$sr" ] && [ "$sr" = "$cr" ]; then ok web-service-root; else
      fail web-service-root "service $svc: root $sr; the container's / $cr"
    fi
    # The same, from inside, through kennel exec.
    if kennel exec web cat /proc/mounts 2>&1 | grep -q '^overlay / overlay'; then ok web-exec; else
      fail web-exec "kennel exec web cat /proc/mounts: $(kennel exec web cat /proc/mounts 2>&1 | head -n 3 | tr '\n' ' ')"
    fi
    # The container's hostname is the unit's name.
    ch=$(kennel exec web hostname 2>&1)
    if [ "$ch" = web ]; then ok web-hostname; else fail web-hostname "hostname in web is '$ch'"; fi
    # Its cgroup (v2: one line 0::/PATH) and the memory limit.
    cg=$(sed -n 's/^0:://p' "/proc/$wpid/cgroup")
    mm=$(cat "/sys/fs/cgroup$cg/memory.max" 2>/dev/null)
    if [ "$mm" = 33554432 ]; then ok web-memory-max; else
      fail web-memory-max "cgroup '$cg' memory.max '$mm'"
    fi
    echo "checks: web cgroup $cg"
    # The device cgroup on v2 (an eBPF program on the unit's cgroup): a node made inside
    # for a device outside the allowed set cannot be opened (EPERM from the program;
    # without it the open would reach the driver: ENXIO, there is no char device 1:200),
    # while /dev/null can.
    dv=$(kennel exec web sh -c 'mknod /tmp/nodev c 1 200 && cat /tmp/nodev; echo null=$(cat /dev/null && echo ok)' 2>&1)
    case "$dv" in
      *"Operation not permitted"*"null=ok"*) ok web-devices-v2 ;;
      *) fail web-devices-v2 "$(echo "$dv" | tr '\n' ' ')" ;;
    esac
  fi
else
  # --- the crashing units went failed, and did not stop the boot ---------------------------
  for u in crash missing userns; do
    s=
    i=0
    while [ $i -lt 100 ]; do
      s=$(unit_state "$u")
      [ "$s" = failed ] && break
      i=$((i + 1))
      sleep 0.2
    done
    if [ "$s" = failed ]; then ok "$u-failed"; else
      fail "$u-failed" "state '$s': $(kennel status "$u" 2>&1 | tail -n 1)"
    fi
  done
  # ... and userns says what the kernel lacks.
  d=$(kennel status userns --json 2>&1)
  case "$d" in
    *"does not support idmapped mounts"*) ok userns-says-why ;;
    *) fail userns-says-why "$(echo "$d" | tr '\n' ' ')" ;;
  esac
fi

# --- an orphan storm leaves no zombie -----------------------------------------------------
# Each `( sleep 0 & )` leaves a sleep whose parent exits at once: it is reparented to
# PID 1, kennel, which must reap it. Two loops of 1000, one per CPU (forks are slow under
# TCG: some 20-40ms each).
n=2000
storm() {
  i=0
  while [ $i -lt 1000 ]; do
    (sleep 0 &)
    i=$((i + 1))
  done
}
storm &
storm &
wait
zombies=
i=0
while [ $i -lt 100 ]; do
  zombies=$(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | tr '\n' ' ')
  [ -z "$zombies" ] && break
  i=$((i + 1))
  sleep 0.2
done
if [ -z "$zombies" ]; then ok "no-zombies-after-$n-orphans"; else
  fail "no-zombies-after-$n-orphans" "zombies: $zombies"
fi

if [ $failed = 0 ]; then echo "CHECKS DONE all ok"; else echo "CHECKS DONE with failures"; fi

if grep -qw kennelvm.check /proc/cmdline; then
  echo "checks: kennel poweroff"
  exec kennel poweroff
fi
exit 0
