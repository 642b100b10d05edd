"""Causal simulation of the live semi-supervised learner with a growing history.

Audio thread: per frame t, h warm-started from frame t-1 (rescaled to the frame's L1 energy),
`frame_iters` KL MU updates with W = [Wk | Wf_active], h floored.
Worker: keeps every frame seen so far (up to `cap` frames, oldest dropped) with its own H;
every `period` frames it runs `iters` iterations of the same penalised semi fit as offline
(overlap penalty mu * e^T w_j on the free rows, e from the known share of the history's mean)
on the whole history, warm-started from its current W_free and H; the new W_free becomes
active on the audio thread `delay` frames later. New frames enter the worker's H from the
audio thread's h (free rows floored so they can wake up).
"""
import numpy as np
from methods import EPS, known_share


def live_history(V, Wk, Vclip, kf=16, period=32, delay=32, iters=20, cap=5168, frame_iters=10,
                 mu=5.0, q0=0.75, odelta=0.05, seed=0, first_iters=None, known_mean=None,
                 h_floor=1e-3, audio_init="audio", exemplars=0, ex_step=1, ex_sub=1.0, ex_pen=0.0):
    rng = np.random.default_rng(seed)
    F, N = V.shape; kk = Wk.shape[1]; K = kk + kf
    Wf = rng.random((F, kf)) + 0.1; Wf /= Wf.sum(0)
    Wf_work = Wf.copy()
    c = Vclip.mean(1) if known_mean is None else known_mean
    Yk = np.zeros((F, N)); Yr = np.zeros((F, N))
    h = np.ones(K)
    Hh = np.zeros((K, 0)); a0 = 0  # worker history H and index of its first frame
    pending = []
    flops = 0; nref = 0
    e_cur = np.zeros(F)
    ring = []  # recent residual spectra (exemplar templates of the rest), newest last
    for t in range(N):
        while pending and pending[0][0] <= t:
            Wf = pending.pop(0)[1]
        ex = [ring[-1 - i * ex_step] for i in range(exemplars) if 1 + i * ex_step <= len(ring)]
        W = np.hstack([Wk, Wf] + [r[:, None] for r in ex]); ws = W.sum(0)
        if len(h) != W.shape[1]:
            h = np.concatenate([h, np.full(W.shape[1] - len(h), h.mean())])
        v = V[:, t]
        h = h * (v.sum() / max(float(ws @ h), 1e-30))
        for _ in range(frame_iters):
            h = h * (W.T @ (v / (W @ h + EPS))) / (ws + EPS)
        h = np.maximum(h, 1e-12 * (h.max() + 1e-30))
        Yk[:, t] = Wk @ h[:kk]; Yr[:, t] = W[:, kk:] @ h[kk:]
        if exemplars:
            r = np.maximum(v - ex_sub * Yk[:, t], 0) / (1 + ex_pen * e_cur) + 1e-9 * v.max()
            ring.append(r / r.sum()); ring = ring[-(exemplars * ex_step + 1):]
        # hand the frame to the worker
        hn = h[:K].copy()
        if audio_init == "flat":
            hn[:] = v.sum() / ws.sum()
        Hh = np.hstack([Hh, hn[:, None]])
        if Hh.shape[1] > cap:
            Hh = Hh[:, 1:]; a0 += 1
        if (t + 1) % period == 0:
            Vh = V[:, a0:t + 1]; n = Vh.shape[1]
            q = known_share(Vh, c[:, None])
            e = np.clip(q - q0, 0, None) / (1 - q + odelta)
            e_cur = e
            Wn = Wf_work.copy(); Hw = Hh.copy()
            # newly arrived frames: let free rows wake up
            Hw[kk:, -period:] = np.maximum(Hw[kk:, -period:], h_floor * Hw[:, -period:].max(0))
            it = iters if (first_iters is None or nref > 0) else first_iters
            for _ in range(it):
                Wa = np.hstack([Wk, Wn])
                lam = np.concatenate([np.zeros(kk), mu * (e @ Wn)])
                R = Vh / (Wa @ Hw + EPS)
                Hw *= (Wa.T @ R) / (Wa.sum(0)[:, None] + lam[:, None] + EPS)
                R = Vh / (Wa @ Hw + EPS)
                Hf = Hw[kk:]; hs = Hf.sum(1)[None, :]
                Wn = np.maximum(Wn * (R @ Hf.T) / (hs + mu * hs * e[:, None] + EPS), EPS)
                s = Wn.sum(0); Wn /= s; Hw[kk:] *= s[:, None]
            flops += it * 6 * F * K * n
            nref += 1
            Hh = Hw; Wf_work = Wn
            pending.append((t + 1 + delay, Wn.copy()))
    live_history.last = Wf_work
    return Yk, Yr, flops
