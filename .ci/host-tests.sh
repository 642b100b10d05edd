#!/usr/bin/env bash
# Host tests: the bundled plugin in real hosts.
#   1. debug bundle with assert_process_allocs (panics on any allocation in process())
#   2. a venv with pedalboard, numpy, soundfile for the VST3 test (reused when present)
#   3. tests/clap_host.rs (clack-host) and tests/vst3_host.rs (pedalboard via tests/vst3_host.py)
# Usage: .ci/host-tests.sh   (from anywhere; CARGO_TARGET_DIR and NMFSEP_VENV are honoured)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${NMFSEP_VENV:-$PWD/target/venv-host}"  # the same venv as .ci/run

step() {
    local name="$1"
    shift
    local t0=$SECONDS
    echo "== $name"
    "$@"
    echo "== $name: $((SECONDS - t0)) s"
}

make_venv() {
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import pedalboard, numpy, soundfile' 2>/dev/null; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet pedalboard numpy soundfile
    fi
    "$VENV/bin/python" -c 'import pedalboard; print("pedalboard", pedalboard.__version__)'
}

step "bundle (debug, assert_process_allocs)" \
    cargo xtask bundle nmf-separator --workspace --lib --tests --features nmf-separator/assert_process_allocs
step "venv $VENV" make_venv
step "CLAP host test (clack-host)" \
    cargo test --features assert_process_allocs --test clap_host -- --nocapture
step "VST3 host test (pedalboard)" \
    env NMFSEP_PYTHON="$VENV/bin/python" cargo test --features assert_process_allocs --test vst3_host -- --nocapture
