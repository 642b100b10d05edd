"""Semi-supervised KL-NMF variants (numpy, float64): V ~ Wk Hk + Wf Hf, Wk fixed."""
import numpy as np
EPS = 1e-12

def mu_h(V, W, H, lam=None):
    R = V / (W @ H + EPS)
    den = W.sum(0)[:, None]
    if lam is not None:
        den = den + lam[:, None]
    H *= (W.T @ R) / (den + EPS)
    return H

def semi(V, Wk, kf=16, iters=200, seed=0, warm=0, lam_f=0.0, mu_ov=0.0, init="rand",
         Vc=None, clip_w=1.0, lam_fc=0.0, norm="l1", ov=0.0, quad=0.0, quad_h=True, env=0.0, neg=0.0, Vn=None, contrast=False, rho=0.0, rho_k=0.0, qclip=None, qquant=0.99, odds=0.0, opow=1.0, odelta=0.05, wonly=False, q0=0.0, release=0, qdict=False):
    """Returns Wf, Hk, Hf.
    warm: iterations of H_k alone (Wf absent) before the joint fit.
    init: 'rand' (baseline) or 'resid' (Wf from NMF of the positive residual after warm-up).
    lam_f: L1 weight on Hf (relative to mean(V) scale per frame).
    mu_ov: penalty mu * sum (Wk^T Wf)^2 on overlap (columns L1-normalized).
    Vc: known clip spectrogram: joint fit on [V | Vc] with W = [Wk | Wf], Hf on the clip
        penalized by lam_fc (negative evidence) and Wf updated from both parts weighted clip_w.
    """
    rng = np.random.default_rng(seed)
    F, N = V.shape; kk = Wk.shape[1]
    Hk = rng.random((kk, N)) + 0.1
    for _ in range(warm):
        mu_h(V, Wk, Hk)
    if init == "resid" and warm > 0:
        Rs = np.maximum(V - Wk @ Hk, 0) + 1e-6 * V.max()
        Wf = rng.random((F, kf)) + 0.1; Hf = rng.random((kf, N)) + 0.1
        for _ in range(50):
            Hf = mu_h(Rs, Wf, Hf)
            Wf *= ((Rs / (Wf @ Hf + EPS)) @ Hf.T) / (Hf.sum(1)[None, :] + EPS)
        s = Wf.sum(0); Wf /= s; Hf *= s[:, None]
    else:
        Wf = rng.random((F, kf)) + 0.1; Wf /= Wf.sum(0)
        Hf = rng.random((kf, N)) + 0.1
    if Vc is not None:
        Nc = Vc.shape[1]
        Hkc = rng.random((kk, Nc)) + 0.1
        for _ in range(50):
            mu_h(Vc, Wk, Hkc)
        Hfc = np.full((kf, Nc), 1e-3)
    scale = V.mean()
    Wkn = Wk / np.linalg.norm(Wk, axis=0)
    e = Vc.mean(1) if Vc is not None else Wkn.sum(1)
    if contrast and Vc is not None:
        r = (Vc.mean(1) / Vc.mean()) / (V.mean(1) / V.mean())
        lr = np.log(r)
        e = np.clip(lr - np.median(lr), 0, None)
        e = e / (e.max() + 1e-12) * np.clip(lr.std(), 0, None)
    else:
        e = e / e.max()
    if rho or rho_k:
        q = known_share(V, qclip, qquant)
        m = V.mean(1)
        tf, tk = (1 - q) * m + 1e-9 * m.max(), q * m + 1e-9 * m.max()
    if odds:
        q = known_share(V, (Wkn.sum(1)[:, None] if qdict else qclip), qquant)
        e = (np.clip(q - q0, 0, None) / (1 - q + odelta)) ** opow
        env = odds
    Vc = None
    if neg:
        Nn = Vn.shape[1]
        Hkn = rng.random((kk, Nn)) + 0.1
        for _ in range(50):
            mu_h(Vn, Wk, Hkn)
        Hfn = np.full((kf, Nn), 1e-2 * Hkn.mean())
    for _ in range(iters):
        W = np.hstack([Wk, Wf]); H = np.vstack([Hk, Hf])
        lam = np.concatenate([np.zeros(kk), np.full(kf, lam_f)]) if lam_f else None
        if quad and quad_h:
            lam = np.concatenate([np.zeros(kk), quad * ((Wkn.T @ Wf) ** 2).sum(0)])
        if env and not wonly:
            lam = np.concatenate([np.zeros(kk), env * (e @ Wf)])
        if ov:
            Wf2 = Wf / np.linalg.norm(Wf, axis=0)
            G = Wkn.T @ Wf2  # cosines kk x kf
            cj = (G ** 2).sum(0)
            lam = np.concatenate([np.zeros(kk), ov * cj])
        if rho or rho_k:
            R = V / (W @ H + EPS)
            num = W.T @ R; den = np.repeat(W.sum(0)[:, None], N, 1)
            if lam is not None: den = den + lam[:, None]
            hb = H.mean(1)
            if rho:
                yf = Wf @ hb[kk:]
                num[kk:] += rho * (Wf.T @ (tf / yf))[:, None]; den[kk:] += rho * Wf.sum(0)[:, None]
            if rho_k:
                yk = Wk @ hb[:kk]
                num[:kk] += rho_k * (Wk.T @ (tk / yk))[:, None]; den[:kk] += rho_k * Wk.sum(0)[:, None]
            H *= num / (den + EPS)
        else:
            mu_h(V, W, H, lam)
        Hk, Hf = H[:kk], H[kk:]
        R = V / (W @ H + EPS)
        num = R @ Hf.T; den = np.repeat(Hf.sum(1)[None, :], F, 0)
        if Vc is not None:
            Wc = W; Hc = np.vstack([Hkc, Hfc])
            lamc = np.concatenate([np.zeros(kk), np.full(kf, lam_fc)])
            mu_h(Vc, Wc, Hc, lamc); Hkc, Hfc = Hc[:kk], Hc[kk:]
            Rc = Vc / (Wc @ Hc + EPS)
            num = num + clip_w * (Rc @ Hfc.T); den = den + clip_w * Hfc.sum(1)[None, :]
        if rho:
            hb = Hf.mean(1); yf = Wf @ hb
            num = num + rho * N * np.outer(tf / yf, hb); den = den + rho * N * hb[None, :]
        if neg:
            Wn = np.hstack([Wk, Wf]); Hn = np.vstack([Hkn, Hfn])
            mu_h(Vn, Wn, Hn); Hkn, Hfn = Hn[:kk], Hn[kk:]
            Rn = Vn / (Wn @ Hn + EPS)
            c = neg * V.shape[1] / Nn
            num = num + c * Hfn.sum(1)[None, :]
            den = den + c * (Rn @ Hfn.T)
        if mu_ov:
            den = den + mu_ov * N * scale * (Wk @ (Wk.T @ Wf))
        if quad:
            hs = Hf.sum(1)[None, :]
            den = den + quad * 2 * hs * (Wkn @ (Wkn.T @ Wf))
        if env:
            den = den + env * Hf.sum(1)[None, :] * e[:, None]
            if wonly:
                num = num + env * Hf.sum(1)[None, :] * (e @ Wf)[None, :] * Wf
        if ov:
            nrm = np.linalg.norm(Wf, axis=0)
            hs = Hf.sum(1)[None, :]
            den = den + ov * 2 * hs * (Wkn @ G) / nrm[None, :]
            num = num + ov * 2 * hs * cj[None, :] * Wf / nrm[None, :] ** 2
        Wf = np.maximum(Wf * num / (den + EPS), EPS)
        s = Wf.sum(0); Wf /= s; Hf *= s[:, None]
        if Vc is not None:
            Hfc *= s[:, None]
        if neg:
            Hfn *= s[:, None]
    if release:
        W = np.hstack([Wk, Wf]); H = np.vstack([Hk, Hf])
        for _ in range(release):
            mu_h(V, W, H)
        Hk, Hf = H[:kk], H[kk:]
    return Wf, Hk, Hf


def known_share(V, Vc, quant=0.99):
    """Long-term share q_f in [0,1] of the known source in each bin of the mix, from the clip's
    mean spectrum c and the mix's m: the largest gain g with g c <= m (all bins), smoothed."""
    c = Vc.mean(1); m = V.mean(1)
    lr = np.log(c + 1e-12) - np.log(m + 1e-12)
    F = len(lr); sm = np.empty(F)
    for f in range(F):
        w = max(1, f // 12)
        sm[f] = lr[max(0, f - w): f + w + 1].mean()
    q = np.exp(sm - np.quantile(sm, quant))
    return np.clip(q, 0, 1)
