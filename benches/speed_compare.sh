#!/usr/bin/env bash
# Offline fit speed, side by side in one invocation: scikit-learn's speed reference
# (shared/bench/speed_ref.py, 1 thread) then our `fit_speed` bench on the same job
# (3 minutes of audio, V 1025 x 15504, K=32, beta 1, 200 iterations, tol 0, NNDSVDa).
# Prints both JSON results, the BLAS kernel numpy used, and the ratio sklearn / ours.
#
#   bash benches/speed_compare.sh
#
# Python: the benchmarks' own virtual environment (benches/venv.sh makes it on first use from
# benches/requirements.txt, in target/bench-venv); PYTHON=/path/to/python to use another.
# Cargo builds in the repository's target/ unless CARGO_TARGET_DIR says otherwise.
#
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine (older OpenBLAS builds need
# them) and slow a current numpy: they are unset for the Python commands only.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# BENCH_SHARED: the bench folder, default shared/bench beside the repository.
shared="${BENCH_SHARED:-$root/../shared/bench}"
export FIT_SPEED_CASES="$shared/cases"
if [ ! -f "$shared/speed_ref.py" ] || [ ! -d "$shared/cases" ]; then
    echo "speed_compare: $shared not found; nothing to compare"
    exit 0
fi
py="${PYTHON:-$(bash "$root/benches/venv.sh")}"
cd "$root"
# Build first so that compilation does not overlap the timings.
cargo bench --bench fit_speed --no-run >/dev/null 2>&1

echo "== machine"
lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core)' || true
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== numpy BLAS (threadpoolctl, OPENBLAS_CORETYPE/L2_SIZE unset)"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" -c '
import json, numpy
from threadpoolctl import threadpool_info
print(json.dumps([{k: d.get(k) for k in ("user_api", "internal_api", "version", "architecture", "num_threads")} for d in threadpool_info()]))'

echo "== scikit-learn (speed_ref.py --threads 1)"
sk_json="$(cd "$shared" && env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" speed_ref.py --cases cases --threads 1)"
echo "$sk_json"

echo "== nmf-separator (cargo bench --bench fit_speed)"
ours_json="$(cargo bench --bench fit_speed 2>/dev/null | grep '^{')"
echo "$ours_json"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

SK="$sk_json" OURS="$ours_json" "$py" -c '
import json, os
sk = json.loads(os.environ["SK"]); ours = json.loads(os.environ["OURS"])
s, o = sk["sklearn_fit_s_threads1"], ours["fit_s"]
print(f"ratio sklearn/ours (1 thread): {s:.2f} s / {o:.2f} s = {s / o:.2f}x")'
