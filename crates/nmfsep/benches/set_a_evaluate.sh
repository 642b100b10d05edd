#!/usr/bin/env bash
# BSS Eval v4 (nmfsep evaluate, 1 s windows) of plain supervised NMF on the bench's set A:
# per case, one dictionary per training clip (nmfsep learn -k 16 --beta 1), then nmfsep
# separate with all of them; prints a Markdown table of median SDR/SIR/SAR (median over the
# sources of each source's median over windows), and the mixture itself as a reference.
#
#   bash crates/nmfsep/benches/set_a_evaluate.sh NMFSEP BENCH_DIR WORK_DIR
set -euo pipefail
nmfsep=$1
bench=$2
work=$3
mkdir -p "$work"
median_of() { python3 -c 'import json,sys,statistics as s
d=json.load(open(sys.argv[1])); m=sys.argv[2]
v=[x["median"][m] for x in d["sources"].values() if x["median"][m] is not None]
print(f"{s.median(v):.2f}" if v else "nan")' "$1" "$2"; }
echo "| case | sources | mixture SDR | NMF SDR | NMF SIR | NMF SAR | NMF ISR |"
echo "|---|---|---|---|---|---|---|"
for case in "$bench"/cases/A_*; do
  name=$(basename "$case")
  out="$work/$name"
  rm -rf "$out"
  mkdir -p "$out/dict" "$out/mixonly"
  args=()
  names=()
  for clip in "$case"/train/*.wav; do
    src=$(basename "$clip" .wav)
    "$nmfsep" learn "$clip" -o "$out/dict/$src.npz" -k 16 --beta 1 > /dev/null
    args+=(--source "$src=$out/dict/$src.npz")
    names+=("$src")
  done
  "$nmfsep" separate "$case/mix.wav" "${args[@]}" -o "$out/sep" > /dev/null
  # The mixture as every source's estimate: the score of doing nothing.
  for src in "${names[@]}"; do cp "$case/mix.wav" "$out/mixonly/$src.wav"; done
  "$nmfsep" evaluate --json "$case/stems" "$out/sep" > "$out/nmf.json"
  "$nmfsep" evaluate --json "$case/stems" "$out/mixonly" > "$out/mix.json"
  echo "| $name | ${names[*]} | $(median_of "$out/mix.json" SDR) | $(median_of "$out/nmf.json" SDR) | $(median_of "$out/nmf.json" SIR) | $(median_of "$out/nmf.json" SAR) | $(median_of "$out/nmf.json" ISR) |"
done
