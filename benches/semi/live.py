"""Causal simulation of the live semi-supervised learner, numpy float64.

Audio thread: per frame, h warm-started from the previous frame, rescaled to the frame's L1
energy, `frame_iters` KL MU updates with W = [Wk | Wf_active], Wiener mask exponent p.
Worker: keeps the last `window` frames; every `period` frames it refits Wf (and the window's
H, warm-started from the audio thread's h) with `refit_iters` MU iterations of the penalized
semi-supervised objective; the result becomes active `delay` frames later.
"""
import numpy as np
from methods import EPS, known_share

def live(V, Wk, Vclip, kf=16, window=128, period=32, refit_iters=10, delay=32, frame_iters=10,
         odds=10.0, q0=0.8, odelta=0.05, seed=0, freeze_after=None, Wf0=None):
    rng = np.random.default_rng(seed)
    F, N = V.shape; kk = Wk.shape[1]; K = kk + kf
    Wf = rng.random((F, kf)) + 0.1; Wf /= Wf.sum(0)
    if Wf0 is not None: Wf = Wf0.copy()
    Hout = np.zeros((K, N)); Yk = np.zeros((F, N)); Yr = np.zeros((F, N))
    h = np.full(K, 1.0)
    pending = []  # (activate_at, Wf)
    Wf_work = Wf.copy()
    c = Vclip.mean(1)
    flops = 0
    for t in range(N):
        while pending and pending[0][0] <= t:
            Wf = pending.pop(0)[1]
        W = np.hstack([Wk, Wf]); ws = W.sum(0)
        v = V[:, t]
        h = h * (v.sum() / max(float(ws @ h), 1e-30))
        for _ in range(frame_iters):
            h = h * (W.T @ (v / (W @ h + EPS))) / (ws + EPS)
        h = np.maximum(h, 1e-12 * (h.max() + 1e-30))
        Hout[:, t] = h
        Yk[:, t] = Wk @ h[:kk]; Yr[:, t] = Wf @ h[kk:]
        if (t + 1) % period == 0 and (freeze_after is None or t < freeze_after):
            a = max(0, t + 1 - window)
            Vw = V[:, a:t + 1]; Hw = Hout[:, a:t + 1].copy(); n = Vw.shape[1]
            q = known_share(Vw, Vclip)
            e = np.clip(q - q0, 0, None) / (1 - q + odelta)
            Wf_n = Wf_work.copy()
            Hw[kk:] = np.maximum(Hw[kk:], 1e-3 * Hw.max())  # let free rows wake up after silence
            for _ in range(refit_iters):
                Wa = np.hstack([Wk, Wf_n])
                lam = np.concatenate([np.zeros(kk), odds * (e @ Wf_n)])
                R = Vw / (Wa @ Hw + EPS)
                Hw *= (Wa.T @ R) / (Wa.sum(0)[:, None] + lam[:, None] + EPS)
                R = Vw / (Wa @ Hw + EPS)
                Hf = Hw[kk:]; hs = Hf.sum(1)[None, :]
                Wf_n = np.maximum(Wf_n * (R @ Hf.T) / (hs + odds * hs * e[:, None] + EPS), EPS)
                s = Wf_n.sum(0); Wf_n /= s; Hw[kk:] *= s[:, None]
            flops += refit_iters * (3 * 2 * F * K * n)
            Wf_work = Wf_n
            pending.append((t + 1 + delay, Wf_n))
    return Yk, Yr, flops

