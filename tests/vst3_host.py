#!/usr/bin/env python3
"""The bundled VST3 plugin in a real JUCE-based host (pedalboard).

Usage: vst3_host.py BUNDLE.vst3 CASE_DIR STATE.json MIN_SI_SDR_DB CLASS_NAME

CLASS_NAME is one of the bundle's two VST3 classes, "NMF Separator" (main bus only) or "NMF
Separator Multi-Out" (main + four source buses, left as the host sets them up by default; only
the main output is read).

STATE.json is a nice-plug state (`{"params": {...}, "fields": {"dictionary": ..., "assignment":
...}}`) holding a dictionary learned on CASE_DIR/train (piano -> Source 1, bass -> Source 2);
tests/vst3_host.rs writes it. The script loads the plugin with pedalboard.load_plugin, checks it
passes the mix through without a dictionary, sets the state through `raw_state` (JUCE's VST3
state: an XML document whose <IComponent> holds the plugin's state in JUCE's base64 variant),
then solos each source with the host's parameters and checks the main output (the host's
default stereo bus setup) is that source: SI-SDR against the
stem. Prints one JSON object; exits 1 when a check fails.
"""

import json
import re
import struct
import sys
import time

import numpy as np
import pedalboard
import soundfile as sf

SR = 44100
MIN_SI_SDR_DB = float(sys.argv[4]) if len(sys.argv) > 4 else 4.0
CLASS_NAME = sys.argv[5] if len(sys.argv) > 5 else "NMF Separator"

# JUCE's MemoryBlock::toBase64Encoding: "<size>.<chars>", 6 bits per char, little-endian bit order.
JUCE_B64 = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"


def juce_b64_decode(s: str) -> bytes:
    size, _, body = s.partition(".")
    size = int(size)
    n = 0
    for i, c in enumerate(body):
        n |= JUCE_B64.index(c) << (6 * i)
    return (n & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def juce_b64_encode(data: bytes) -> str:
    n = int.from_bytes(data, "little")
    chars = (len(data) * 8 + 5) // 6
    return f"{len(data)}." + "".join(JUCE_B64[(n >> (6 * i)) & 63] for i in range(chars))


def juce_state(component: bytes) -> bytes:
    """JUCE's VST3 plugin state (copyXmlToBinary of a VST3PluginState element)."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?> <VST3PluginState><IComponent>'
        + juce_b64_encode(component)
        + "</IComponent><IEditController>0.</IEditController></VST3PluginState>"
    ).encode()
    return b"VC2!" + struct.pack("<I", len(xml)) + xml + b"\0"


def component_state(raw: bytes) -> bytes:
    assert raw[:4] == b"VC2!", raw[:16]
    (length,) = struct.unpack("<I", raw[4:8])
    xml = raw[8 : 8 + length].decode()
    return juce_b64_decode(re.search(r"<IComponent>(.*?)</IComponent>", xml).group(1))


def si_sdr(est, ref):
    est = np.asarray(est, np.float64)
    ref = np.asarray(ref, np.float64)
    a = est @ ref / max(ref @ ref, 1e-30)
    t = a * ref
    return 10 * np.log10(max(t @ t, 1e-30) / max((est - t) @ (est - t), 1e-30))


def read(path):
    x, sr = sf.read(path, dtype="float32")
    assert sr == SR, (path, sr)
    return x


def main():
    bundle, case, state_path = sys.argv[1:4]
    mix = read(f"{case}/mix.wav")
    stems = {"piano": read(f"{case}/stems/piano.wav"), "bass": read(f"{case}/stems/bass.wav")}
    stereo = np.stack([mix, mix]).astype(np.float32)
    results = {"pedalboard": pedalboard.__version__}
    failures = []

    def check(cond, msg):
        if not cond:
            failures.append(msg)

    t0 = time.time()
    plugin = pedalboard.load_plugin(bundle, plugin_name=CLASS_NAME)
    results["name"] = plugin.name
    check(plugin.name == CLASS_NAME, f"loaded {plugin.name!r}, not {CLASS_NAME!r}")
    results["parameters"] = list(plugin.parameters.keys())
    results["latency_without_dictionary"] = plugin.reported_latency_samples
    check(plugin.is_effect, "not an effect")

    # Without a dictionary: the input, delayed by the latency (or compensated by the host).
    out = plugin.process(stereo, SR, buffer_size=512, reset=True)
    check(out.shape == stereo.shape, f"output shape {out.shape}")
    lags = {}
    for lag in range(0, 4097):
        d = np.max(np.abs(out[0, lag:] - stereo[0, : stereo.shape[1] - lag]))
        if d < 1e-4:
            lags[lag] = float(d)
            break
    check(len(lags) == 1, "the output without a dictionary is not the (delayed) input")
    lag = next(iter(lags), 0)
    results["host_lag_samples"] = lag

    def aligned(y):
        # Output sample t + lag holds input sample t.
        return y[:, lag:], stereo.shape[1] - lag

    # Load the state (dictionary + assignment) through the host.
    state = json.load(open(state_path))
    plugin.raw_state = juce_state(json.dumps(state).encode())
    # The trainer thread prepares the dictionary (it polls every 20 ms); the audio thread
    # installs it at the start of a block.
    silence = np.zeros((2, 4096), np.float32)
    for _ in range(10):
        time.sleep(0.05)
        plugin.process(silence, SR, buffer_size=512, reset=False)
    saved = json.loads(component_state(plugin.raw_state))
    dict_saved = json.loads(saved["fields"]["dictionary"])
    check(dict_saved is not None, "the saved state holds no dictionary")
    results["dictionary_components"] = len(dict_saved["labels"]) if dict_saved else 0
    results["latency_with_dictionary"] = plugin.reported_latency_samples
    check(
        plugin.reported_latency_samples == state_n_fft(state),
        f"latency {plugin.reported_latency_samples} != n_fft {state_n_fft(state)}",
    )

    # Nothing soloed: main = input (all sources).
    out = plugin.process(stereo, SR, buffer_size=512, reset=True)
    y, n = aligned(out)
    results["no_solo_max_diff"] = float(np.max(np.abs(y[0] - stereo[0, :n])))
    check(results["no_solo_max_diff"] < 1e-3, "main is not the input with no solo")

    for source, stem in ((1, "piano"), (2, "bass")):
        for s in (1, 2):
            setattr(plugin, f"source_{s}_solo", s == source)
        out = plugin.process(stereo, SR, buffer_size=512, reset=True)
        y, n = aligned(out)
        ref = stems[stem][:n]
        sdr = [si_sdr(y[c], ref) for c in range(2)]
        vs_mix = si_sdr(y[0], stereo[0, :n])
        mix_sdr = si_sdr(stereo[0, :n], ref)
        results[f"solo_{source}"] = {
            "stem": stem,
            "si_sdr_db": [round(v, 2) for v in sdr],
            "mixture_si_sdr_db": round(mix_sdr, 2),
            "si_sdr_vs_input_db": round(vs_mix, 2),
            "rms_ratio_to_input": float(np.sqrt(np.mean(y[0] ** 2) / np.mean(stereo[0, :n] ** 2))),
        }
        check(min(sdr) > MIN_SI_SDR_DB, f"solo {source}: SI-SDR {sdr} vs {stem}")
        check(min(sdr) > mix_sdr + 3.0, f"solo {source}: not better than the mixture")
        check(vs_mix < 15.0, f"solo {source}: output too close to the input ({vs_mix:.1f} dB)")
    results["seconds"] = round(time.time() - t0, 2)
    results["failures"] = failures
    print(json.dumps(results, indent=1))
    sys.exit(1 if failures else 0)


def state_n_fft(state):
    return json.loads(state["fields"]["dictionary"])["n_fft"]


if __name__ == "__main__":
    main()
