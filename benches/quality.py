#!/usr/bin/env python3
"""Separation quality of nmfsep against the scikit-learn baseline, side by side in one run.

    python3 benches/quality.py [--bench ../shared/bench] [--k 16] [--beta 1] [--realtime-iters 10]
                               [--solvers default,warm+mu] [--nmfsep target/release/nmfsep]
                               [--cases A_piano_bass ...]

For every case of the bench: `nmfsep learn` on each train/<source>.wav (K components, beta),
`nmfsep separate` of mix.wav (offline, 200 iterations) and `nmfsep separate --realtime`
(the plugin's engine, causal) once per solver rule of --solvers ("default" runs with
nmfsep's own defaults; "warm+mu" is version 1's rule; RULE/N runs RULE with at most N
iterations per frame, other rules get --realtime-iters), then `baseline_nmf.py --method supervised` with the same K
and beta (scikit-learn MU, librosa STFT), each scored by the bench's `evaluate.py`
(BSS Eval v3 via mir_eval, plus SI-SDR). Prints a Markdown table of median SDR over sources,
with the goal per case (max(offline - 0.2 dB, FluCoMa's real-time figure where the bench
README gives one)), and the JSON of every score to --json.
Needs the bench's Python requirements (numpy, scipy, soundfile, librosa, scikit-learn, mir_eval).
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time


# FluCoMa's NMFFilter algorithm frame by frame on the same K = 16 dictionaries (median SDR, dB),
# as the goal table reports it.
FLUCOMA = {"A_piano_bass": 8.06, "A_drums_guitar": 9.77, "A_speech_noise": 12.36}


def run(cmd, **kw):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    return time.perf_counter() - t


def evaluate(bench, case_dir, est_dir):
    out = subprocess.run([sys.executable, os.path.join(bench, "evaluate.py"), case_dir, est_dir],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"))
    ap.add_argument("--nmfsep", default="target/release/nmfsep")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--realtime-iters", type=int, default=10)
    ap.add_argument("--block", type=int, default=512)
    ap.add_argument("--solvers", default="default,warm+mu",
                    help="comma-separated real-time solver rules ('default': no --solver flag)")
    ap.add_argument("--cases", nargs="*")
    ap.add_argument("--json", default=None, help="write all scores here")
    ap.add_argument("--no-baseline", action="store_true")
    a = ap.parse_args()
    solvers = [x.strip() for x in a.solvers.split(",") if x.strip()]

    bench = os.path.abspath(a.bench)
    cases = sorted(glob.glob(os.path.join(bench, "cases", "A_*")))
    if a.cases:
        cases = [c for c in cases if os.path.basename(c) in a.cases]
    results = {}
    rows = []
    for case in cases:
        name = os.path.basename(case)
        sources = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(case, "stems", "*.wav")))
        with tempfile.TemporaryDirectory() as tmp:
            t_learn = 0.0
            args = []
            for s in sources:
                npz = os.path.join(tmp, s + ".npz")
                t_learn += run([a.nmfsep, "learn", os.path.join(case, "train", s + ".wav"), "--components", str(a.k),
                                "--beta", str(a.beta), "-o", npz])
                args += ["--source", f"{s}={npz}"]
            mix = os.path.join(case, "mix.wav")
            off, sk = (os.path.join(tmp, d) for d in ("offline", "sklearn"))
            t_off = run([a.nmfsep, "separate", mix, *args, "-o", off])
            r = {"offline": evaluate(bench, case, off), "time_s": {"learn": round(t_learn, 2), "separate": round(t_off, 2)}}
            for solver in solvers:
                rt = os.path.join(tmp, "realtime-" + re.sub(r"[+:@/]", "_", solver))
                # "default": nmfsep's own defaults; RULE/N: the rule with at most N iterations.
                rule, _, n = solver.partition("/")
                flag = [] if solver == "default" else ["--solver", rule, "--iterations", n or str(a.realtime_iters)]
                t_rt = run([a.nmfsep, "separate", mix, *args, "-o", rt, "--realtime", "--block", str(a.block), *flag])
                r["realtime " + solver] = evaluate(bench, case, rt)
                r["time_s"]["realtime " + solver] = round(t_rt, 2)
            if not a.no_baseline:
                t_sk = run([sys.executable, os.path.join(bench, "baseline_nmf.py"), case, sk, "--method", "supervised",
                            "--beta", str(a.beta), "--k", str(a.k)])
                r["sklearn"] = evaluate(bench, case, sk)
                r["time_s"]["sklearn_total"] = round(t_sk, 2)
        results[name] = r
        med = lambda key, m="SDR": r[key]["median"][m] if key in r else float("nan")
        rts = ["realtime " + x for x in solvers]
        goal = max(med("offline") - 0.2, FLUCOMA.get(name, float("-inf")))
        rows.append((name, [med("sklearn"), med("offline"), *(med(k) for k in rts), goal, med("sklearn", "SI-SDR"),
                            med("offline", "SI-SDR"), *(med(k, "SI-SDR") for k in rts)], r["time_s"]))
        print(f"{name}: sklearn {med('sklearn'):.2f} dB, nmfsep offline {med('offline'):.2f} dB, "
              + ", ".join(f"{k} {med(k):.2f} dB" for k in rts) + f", goal {goal:.2f} dB", file=sys.stderr)

    print(f"Median over sources, dB. Supervised: K={a.k} per source, beta={a.beta}, n_fft 2048, hop 512, "
          f"200 iterations; realtime: blocks of {a.block}, 'default' with nmfsep's own rule and iterations, "
          f"RULE/N with at most N iterations per frame, other rules {a.realtime_iters}. Goal: "
          "max(offline - 0.2, FluCoMa's figure in the bench README).\n")
    rt_cols = [f"realtime {x}" for x in solvers]
    head = ["SDR sklearn", "SDR offline", *(f"SDR {c}" for c in rt_cols), "goal", "SI-SDR sklearn", "SI-SDR offline",
            *(f"SI-SDR {c}" for c in rt_cols)]
    print("| case | " + " | ".join(head) + " |")
    print("|---" * (len(head) + 1) + "|")
    for n, v, _ in rows:
        print(f"| {n} | " + " | ".join(f"{x:.2f}" for x in v) + " |")
    tcols = ["learn", "separate", *rt_cols]
    print("\n| case | " + " | ".join(f"{c} (s)" for c in tcols) + " | sklearn learn+separate (s) |")
    print("|---" * (len(tcols) + 2) + "|")
    for n, _, t in rows:
        print(f"| {n} | " + " | ".join(str(t[c]) for c in tcols) + f" | {t.get('sklearn_total', '-')} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
