#!/usr/bin/env bash
# kennel's whole test suite, as root, on a fresh Debian 12 machine with Rust installed:
# installs the system packages the tests need, then runs every test of the workspace
# (unit tests, and the integration tests that run the real binary as PID 1 of private
# pid + mount namespaces), all of them even after a failure (--no-fail-fast). Ends with the
# totals over every test binary on one line, `N passed, N failed, N skipped` (a skipped
# test prints `SKIPPED: TEST: WHY` and is not counted as passed), and exits non-zero if
# anything failed. Arguments go to `cargo test`. Before the tests it builds the static
# (musl) kennel that the podman tests put in their images.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: the integration tests need root" >&2; exit 1; }
packages=(busybox-static util-linux nftables iproute2 procps qemu-system-x86 cpio kmod xz-utils file umoci skopeo crun runc tini s6 hyperfine gcc libc6-dev python3 tmux perl
  musl-tools podman conmon containerd netavark catatonit debootstrap binutils e2fsprogs curl containernetworking-plugins iptables
  golang-go golang-github-opencontainers-runtime-tools-dev golang-github-google-uuid-dev golang-gopkg-yaml.v2-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# The static kennel (integration/podman.rs finds it at
# target/x86_64-unknown-linux-musl/release/kennel; without it those tests skip, or fail
# under CI).
if rustup target add x86_64-unknown-linux-musl &&
  cargo build --release --locked --target x86_64-unknown-linux-musl -p kennel; then
  :
else
  echo "test.sh: could not build the static kennel; the podman tests will say so" >&2
fi
log=$(mktemp "${TMPDIR:-/tmp}/kennel-test.XXXXXX")
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# libtest's summary of each binary: `test result: ok. 8 passed; 0 failed; 0 ignored; ...`.
read -r passed failed < <(awk '/^test result: / {
    for (i = 2; i <= NF; i++) {
      if ($i == "passed;") p += $(i - 1)
      if ($i == "failed;") f += $(i - 1)
    }
  } END { print p + 0, f + 0 }' "$log")
skipped=$(grep -c '^SKIPPED: ' "$log" || true)
echo
echo "$((passed - skipped)) passed, $failed failed, $skipped skipped"
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
  echo "test.sh: cargo test failed (exit $status) without a failed test: a build error or a test binary that did not finish, see above" >&2
fi
if [ "$status" = 0 ] && [ "$failed" != 0 ]; then
  status=1
fi
exit "$status"
