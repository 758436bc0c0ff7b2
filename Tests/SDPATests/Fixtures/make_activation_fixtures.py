#!/usr/bin/env python3
"""Generate reference fixtures on transformer-like ("realistic") activations.

Run from the repository root (after make_fixtures.py, which deletes every
*.npy in this directory, including the act_* files written here):

    ~/.torchenv/bin/python Tests/SDPATests/Fixtures/make_activation_fixtures.py

Writes activation_manifest.json and act_*.npy next to this script and touches
nothing else.  Inputs are random but deterministic (each case seeds its own
numpy Generator from a CRC32 of the case name).

Why: on activations whose scores span hundreds (GPT-2-style "massive
activation" channels), no float32 attention reaches an absolute 1e-5 against
float64: a float32 score near 400 already carries ~2e-5 of rounding error, and
exp() turns that into a relative error of the weights.  PyTorch's own float32
kernel misses 1e-5 by up to ~1e-3 on such inputs.  So each case records
`torchFloat32MaxAbsError` = max |torch float32 output - float64 reference|,
with torch run in float32 on the same inputs and the same mask through its
default CPU backend (the flash kernel; `torchFloat32Backend` says which backend
that was: GQA cases are given to it with K/V repeated and [H, L, S] masks as
[1, H, L, S], since its flash kernel takes neither enable_gqa nor 3-D masks;
Ev != E still runs on torch's math backend), and the Swift test allows twice
that (or 1e-5 + 1e-5 |ref| where that is larger).

Generators (as in the accuracy check that motivated them):
  gpt2     log-normal per-channel scales on q and k, three outlier key channels
           (1-5x) with ~5 % of query tokens 2-10x on them, a shared key offset,
           log-normal value channel scales and two 20x value channels.
           |scores| up to ~10.
  massive  massive-activation channels: three consistently signed key
           channels 2-10x, the same channels 20-100x (same sign) on the first
           query token and ~5 % of the others, a larger shared key offset.
           |scores| span hundreds.
  uniform  q scaled by 1e-3: tiny scores, near-uniform attention.
  voutlier two value channels 80x and ~0.2 % of value entries another 500x.

Reference semantics: as make_fixtures.py / make_bias_fixtures.py.  The output
is computed in float64 from the exact float32 (float16) input values with
torch.nn.functional.scaled_dot_product_attention under
sdpa_kernel(SDPBackend.MATH), every bias materialised as an explicit mask
(causal masks via torch's causal_upper_left/lower_right, ALiBi as a float64
[H, L, S] additive mask -slope[h]*|i + off - j|, off = 0 for upperLeft and
S - L otherwise, -inf outside the causal region).  The soft-cap case has no
torch SDPA counterpart: float64 numpy math, s = cap * tanh(s / cap), then the
mask.  Every case is cross-checked against an independent numpy float64
implementation (to 1e-12 relative to the output's magnitude).  Rows in which
every score is masked are exactly 0, and their log-sum-exp is -inf.

Each manifest case has the fields of manifest.json (`name`, `layout`,
`query`, `key`, `value`, `output`, `bias`, `isCausal`, `scale`, `enableGQA`,
`dtype`), except that the soft-cap case has `biases` (a list of parts, as in
bias_manifest.json) instead of `bias`, plus
  logSumExp                float64 [B, H, L] log-sum-exp of the scaled, biased scores
  generator                one of the generators above
  maxAbsScore              max |q.k * scale| before the bias
  fullyMaskedRows          number of (b, h, i) rows that see no key
  torchFloat32MaxAbsError  see above (float32 cases; null otherwise)
  torchFloat32LogSumExpMaxAbsError  the same for torch's float32 log-sum-exp, where torch returns one
  torchFloat32Backend      "flash" / "math" / "eager": what the default dispatch ran
  torchFloat16MaxAbsError  for the float16 case, informational (the test uses fixed float16 tolerances)
"""

import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# The RFC fixtures' helpers, one copy: ALiBi slopes and bias, causal masks, per-case seeds, .npy
# writing, notes (importing make_fixtures also seeds torch and silences the lower-right warning).
from make_fixtures import HERE, NEG_INF, NOTES, alibi_bias, causal_mask, get_slopes, note, rng_for, save

PREFIX = "act_"

torch.manual_seed(0)
torch.set_num_threads(1)


# --------------------------------------------------------------------------
# Activation generators ([B, H, L, E] float64, before the cast to the case's dtype)
# --------------------------------------------------------------------------
def gen_qkv(kind, B, H, Hkv, L, S, E, Ev, rng):
    n = rng.standard_normal
    q, k, v = n((B, H, L, E)), n((B, Hkv, S, E)), n((B, Hkv, S, Ev))
    if kind == "gpt2":
        q *= np.exp(rng.normal(0, 0.6, E)) * 0.35
        k *= np.exp(rng.normal(0, 0.6, E)) * 0.35
        for c in rng.choice(E, 3, replace=False):
            k[..., c] *= rng.uniform(20, 100) * 0.05
            tok = rng.random(L) < 0.05
            q[:, :, tok, c] *= rng.uniform(20, 100) * 0.1
        k += rng.normal(0, 0.8, E)  # shared key offset
        v *= np.exp(rng.normal(0, 0.5, Ev))
        v[..., rng.choice(Ev, 2, replace=False)] *= 20
    elif kind == "massive":
        cs_k = np.exp(rng.normal(0, 0.6, E))
        q *= np.exp(rng.normal(0, 0.6, E)) * 0.6
        k *= cs_k * 0.6
        for c in rng.choice(E, 3, replace=False):
            sign = rng.choice([-1.0, 1.0])
            # a consistently signed key channel, 2-10x ...
            k[..., c] = (k[..., c] + sign * 0.6 * cs_k[c]) * rng.uniform(20, 100) * 0.1
            # ... and massive query activations 20-100x on it, on the first token and ~5 % of the others
            tok = rng.random(L) < 0.05
            tok[0] = True
            q[:, :, tok, c] = sign * (np.abs(q[:, :, tok, c]) + 1.0) * rng.uniform(20, 100)
        k += rng.normal(0, 1.5, E)  # shared key offset
        v *= np.exp(rng.normal(0, 0.5, Ev))
        v[..., rng.choice(Ev, 2, replace=False)] *= 20
    elif kind == "uniform":
        q *= 1e-3
    elif kind == "voutlier":
        v[..., rng.choice(Ev, 2, replace=False)] *= 80
        v[rng.random(v.shape) < 0.002] *= 500
    else:
        raise ValueError(kind)
    return q, k, v


# --------------------------------------------------------------------------
# Masks ([L, S]; the case's rng)
# --------------------------------------------------------------------------
def key_padding_mask(L, S, valid, padded_queries, rng):
    """bool [L, S]: keys j >= valid are padding; the last `padded_queries` query rows
    and two random ones see no key at all (fully masked)."""
    m = np.broadcast_to(np.arange(S) < valid, (L, S)).copy()
    m[L - padded_queries:] = False
    m[rng.choice(L - padded_queries, 2, replace=False)] = False
    return m


def relpos_mask(L, S, rng):
    """float32 [L, S]: a T5-style bucketed relative-position bias, N(0, 2) per bucket."""
    rel = np.arange(S)[None, :] - np.arange(L)[:, None]
    buckets = np.sign(rel) * np.minimum(np.floor(np.log2(np.abs(rel) + 1) * 3), 31)
    table = rng.normal(0, 2.0, 64)
    return table[(buckets + 32).astype(int)].astype(np.float32)


# --------------------------------------------------------------------------
# Independent numpy float64 implementation
# --------------------------------------------------------------------------
def numpy_reference(q, k, v, additive, scale, cap=None):
    """q [B,Hq,L,E], k/v [B,Hkv,S,E] float64; additive float64 (-inf = masked) broadcastable
    to [B,Hq,L,S] or None.  Returns (out, lse, fully_masked, max |raw score|)."""
    hq, hkv = q.shape[1], k.shape[1]
    if hq != hkv:
        idx = np.arange(hq) // (hq // hkv)
        k, v = k[:, idx], v[:, idx]
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    smax = float(np.abs(s).max())
    if cap is not None:
        s = cap * np.tanh(s / cap)
    if additive is not None:
        s = s + additive
    full = np.all(np.isneginf(s), axis=-1, keepdims=True)
    m = np.max(np.where(full, 0.0, s), axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(full, 0.0, np.exp(s - m))
        den = np.sum(p, axis=-1, keepdims=True)
        lse = np.where(full, NEG_INF, m + np.log(np.where(full, 1.0, den)))[..., 0]
    p = p / np.where(full, 1.0, den)
    return np.matmul(p, v), lse, full[..., 0], smax


# --------------------------------------------------------------------------
# torch at the input dtype (the yardstick)
# --------------------------------------------------------------------------
def torch_low_precision(q, k, v, mask, is_causal, scale, gqa, cap):
    """q/k/v torch tensors in the case's dtype; mask bool or float64 [.., L, S] or None.
    Returns (output as float64 numpy, lse float64 numpy or None, backend name)."""
    dt = q.dtype
    m = None if mask is None else (mask if mask.dtype == torch.bool else mask.to(dt))
    if cap is not None:
        # torch SDPA has no soft-capping: plain float32 ops, the same order as the reference.
        kk, vv = (k, v) if not gqa else (k.repeat_interleave(q.shape[1] // k.shape[1], 1),
                                          v.repeat_interleave(q.shape[1] // k.shape[1], 1))
        s = (q @ kk.transpose(-1, -2)) * scale
        s = cap * torch.tanh(s / cap)
        if m is not None:
            s = s.masked_fill(~m, NEG_INF) if m.dtype == torch.bool else s + m
        lse = torch.logsumexp(s, -1)
        p = torch.softmax(s, -1).nan_to_num(0.0)
        return (p @ vv).double().numpy(), lse.double().numpy(), "eager"
    if gqa:
        # torch's CPU flash kernel has no enable_gqa (the default would fall back to math): repeat K/V.
        g = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    if m is not None and m.dim() == 3:
        m = m.unsqueeze(0)  # flash takes 2-D or 4-D masks: [H, L, S] as [1, H, L, S]
    kw = dict(attn_mask=m, is_causal=is_causal, scale=scale)
    out = F.scaled_dot_product_attention(q, k, v, **kw)
    backend = "default"
    for name, b in (("flash", SDPBackend.FLASH_ATTENTION), ("math", SDPBackend.MATH)):
        try:
            with sdpa_kernel(b):
                o = F.scaled_dot_product_attention(q, k, v, **kw)
        except RuntimeError:
            continue
        if torch.equal(o.nan_to_num(7.0), out.nan_to_num(7.0)):
            backend = name
            break
    lse = None
    if backend == "flash":
        # The CPU flash kernel's own log-sum-exp (same kernel, same call).
        kk, vv = k, v
        fm = m
        if fm is not None and fm.dtype == torch.bool:
            fm = torch.zeros(fm.shape, dtype=dt).masked_fill(~fm, NEG_INF)
        try:
            o2, l2 = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                q, kk, vv, 0.0, is_causal, attn_mask=fm, scale=scale)
            if torch.equal(o2.nan_to_num(7.0), out.nan_to_num(7.0)):
                lse = l2.double().numpy()
            else:
                note("torch's flash op called directly did not reproduce the default output bit for bit; no torch LSE")
        except RuntimeError as e:
            note(f"torch flash op for the LSE failed: {e}")
    return out.double().numpy(), lse, backend


# --------------------------------------------------------------------------
# Case builder
# --------------------------------------------------------------------------
CASES = []
NAMES = set()


def add_case(name, gen, B=1, H=2, Hkv=None, L=128, S=128, E=64, Ev=None, bias=None, mask=None,
             is_causal=False, soft_cap=None, scale=None, dtype="float32"):
    """bias: {"kind": "none" | "causal" | "alibi" | "tensor", ...} as in manifest.json
    (for "tensor", mask(rng, L, S) builds the [L, S] mask); soft_cap: (cap, causal variant or None)
    written as bias_manifest.json parts."""
    name = PREFIX + name
    assert name not in NAMES, name
    NAMES.add(name)
    Hkv = H if Hkv is None else Hkv
    Ev = E if Ev is None else Ev
    gqa = Hkv != H
    np_dtype = {"float32": np.float32, "float16": np.float16}[dtype]
    t_dtype = {"float32": torch.float32, "float16": torch.float16}[dtype]
    rng = rng_for(name)
    q, k, v = (x.astype(np_dtype) for x in gen_qkv(gen, B, H, Hkv, L, S, E, Ev, rng))
    assert all(np.isfinite(x).all() for x in (q, k, v)), name
    q64, k64, v64 = (torch.from_numpy(x).double() for x in (q, k, v))
    eff_scale = 1.0 / math.sqrt(E) if scale is None else scale

    entry_bias, parts, attn_mask, cap = None, None, None, None
    bias = dict(bias or {"kind": "none"})
    if soft_cap is not None:
        cap, variant = soft_cap
        parts = [{"kind": "softCap", "cap": float(cap)}]
        if variant is not None:
            parts.append({"kind": "causal", "variant": variant})
            attn_mask = causal_mask(variant, L, S)
    elif bias["kind"] == "none":
        entry_bias = {"kind": "none"}
    elif bias["kind"] == "causal":
        entry_bias = {"kind": "causal", "variant": bias["variant"]}
        attn_mask = causal_mask(bias["variant"], L, S)
    elif bias["kind"] == "alibi":
        assert bias["slopes"] == "standard"
        entry_bias = {"kind": "alibi", "slopes": "standard", "causal": bias.get("causal")}
        attn_mask = alibi_bias(get_slopes(H), L, S, bias.get("causal"))  # [H, L, S]
    elif bias["kind"] == "tensor":
        m = mask(rng, L, S)
        assert m.dtype in (np.bool_, np.float32) and m.shape == (L, S), (m.dtype, m.shape)
        entry_bias = {"kind": "tensor", "mask": save(name, "mask", m)}
        attn_mask = torch.from_numpy(m) if m.dtype == np.bool_ else torch.from_numpy(m).double()
    else:
        raise ValueError(bias)

    additive = None
    if attn_mask is not None:
        am = attn_mask.numpy()
        additive = np.where(am, 0.0, NEG_INF) if am.dtype == np.bool_ else am
    if is_causal:
        assert attn_mask is None
        additive = np.where(np.tril(np.ones((L, S), dtype=bool)), 0.0, NEG_INF)

    # ---- float64 reference ---------------------------------------------------
    ref, lse, full, smax = numpy_reference(q64.numpy(), k64.numpy(), v64.numpy(), additive, eff_scale, cap)
    if cap is None:
        with sdpa_kernel(SDPBackend.MATH):
            out = F.scaled_dot_product_attention(q64, k64, v64, attn_mask=attn_mask, is_causal=is_causal,
                                                 scale=scale, enable_gqa=gqa).numpy().copy()
        d = float(np.max(np.abs(out - ref)))
        assert d <= 1e-12 * max(1.0, float(np.abs(ref).max())), (name, d)
    else:
        out = ref
    assert not np.isnan(out).any(), name
    assert np.all(out[full] == 0.0) and np.all(np.isneginf(lse[full])) and np.isfinite(lse[~full]).all(), name

    # ---- torch at the case's dtype -------------------------------------------
    qt, kt, vt = (torch.from_numpy(x) for x in (q, k, v))
    t_out, t_lse, backend = torch_low_precision(qt, kt, vt, attn_mask, is_causal, eff_scale, gqa, cap)
    assert qt.dtype == t_dtype
    t_nan = np.isnan(t_out)
    if t_nan.any():
        note(f"{name}: torch {dtype} ({backend}) gave NaN in {int(t_nan.any(-1).sum())} rows "
             f"(fully masked: {int(full.sum())}); those rows are left out of its error")
        assert np.all(t_nan.any(-1) <= full), name
    t_err = float(np.nanmax(np.abs(np.where(t_nan, 0.0, t_out) - out)))
    t_lse_err = None
    if t_lse is not None:
        fin = ~full
        t_lse_err = float(np.max(np.abs(t_lse[fin] - lse[fin]))) if fin.any() else 0.0

    entry = {
        "name": name,
        "generator": gen,
        "layout": "BHLE",
        "query": save(name, "q", q),
        "key": save(name, "k", k),
        "value": save(name, "v", v),
        "output": save(name, "out", out),
        "logSumExp": save(name, "lse", lse),
    }
    if parts is not None:
        entry["biases"] = parts
    else:
        entry["bias"] = entry_bias
    entry.update({
        "isCausal": bool(is_causal),
        "scale": None if scale is None else float(scale),
        "enableGQA": bool(gqa),
        "dtype": dtype,
        "maxAbsScore": round(smax, 3),
        "fullyMaskedRows": int(full.sum()),
        "torchFloat32MaxAbsError": t_err if dtype == "float32" else None,
        "torchFloat32LogSumExpMaxAbsError": t_lse_err if dtype == "float32" else None,
        "torchFloat32Backend": backend if dtype == "float32" else None,
    })
    if dtype == "float16":
        entry["torchFloat16MaxAbsError"] = t_err
        entry["torchFloat16Backend"] = backend
    CASES.append(entry)
    print(f"{name:52} |s|max={smax:7.1f} full={int(full.sum()):4} torch {dtype} ({backend}) "
          f"err={t_err:.2e} lse={t_lse_err if t_lse_err is None else f'{t_lse_err:.1e}'}", flush=True)


def build_cases():
    # GPT-2-like, isCausal (upper left), square.
    add_case("gpt2_isCausal_B1_H2_L128_S128_E64", "gpt2", is_causal=True)
    # Massive activations, no mask: scores span hundreds.
    add_case("massive_nomask_B1_H2_L128_S160_E64", "massive", L=128, S=160)
    # Massive activations, GQA, E = 128, Ev != E, causal upper-left.
    add_case("massive_causalUpperLeft_gqa_Hq4_Hkv2_L64_S128_E128_Ev96", "massive", H=4, Hkv=2, L=64, S=128,
             E=128, Ev=96, bias={"kind": "causal", "variant": "upperLeft"})
    # Decoding step: one query row, 300 keys, GQA 8/2, ALiBi + causal lower-right (BLOOM-style).
    add_case("gpt2_decode_alibi_lowerRight_gqa_Hq8_Hkv2_L1_S300_E64", "gpt2", H=8, Hkv=2, L=1, S=300,
             bias={"kind": "alibi", "slopes": "standard", "causal": "lowerRight"})
    # L > S with causal lower-right: the first L - S rows are fully masked.
    add_case("massive_causalLowerRight_B1_H2_L160_S96_E64", "massive", L=160, S=96,
             bias={"kind": "causal", "variant": "lowerRight"})
    # ALiBi + causal lower-right, L < S, standard slopes for 4 heads.
    add_case("gpt2_alibi_lowerRight_B1_H4_L64_S128_E64", "gpt2", H=4, L=64, S=128,
             bias={"kind": "alibi", "slopes": "standard", "causal": "lowerRight"})
    # Near-uniform attention, bool [L, S] key padding with fully masked (padded) query rows.
    add_case("uniform_boolKeyPadding_B1_H2_L96_S128_E64", "uniform", L=96, S=128,
             bias={"kind": "tensor"}, mask=lambda rng, L, S: key_padding_mask(L, S, S - 37, 8, rng))
    # Large value outliers, float [L, S] relative-position bias.
    add_case("voutlier_floatRelpos_B1_H2_L128_S128_E64", "voutlier",
             bias={"kind": "tensor"}, mask=lambda rng, L, S: relpos_mask(L, S, rng))
    # Massive activations under a Gemma-2-style soft-cap of 50, causal lower-right.
    add_case("massive_softCap50_causalLowerRight_B1_H2_L96_S112_E64", "massive", L=96, S=112,
             soft_cap=(50.0, "lowerRight"))
    # float16, GPT-2-like, causal lower-right.
    add_case("half_gpt2_causalLowerRight_B1_H2_L128_S128_E64", "gpt2", L=128, S=128,
             bias={"kind": "causal", "variant": "lowerRight"}, dtype="float16")


def main():
    for p in list(HERE.glob(f"{PREFIX}*.npy")) + [HERE / "activation_manifest.json"]:
        if p.exists():
            p.unlink()
    build_cases()
    (HERE / "activation_manifest.json").write_text(
        json.dumps({"generator": torch.__version__, "cases": CASES}, indent=1) + "\n")
    files = list(HERE.glob(f"{PREFIX}*.npy")) + [HERE / "activation_manifest.json"]
    total = sum(p.stat().st_size for p in files)
    print(f"torch {torch.__version__}, numpy {np.__version__}: {len(CASES)} cases, {total / 1e6:.2f} MB")
    for n in NOTES:
        print("note:", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
