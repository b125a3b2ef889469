#!/usr/bin/env bash
# Import throughput: `kennel image import` of a ~200 MB OCI image (two gzip layers of real
# files: libraries, docs) against `umoci unpack` of the same image, run interleaved on
# this machine. Both runs end with `sync` (kennel syncs its layers before making them
# visible; the comparison is then on data on disk). Prints a markdown table.
#   bash bench/images.sh          (needs root, umoci; KENNEL=path RUNS=n to override)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "images.sh: needs root (whiteouts, ownership)" >&2; exit 1; }
KENNEL=${KENNEL:-target/release/kennel}
RUNS=${RUNS:-3}
[ -x "$KENNEL" ] || cargo build --release -p kennel
work=$(mktemp -d /var/tmp/kennel-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT

# The image: layer 1 ~110 MB of /usr/lib, layer 2 ~90 MB of /usr/share (files with one
# link: a hardlinked file would be stored once).
umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:bench" >/dev/null
pick() { # DIR BYTES: regular files of DIR, in name order, up to BYTES
  find "$1" -xdev -type f -links 1 -printf '%s %p\n' 2>/dev/null | sort -k2 > "$work/all" || true
  awk -v max="$2" '{ if (sum + $1 > max) next; sum += $1; print substr($0, index($0, " ") + 1) }' "$work/all"
}
for spec in "/usr/lib/x86_64-linux-gnu 115343360" "/usr/share 94371840"; do
  set -- $spec
  umoci unpack --image "$work/oci:bench" "$work/b" >/dev/null
  pick "$1" "$2" > "$work/list"
  tar -cf - --verbatim-files-from -T "$work/list" 2>/dev/null | tar -xf - -C "$work/b/rootfs" || true
  umoci repack --image "$work/oci:bench" "$work/b" >/dev/null
  rm -rf "$work/b"
done
blobs=$(find "$work/oci/blobs" -type f -size +1M)
compressed=$(cat $blobs | wc -c)
uncompressed=$(for b in $blobs; do zcat "$b"; done | wc -c)
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

now() { date +%s.%N; }
k=() u=()
for i in $(seq "$RUNS"); do
  rm -rf "$work/state"; sync
  t0=$(now); "$KENNEL" image import "$work/oci" --name bench:1 --state-dir "$work/state" >/dev/null; sync; t1=$(now)
  k+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
  rm -rf "$work/bundle"; sync
  t0=$(now); umoci unpack --image "$work/oci:bench" "$work/bundle" >/dev/null; sync; t1=$(now)
  u+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
row() { # NAME TIMES...
  local name=$1; shift
  local m; m=$(median "$@")
  printf '| %s | %s | %.2f s | %.0f MB/s |\n' "$name" "$(printf '%.2f ' "$@")" "$m" \
    "$(awk -v b="$uncompressed" -v t="$m" 'BEGIN { print b / 1048576 / t }')"
}
echo "image: $(mb "$uncompressed") MB uncompressed, $(mb "$compressed") MB gzip, 2 layers; $RUNS runs, interleaved"
echo "machine: $(nproc) CPUs, $(uname -r), $(findmnt -no FSTYPE -T "$work") on $work"
echo
echo "| tool | runs | median | throughput (uncompressed) |"
echo "|---|---|---|---|"
row "kennel image import" "${k[@]}"
row "umoci unpack ($(umoci --version | awk '{print $3}'))" "${u[@]}"
