"""Writes the seed corpora of the fuzzing targets (run from Tests/Fuzz with numpy installed).

Corpus/npy: small .npy files as numpy writes them (each dtype the reader takes, Fortran order,
0-d, empty, versions 1-3) and one with the 16-byte padding of numpy before 1.14.
Corpus/run-arguments: `sdpa run` command lines, one argument per line.
"""
import io
import os
import numpy as np
from numpy.lib import format as npy_format

os.makedirs("Corpus/npy", exist_ok=True)
os.makedirs("Corpus/run-arguments", exist_ok=True)


def save(name, array, version=None):
    buffer = io.BytesIO()
    npy_format.write_array(buffer, array, version=version)
    with open(f"Corpus/npy/{name}.npy", "wb") as f:
        f.write(buffer.getvalue())


rng = np.random.default_rng(0)
save("f4_3", rng.standard_normal(3).astype("<f4"))
save("f2_2x3", rng.standard_normal((2, 3)).astype("<f2"))
save("f8_scalar", np.array(2.5, dtype="<f8"))
save("b1_4", np.array([True, False, True, True]))
save("f4_fortran_2x3", np.asfortranarray(rng.standard_normal((2, 3)).astype("<f4")))
save("f4_empty_0x5", np.zeros((0, 5), dtype="<f4"))
save("f4_1x2x1x3", rng.standard_normal((1, 2, 1, 3)).astype("<f4"))
save("f4_v2", rng.standard_normal(2).astype("<f4"), version=(2, 0))
save("f4_v3", rng.standard_normal(2).astype("<f4"), version=(3, 0))
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
header += " " * ((16 - (10 + len(header) + 1) % 16) % 16) + "\n"
with open("Corpus/npy/f4_aligned16.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + np.array([1, 2], "<f4").tobytes())

command_lines = {
    "plain": ["--query", "q.npy", "--key", "k.npy", "--value", "v.npy", "--out", "o.npy"],
    "composition": ["--query", "q", "--key", "k", "--value", "v", "--out", "o", "--bias", "alibi+window:3,2+causal-lower-right",
                    "--alibi-slopes", "0.5,0.25,0.125,0.0625"],
    "block-diagonal": ["--query", "q", "--key", "k", "--value", "v", "--out", "o", "--bias", "block-diagonal-causal:3,5", "--lse-out", "l"],
    "padding-gqa": ["--query", "q", "--key", "k", "--value", "v", "--out", "o", "--bias", "padding:8,2", "--enable-gqa", "--threads", "2"],
    "softcap-math": ["--query", "q", "--key", "k", "--value", "v", "--out", "o", "--bias", "softcap:30+window-upper-left:2",
                     "--backend", "math", "--scale", "0.5"],
    "dropout": ["--query", "q", "--key", "k", "--value", "v", "--out", "o", "--is-causal", "--dropout", "0.25", "--seed", "7"],
    "mask": ["--query", "q", "--key", "k", "--value", "v", "--out", "o", "--mask", "m.npy"],
}
for name, arguments in command_lines.items():
    with open(f"Corpus/run-arguments/{name}", "w") as f:
        f.write("\n".join(arguments))
