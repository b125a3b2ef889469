#!/bin/sh
# Checks of a disk boot (examples/vm/disk.sh's image, kennel as /sbin/init), run by the
# `checks` unit once lighttpd is up (Debian's /bin/sh, dash). Prints `CHECK NAME ok` or
# `CHECK NAME FAIL DETAIL` per check. With `kennelvm.login` on the kernel command line it
# then prints `CHECKS WAITING login` and waits (at most 300 s) for the console login that
# run-disk.sh drives to touch /run/kennelvm-login. Then `CHECKS DONE`, and, with
# `kennelvm.check`, `kennel poweroff`. With `kennelvm.bench` (bench/disk.py's boots) it
# does nothing: the benchmark's images run no checks.
set -u
grep -qw kennelvm.bench /proc/cmdline && exit 0
failed=0
ok() { echo "CHECK $1 ok"; }
fail() {
  name=$1
  shift
  echo "CHECK $name FAIL $*"
  failed=1
}
has_word() { grep -qw -- "$1" /proc/cmdline; }
# The fstab this image was made with (examples/vm/disk.sh), and a source's UUID.
fstab_uuid() { awk -v m="$1" '$2 == m && $1 ~ /^UUID=/ { sub(/^UUID=/, "", $1); print $1 }' /etc/fstab; }
# The options and type of the last mount on a mount point (the one visible there).
mount_opts() { awk -v m="$1" '$2 == m { o = $4 } END { print o }' /proc/self/mounts; }
mount_type() { awk -v m="$1" '$2 == m { t = $3 } END { print t }' /proc/self/mounts; }
mount_src() { awk -v m="$1" '$2 == m { s = $1 } END { print s }' /proc/self/mounts; }

# --- the root: remounted read-write (it was mounted `ro` by the initramfs) --------------
o=$(mount_opts /)
case ",$o," in
  *,rw,*) ok root-rw ;;
  *) fail root-rw "/ is mounted '$o'" ;;
esac
u=$(blkid -s UUID -o value "$(mount_src /)" 2>/dev/null)
if [ -n "$u" ] && [ "$u" = "$(fstab_uuid /)" ]; then ok root-uuid; else
  fail root-uuid "/ is $(mount_src /) with UUID '$u', fstab says '$(fstab_uuid /)'"
fi

# --- /etc/fstab's entries -----------------------------------------------------------------
t=$(mount_type /tmp)
o=$(mount_opts /tmp)
case "$t:,$o," in
  tmpfs:*,size=65536k,*) ok tmp-tmpfs ;;
  *) fail tmp-tmpfs "/tmp is '$t' '$o'" ;;
esac
case ",$o," in
  *,mode=1777,*) ok tmp-mode ;;
  # tmpfs shows no mode= when it is the default (1777).
  *,mode=*) fail tmp-mode "/tmp options '$o'" ;;
  *) [ "$(stat -c %a /tmp)" = 1777 ] && ok tmp-mode || fail tmp-mode "/tmp mode $(stat -c %a /tmp)" ;;
esac

src=$(mount_src /data)
u=$(blkid -s UUID -o value "$src" 2>/dev/null)
if [ "$(mount_type /data)" = ext4 ] && [ -n "$u" ] && [ "$u" = "$(fstab_uuid /data)" ]; then
  ok data-by-uuid
else
  fail data-by-uuid "/data: '$src' ($(mount_type /data)) UUID '$u', fstab says '$(fstab_uuid /data)'"
fi

# The bind mount: /srv/shared is /data/shared (mountinfo's field 4 is the mount's root in
# its file system).
h=$(cat /srv/shared/hello 2>&1)
r=$(awk '$5 == "/srv/shared" { r = $4 } END { print r }' /proc/self/mountinfo)
if [ "$h" = "hello from the data disk" ] && [ "$r" = /shared ]; then ok bind-shared; else
  fail bind-shared "/srv/shared/hello: '$h'; mount root '$r'"
fi

if awk 'NR > 1 && $1 == "/swapfile" { f = 1 } END { exit !f }' /proc/swaps; then ok swap; else
  fail swap "/proc/swaps: $(tr '\n' ';' </proc/swaps)"
fi

# `kennel mounts`: each fstab line's record, and whether it is in place now.
km=$(kennel mounts 2>&1)
if echo "$km" | grep -q '^4 *\/data .*in place *mounted$' \
   && echo "$km" | grep -q ' swap .*in place *swap on$' \
   && echo "$km" | grep -q '^3 *\/tmp .*in place *mounted$'; then
  ok kennel-mounts
else
  fail kennel-mounts "$(echo "$km" | tr '\n' ';')"
fi

# --- early setup: sysctl, machine-id, hostname ----------------------------------------------
s=$(cat /proc/sys/vm/swappiness)
if [ "$s" = 13 ]; then ok sysctl; else fail sysctl "vm.swappiness is $s, /etc/sysctl.d says 13"; fi
m=$(cat /etc/machine-id 2>/dev/null)
if echo "$m" | grep -qx '[0-9a-f]\{32\}'; then ok machine-id; else fail machine-id "/etc/machine-id is '$m'"; fi
h=$(hostname)
if [ "$h" = kennel-disk ]; then ok hostname; else fail hostname "hostname is '$h'"; fi

# --- a getty on the serial console ------------------------------------------------------------
g=
for p in /proc/[0-9]*; do
  c=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)
  case "$c" in *getty*ttyS0*) g="${p#/proc/} $c" ;; esac
done
if [ -n "$g" ]; then ok getty-ttyS0; echo "checks: getty: $g"; else fail getty-ttyS0 "no getty process on ttyS0"; fi

# --- the daemon, the network ------------------------------------------------------------------
# (busybox 1.35's wget -T segfaults: coreutils' timeout instead)
w=$(timeout 10 busybox wget -q -O - http://127.0.0.1/kennel.txt 2>&1)
case "$w" in
  *"served by lighttpd"*) ok lighttpd-local ;;
  *) fail lighttpd-local "wget http://127.0.0.1/kennel.txt: $w" ;;
esac
a=$(ip -4 -o addr show 2>/dev/null | awk '$2 != "lo" { print $2, $4 }')
case "$a" in
  *" 10.0.2."*) ok net-address ;;
  *) fail net-address "no address in qemu's 10.0.2.0/24: '$a'" ;;
esac
echo "checks: addresses: $(echo "$a" | tr '\n' ';')"

if kennel status >/dev/null 2>&1; then ok kennel-status; else
  fail kennel-status "kennel status: $(kennel status 2>&1 | tail -n 3 | tr '\n' ' ')"
fi
kennel status 2>&1 | sed 's/^/checks: /'
cat /proc/swaps | sed 's/^/checks: swaps: /'
awk '{ print "checks: mount:", $1, $2, $3, $4 }' /proc/self/mounts

# --- the console login, driven by run-disk.sh --------------------------------------------------
if has_word kennelvm.login; then
  echo "CHECKS WAITING login"
  i=0
  while [ ! -e /run/kennelvm-login ] && [ $i -lt 1500 ]; do
    sleep 0.2
    i=$((i + 1))
  done
  l=$(cat /run/kennelvm-login 2>/dev/null)
  if [ "$l" = "LOGIN root" ]; then ok login; else
    fail login "no login on the console within 300s (/run/kennelvm-login: '$l')"
  fi
fi

if [ $failed = 0 ]; then echo "CHECKS DONE all ok"; else echo "CHECKS DONE with failures"; fi
if has_word kennelvm.check; then
  # The boot ends with kennel's `all units up` line, which the tests look for: on a slow
  # (TCG, loaded) machine udev's coldplug may still be settling now. Wait for it, at most
  # 300 s, so that the power-off does not cut the boot short.
  i=0
  while kennel status --json 2>/dev/null | grep -q '"state": *"starting"' && [ $i -lt 1500 ]; do
    sleep 0.2
    i=$((i + 1))
  done
  echo "checks: kennel poweroff"
  exec kennel poweroff
fi
exit 0
