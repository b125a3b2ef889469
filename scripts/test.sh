#!/usr/bin/env bash
# kennel's whole test suite, as root, on a fresh Debian 12 machine with Rust installed:
# installs the system packages the tests need, then runs every test of the workspace
# (unit tests, and the integration tests that run the real binary as PID 1 of private
# pid + mount namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: the integration tests need root" >&2; exit 1; }
packages=(busybox-static util-linux procps qemu-system-x86 cpio kmod xz-utils file umoci skopeo crun runc tini s6 hyperfine gcc libc6-dev python3 tmux perl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
cargo test --workspace --locked "$@"
