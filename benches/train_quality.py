#!/usr/bin/env python3
"""Separation quality of trained separators (`nmfsep train`) against plain dictionaries.

    python3 benches/train_quality.py [--bench ../shared/bench] [--nmfsep target/release/nmfsep]
                                     [--cases A_band4 ...] [--holdout] [--json OUT.json]
                                     [--configs plain,trained,aug,spatial]

For every case of set A, median SDR over sources (BSS Eval v3, the bench's `evaluate.py`),
offline and with `--realtime` (the plugin's engine, nmfsep's default solver):
  plain    `nmfsep learn --components 16 --beta 1` per train clip, `separate --source ...`
  trained  `nmfsep train` (pitch-shift augmentation of tonal sources, spatial model of stereo
           clips), `separate --model`
  aug      `nmfsep train --no-spatial` (augmentation alone)
  spatial  `nmfsep train --shifts none` (spatial model alone)
  disc     `nmfsep train --discriminative` (with discriminative reconstruction templates)
On mono cases `trained` is the augmentation alone, so `aug` and `spatial` run on stereo
cases only.
With --holdout, each case is replaced by one made from its train clips only: every source's
clip is cut at 75 %; the first part trains, the last parts (cut to the shortest) are the
stems and their sum the mixture. This is where settings are chosen; the real mixtures only
report.
Needs the bench's Python requirements (numpy, soundfile, mir_eval, ...).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

CONFIGS = {
    "plain": None,
    "trained": [],
    "aug": ["--no-spatial"],
    "spatial": ["--shifts", "none"],
    "disc": ["--discriminative"],
}


def run(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return time.perf_counter() - t, r.stdout


def evaluate(bench, case_dir, est_dir):
    out = subprocess.run([sys.executable, os.path.join(bench, "evaluate.py"), case_dir, est_dir],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def holdout_case(case, root, frac=0.75):
    """A case made of the train clips only (see the module docstring)."""
    name = os.path.basename(case)
    out = os.path.join(root, name)
    os.makedirs(os.path.join(out, "train"))
    os.makedirs(os.path.join(out, "stems"))
    tails, sr = {}, None
    for p in sorted(glob.glob(os.path.join(case, "train", "*.wav"))):
        s = os.path.splitext(os.path.basename(p))[0]
        x, sr = sf.read(p, dtype="float32", always_2d=True)
        cut = int(frac * len(x))
        sf.write(os.path.join(out, "train", s + ".wav"), x[:cut], sr, subtype="FLOAT")
        tails[s] = x[cut:]
    n = min(len(t) for t in tails.values())
    ch = max(t.shape[1] for t in tails.values())
    mix = np.zeros((n, ch), dtype=np.float32)
    for s, t in tails.items():
        t = np.repeat(t[:n], ch // t.shape[1], axis=1)
        sf.write(os.path.join(out, "stems", s + ".wav"), t, sr, subtype="FLOAT")
        mix += t
    sf.write(os.path.join(out, "mix.wav"), mix, sr, subtype="FLOAT")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"))
    ap.add_argument("--nmfsep", default="target/release/nmfsep")
    ap.add_argument("--cases", nargs="*")
    ap.add_argument("--configs", default="plain,trained,aug,spatial")
    ap.add_argument("--holdout", action="store_true")
    ap.add_argument("--train-args", default="", help="extra arguments of every `nmfsep train`")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    bench = os.path.abspath(a.bench)
    cases = sorted(glob.glob(os.path.join(bench, "cases", "A_*")))
    if a.cases:
        cases = [c for c in cases if os.path.basename(c) in a.cases]
    configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    extra = a.train_args.split()
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for case in cases:
            name = os.path.basename(case)
            if a.holdout:
                case = holdout_case(case, os.path.join(root, "holdout"))
            sources = sorted(os.path.splitext(os.path.basename(p))[0]
                             for p in glob.glob(os.path.join(case, "stems", "*.wav")))
            mono_case = all(sf.info(os.path.join(case, "train", s + ".wav")).channels == 1 for s in sources)
            mix = os.path.join(case, "mix.wav")
            tmp = os.path.join(root, name)
            os.makedirs(tmp)
            res = results.setdefault(name, {})
            for cfg in configs:
                if cfg in ("spatial", "aug") and mono_case:
                    # Without a stereo clip there is no spatial model: "aug" is "trained".
                    continue
                if cfg == "plain":
                    args, t_train = [], 0.0
                    for s in sources:
                        npz = os.path.join(tmp, s + ".npz")
                        t, _ = run([a.nmfsep, "learn", os.path.join(case, "train", s + ".wav"),
                                    "--components", "16", "--beta", "1", "-o", npz])
                        t_train += t
                        args += ["--source", f"{s}={npz}"]
                else:
                    model = os.path.join(tmp, cfg + ".npz")
                    cmd = [a.nmfsep, "train", "-o", model, "--components", "16", "--beta", "1"]
                    for s in sources:
                        cmd += ["--source", f"{s}={os.path.join(case, 'train', s + '.wav')}"]
                    t_train, _ = run(cmd + CONFIGS[cfg] + extra)
                    args = ["--model", model]
                row = {"train_s": round(t_train, 2)}
                for mode, flags in (("offline", []), ("realtime", ["--realtime"])):
                    out = os.path.join(tmp, f"{cfg}_{mode}")
                    t, _ = run([a.nmfsep, "separate", mix, *args, *flags, "-o", out])
                    ev = evaluate(bench, case, out)
                    row[mode] = round(ev["median"]["SDR"], 2)
                    row[mode + "_sources"] = {k: round(v["SDR"], 2) for k, v in ev["per_source"].items()}
                    row[mode + "_s"] = round(t, 2)
                res[cfg] = row
                print(f"{name} {cfg}: offline {row['offline']:.2f} realtime {row['realtime']:.2f} "
                      f"(train {t_train:.1f} s)", flush=True)
    print()
    print("| case | " + " | ".join(f"{c} offline | {c} realtime" for c in configs) + " |")
    print("|---|" + "---|---|" * len(configs))
    for name, res in results.items():
        cells = []
        for c in configs:
            r = res.get(c)
            cells += [f"{r['offline']:.2f}", f"{r['realtime']:.2f}"] if r else ["-", "-"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
