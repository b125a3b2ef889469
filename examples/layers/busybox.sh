#!/usr/bin/env bash
# Build a busybox layer from Debian's busybox-static: a minimal root filesystem with a
# shell, coreutils-like applets, /etc/passwd and /etc/group.
#   bash examples/layers/busybox.sh DIR      (e.g. /var/lib/kennel/layers/busybox)
# The layer is written to DIR.tmp and renamed to DIR when complete.
set -euo pipefail
dest=${1:?usage: busybox.sh DIR}
bb=$(command -v busybox || true)
if [ -z "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
  [ -x /bin/busybox ] && bb=/bin/busybox
fi
[ -n "$bb" ] || { echo "busybox.sh: needs busybox-static (apt-get install busybox-static)" >&2; exit 1; }
tmp="$dest.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,home,var/tmp,var/www}
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
cp "$bb" "$tmp/bin/busybox"
for applet in $("$tmp/bin/busybox" --list-full); do
  [ -e "$tmp/$applet" ] || ln -s /bin/busybox "$tmp/$applet"
done
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
tty:x:5:
www-data:x:33:
nogroup:x:65534:
G
rm -rf "$dest"
mv "$tmp" "$dest"
echo "busybox layer in $dest"
