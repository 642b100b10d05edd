#!/usr/bin/env python3
"""Speed and memory of `nmfsep separate --model` and `nmfsep evaluate` beside their Python
references (openunmix 1.3.0 on torch CPU, museval 0.4.1), measured in one run on one machine.

Needs a venv with openunmix==1.3.0, torch (CPU), museval==0.4.1, numpy, soundfile, and a
release build of the tool (`cargo build --release -p nmfsep`). Not part of CI.

    python crates/nmfsep/benches/umx_bench.py separate  NMFSEP BENCH_DIR WORK_DIR [--long] [--threads 1 2]
    python crates/nmfsep/benches/umx_bench.py evaluate  NMFSEP BENCH_DIR WORK_DIR

separate: an Open-Unmix folder with the umxhq sizes (4 targets, n_fft 4096, hop 1024,
hidden 512, max_bin 1487, random weights) and a 60 s stereo mixture (A_band4/mix.wav
repeated); times Separator(niter=1, wiener_win_len=300) forward with torch on N threads and
`nmfsep separate --model` (whole process: load, read, separate, write), peak RSS of each
process (/usr/bin/time). --long also runs both on 10 minutes.
evaluate: a 3-minute 4-source stereo track (A_band4 stems repeated; estimates = 0.8 s_j +
0.2 s_{j+1} + noise), museval.evaluate(win=hop=44100, mode="v4") against `nmfsep evaluate`,
time and peak RSS of each process.
"""

import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import soundfile as sf

RATE = 44100
TARGETS = ["vocals", "drums", "bass", "other"]


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (wall seconds, peak RSS MiB, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    rss = [l for l in p.stderr.splitlines() if l.startswith("MAXRSS")][-1].split()[1]
    return wall, int(rss) / 1024.0, p.stdout


def make_umxhq_like(folder):
    import torch
    from openunmix import model as umx_model

    folder.mkdir(parents=True, exist_ok=True)
    nb_bins = 4096 // 2 + 1
    for k, t in enumerate(TARGETS):
        torch.manual_seed(100 + k)
        m = umx_model.OpenUnmix(nb_bins=nb_bins, nb_channels=2, hidden_size=512, max_bin=1487)
        with torch.no_grad():
            m.input_mean.copy_(-torch.rand(1487) * 0.05)
            m.input_scale.copy_(1.0 / (0.05 + torch.rand(1487) * 0.2))
            for bn in (m.bn1, m.bn2, m.bn3):
                bn.running_var.uniform_(0.5, 2.0)
        torch.save(m.state_dict(), folder / f"{t}-00000000.pth")
        args = {"nfft": 4096, "nhop": 1024, "nb_channels": 2, "hidden_size": 512, "sample_rate": RATE}
        (folder / f"{t}.json").write_text(json.dumps({"args": args}))
    sep = {"targets": TARGETS, "sample_rate": float(RATE), "nb_channels": 2, "nfft": 4096, "nhop": 1024}
    (folder / "separator.json").write_text(json.dumps(sep))


def tiled(path, seconds):
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == RATE
    n = int(seconds * RATE)
    reps = -(-n // len(x))
    return np.tile(x, (reps, 1))[:n]


def python_separate(folder, wav, threads):
    """Child process: times load and forward of the Python Separator."""
    import torch
    from openunmix import utils

    torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    sep = utils.load_separator(folder, targets=TARGETS, niter=1, wiener_win_len=300)
    sep.freeze()
    x, _ = sf.read(wav, dtype="float32", always_2d=True)
    audio = torch.as_tensor(x.T.copy())[None]
    t1 = time.perf_counter()
    with torch.no_grad():
        est = sep(audio)
    t2 = time.perf_counter()
    print(json.dumps({"load": t1 - t0, "forward": t2 - t1, "shape": list(est.shape)}))


def bench_separate(nmfsep, bench, work, threads, long):
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "umxhq_like"
    if not (folder / "separator.json").exists():
        make_umxhq_like(folder)
    mix = bench / "cases" / "A_band4" / "mix.wav"
    lengths = [60] + ([600] if long else [])
    for seconds in lengths:
        wav = work / f"mix_{seconds}s.wav"
        if not wav.exists():
            sf.write(wav, tiled(mix, seconds), RATE, subtype="FLOAT")
        for n in threads:
            env = {"OMP_NUM_THREADS": str(n), "PATH": "/usr/bin:/bin"}
            wall, rss, out = timed([sys.executable, __file__, "_py_separate", str(folder), str(wav), str(n)], env)
            py = json.loads(out.strip().splitlines()[-1])
            print(f"{seconds:4d} s  python openunmix, torch {n} thread(s): forward {py['forward']:.2f} s, load {py['load']:.2f} s, process {wall:.2f} s, peak RSS {rss:.0f} MiB", flush=True)
        out_dir = work / f"out_{seconds}"
        wall, rss, _ = timed([nmfsep, "separate", str(wav), "--model", str(folder), "-o", str(out_dir)])
        print(f"{seconds:4d} s  nmfsep separate --model (1 thread): process {wall:.2f} s, peak RSS {rss:.0f} MiB", flush=True)


def python_evaluate(ref_dir, est_dir):
    import museval

    names = sorted(p.stem for p in pathlib.Path(ref_dir).glob("*.wav"))
    t0 = time.perf_counter()
    refs = np.stack([sf.read(pathlib.Path(ref_dir) / f"{n}.wav", always_2d=True)[0] for n in names])
    ests = np.stack([sf.read(pathlib.Path(est_dir) / f"{n}.wav", always_2d=True)[0] for n in names])
    sdr, isr, sir, sar = museval.evaluate(refs, ests, win=RATE, hop=RATE)
    t1 = time.perf_counter()
    med = {n: round(float(np.nanmedian(sdr[j])), 3) for j, n in enumerate(names)}
    print(json.dumps({"time": t1 - t0, "median_sdr": med}))


def bench_evaluate(nmfsep, bench, work):
    ref_dir, est_dir = work / "eval_ref", work / "eval_est"
    ref_dir.mkdir(parents=True, exist_ok=True)
    est_dir.mkdir(parents=True, exist_ok=True)
    names = ["bass", "drums", "piano", "sax"]
    stems = [tiled(bench / "cases" / "A_band4" / "stems" / f"{n}.wav", 180) for n in names]
    rng = np.random.default_rng(0)
    for j, n in enumerate(names):
        est = 0.8 * stems[j] + 0.2 * stems[(j + 1) % 4] + 0.01 * rng.standard_normal(stems[j].shape)
        sf.write(ref_dir / f"{n}.wav", stems[j], RATE, subtype="FLOAT")
        sf.write(est_dir / f"{n}.wav", est.astype(np.float32), RATE, subtype="FLOAT")
    wall, rss, out = timed([nmfsep, "evaluate", "--json", str(ref_dir), str(est_dir)])
    ours = json.loads(out)
    med = {n: round(ours["sources"][n]["median"]["SDR"], 3) for n in names}
    print(f"nmfsep evaluate: process {wall:.1f} s, peak RSS {rss:.0f} MiB; median SDR {med}", flush=True)
    wall, rss, out = timed([sys.executable, __file__, "_py_evaluate", str(ref_dir), str(est_dir)])
    py = json.loads(out.strip().splitlines()[-1])
    print(f"museval 0.4.1: evaluate {py['time']:.1f} s, process {wall:.1f} s, peak RSS {rss:.0f} MiB; median SDR {py['median_sdr']}", flush=True)


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "_py_separate":
        python_separate(*sys.argv[2:5])
    elif cmd == "_py_evaluate":
        python_evaluate(*sys.argv[2:4])
    elif cmd == "separate":
        nmfsep, bench, work = sys.argv[2], pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4])
        threads = [1, 2]
        if "--threads" in sys.argv:
            i = sys.argv.index("--threads")
            threads = [int(v) for v in sys.argv[i + 1 :] if v.isdigit()]
        bench_separate(nmfsep, bench, work, threads, "--long" in sys.argv)
    elif cmd == "evaluate":
        bench_evaluate(sys.argv[2], pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
