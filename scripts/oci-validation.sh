#!/bin/bash
# The OCI runtime-tools validation suite against kennel (as kennel-runc), crun and runc,
# pass counts side by side. Builds the suite offline from /work/shared/oci-validation
# (or $OCI_VALIDATION_SRC) on first use: needs golang-go and Debian's
# golang-github-opencontainers-runtime-tools-dev, golang-github-google-uuid-dev,
# golang-gopkg-yaml.v2-dev.
#
# usage: scripts/oci-validation.sh [KENNEL_BINARY]   (default target/debug/kennel)
#   RUNTIMES="kennel crun runc"   which runtimes to run (those not installed are skipped)
#   VALIDATION_TESTS="default create ..."   a subset (see run-validation.sh)
#   OUT=DIR   where each runtime's results go (default target/oci-validation)
set -eu
cd "$(dirname "$0")/.."
SRC=${OCI_VALIDATION_SRC:-/work/shared/oci-validation}
export OCI_VALIDATION_DIR=${OCI_VALIDATION_DIR:-/var/tmp/oci-validation}
KENNEL=$(readlink -f "${1:-target/debug/kennel}")
OUT=$(mkdir -p "${OUT:-target/oci-validation}" && cd "${OUT:-target/oci-validation}" && pwd)
[ -x "$KENNEL" ] || { echo "no kennel binary at $KENNEL (cargo build -p kennel)" >&2; exit 2; }
[ -d "$SRC" ] || { echo "no validation source at $SRC" >&2; exit 2; }
command -v go >/dev/null || { echo "go missing: apt-get install golang-go" >&2; exit 2; }

BUILT=$OCI_VALIDATION_DIR/gopath/src/github.com/opencontainers/runtime-tools
if [ ! -x "$BUILT/runtimetest" ]; then
    bash "$SRC/setup-source.sh"
    bash "$SRC/build-validation.sh"
fi

# kennel as kennel-runc: argv[0] selects the OCI runtime. A hard link (or a copy), not a
# symlink: run-validation.sh resolves symlinks (readlink -f), which would name it kennel.
mkdir -p "$OUT/bin"
rm -f "$OUT/bin/kennel-runc"
ln "$KENNEL" "$OUT/bin/kennel-runc" 2>/dev/null || cp "$KENNEL" "$OUT/bin/kennel-runc"

declare -A RESULT
for rt in ${RUNTIMES:-kennel crun runc}; do
    case $rt in
        kennel) path=$OUT/bin/kennel-runc ;;
        *) path=$(command -v "$rt" || true) ;;
    esac
    if [ -z "$path" ]; then RESULT[$rt]="(not installed)"; continue; fi
    echo "== $rt ($path)"
    bash "$SRC/run-validation.sh" "$path" "$OUT/$rt.txt" >/dev/null 2>&1 || true
    RESULT[$rt]=$(tail -1 "$OUT/$rt.txt")
done
echo
printf '%-8s %s\n' runtime "result (assertions)"
for rt in ${RUNTIMES:-kennel crun runc}; do
    printf '%-8s %s\n' "$rt" "${RESULT[$rt]}"
done
echo "per-program results: $OUT/RUNTIME.txt, raw TAP in $OUT/RUNTIME.txt.d/"
