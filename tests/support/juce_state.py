"""Read and write nice-plug's JSON state inside pedalboard's VST3 raw_state (JUCE format):
b'VC2!' + u32 LE length + XML <VST3PluginState><IComponent>SIZE.BASE64</IComponent>...;
JUCE's base64 is its own: alphabet '.A-Za-z0-9+', bits little-endian."""
import json, re, struct

ALPHA = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"

def juce_b64_decode(s):
    size, data = s.split(".", 1)
    size = int(size)
    n = 0
    for i, c in enumerate(data):
        n |= ALPHA.index(c) << (6 * i)
    return (n & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

def juce_b64_encode(b):
    n = int.from_bytes(b, "little")
    chars = ((len(b) * 8) + 5) // 6
    return f"{len(b)}." + "".join(ALPHA[(n >> (6 * i)) & 63] for i in range(chars))

def get_state(raw):
    assert raw[:4] == b"VC2!"
    (length,) = struct.unpack("<I", raw[4:8])
    xml = raw[8:8 + length].decode()
    comp = re.search(r"<IComponent>([^<]*)</IComponent>", xml).group(1)
    return json.loads(juce_b64_decode(comp)), xml

def set_state(raw, state):
    _, xml = get_state(raw)
    comp = juce_b64_encode(json.dumps(state).encode())
    xml = re.sub(r"<IComponent>[^<]*</IComponent>", f"<IComponent>{comp}</IComponent>", xml)
    xb = xml.encode()
    return b"VC2!" + struct.pack("<I", len(xb)) + xb
