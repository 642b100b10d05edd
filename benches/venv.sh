#!/usr/bin/env bash
# Creates (once) the benchmarks' own Python virtual environment from benches/requirements.txt
# and prints the path of its interpreter on stdout; progress goes to stderr.
#
#   bash benches/venv.sh                       -> target/bench-venv/bin/python
#   "$(bash benches/venv.sh)" benches/quality.py --bench ../shared/bench ...
#
# The environment lives in the repository's target/ folder (or $BENCH_VENV), is made with
# `python3 -m venv` ($PYTHON3 to choose another base interpreter; Debian: python3-venv) and
# is rebuilt when requirements.txt changes (a copy of it is kept inside as a stamp).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
req="$root/benches/requirements.txt"
venv="${BENCH_VENV:-$root/target/bench-venv}"
base="${PYTHON3:-python3}"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.stamp"; then
    echo "venv: creating $venv from $req" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$base" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install -q --upgrade pip >&2
    "$venv/bin/python" -m pip install -q -r "$req" >&2
    cp "$req" "$venv/requirements.stamp"
    echo "venv: ready" >&2
fi
echo "$venv/bin/python"
