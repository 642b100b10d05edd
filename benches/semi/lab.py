"""Research harness for semi-supervised NMF: cached spectrograms, dictionaries, scoring."""
import os, sys, glob, pickle
import numpy as np
BENCH = "/work/shared/bench"
sys.path.insert(0, BENCH)
import baseline_nmf as B  # noqa
import evaluate as E  # noqa
EPS = 1e-12
CACHE = "/tmp/semi_cache"
os.makedirs(CACHE, exist_ok=True)
stft = B.Stft()

def case(name, known, k=16):
    """Returns dict: X (C,F,N) complex mix STFTs, V (F,N) floored mono mag, Wk, Vc (clip), names, refs."""
    p = os.path.join(CACHE, f"{name}_{known}_{k}.pkl")
    if os.path.exists(p):
        return pickle.load(open(p, "rb"))
    d = os.path.join(BENCH, "cases", name)
    x, sr = B.read(os.path.join(d, "mix.wav"))
    known = known if isinstance(known, (list, tuple)) else [known]
    Wks, Vcs = [], []
    for s in known:
        clip, _ = B.read(os.path.join(d, "train", s + ".wav"))
        Vc = np.abs(stft(clip.mean(0)))
        Wks.append(B.learn_dictionary(Vc, k, 1.0, 200)); Vcs.append(B.floor(Vc))
    X = np.stack([stft(x[c]) for c in range(x.shape[0])])
    V = B.floor(np.abs(stft(x.mean(0))))
    names, refs, _ = E.load_case(d)
    r = dict(x=x, sr=sr, X=X, V=V, Wks=Wks, Vcs=Vcs, known=known, names=names, refs=refs, dir=d)
    pickle.dump(r, open(p, "wb"))
    return r

def score(c, models, p=2.0):
    """models: dict name -> (F,N) magnitude model for known sources + 'rest'. Rest output = mix - known sum."""
    names = c["names"]; x = c["x"]; L = x.shape[1]
    P = {k: m ** p for k, m in models.items()}
    tot = sum(P.values()) + EPS
    est = np.zeros(c["refs"].shape)
    rest = [n for n in names if n not in c["known"]]
    for i, n in enumerate(names):
        if n in c["known"]:
            M = P[n] / tot
            est[i] = np.stack([stft.inv(M * c["X"][ch], L) for ch in range(x.shape[0])])
    if len(rest) == 1:
        j = names.index(rest[0]); est[j] = x - est.sum(0)
    m = E.bss_eval(c["refs"], est)
    return {n: round(float(m["SDR"][i]), 2) for i, n in enumerate(names)}, round(float(np.median(m["SDR"])), 2)
