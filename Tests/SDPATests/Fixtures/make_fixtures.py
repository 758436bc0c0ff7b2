#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for the SDPA Swift tests.

Run from the repository root:

    ~/.torchenv/bin/python Tests/SDPATests/Fixtures/make_fixtures.py

Everything is written next to this script (manifest.json, *.npy,
alibi_standard_slopes.json).  Inputs are random but deterministic (each case
seeds its own numpy Generator from a CRC32 of the case name).

Reference semantics: the output is computed in float64 from the exact
float32 (or float16) input values with
torch.nn.functional.scaled_dot_product_attention under
sdpa_kernel(SDPBackend.MATH), with every bias materialised as an explicit
attn_mask.  Every output is additionally cross-checked against an
independent numpy float64 implementation.
"""

import json
import math
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.bias import causal_lower_right, causal_upper_left

HERE = Path(__file__).resolve().parent
NEG_INF = float("-inf")

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
# causal_lower_right(L, S) with L > S warns that it "will produce NaNs"; on the
# math backend it does not (fully masked rows come out as 0; verified below).
warnings.filterwarnings("ignore", message="Lower right causal bias")

NOTES = []  # semantic observations collected while generating


def note(msg):
    if msg not in NOTES:
        NOTES.append(msg)


# --------------------------------------------------------------------------
# ALiBi slopes (Press et al., "Train Short, Test Long", reference get_slopes)
# --------------------------------------------------------------------------
def get_slopes(n):
    def get_slopes_power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        ratio = start
        return [start * ratio**i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return get_slopes_power_of_2(closest) + get_slopes(2 * closest)[0::2][: n - closest]


# --------------------------------------------------------------------------
# Causal masks: torch's own CausalBias classes, cross-checked against tril
# --------------------------------------------------------------------------
def causal_mask(variant, L, S):
    if variant == "upperLeft":
        m = causal_upper_left(L, S)._materialize()
        ref = torch.tril(torch.ones(L, S, dtype=torch.bool))
    elif variant == "lowerRight":
        m = causal_lower_right(L, S)._materialize()
        ref = torch.tril(torch.ones(L, S, dtype=torch.bool), diagonal=S - L)
    else:
        raise ValueError(variant)
    assert m.dtype == torch.bool and m.shape == (L, S)
    assert torch.equal(m, ref), (variant, L, S)
    return m


def alibi_bias(slopes, L, S, causal):
    """Float64 additive bias [H, L, S]."""
    offset = 0 if causal == "upperLeft" else S - L
    i = torch.arange(L, dtype=torch.float64).view(L, 1)
    j = torch.arange(S, dtype=torch.float64).view(1, S)
    dist = (i + offset - j).abs()  # [L, S]
    sl = torch.tensor(slopes, dtype=torch.float64).view(-1, 1, 1)
    bias = -sl * dist  # [H, L, S]
    if causal is not None:
        keep = causal_mask(causal, L, S)
        bias = bias.masked_fill(~keep, NEG_INF)
    return bias


# --------------------------------------------------------------------------
# Independent numpy float64 reference (for cross-checking torch only)
# --------------------------------------------------------------------------
def numpy_reference(q, k, v, additive, scale):
    """q [..., Hq, L, E], k/v [..., Hkv, S, E]; additive broadcastable to
    [..., Hq, L, S] (float64, -inf = masked).  Returns (out, fully_masked)."""
    hq, hkv = q.shape[-3], k.shape[-3]
    if hq != hkv:
        g = hq // hkv
        idx = np.arange(hq) // g  # query head h reads kv head h // (Hq/Hkv)
        k = np.take(k, idx, axis=-3)
        v = np.take(v, idx, axis=-3)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    if additive is not None:
        s = s + additive
    full = np.all(np.isneginf(s), axis=-1, keepdims=True)
    m = np.max(np.where(full, 0.0, s), axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        p = np.exp(s - m)
    p = np.where(full, 0.0, p)
    den = np.sum(p, axis=-1, keepdims=True)
    p = p / np.where(full, 1.0, den)
    return np.matmul(p, v), full[..., 0]


# --------------------------------------------------------------------------
# Case builder
# --------------------------------------------------------------------------
CASES = []
NAMES = set()


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def save(name, suffix, arr):
    fn = f"{name}.{suffix}.npy"
    np.save(HERE / fn, np.ascontiguousarray(arr), allow_pickle=False)
    return fn


def make_qkv(rng, layout, B, Hq, Hkv, L, S, E, Ev, dtype=np.float32):
    """Random inputs in *file* layout."""
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    if layout == "BHLE":
        return r(B, Hq, L, E), r(B, Hkv, S, E), r(B, Hkv, S, Ev)
    if layout == "BLHE":
        return r(B, L, Hq, E), r(B, S, Hkv, E), r(B, S, Hkv, Ev)
    if layout == "HLE":
        return r(Hq, L, E), r(Hkv, S, E), r(Hkv, S, Ev)
    raise ValueError(layout)


def add_case(name, layout="BHLE", B=1, H=2, Hkv=None, L=5, S=7, E=8, Ev=None,
             bias=None, mask=None, is_causal=False, scale=None, dtype="float32"):
    """bias: manifest bias dict without the mask file ({"kind": ...});
    mask: numpy mask array for kind == "tensor" (built by the caller with
    the case's rng, so pass a callable rng -> array)."""
    assert name not in NAMES, name
    NAMES.add(name)
    Hkv = H if Hkv is None else Hkv
    Ev = E if Ev is None else Ev
    enable_gqa = Hkv != H
    if enable_gqa:
        assert H % Hkv == 0
    bias = dict(bias or {"kind": "none"})
    np_dtype = {"float32": np.float32, "float16": np.float16}[dtype]

    rng = rng_for(name)
    q, k, v = make_qkv(rng, layout, B, H, Hkv, L, S, E, Ev, np_dtype)

    # float64 views in [B,H,L,E] (or [H,L,E]) order
    q64, k64, v64 = (torch.from_numpy(x).double() for x in (q, k, v))
    if layout == "BLHE":
        q64, k64, v64 = (x.permute(0, 2, 1, 3) for x in (q64, k64, v64))

    # ---- materialise the bias --------------------------------------------
    attn_mask = None       # what torch gets
    additive = None        # float64 numpy additive mask for the cross-check
    entry_bias = {"kind": bias["kind"]}
    if bias["kind"] == "none":
        pass
    elif bias["kind"] == "causal":
        attn_mask = causal_mask(bias["variant"], L, S)
        entry_bias["variant"] = bias["variant"]
    elif bias["kind"] == "alibi":
        slopes = bias["slopes"]
        resolved = get_slopes(H) if slopes == "standard" else [float(s) for s in slopes]
        assert len(resolved) == H
        attn_mask = alibi_bias(resolved, L, S, bias.get("causal"))  # [H, L, S]
        entry_bias["slopes"] = slopes
        entry_bias["causal"] = bias.get("causal")
    elif bias["kind"] == "tensor":
        m = mask(rng)
        assert m.dtype in (np.bool_, np.float32), m.dtype
        entry_bias["mask"] = save(name, "mask", m)
        attn_mask = torch.from_numpy(m)
        if attn_mask.dtype != torch.bool:
            attn_mask = attn_mask.double()
    else:
        raise ValueError(bias)

    if attn_mask is not None:
        am = attn_mask.numpy()
        additive = np.where(am, 0.0, NEG_INF) if am.dtype == np.bool_ else am.astype(np.float64)
    if is_causal:
        c = np.where(np.tril(np.ones((L, S), dtype=bool)), 0.0, NEG_INF)
        additive = c if additive is None else additive + c

    # ---- torch reference ---------------------------------------------------
    with sdpa_kernel(SDPBackend.MATH):
        out = F.scaled_dot_product_attention(
            q64, k64, v64, attn_mask=attn_mask, dropout_p=0.0,
            is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
    out = out.numpy().copy()
    assert out.dtype == np.float64

    # ---- cross-checks ------------------------------------------------------
    ref, full = numpy_reference(q64.numpy(), k64.numpy(), v64.numpy(), additive, scale)
    full = np.broadcast_to(full, out.shape[:-1])
    n_full = int(full.sum())
    if n_full:
        rows = out[full]
        if np.isnan(rows).any():
            note(f"{name}: torch math produced NaN in fully masked rows; replaced by 0")
            out[full] = 0.0
        assert np.all(out[full] == 0.0), f"{name}: fully masked rows not zero"
        note("fully masked rows (every score -inf after masking) come out as exactly 0 "
             "from torch's math backend (safe softmax), not NaN")
    assert not np.isnan(out).any(), name
    err = np.max(np.abs(out - ref)) if out.size else 0.0
    assert err < 1e-12, (name, err)

    if bias["kind"] == "causal" and not enable_gqa and layout != "HLE":
        # passing torch's CausalBias object directly must agree too
        cb = (causal_upper_left if bias["variant"] == "upperLeft" else causal_lower_right)(L, S)
        with sdpa_kernel(SDPBackend.MATH):
            o2 = F.scaled_dot_product_attention(q64, k64, v64, attn_mask=cb, scale=scale)
        assert np.max(np.abs(o2.numpy() - out)) < 1e-12, name
    if is_causal:
        with sdpa_kernel(SDPBackend.MATH):
            o3 = F.scaled_dot_product_attention(
                q64, k64, v64, attn_mask=causal_mask("upperLeft", L, S),
                scale=scale, enable_gqa=enable_gqa)
        assert np.max(np.abs(o3.numpy() - out)) < 1e-12, name
    if enable_gqa:
        g = H // Hkv
        with sdpa_kernel(SDPBackend.MATH):
            o4 = F.scaled_dot_product_attention(
                q64, k64.repeat_interleave(g, dim=-3), v64.repeat_interleave(g, dim=-3),
                attn_mask=attn_mask, is_causal=is_causal, scale=scale)
        assert np.max(np.abs(o4.numpy() - out)) < 1e-12, name

    # ---- write -------------------------------------------------------------
    expect_out = (H, L, Ev) if layout == "HLE" else (B, H, L, Ev)
    assert out.shape == expect_out, (name, out.shape, expect_out)
    entry = {
        "name": name,
        "layout": layout,
        "query": save(name, "q", q),
        "key": save(name, "k", k),
        "value": save(name, "v", v),
        "output": save(name, "out", out),
        "bias": entry_bias,
        "isCausal": bool(is_causal),
        "scale": None if scale is None else float(scale),
        "enableGQA": bool(enable_gqa),
        "dtype": dtype,
    }
    CASES.append(entry)
    return n_full


# --------------------------------------------------------------------------
# Mask factories (each takes the case rng)
# --------------------------------------------------------------------------
def bool_mask(shape, p_true=0.65, ensure_row=True):
    def f(rng):
        m = rng.random(shape) < p_true
        if ensure_row and shape[-1] > 1:
            # at least one True per row so no row is accidentally fully masked
            flat = m.reshape(-1, shape[-1])
            flat[np.arange(flat.shape[0]), rng.integers(0, shape[-1], flat.shape[0])] = True
            m = flat.reshape(shape)
        return m
    return f


BIG_NEGATIVES = np.array([NEG_INF, -1e4, -1e9, -3.0e38], dtype=np.float32)


def float_mask(shape, p_special=0.3):
    """Normal(0, 2) values with ~p_special of entries replaced by -inf or
    large finite negatives; every row keeps at least one ordinary entry."""
    def f(rng):
        m = (2.0 * rng.standard_normal(shape)).astype(np.float32)
        special = rng.random(shape) < p_special
        m = np.where(special, BIG_NEGATIVES[rng.integers(0, len(BIG_NEGATIVES), shape)], m)
        if shape[-1] > 1:
            flat = m.reshape(-1, shape[-1])
            idx = rng.integers(0, shape[-1], flat.shape[0])
            flat[np.arange(flat.shape[0]), idx] = (2.0 * rng.standard_normal(flat.shape[0])).astype(np.float32)
            m = flat.reshape(shape)
        return m.astype(np.float32)
    return f


def finite_negatives_mask(shape):
    """0 / -1e9 entries only; column 0 is always 0 so no row is all -1e9."""
    def f(rng):
        m = np.where(rng.random(shape) < 0.4, np.float32(-1e9), np.float32(0.0)).astype(np.float32)
        m[..., 0] = 0.0
        return m
    return f


def with_rows(factory, rows, value):
    """Force mask[..., r, :] = value for r in rows (value False / -inf)."""
    def f(rng):
        m = factory(rng)
        for r in rows:
            m[..., r, :] = value
        return m
    return f


def shape_tag(shape):
    return "x".join(str(d) for d in shape)


# --------------------------------------------------------------------------
# Case list
# --------------------------------------------------------------------------
def build_cases():
    # 1. no mask --------------------------------------------------------------
    add_case("nomask_B2_H3_L7_S7_E8", B=2, H=3, L=7, S=7, E=8)
    add_case("nomask_B1_H2_L5_S11_E15", B=1, H=2, L=5, S=11, E=15)
    add_case("nomask_B2_H2_L13_S6_E8", B=2, H=2, L=13, S=6, E=8)
    add_case("nomask_B1_H2_L9_S12_E64", B=1, H=2, L=9, S=12, E=64)
    add_case("nomask_B1_H2_L10_S8_E80", B=1, H=2, L=10, S=8, E=80)
    add_case("nomask_B1_H1_L40_S40_E64", B=1, H=1, L=40, S=40, E=64)
    add_case("nomask_B2_H2_L6_S10_E15_Ev9", B=2, H=2, L=6, S=10, E=15, Ev=9)
    add_case("nomask_B2_H3_L8_S8_E8_scale0p3", B=2, H=3, L=8, S=8, E=8, scale=0.3)
    add_case("nomask_B1_H1_L1_S1_E8", B=1, H=1, L=1, S=1, E=8)
    add_case("nomask_B1_H2_L1_S33_E15", B=1, H=2, L=1, S=33, E=15)
    add_case("nomask_HLE_H4_L6_S9_E15", layout="HLE", H=4, L=6, S=9, E=15)
    add_case("nomask_HLE_H2_L7_S5_E8_Ev12_scale0p3", layout="HLE", H=2, L=7, S=5, E=8, Ev=12, scale=0.3)
    add_case("nomask_BLHE_B2_H3_L7_S10_E8", layout="BLHE", B=2, H=3, L=7, S=10, E=8)
    add_case("nomask_BLHE_B1_H4_L9_S5_E15_Ev9", layout="BLHE", B=1, H=4, L=9, S=5, E=15, Ev=9)

    # 2. isCausal=true (upper-left) ---------------------------------------------
    add_case("isCausal_B2_H2_L5_S9_E8", B=2, H=2, L=5, S=9, E=8, is_causal=True)
    add_case("isCausal_B2_H2_L9_S5_E8", B=2, H=2, L=9, S=5, E=8, is_causal=True)
    add_case("isCausal_B1_H3_L8_S8_E15", B=1, H=3, L=8, S=8, E=15, is_causal=True)
    add_case("isCausal_B1_H2_L6_S11_E8_scale0p3", B=1, H=2, L=6, S=11, E=8, is_causal=True, scale=0.3)
    add_case("isCausal_B2_H2_L11_S4_E15_scale0p3", B=2, H=2, L=11, S=4, E=15, is_causal=True, scale=0.3)
    add_case("isCausal_HLE_H3_L7_S10_E8", layout="HLE", H=3, L=7, S=10, E=8, is_causal=True)
    add_case("isCausal_gqa_Hq6_Hkv2_B1_L7_S9_E8", B=1, H=6, Hkv=2, L=7, S=9, E=8, is_causal=True)

    # 3. causal bias ------------------------------------------------------------
    for variant in ("upperLeft", "lowerRight"):
        cb = {"kind": "causal", "variant": variant}
        add_case(f"causal_{variant}_B2_H2_L5_S9_E8", B=2, H=2, L=5, S=9, E=8, bias=cb)
        add_case(f"causal_{variant}_B2_H2_L9_S5_E8", B=2, H=2, L=9, S=5, E=8, bias=cb)
        add_case(f"causal_{variant}_B1_H3_L7_S7_E15", B=1, H=3, L=7, S=7, E=15, bias=cb)
        add_case(f"causal_{variant}_B1_H2_L1_S9_E8", B=1, H=2, L=1, S=9, E=8, bias=cb)
        add_case(f"causal_{variant}_B1_H2_L6_S10_E8_scale0p3", B=1, H=2, L=6, S=10, E=8, bias=cb, scale=0.3)
        add_case(f"causal_{variant}_gqa_Hq6_Hkv2_B2_L6_S10_E8", B=2, H=6, Hkv=2, L=6, S=10, E=8, bias=cb)
        add_case(f"causal_{variant}_gqa_Hq8_Hkv1_B1_L10_S4_E8_Ev5", B=1, H=8, Hkv=1, L=10, S=4, E=8, Ev=5, bias=cb)
        add_case(f"causal_{variant}_BLHE_B2_H3_L6_S11_E8", layout="BLHE", B=2, H=3, L=6, S=11, E=8, bias=cb)
        add_case(f"causal_{variant}_BLHE_B1_H2_L10_S7_E15", layout="BLHE", B=1, H=2, L=10, S=7, E=15, bias=cb)
        add_case(f"causal_{variant}_BLHE_gqa_Hq6_Hkv2_B1_L8_S5_E8", layout="BLHE", B=1, H=6, Hkv=2, L=8, S=5, E=8, bias=cb)

    # 4. ALiBi ------------------------------------------------------------------
    for causal in (None, "upperLeft", "lowerRight"):
        ctag = causal or "noCausal"
        ab = {"kind": "alibi", "slopes": "standard", "causal": causal}
        add_case(f"alibi_h6_standard_{ctag}_L5_S9", B=1, H=6, L=5, S=9, E=8, bias=ab)
        add_case(f"alibi_h6_standard_{ctag}_L9_S5", B=1, H=6, L=9, S=5, E=8, bias=ab)
        add_case(f"alibi_h8_standard_{ctag}_B2_L7_S7", B=2, H=8, L=7, S=7, E=8, bias=ab)
        abc = {"kind": "alibi", "slopes": [0.75, 0.3125, 0.0625], "causal": causal}
        add_case(f"alibi_h3_custom_{ctag}_B2_L6_S10", B=2, H=3, L=6, S=10, E=15, bias=abc)
        add_case(f"alibi_h12_standard_gqa_hkv4_{ctag}_L8_S6", B=1, H=12, Hkv=4, L=8, S=6, E=8, bias=ab)
    add_case("alibi_h8_standard_lowerRight_L4_S12_scale0p3", B=1, H=8, L=4, S=12, E=8,
             bias={"kind": "alibi", "slopes": "standard", "causal": "lowerRight"}, scale=0.3)
    add_case("alibi_h3_custom_upperLeft_BLHE_L5_S8", layout="BLHE", B=2, H=3, L=5, S=8, E=8,
             bias={"kind": "alibi", "slopes": [0.5, 0.25, 0.125], "causal": "upperLeft"})

    # 5. tensor masks -------------------------------------------------------------
    B, H, L, S = 2, 3, 5, 7
    shapes = [
        (L, S), (1, S), (L, 1), (H, L, S), (1, L, S),
        (B, 1, L, S), (1, H, 1, S), (B, H, L, S), (B, 1, 1, S),
    ]
    for shp in shapes:
        tag = shape_tag(shp)
        if shp == (L, 1):
            # [L,1] broadcasts over keys: a False / -inf row = fully masked row
            bm = with_rows(lambda rng: np.ones(shp, dtype=bool), [2], False)
            fm = with_rows(float_mask(shp, p_special=0.0), [3], NEG_INF)
        else:
            bm = bool_mask(shp)
            fm = float_mask(shp)
        add_case(f"mask_bool_{tag}_B2_H3_L5_S7_E8", B=B, H=H, L=L, S=S, E=8,
                 bias={"kind": "tensor"}, mask=bm)
        add_case(f"mask_float_{tag}_B2_H3_L5_S7_E8", B=B, H=H, L=L, S=S, E=8,
                 bias={"kind": "tensor"}, mask=fm)
    # fully masked rows
    add_case("mask_bool_5x7_fullyMaskedRows_B2_H3_L5_S7_E8", B=B, H=H, L=L, S=S, E=8,
             bias={"kind": "tensor"}, mask=with_rows(bool_mask((L, S)), [0, 3], False))
    add_case("mask_bool_2x3x5x7_fullyMaskedRows_B2_H3_L5_S7_E15", B=B, H=H, L=L, S=S, E=15,
             bias={"kind": "tensor"}, mask=with_rows(bool_mask((B, H, L, S)), [1, 4], False))
    add_case("mask_float_2x3x5x7_fullyMaskedRows_B2_H3_L5_S7_E8", B=B, H=H, L=L, S=S, E=8,
             bias={"kind": "tensor"}, mask=with_rows(float_mask((B, H, L, S)), [2], NEG_INF))
    add_case("mask_bool_2x1x1x7_paddedBatchAllFalse_B2_H3_L5_S7_E8", B=B, H=H, L=L, S=S, E=8,
             bias={"kind": "tensor"},
             mask=lambda rng: np.array([[[[True] * 4 + [False] * 3]], [[[False] * 7]]]))
    # float mask with only finite large negatives (no -inf at all)
    add_case("mask_float_5x7_finiteLargeNegatives_B1_H2_L5_S7_E8", B=1, H=2, L=L, S=S, E=8,
             bias={"kind": "tensor"},
             mask=finite_negatives_mask((L, S)))
    # L != S, larger head dims, scale
    add_case("mask_bool_9x4_B1_H2_L9_S4_E64", B=1, H=2, L=9, S=4, E=64,
             bias={"kind": "tensor"}, mask=bool_mask((9, 4)))
    add_case("mask_float_1x2x1x13_B1_H2_L3_S13_E80_scale0p3", B=1, H=2, L=3, S=13, E=80, scale=0.3,
             bias={"kind": "tensor"}, mask=float_mask((1, 2, 1, 13)))
    # 3-D HLE inputs
    add_case("mask_bool_6x9_HLE_H4_L6_S9_E8", layout="HLE", H=4, L=6, S=9, E=8,
             bias={"kind": "tensor"}, mask=bool_mask((6, 9)))
    add_case("mask_float_6x9_HLE_H4_L6_S9_E8", layout="HLE", H=4, L=6, S=9, E=8,
             bias={"kind": "tensor"}, mask=float_mask((6, 9)))
    add_case("mask_bool_4x6x9_HLE_H4_L6_S9_E15", layout="HLE", H=4, L=6, S=9, E=15,
             bias={"kind": "tensor"}, mask=with_rows(bool_mask((4, 6, 9)), [5], False))
    add_case("mask_float_4x6x9_HLE_H4_L6_S9_E15", layout="HLE", H=4, L=6, S=9, E=15,
             bias={"kind": "tensor"}, mask=float_mask((4, 6, 9)))
    # masks combined with GQA / BLHE
    add_case("mask_bool_2x1x6x10_gqa_Hq6_Hkv2_B2_L6_S10_E8", B=2, H=6, Hkv=2, L=6, S=10, E=8,
             bias={"kind": "tensor"}, mask=bool_mask((2, 1, 6, 10)))
    add_case("mask_float_1x6x1x10_gqa_Hq6_Hkv2_B1_L6_S10_E8", B=1, H=6, Hkv=2, L=6, S=10, E=8,
             bias={"kind": "tensor"}, mask=float_mask((1, 6, 1, 10)))
    add_case("mask_bool_2x3x5x7_BLHE_B2_H3_L5_S7_E8", layout="BLHE", B=B, H=H, L=L, S=S, E=8,
             bias={"kind": "tensor"}, mask=bool_mask((B, H, L, S)))
    add_case("mask_float_5x7_BLHE_B2_H3_L5_S7_E15", layout="BLHE", B=B, H=H, L=L, S=S, E=15,
             bias={"kind": "tensor"}, mask=float_mask((L, S)))

    # 6. GQA without mask -----------------------------------------------------------
    add_case("gqa_Hq8_Hkv2_B2_L6_S9_E15_Ev9", B=2, H=8, Hkv=2, L=6, S=9, E=15, Ev=9)
    add_case("gqa_Hq7_Hkv1_B1_L5_S8_E8_Ev12", B=1, H=7, Hkv=1, L=5, S=8, E=8, Ev=12)
    add_case("gqa_Hq4_Hkv2_B1_L7_S7_E64_scale0p3", B=1, H=4, Hkv=2, L=7, S=7, E=64, scale=0.3)
    add_case("gqa_HLE_Hq6_Hkv3_L5_S8_E8", layout="HLE", H=6, Hkv=3, L=5, S=8, E=8)
    add_case("gqa_BLHE_Hq8_Hkv2_B2_L5_S6_E8_Ev9", layout="BLHE", B=2, H=8, Hkv=2, L=5, S=6, E=8, Ev=9)

    # 7. float16 ----------------------------------------------------------------------
    add_case("half_nomask_B1_H2_L6_S9_E15", B=1, H=2, L=6, S=9, E=15, dtype="float16")
    add_case("half_causal_lowerRight_B1_H2_L5_S9_E8", B=1, H=2, L=5, S=9, E=8, dtype="float16",
             bias={"kind": "causal", "variant": "lowerRight"})


# --------------------------------------------------------------------------
# Observations about torch semantics that the Swift side should match
# --------------------------------------------------------------------------
def probe_semantics():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, 2, 4, 8, generator=g, dtype=torch.float64)
    k = torch.randn(1, 1, 3, 8, generator=g, dtype=torch.float64)
    v = torch.randn(1, 1, 3, 8, generator=g, dtype=torch.float64)
    with sdpa_kernel(SDPBackend.MATH):
        # Hkv=1 without enable_gqa: does it broadcast or error?
        try:
            o = F.scaled_dot_product_attention(q, k, v)
            o_gqa = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
            note("math backend: Hq=2, Hkv=1 WITHOUT enable_gqa does not raise (matmul broadcasts "
                 f"the size-1 head dim); max |diff| vs enable_gqa=True = {float((o - o_gqa).abs().max()):.1e}")
        except Exception as e:  # noqa: BLE001
            note(f"math backend: Hq=2, Hkv=1 without enable_gqa raises {type(e).__name__}")
        k2 = torch.randn(1, 2, 3, 8, generator=g, dtype=torch.float64)
        q3 = torch.randn(1, 3, 4, 8, generator=g, dtype=torch.float64)
        try:
            F.scaled_dot_product_attention(q3, k2, k2, enable_gqa=True)
            note("enable_gqa with Hq=3, Hkv=2 (not a multiple) does not raise")
        except Exception as e:  # noqa: BLE001
            note(f"enable_gqa with Hq % Hkv != 0 raises {type(e).__name__}")
        try:
            F.scaled_dot_product_attention(q, k2, k2, attn_mask=torch.ones(4, 3, dtype=torch.bool),
                                           is_causal=True)
            note("attn_mask together with is_causal=True is accepted")
        except Exception as e:  # noqa: BLE001
            note(f"attn_mask together with is_causal=True raises {type(e).__name__}")
        # a row whose float mask is entirely a large *finite* negative is not "masked"
        fm = torch.zeros(4, 3, dtype=torch.float64)
        fm[1] = -1e30
        fm[2] = -1e4
        o = F.scaled_dot_product_attention(q, k2, k2, attn_mask=fm)[0, :]
        o0 = F.scaled_dot_product_attention(q, k2, k2)[0, :]
        uniform = k2[0].mean(dim=-2)  # [H, E]: equal weights over the 3 keys
        d_unif = float((o[:, 1] - uniform).abs().max())
        d_shift = float((o[:, 2] - o0[:, 2]).abs().max())
        note("float-mask rows of large FINITE negatives are not 'fully masked': a row that is "
             f"entirely -1e30 swamps the scores and gives a uniform average of V (max |diff| = {d_unif:.1e}), "
             f"a row entirely -1e4 equals the unmasked row (shift invariance, max |diff| = {d_shift:.1e}); "
             "only rows where every score is -inf give 0. (The fixtures avoid all-finite-negative rows.)")


def main():
    for p in list(HERE.glob("*.npy")) + [HERE / "manifest.json", HERE / "alibi_standard_slopes.json"]:
        if p.exists():
            p.unlink()

    build_cases()
    probe_semantics()

    (HERE / "manifest.json").write_text(
        json.dumps({"generator": torch.__version__, "cases": CASES}, indent=1) + "\n")
    slopes = {str(n): get_slopes(n) for n in list(range(1, 17)) + [24, 32, 40, 64]}
    (HERE / "alibi_standard_slopes.json").write_text(json.dumps(slopes, indent=1) + "\n")

    total = sum(p.stat().st_size for p in HERE.iterdir() if p.suffix in (".npy", ".json"))
    print(f"torch {torch.__version__}: {len(CASES)} cases, {total / 1e6:.2f} MB")
    for n in NOTES:
        print("note:", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
