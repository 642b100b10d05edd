"""Offline semi-supervised fit of `nmfsep separate --rest` in numpy (float64), for trying
penalty schedules before changing `src/nmf/semi.rs`. Dictionaries: `nmfsep learn` .npz files
(W, H_mean) when given, else lab.py's scikit-learn ones.

    import offline as O
    c, Wk, spec = O.load("A_speech_noise", "noise", "known.npz")   # npz optional
    O.run(c, Wk, spec, mu=5, init="resid")   # -> (median SDR, per-source SDR)

Variants (keyword arguments of `fit`): penalty weight `mu` and share floor `q0`, a schedule
of the weight over iterations, the weights' `delta` / `cap` / `power`, a band mask `emod`,
the penalty on H or W only, a per-template allowance `tau` (hinge), the residual start.
"""
import sys, itertools
import numpy as np
import lab

EPS = 1e-12


def share(mix, known):
    """`known_share` of src/nmf/semi.rs: smoothed log ratio, 0.99 quantile gain, clip 1."""
    lr = np.log(known + 1e-12) - np.log(mix + 1e-12)
    n = len(lr); c = np.concatenate([[0.0], np.cumsum(lr)])
    f = np.arange(n); w = np.maximum(1, f // 12)
    a = np.maximum(f - w, 0); b = np.minimum(f + w + 1, n)
    sm = (c[b] - c[a]) / (b - a)
    return np.minimum(np.exp(sm - np.quantile(sm, 0.99)), 1.0)


def weights(q, q0, delta=0.05, cap=None, power=1.0):
    e = (np.maximum(q - q0, 0) / (1 - q + delta)) ** power
    return e if cap is None else np.minimum(e, cap)


def fit(V, Wk, known, kf=16, iters=200, mu=5.0, q0=0.75, release=30, seed=0,
        schedule=None, delta=0.05, cap=None, power=1.0, emod=None, on_h=True, on_w=True, tau=0.0, tau_rel=None, init="rand"):
    """schedule(it) -> multiplier of mu at iteration it (default 1)."""
    rng = np.random.default_rng(seed)
    F, N = V.shape; kk = Wk.shape[1]; K = kk + kf
    Wf = rng.random((F, kf)) + 0.1; Wf /= Wf.sum(0)
    H = (rng.random((K, N)) + 0.1) * np.sqrt(V.mean() / K)
    if init == "resid":
        Hk = H[:kk].copy()
        for _ in range(50):
            Hk *= (Wk.T @ (V / (Wk @ Hk + EPS))) / (Wk.sum(0)[:, None] + EPS)
        Rs = np.maximum(V - Wk @ Hk, 0) + 1e-6 * V.max()
        Hf = H[kk:]
        for _ in range(50):
            Hf *= (Wf.T @ (Rs / (Wf @ Hf + EPS))) / (Wf.sum(0)[:, None] + EPS)
            Wf *= ((Rs / (Wf @ Hf + EPS)) @ Hf.T) / (Hf.sum(1)[None, :] + EPS)
            sc = Wf.sum(0); Wf /= sc; Hf *= sc[:, None]
        H = np.vstack([Hk, Hf])
    e = weights(share(V.mean(1), known), q0, delta, cap, power)
    if emod is not None:
        e = emod(e, V, Wk, known)
    if tau_rel is not None:
        tau = tau_rel * (e @ known) / known.sum()
    for it in range(iters):
        m = mu * (schedule(it) if schedule else 1.0)
        W = np.hstack([Wk, Wf])
        act = (e @ Wf) > tau  # hinge: a template pays only for e-mass above tau
        lam = np.concatenate([np.zeros(kk), m * np.maximum(e @ Wf - tau, 0) * on_h])
        H *= (W.T @ (V / (W @ H + EPS))) / (W.sum(0)[:, None] + lam[:, None] + EPS)
        R = V / (W @ H + EPS)
        Hf = H[kk:]; hs = Hf.sum(1)[None, :]
        a = act[None, :] * hs
        Wf = np.maximum(Wf * (R @ Hf.T + on_w * m * tau * a) / (hs + on_w * m * e[:, None] * a + EPS), 1e-12)
        s = Wf.sum(0); Wf /= s; H[kk:] *= s[:, None]
    W = np.hstack([Wk, Wf])
    for _ in range(release):
        H *= (W.T @ (V / (W @ H + EPS))) / (W.sum(0)[:, None] + EPS)
    return Wf, H[:kk], H[kk:], e


def run(c, Wk, known, **kw):
    Wf, Hk, Hf, e = fit(c["V"], Wk, known, **kw)
    per, med = lab.score(c, {c["known"][0]: Wk @ Hk, "rest": Wf @ Hf})
    return med, per


def load(case, known, npz=None):
    c = lab.case(case, known)
    if npz:
        d = np.load(npz)
        Wk = d["W"].astype(np.float64); spec = Wk @ d["H_mean"].astype(np.float64)
    else:
        Wk = c["Wks"][0]; spec = c["Vcs"][0].mean(1)
    return c, Wk, spec
