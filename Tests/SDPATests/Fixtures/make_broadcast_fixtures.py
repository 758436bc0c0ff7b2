#!/usr/bin/env python3
"""Generate PyTorch float64 fixtures for inputs that broadcast: ranks from 2, batch dimensions and heads of size 1.

Run from the repository root (after make_fixtures.py, which deletes every *.npy in this directory):

    ~/.torchenv/bin/python Tests/SDPATests/Fixtures/make_broadcast_fixtures.py

Writes broadcast_manifest.json and bcast_*.npy next to this script and touches nothing else.  Inputs are
random but deterministic (each case seeds its own numpy Generator from a CRC32 of its name).

PyTorch's scaled_dot_product_attention takes query, key and value of any rank from 2 and broadcasts
everything before their last two dimensions as matmul does (aligned from the right, a 1 or a missing
dimension repeated); with enable_gqa it first repeats key's and value's heads (dimension -3,
repeat_interleave) to the query's.  Each case has
  name, query, key, value   float32 input files, of the case's own shapes (they differ in rank and sizes)
  enableGQA, isCausal       the call's flags
  mask                      a bool or float32 attn_mask file, or null
  gradOutput                dL/doutput, float32, in the output's shape
  output                    float64 output of torch SDPA under sdpa_kernel(SDPBackend.MATH), float64 inputs
  gradQuery, gradKey, gradValue, gradMask
                            float64 autograd gradients, each in its input's shape (gradMask for a float mask, else null)

Cross-checks (each within 1e-10): the same call on inputs expanded by hand (repeat_interleave for GQA,
expand, contiguous), whose autograd sums the gradients back over what was expanded; and the output
against a numpy implementation (np.broadcast_to, matmul, a safe softmax).
"""

import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# The generators' conventions: one copy of each.
from make_bias_fixtures import HERE, rng_for, save

PREFIX = "bcast_"
TOL = 1e-10
CASES = []


def expanded_by_hand(q, k, v, gqa):
    """q, k, v with every broadcast and repeat made explicit (autograd sums back through them)."""
    if gqa:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], -3)
        v = v.repeat_interleave(q.shape[-3] // v.shape[-3], -3)
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    return (q.expand(*batch, *q.shape[-2:]).contiguous(), k.expand(*batch, *k.shape[-2:]).contiguous(),
            v.expand(*batch, *v.shape[-2:]).contiguous())


def numpy_forward(q, k, v, mask, is_causal, gqa):
    if gqa:
        k = np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
        v = np.repeat(v, q.shape[-3] // v.shape[-3], axis=-3)
    s = np.matmul(q, np.swapaxes(k, -1, -2)) / np.sqrt(q.shape[-1])
    L, S = q.shape[-2], k.shape[-2]
    if is_causal:
        s = np.where(np.tril(np.ones((L, S), dtype=bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    m = np.max(s, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    p = np.exp(s - m)
    d = p.sum(-1, keepdims=True)
    p = np.where(d > 0, p / np.where(d > 0, d, 1), 0)
    return np.matmul(p, v)


def add_case(name, qs, ks, vs, gqa=False, causal=False, mask=None, std=0.7):
    rng = rng_for(name)
    q = (std * rng.standard_normal(qs)).astype(np.float32)
    k = (std * rng.standard_normal(ks)).astype(np.float32)
    v = rng.standard_normal(vs).astype(np.float32)
    m = None
    if mask is not None:
        kind, shape = mask
        m = rng.random(shape) < 0.75 if kind == "bool" else (0.5 * rng.standard_normal(shape)).astype(np.float32)

    def run(expand):
        tq, tk, tv = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (q, k, v))
        tm = None
        if m is not None:
            tm = torch.tensor(m) if m.dtype == bool else torch.tensor(m, dtype=torch.float64, requires_grad=True)
        a, b, c = expanded_by_hand(tq, tk, tv, gqa) if expand else (tq, tk, tv)
        with sdpa_kernel(SDPBackend.MATH):
            out = F.scaled_dot_product_attention(a, b, c, attn_mask=tm, is_causal=causal, enable_gqa=gqa and not expand)
        return out, (tq, tk, tv, tm)

    out, leaves = run(False)
    d_out = rng.standard_normal(tuple(out.shape)).astype(np.float32)
    out.backward(torch.tensor(d_out, dtype=torch.float64))
    grads = [t.grad.numpy() if t is not None and t.grad is not None else None for t in leaves]

    out2, leaves2 = run(True)
    out2.backward(torch.tensor(d_out, dtype=torch.float64))
    assert np.abs(out.detach().numpy() - out2.detach().numpy()).max() < TOL, name
    for g, t in zip(grads, leaves2):
        if g is not None:
            assert np.abs(g - t.grad.numpy()).max() < TOL, name
    ref = numpy_forward(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), m, causal, gqa)
    assert ref.shape == tuple(out.shape) and np.abs(ref - out.detach().numpy()).max() < TOL, name

    file = PREFIX + name
    CASES.append({
        "name": name, "query": save(file, "q", q), "key": save(file, "k", k), "value": save(file, "v", v),
        "enableGQA": gqa, "isCausal": causal, "mask": save(file, "mask", m) if m is not None else None,
        "gradOutput": save(file, "dout", d_out), "output": save(file, "out", out.detach().numpy()),
        "gradQuery": save(file, "dq", grads[0]), "gradKey": save(file, "dk", grads[1]), "gradValue": save(file, "dv", grads[2]),
        "gradMask": save(file, "dmask", grads[3]) if grads[3] is not None else None,
    })


def build_cases():
    add_case("rank2", [5, 8], [7, 8], [7, 6])
    add_case("rank2_floatMask", [9, 8], [13, 8], [13, 6], mask=("float", [9, 13]))
    add_case("rank2_causal", [9, 8], [13, 8], [13, 6], causal=True)
    add_case("keyValueBatchOf1_L70_S130", [3, 2, 70, 16], [1, 2, 130, 16], [1, 2, 130, 12])
    add_case("queryBatchOf1_causal", [1, 4, 6, 8], [3, 4, 10, 8], [3, 4, 10, 6], causal=True)
    add_case("oneQueryHead_fourKeyValueHeads", [2, 1, 6, 8], [2, 4, 10, 8], [2, 4, 10, 6])
    add_case("oneKeyHead_fourValueHeads_floatMask", [2, 4, 6, 8], [2, 1, 10, 8], [2, 4, 10, 6], mask=("float", [6, 10]))
    add_case("rank3Query_rank4KeyValue_boolMask", [4, 6, 8], [2, 4, 10, 8], [2, 4, 10, 6], mask=("bool", [2, 1, 6, 10]))
    add_case("rank4Query_rank2KeyValue", [2, 4, 6, 8], [10, 8], [10, 6], causal=True)
    add_case("rank2Query_rank4KeyValue_floatMask", [6, 8], [2, 3, 10, 8], [2, 3, 10, 6], mask=("float", [6, 10]))
    add_case("gqa_keyHeads4_valueHeads6_causal", [2, 12, 6, 8], [2, 4, 10, 8], [2, 6, 10, 6], gqa=True, causal=True)
    add_case("gqa_queryBatchOf1", [1, 8, 6, 8], [2, 2, 10, 8], [2, 2, 10, 6], gqa=True)
    add_case("gqa_oneKeyHead_twoValueHeads", [2, 8, 5, 8], [2, 1, 9, 8], [2, 2, 9, 6], gqa=True, mask=("bool", [1, 8, 5, 9]))
    add_case("rank5_mixedBatch_floatMask", [3, 2, 4, 6, 8], [1, 2, 4, 10, 8], [3, 1, 4, 10, 6], mask=("float", [3, 1, 1, 6, 10]))


def main():
    manifest = HERE / "broadcast_manifest.json"
    for p in list(HERE.glob(f"{PREFIX}*.npy")) + [manifest]:
        p.unlink(missing_ok=True)
    torch.set_num_threads(1)
    build_cases()
    manifest.write_text(json.dumps({"generator": torch.__version__, "cases": CASES}, indent=1) + "\n")
    print(f"torch {torch.__version__}, numpy {np.__version__}: {len(CASES)} cases; cross-checks within {TOL:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
