#!/usr/bin/env bash
# Build an initramfs that boots a Linux VM with kennel as its init (/sbin/init), on
# Debian's own kernel (linux-image-amd64), without installing a kernel on the host.
#
#   bash examples/vm/build.sh [OUT_DIR]          (default: target/vm)
#
# Writes OUT_DIR/vmlinuz and OUT_DIR/initramfs.cpio.gz (the tree they come from is
# OUT_DIR/tree). kennel is the static build (x86_64-unknown-linux-musl, README "Static
# build"): no loader and no shared libraries to map and relocate at each exec, which under
# TCG is ~30 ms of every start of /sbin/init and of its zygote (docs/performance.md, section
# 7). A KENNEL_VM_BINARY linked against glibc still works: its libraries are copied in. Needs root (apt-get, device nodes in the tree). Reruns are fast: the
# kernel package is downloaded and extracted once, into the kernel cache.
#
# Environment:
#   KENNEL_VM_FEATURES      cargo features for kennel (e.g. "test-panic"); such a build goes
#                           to its own target dir (target/vm-features) so the normal release
#                           build is not rebuilt each time
#   KENNEL_VM_KERNEL_CACHE  where the kernel package is kept (default OUT_DIR/kernel); may be
#                           shared between OUT_DIRs (it is locked while in use)
#   KENNEL_VM_KERNEL_REFRESH=1  look up linux-image-amd64 again even if a kernel is cached
#   KENNEL_VM_BINARY        use this kennel binary instead of building one
#
# The guest's files (units, scripts) are real files under examples/vm/rootfs/, copied in.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
out=${1:-target/vm}
mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { echo "vm/build: $*" >&2; }
die() { echo "vm/build: error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (apt-get, mknod in the initramfs tree)"

# --- host tools -------------------------------------------------------------------------
# command -> Debian package
declare -A need=(
  [qemu-system-x86_64]=qemu-system-x86
  [cpio]=cpio
  [depmod]=kmod
  [modprobe]=kmod
  [xz]=xz-utils
  [gzip]=gzip
  [ldd]=libc-bin
  [file]=file
  [musl-gcc]=musl-tools
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 \
    || missing+=("${need[$cmd]}")
done
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' \
  || missing+=(busybox-static)
export PATH="$PATH:/usr/sbin:/sbin"
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
busybox=/bin/busybox
file -L "$busybox" | grep -q 'statically linked' || die "$busybox is not statically linked (busybox-static)"

# --- the kernel -------------------------------------------------------------------------
# Debian's linux-image-amd64 is a metapackage; the kernel is the versioned package it
# depends on (linux-image-6.1.0-N-amd64). Download it and extract it: vmlinuz in boot/,
# modules in lib/modules/KVER/. Nothing is installed on the host.
kcache=${KENNEL_VM_KERNEL_CACHE:-$out/kernel}
mkdir -p "$kcache"
kcache=$(cd "$kcache" && pwd)
exec 9>"$kcache/.lock"
flock 9
find_cached_kernel() {
  local v
  v=$(cat "$kcache/current" 2>/dev/null || true)
  [ -n "$v" ] && [ -f "$kcache/$v/root/boot/vmlinuz-$v" ] && [ -d "$kcache/$v/root/lib/modules/$v" ] \
    && echo "$v"
}
kver=$(find_cached_kernel || true)
if [ -z "$kver" ] || [ "${KENNEL_VM_KERNEL_REFRESH:-0}" = 1 ]; then
  kpkg_of() { apt-cache depends linux-image-amd64 2>/dev/null \
      | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }'; }
  kpkg=$(kpkg_of || true)
  if [ -z "$kpkg" ] || [ "${KENNEL_VM_KERNEL_REFRESH:-0}" = 1 ]; then
    apt-get update -qq
    kpkg=$(kpkg_of || true)
  fi
  [ -n "$kpkg" ] || die "cannot resolve the kernel package linux-image-amd64 depends on"
  kver=${kpkg#linux-image-}
  if [ ! -f "$kcache/$kver/root/boot/vmlinuz-$kver" ]; then
    log "downloading $kpkg"
    rm -rf "$kcache/$kver"
    mkdir -p "$kcache/$kver/deb"
    (cd "$kcache/$kver/deb" && apt-get download -q "$kpkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    deb=$(ls "$kcache/$kver/deb"/*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || die "apt-get download $kpkg produced no .deb"
    log "extracting $(basename "$deb")"
    dpkg-deb -x "$deb" "$kcache/$kver/root.tmp"
    mv "$kcache/$kver/root.tmp" "$kcache/$kver/root"
    rm -f "$deb"
    # modules.dep is made by the package's postinst, not shipped: make it here, so that
    # modprobe can tell a module's dependencies.
    depmod -b "$kcache/$kver/root" "$kver"
  fi
  echo "$kver" > "$kcache/current"
fi
kroot=$kcache/$kver/root
log "kernel $kver"

# --- kennel -----------------------------------------------------------------------------
cargo=${CARGO:-cargo}
if [ -n "${KENNEL_VM_BINARY:-}" ]; then
  kennel=$KENNEL_VM_BINARY
  log "using the kennel binary $kennel (KENNEL_VM_BINARY)"
else
  musl=x86_64-unknown-linux-musl
  rustup target list --installed 2>/dev/null | grep -qx $musl || rustup target add $musl >&2 \
    || die "rustup target add $musl failed (the VM's kennel is the static build)"
  if [ -n "${KENNEL_VM_FEATURES:-}" ]; then
    tdir=$repo/target/vm-features
    log "building the static kennel (release, features: $KENNEL_VM_FEATURES) in $tdir"
    CARGO_TARGET_DIR=$tdir "$cargo" build --release --locked --target $musl -p kennel \
      --features "$KENNEL_VM_FEATURES" >&2
  else
    tdir=${CARGO_TARGET_DIR:-$repo/target}
    log "building the static kennel (release, $musl)"
    "$cargo" build --release --locked --target $musl -p kennel >&2
  fi
  kennel=$tdir/$musl/release/kennel
fi
[ -x "$kennel" ] || die "no kennel binary at $kennel"

# --- the tree ---------------------------------------------------------------------------
tree=$out/tree
rm -rf "$tree" "$tree.tmp"
t=$tree.tmp
mkdir -p "$t"
(cd "$t" && mkdir -p bin sbin etc/kennel dev proc sys run tmp root var/log var/lib/kennel/layers)
chmod 1777 "$t/tmp"
mknod -m 600 "$t/dev/console" c 5 1
mknod -m 666 "$t/dev/null" c 1 3

# kennel: /sbin/init is the binary, /bin/kennel a symlink to it (argv[0] "init" boots).
cp "$kennel" "$t/sbin/init"
ln -s /sbin/init "$t/bin/kennel"
# A dynamically linked kennel (a glibc KENNEL_VM_BINARY): its shared libraries and the
# loader, at the paths ldd shows. The static build needs none.
{ ldd "$kennel" 2>/dev/null || true; } | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u \
  | while read -r lib; do
      mkdir -p "$t$(dirname "$lib")"
      cp -L "$lib" "$t$lib"
    done

# busybox, with its applets as symlinks in /bin (/bin/sh ...), never over kennel.
cp "$busybox" "$t/bin/busybox"
for applet in $("$t/bin/busybox" --list); do
  case "$applet" in busybox|init|linuxrc|kennel) continue ;; esac
  [ -e "$t/bin/$applet" ] || [ -L "$t/bin/$applet" ] || ln -s busybox "$t/bin/$applet"
done

# Kernel modules: overlay and what it depends on, uncompressed, and their modules.dep.
# Also those of a container on a bridge network (run.sh --net loads them with
# `modules-load=` on the kernel command line; a boot without it does not): the virtio NIC,
# veth, the bridge and the nftables pieces of kennel's rules (table inet kennel: nat
# chains, masquerade, DNAT, conntrack, fib). crc32c_generic first: libcrc32c (which
# nf_tables and nf_conntrack need) asks the crypto API for "crc32c" at load, a soft
# dependency that modules.dep does not list and kennel's loader does not follow.
net_modules=(crc32c_generic virtio_pci virtio_net veth bridge nf_tables nft_chain_nat nft_nat nft_masq nft_ct nft_fib_inet)
modules=(overlay "${net_modules[@]}")
mkdir -p "$t/lib/modules/$kver"
for f in modules.order modules.builtin modules.builtin.modinfo; do
  [ -f "$kroot/lib/modules/$kver/$f" ] && cp "$kroot/lib/modules/$kver/$f" "$t/lib/modules/$kver/"
done
for m in "${modules[@]}"; do
  modprobe -d "$kroot" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }' \
    | while read -r ko; do
        rel=${ko#"$kroot"}
        dst=$t${rel%.xz}
        dst=${dst%.zst}
        dst=${dst%.gz}
        mkdir -p "$(dirname "$dst")"
        case "$ko" in
          *.ko.xz) xz -dc "$ko" > "$dst" ;;
          *.ko.zst) zstd -dc "$ko" > "$dst" ;;
          *.ko.gz) gzip -dc "$ko" > "$dst" ;;
          *) cp "$ko" "$dst" ;;
        esac
      done
done
depmod -b "$t" "$kver"
[ -n "$(find "$t/lib/modules/$kver" -name overlay.ko)" ] || die "overlay.ko not found in $kpkg"

# The guest's configuration (/etc/hostname, /etc/kennel/boot.toml), units and scripts.
cp -a "$here/rootfs/." "$t/"

# The busybox layer for the containerized units.
bash "$repo/examples/layers/busybox.sh" "$t/var/lib/kennel/layers/busybox" >&2

mv "$t" "$tree"

# --- the initramfs ----------------------------------------------------------------------
cp "$kroot/boot/vmlinuz-$kver" "$out/vmlinuz"
(cd "$tree" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) \
  | gzip -1 > "$out/initramfs.cpio.gz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
echo "$kver" > "$out/kernel-version"
log "$out/vmlinuz ($kver), $out/initramfs.cpio.gz ($(du -h "$out/initramfs.cpio.gz" | cut -f1))"
