"""Smoke test of the VST3 in pedalboard (not run by cargo): a dictionary through the state,
mute, and learning through two captures. Usage: python pedalboard_smoke.py PATH/TO/NMF\ Separator.vst3
[CLASS_NAME] (default "NMF Separator"; the bundle also holds "NMF Separator Multi-Out").
Needs numpy and pedalboard."""
import numpy as np, pedalboard, json, os, time, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
VST3 = sys.argv[1]
NAME = sys.argv[2] if len(sys.argv) > 2 else "NMF Separator"
from juce_state import get_state, set_state
sr = 16000
t = np.arange(sr * 3) / sr
low = (0.2 * (np.sin(2*np.pi*220*t) + np.sin(2*np.pi*440*t))).astype(np.float32)
high = (0.2 * (np.sin(2*np.pi*2500*t) + np.sin(2*np.pi*3700*t))).astype(np.float32)
def band_energy(y, f0, f1):
    Y = np.abs(np.fft.rfft(y[sr:]))**2; f = np.fft.rfftfreq(len(y[sr:]), 1/sr)
    return Y[(f >= f0) & (f < f1)].sum()

p = pedalboard.load_plugin(VST3, plugin_name=NAME)
print(sorted(p.parameters.keys()))

# 1. Dictionary through the state: two templates, low and high.
n_fft = 512; bins = n_fft // 2 + 1
f = np.arange(bins) * sr / n_fft
w = np.stack([np.exp(-((f - 330) / 300) ** 2), np.exp(-((f - 3100) / 800) ** 2)], axis=1) + 1e-3
dictionary = {"w": {"rows": bins, "cols": 2, "data": w.astype(np.float32).ravel().tolist()},
              "sample_rate": sr, "n_fft": n_fft, "hop": n_fft // 4, "beta": 1.0,
              "spectrogram": "magnitude", "labels": ["Source 1", "Source 2"]}
st, _ = get_state(p.raw_state)
st["fields"]["dictionary"] = json.dumps(dictionary)
p.raw_state = set_state(p.raw_state, st)
time.sleep(0.1)
mix = np.stack([low + high, low + high])
p.process(mix[:, :4096], sr, reset=False)  # let the audio thread take the dictionary
p.source_2_mute = True
y = p.process(mix, sr)[0]
print("mute source 2: low-band", band_energy(y, 100, 1000), "high-band", band_energy(y, 2000, 5000),
      "input high-band", band_energy(mix[0], 2000, 5000))
st2, _ = get_state(p.raw_state)
print("state keeps dictionary:", json.loads(st2["fields"]["dictionary"])["labels"])

# 2. Learn through a capture in a fresh instance.
q = pedalboard.load_plugin(VST3, plugin_name=NAME)
st, _ = get_state(q.raw_state)
st["fields"]["learn"] = json.dumps({"components_per_source": 4, "mix_components": 4, "beta": 1.0, "n_fft": 512, "iterations": 100})
q.raw_state = set_state(q.raw_state, st)
for target, clip in [("Source 1", low), ("Source 2", high)]:
    q.capture_target = target
    q.capture = True
    q.process(np.stack([clip, clip]), sr, reset=False)
    q.capture = False
    q.process(np.zeros((2, 1024), np.float32), sr, reset=False)
    t0 = time.time()
    while time.time() - t0 < 30:
        time.sleep(0.2)
        q.process(np.zeros((2, 1024), np.float32), sr, reset=False)
        d = json.loads(get_state(q.raw_state)[0]["fields"]["dictionary"])
        if d and target in d["labels"]:
            break
    print("learned", target, "->", d and d["labels"], f"{time.time()-t0:.1f}s")
q.source_2_mute = True
y = q.process(mix, sr)[0]
print("learned, mute source 2: low-band", band_energy(y, 100, 1000), "high-band", band_energy(y, 2000, 5000))
q.source_2_mute = False; q.source_1_mute = True
y = q.process(mix, sr)[0]
print("learned, mute source 1: low-band", band_energy(y, 100, 1000), "high-band", band_energy(y, 2000, 5000))
