#!/usr/bin/env bash
# Build the disk images of a Debian 12 machine whose init is kennel (and, for the benchmark,
# the same machine with systemd or busybox as its init), booted by Debian's own kernel and
# initramfs, both taken out of the image.
#
#   bash examples/vm/disk.sh [--init kennel|systemd|busybox]... [OUT_DIR]
#                                                             (default: target/vm-disk)
#
# Writes into OUT_DIR:
#   vmlinuz, initrd.img, kernel-version   /boot/vmlinuz-KVER and /boot/initrd.img-KVER of the
#                                         rootfs (linux-image-amd64 and initramfs-tools
#                                         installed in it: the initramfs is Debian's own)
#   root.img                              ext4, kennel as /sbin/init (made with mkfs.ext4 -d)
#   root-systemd.img, root-busybox.img    the same rootfs with systemd (systemd-sysv) or
#                                         busybox init as /sbin/init, with --init
#   data.img                              a second ext4 disk, with shared/hello
#   uuids                                 ROOT_UUID=... DATA_UUID=... (in /etc/fstab)
# Without --init, the kennel image alone is built. Images already built from the same
# inputs (rootfs, kennel binary, the files under examples/vm/disk/, this script) are kept.
#
# The rootfs is `debootstrap --variant=minbase bookworm` with the packages below; it takes
# minutes, so it is cached as a tar (target/test-cache/debian-bookworm-vm-HASH.tar, or
# KENNEL_VM_DISK_CACHE/...), made under a lock and again only when the package list or the
# recipe changes. Needs root (debootstrap, chroot, device nodes in the rootfs).
#
# Environment:
#   KENNEL_VM_BINARY       put this kennel binary in the image instead of building one
#                          (`cargo build --release -p kennel`)
#   KENNEL_VM_DISK_CACHE   where the rootfs tar is cached (default target/test-cache)
#   KENNEL_VM_MIRROR       Debian mirror (default http://deb.debian.org/debian)
#
# The guest's files are under examples/vm/disk/: common/ goes into every image, kennel/,
# systemd/ and busybox/ into that init's image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
log() { echo "vm/disk: $*" >&2; }
die() { echo "vm/disk: error: $*" >&2; exit 1; }

inits=()
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --init) inits+=("${2:?--init needs kennel, systemd or busybox}"); shift ;;
    --init=*) inits+=("${1#--init=}") ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$out" ] || die "one OUT_DIR only"; out=$1 ;;
  esac
  shift
done
[ ${#inits[@]} -gt 0 ] || inits=(kennel)
for i in "${inits[@]}"; do
  case "$i" in kennel|systemd|busybox) ;; *) die "--init $i: one of kennel, systemd, busybox" ;; esac
done
out=${out:-target/vm-disk}
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, device nodes)"
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

# --- host tools -------------------------------------------------------------------------
declare -A need=(
  [debootstrap]=debootstrap
  [mkfs.ext4]=e2fsprogs
  [debugfs]=e2fsprogs
  [qemu-system-x86_64]=qemu-system-x86
  [sha256sum]=coreutils
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- the rootfs, cached -----------------------------------------------------------------
# What the machine needs: the kernel and Debian's initramfs generator; e2fsprogs (e2fsck,
# the root's checker), util-linux (agetty, fsck, blkid) and mount (swapon); busybox
# (udhcpc for the network, the busybox init of the benchmark); lighttpd, a real daemon
# with a systemd unit of its own; systemd-sysv, the benchmark's other init (its
# /sbin/init is replaced in the kennel and busybox images, so that the three images hold
# the same files).
packages=(linux-image-amd64 initramfs-tools e2fsprogs util-linux mount busybox lighttpd
  systemd-sysv iproute2 kmod)
suite=bookworm
mirror=${KENNEL_VM_MIRROR:-http://deb.debian.org/debian}
# The recipe's version: bump it when what is done to the rootfs below changes.
recipe=1
key=$(printf '%s\n' "$suite" "$recipe" "${packages[@]}" | sha256sum | cut -c1-12)
cache=${KENNEL_VM_DISK_CACHE:-$repo/target/test-cache}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
tar=$cache/debian-bookworm-vm-$key.tar
exec 9>"$cache/debian-bookworm-vm.lock"
flock 9
if [ ! -f "$tar" ]; then
  tmp=$cache/debian-bookworm-vm.tmp
  [ -e "$tmp" ] && rm -rf --one-file-system "$tmp"
  log "debootstrap --variant=minbase $suite with ${packages[*]} (minutes; cached as $tar)"
  inc=$(IFS=,; echo "${packages[*]}")
  if ! debootstrap --variant=minbase --include="$inc" "$suite" "$tmp" "$mirror" \
      >"$cache/debian-bookworm-vm.debootstrap.log" 2>&1; then
    tail -n 20 "$cache/debian-bookworm-vm.debootstrap.log" >&2
    rm -rf --one-file-system "$tmp"
    die "debootstrap failed (log: $cache/debian-bookworm-vm.debootstrap.log)"
  fi
  # Root's password is `kennel` (the console login of the tests).
  echo 'root:kennel' | chroot "$tmp" /usr/sbin/chpasswd
  # Nothing from the host: the build's resolv.conf, the package cache.
  rm -f "$tmp/etc/resolv.conf"
  rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_Packages
  ls "$tmp"/boot/vmlinuz-* "$tmp"/boot/initrd.img-* >/dev/null 2>&1 \
    || die "no /boot/vmlinuz-* and /boot/initrd.img-* in the rootfs (linux-image-amd64 and initramfs-tools installed?)"
  tar -C "$tmp" --numeric-owner --xattrs -cf "$tar.partial" .
  mv "$tar.partial" "$tar"
  rm -rf --one-file-system "$tmp"
  # Older recipes' tars are of no more use.
  for old in "$cache"/debian-bookworm-vm-*.tar; do
    [ "$old" = "$tar" ] || rm -f "$old"
  done
fi
flock -u 9

# --- kennel -----------------------------------------------------------------------------
if [ -n "${KENNEL_VM_BINARY:-}" ]; then
  kennel=$KENNEL_VM_BINARY
  log "using the kennel binary $kennel (KENNEL_VM_BINARY)"
else
  log "building kennel (release)"
  "${CARGO:-cargo}" build --release -p kennel >&2
  kennel=${CARGO_TARGET_DIR:-$repo/target}/release/kennel
fi
[ -x "$kennel" ] || die "no kennel binary at $kennel"

# --- the images -------------------------------------------------------------------------
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec 8>"$out/.build.lock"
flock 8
# Everything an image is made of; an image whose stamp matches is not made again.
inputs=$( { echo "$tar"; sha256sum "$kennel" "$here/disk.sh"; \
  find "$here/disk" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)

# One pair of UUIDs per output directory, kept across rebuilds.
if [ ! -f "$out/uuids" ]; then
  printf 'ROOT_UUID=%s\nDATA_UUID=%s\n' "$(cat /proc/sys/kernel/random/uuid)" \
    "$(cat /proc/sys/kernel/random/uuid)" >"$out/uuids"
fi
# shellcheck source=/dev/null
. "$out/uuids"

stage=$out/stage
extract() {
  [ -e "$stage" ] && rm -rf --one-file-system "$stage"
  mkdir -p "$stage"
  tar -C "$stage" --numeric-owner --xattrs -xf "$tar"
}

# The kernel and Debian's initramfs, from the rootfs (the same for every image).
if [ "$(cat "$out/.stamp-boot" 2>/dev/null)" != "$inputs" ] || [ ! -f "$out/initrd.img" ]; then
  rm -f "$out/.stamp-boot"
  extract
  kv=$(ls "$stage/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n1)
  [ -n "$kv" ] && [ -f "$stage/boot/initrd.img-$kv" ] || die "no kernel and initrd in the rootfs's /boot"
  cp "$stage/boot/vmlinuz-$kv" "$out/vmlinuz"
  cp "$stage/boot/initrd.img-$kv" "$out/initrd.img"
  echo "$kv" >"$out/kernel-version"
  echo "$inputs" >"$out/.stamp-boot"
  log "kernel $kv, Debian's initramfs $(du -h "$out/initrd.img" | cut -f1)"
fi

# data.img: a small ext4 disk, mounted at /data by UUID; shared/hello is bind-mounted at
# /srv/shared.
if [ "$(cat "$out/.stamp-data" 2>/dev/null)" != "$inputs" ]; then
  rm -f "$out/.stamp-data" "$out/data.img"
  d=$out/data.tree
  rm -rf "$d"
  mkdir -p "$d/shared"
  echo "hello from the data disk" >"$d/shared/hello"
  mkfs.ext4 -q -F -L kennel-data -U "$DATA_UUID" -d "$d" "$out/data.img" 32M >/dev/null
  rm -rf "$d"
  echo "$inputs" >"$out/.stamp-data"
fi

fstab() {
  cat <<EOF
# /etc/fstab of the kennel VM disk image (examples/vm/disk.sh)
UUID=$ROOT_UUID  /            ext4   errors=remount-ro  0 1
tmpfs             /tmp         tmpfs  size=64M,mode=1777 0 0
UUID=$DATA_UUID  /data        ext4   defaults           0 2
/data/shared      /srv/shared  none   bind               0 0
/swapfile         none         swap   sw                 0 0
EOF
}

# Set /sbin/init (a symlink: /sbin is /usr/sbin in Debian 12) to TARGET.
set_init() { ln -sfn "$1" "$stage/usr/sbin/init"; }

image() {
  local init=$1 img
  case "$init" in kennel) img=root.img ;; *) img=root-$init.img ;; esac
  if [ "$(cat "$out/.stamp-$init" 2>/dev/null)" = "$inputs" ] && [ -f "$out/$img" ]; then
    return
  fi
  rm -f "$out/.stamp-$init" "$out/$img"
  log "making $img ($init as /sbin/init)"
  extract
  cp -a "$here/disk/common/." "$stage/"
  cp -a "$here/disk/$init/." "$stage/"
  fstab >"$stage/etc/fstab"
  mkdir -p "$stage/data" "$stage/srv/shared"
  case "$init" in
    kennel)
      install -m 755 "$kennel" "$stage/usr/sbin/kennel"
      set_init kennel
      # Generated by kennel at the first boot.
      : >"$stage/etc/machine-id"
      ;;
    systemd)
      # systemd-sysv's own link (/sbin/init -> ../lib/systemd/systemd) is kept. A
      # machine-id of an installed system: an empty one would be a first boot to systemd
      # (systemd-firstboot, presets), not the steady state the benchmark compares.
      [ -s "$stage/etc/machine-id" ] || chroot "$stage" systemd-machine-id-setup >/dev/null
      chroot "$stage" systemctl enable systemd-networkd.service lighttpd.service >/dev/null 2>&1
      ;;
    busybox)
      set_init /bin/busybox
      ;;
  esac
  # The swap file: 64 MiB, mode 600. Filled with 0xff, not zeros: mkfs.ext4 -d leaves
  # all-zero blocks out of a file (holes), and swapon refuses a file with holes.
  head -c 64M /dev/zero | tr '\0' '\377' >"$stage/swapfile"
  chmod 600 "$stage/swapfile"
  mkswap "$stage/swapfile" >/dev/null
  # Room for what the machine writes (logs, state): the files and 50% more, at least
  # 256 MiB free.
  local used size
  used=$(du -s --block-size=1M "$stage" | cut -f1)
  size=$((used + used / 2))
  [ $((size - used)) -ge 256 ] || size=$((used + 256))
  mkfs.ext4 -q -F -L kennel-root -U "$ROOT_UUID" -d "$stage" "$out/$img.tmp" "${size}M" >/dev/null
  mv "$out/$img.tmp" "$out/$img"
  echo "$inputs" >"$out/.stamp-$init"
  log "$out/$img: ${size} MiB ($used MiB of files)"
}

for i in "${inits[@]}"; do image "$i"; done
[ -e "$stage" ] && rm -rf --one-file-system "$stage"
log "done: $out (root $ROOT_UUID, data $DATA_UUID)"
