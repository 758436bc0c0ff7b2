#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for *composable* attention biases.

Run from the repository root (after make_fixtures.py, which deletes every
*.npy in this directory, including the bias_* files written here):

    ~/.torchenv/bin/python Tests/SDPATests/Fixtures/make_bias_fixtures.py

Writes bias_manifest.json and bias_*.npy next to this script and touches
nothing else.  Inputs are random but deterministic (each case seeds its own
numpy Generator from a CRC32 of the case name).

Each case has a list "biases" of parts that are combined: the masks are
intersected, and the score modifiers (alibi, softCap) are applied to the
scaled score s = (q @ k^T) * scale in list order.  Parts:

  {"kind": "window", "left": int|null, "right": int|null,
   "alignment": "upperLeft"|"lowerRight"}
      query i sees key j iff i + off - left <= j <= i + off + right,
      off = 0 (upperLeft) or S - L (lowerRight); null = unbounded side.
  {"kind": "causal", "variant": "upperLeft"|"lowerRight"}
      tril(ones(L, S), diagonal = 0 or S - L).
  {"kind": "alibi", "slopes": [one per query head], "causal": null|"upperLeft"|"lowerRight"}
      adds -slope[h] * |i + off - j|, off = 0 for upperLeft, S - L otherwise
      (also for causal = null, as in make_fixtures.py); with a causal variant
      keys j > i + off are masked.
  {"kind": "blockDiagonal", "queryLengths": [...], "keyLengths": [...],
   "causal": null|"upperLeft"|"lowerRight"}
      xFormers BlockDiagonalMask on a packed sequence; with causal, inside
      block b: local key lj <= local query li + off_b, off_b = 0 (upperLeft)
      or k_b - q_b (lowerRight).
  {"kind": "keyPadding", "lengths": [one per batch]}
      key j is masked for batch b when j >= lengths[b].
  {"kind": "softCap", "cap": float}
      s = cap * tanh(s / cap) on the current score (Gemma 2).  Masked
      positions stay masked (the masks are applied after all modifiers).

Reference semantics.  Cases without softCap: the parts are materialised as one
explicit float64 additive mask [B or 1, H or 1, L, S] (0 / -inf / ALiBi
values; [H or 1, L, S] for HLE) and the output is
torch.nn.functional.scaled_dot_product_attention under
sdpa_kernel(SDPBackend.MATH) in float64 from the exact float32 inputs.
Cases with softCap: explicit float64 math (numpy), because torch SDPA has no
soft-cap.  Rows whose every score is masked are exactly 0.

Cross-checks (all must agree to 1e-12): the explicit numpy implementation
against torch SDPA on every case without softCap; torch flex_attention (eager,
float64, score_mod/mask_mod written independently from index arithmetic) on
every case, including the softCap ones; blockDiagonal cases against torch
SDPA run on each sequence separately and concatenated; keyPadding cases
against torch SDPA on each batch with the keys truncated to its length;
GQA cases against repeat_interleave'd K/V; window(null, 0) and
window(100, 0) against torch's causal_upper_left/lower_right biases.
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
import torch.nn.attention.flex_attention as flex_module
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

HERE = Path(__file__).resolve().parent
NEG_INF = float("-inf")
PREFIX = "bias_"
TOL = 1e-12

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
# run flex_attention as plain eager torch ops (no dynamo tracing of the HOP)
flex_module._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = True
warnings.filterwarnings("ignore", message="Lower right causal bias")
warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
warnings.filterwarnings("ignore", message=".*flex_attention.*")

NOTES = []


def note(msg):
    if msg not in NOTES:
        NOTES.append(msg)


# --------------------------------------------------------------------------
# ALiBi slopes (Press et al., reference get_slopes), as in make_fixtures.py
# --------------------------------------------------------------------------
def get_slopes(n):
    def pow2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n).is_integer():
        return pow2(n)
    closest = 2 ** math.floor(math.log2(n))
    return pow2(closest) + get_slopes(2 * closest)[0::2][: n - closest]


# --------------------------------------------------------------------------
# Part constructors (manifest dicts)
# --------------------------------------------------------------------------
def window(left, right, alignment):
    return {"kind": "window", "left": left, "right": right, "alignment": alignment}


def causal(variant):
    return {"kind": "causal", "variant": variant}


def alibi(slopes, causal_variant=None):
    return {"kind": "alibi", "slopes": [float(s) for s in slopes], "causal": causal_variant}


def block_diagonal(q_lens, k_lens, causal_variant=None):
    return {"kind": "blockDiagonal", "queryLengths": list(q_lens), "keyLengths": list(k_lens),
            "causal": causal_variant}


def key_padding(lengths):
    return {"kind": "keyPadding", "lengths": list(lengths)}


def soft_cap(cap):
    return {"kind": "softCap", "cap": float(cap)}


def offset(alignment, L, S):
    if alignment == "upperLeft":
        return 0
    if alignment == "lowerRight":
        return S - L
    raise ValueError(alignment)


def starts(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


# --------------------------------------------------------------------------
# Materialisation: a list of terms, each ("mask", bool [Bm,Hm,L,S]),
# ("add", float64 [1,H,L,S]) or ("softcap", cap), in list order.
# --------------------------------------------------------------------------
def part_terms(part, B, H, L, S):
    i = np.arange(L).reshape(L, 1)
    j = np.arange(S).reshape(1, S)
    kind = part["kind"]
    if kind == "window":
        off = offset(part["alignment"], L, S)
        keep = np.ones((L, S), dtype=bool)
        if part["left"] is not None:
            assert part["left"] >= 0
            keep &= j >= i + off - part["left"]
        if part["right"] is not None:
            assert part["right"] >= 0
            keep &= j <= i + off + part["right"]
        return [("mask", keep[None, None])]
    if kind == "causal":
        off = offset(part["variant"], L, S)
        keep = np.tril(np.ones((L, S), dtype=bool), k=off)
        return [("mask", keep[None, None])]
    if kind == "alibi":
        slopes = np.asarray(part["slopes"], dtype=np.float64)
        assert slopes.shape == (H,), (slopes.shape, H)
        c = part["causal"]
        off = 0 if c == "upperLeft" else S - L
        dist = np.abs(i + off - j).astype(np.float64)
        terms = [("add", (-slopes.reshape(H, 1, 1) * dist)[None])]
        if c is not None:
            terms.append(("mask", (j <= i + off)[None, None]))
        return terms
    if kind == "blockDiagonal":
        ql, kl = part["queryLengths"], part["keyLengths"]
        assert len(ql) == len(kl) and sum(ql) == L and sum(kl) == S, (ql, kl, L, S)
        assert min(ql) >= 0 and min(kl) >= 0
        qs, ks = starts(ql), starts(kl)
        keep = np.zeros((L, S), dtype=bool)
        for b in range(len(ql)):
            qb, kb = ql[b], kl[b]
            if qb == 0 or kb == 0:
                continue
            blk = np.ones((qb, kb), dtype=bool)
            if part["causal"] is not None:
                off_b = 0 if part["causal"] == "upperLeft" else kb - qb
                if part["causal"] not in ("upperLeft", "lowerRight"):
                    raise ValueError(part["causal"])
                blk = np.tril(blk, k=off_b)
            keep[qs[b]:qs[b] + qb, ks[b]:ks[b] + kb] = blk
        return [("mask", keep[None, None])]
    if kind == "keyPadding":
        lens = np.asarray(part["lengths"])
        assert B is not None and lens.shape == (B,), "keyPadding needs one length per batch"
        assert lens.min() >= 0 and lens.max() <= S
        keep = j[None] < lens.reshape(B, 1, 1)  # [B, 1, S] -> broadcast over L
        keep = np.broadcast_to(keep, (B, L, S))
        return [("mask", keep[:, None])]
    if kind == "softCap":
        assert part["cap"] > 0
        return [("softcap", float(part["cap"]))]
    raise ValueError(kind)


def all_terms(parts, B, H, L, S):
    out = []
    for p in parts:
        out += part_terms(p, B, H, L, S)
    return out


def additive_mask(terms, B, H, L, S):
    """Single float64 additive mask [Bm, Hm, L, S] for cases without softCap."""
    assert not any(t[0] == "softcap" for t in terms)
    add = np.zeros((1, 1, L, S))
    keep = np.ones((1, 1, L, S), dtype=bool)
    for kind, val in terms:
        if kind == "add":
            add = add + val
        else:
            keep = keep & val
    return np.where(keep, add, NEG_INF)


# --------------------------------------------------------------------------
# Explicit float64 implementation (numpy)
# --------------------------------------------------------------------------
def expand_gqa(k, v, hq):
    hkv = k.shape[-3]
    if hkv == hq:
        return k, v
    idx = np.arange(hq) // (hq // hkv)  # query head h reads kv head h // (Hq/Hkv)
    return np.take(k, idx, axis=-3), np.take(v, idx, axis=-3)


def safe_softmax_av(s, v):
    full = np.all(np.isneginf(s), axis=-1, keepdims=True)
    m = np.max(np.where(full, 0.0, s), axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        p = np.exp(s - m)
    p = np.where(full, 0.0, p)
    p = p / np.where(full, 1.0, np.sum(p, axis=-1, keepdims=True))
    return np.matmul(p, v), full[..., 0]


def log_sum_exp(s):
    """Per-row log-sum-exp of scores s [..., S] (-inf = masked); -inf for fully masked rows."""
    full = np.all(np.isneginf(s), axis=-1)
    m = np.max(s, axis=-1, keepdims=True)
    m = np.where(np.isneginf(m), 0.0, m)
    with np.errstate(divide="ignore"):
        lse = m[..., 0] + np.log(np.sum(np.exp(s - m), axis=-1))
    return np.where(full, NEG_INF, lse)


def final_scores(q, k, terms, scale):
    """The scaled scores [B,Hq,L,S] after every part, in list order; masked positions -inf."""
    k, _ = expand_gqa(k, k, q.shape[1])
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    keep = np.ones(s.shape, dtype=bool)
    for kind, val in terms:
        if kind == "add":
            s = s + val
        elif kind == "softcap":
            s = val * np.tanh(s / val)
        else:
            keep &= val
    return np.where(keep, s, NEG_INF)


def explicit_reference(q, k, v, terms, scale, with_lse=False):
    """q [B,Hq,L,E], k/v [B,Hkv,S,E] float64.  Parts in list order.  Returns (out, fully_masked),
    and the per-row log-sum-exp of the final scores as a third value when with_lse."""
    s = final_scores(q, k, terms, scale)
    _, v = expand_gqa(k, v, q.shape[1])
    out, full = safe_softmax_av(s, v)
    return (out, full, log_sum_exp(s)) if with_lse else (out, full)


# --------------------------------------------------------------------------
# Independent torch flex_attention implementation (eager, float64)
# --------------------------------------------------------------------------
def flex_reference(q, k, v, parts, scale, B, H, L, S):
    """q [B,Hq,L,E] torch float64.  score_mod / mask_mod written from index
    arithmetic only (no shared code with part_terms)."""
    mask_fns = []
    mod_fns = []
    for p in parts:
        kind = p["kind"]
        if kind == "window":
            off = 0 if p["alignment"] == "upperLeft" else S - L
            lo, hi = p["left"], p["right"]

            def f(b, h, qi, kj, off=off, lo=lo, hi=hi):
                ok = kj >= 0
                if lo is not None:
                    ok = ok & (kj - qi >= off - lo)
                if hi is not None:
                    ok = ok & (kj - qi <= off + hi)
                return ok
            mask_fns.append(f)
        elif kind == "causal":
            off = 0 if p["variant"] == "upperLeft" else S - L
            mask_fns.append(lambda b, h, qi, kj, off=off: kj - qi <= off)
        elif kind == "alibi":
            off = 0 if p["causal"] == "upperLeft" else S - L
            sl = torch.tensor(p["slopes"], dtype=torch.float64)
            mod_fns.append(lambda s, b, h, qi, kj, off=off, sl=sl:
                           s - sl[h] * (qi + off - kj).abs().to(torch.float64))
            if p["causal"] is not None:
                mask_fns.append(lambda b, h, qi, kj, off=off: kj <= qi + off)
        elif kind == "blockDiagonal":
            ql, kl = p["queryLengths"], p["keyLengths"]
            qid = torch.tensor(sum(([n] * c for n, c in enumerate(ql)), []) or [0], dtype=torch.int64)
            kid = torch.tensor(sum(([n] * c for n, c in enumerate(kl)), []) or [0], dtype=torch.int64)
            qst = torch.tensor(np.concatenate([[0], np.cumsum(ql)[:-1]]), dtype=torch.int64)
            kst = torch.tensor(np.concatenate([[0], np.cumsum(kl)[:-1]]), dtype=torch.int64)
            qln = torch.tensor(ql, dtype=torch.int64)
            kln = torch.tensor(kl, dtype=torch.int64)
            cv = p["causal"]

            def f(b, h, qi, kj, qid=qid, kid=kid, qst=qst, kst=kst, qln=qln, kln=kln, cv=cv):
                same = qid[qi] == kid[kj]
                if cv is None:
                    return same
                blk = qid[qi]
                li = qi - qst[blk]
                lj = kj - kst[blk]
                off = 0 if cv == "upperLeft" else kln[blk] - qln[blk]
                return same & (lj <= li + off)
            mask_fns.append(f)
        elif kind == "keyPadding":
            lens = torch.tensor(p["lengths"], dtype=torch.int64)
            mask_fns.append(lambda b, h, qi, kj, lens=lens: kj < lens[b])
        elif kind == "softCap":
            cap = torch.tensor(p["cap"], dtype=torch.float64)
            mod_fns.append(lambda s, b, h, qi, kj, cap=cap: cap * torch.tanh(s / cap))
        else:
            raise ValueError(kind)

    def score_mod(s, b, h, qi, kj):
        for g in mod_fns:
            s = g(s, b, h, qi, kj)
        return s

    def mask_mod(b, h, qi, kj):
        ok = kj >= 0
        for g in mask_fns:
            ok = ok & g(b, h, qi, kj)
        return ok

    bm = create_block_mask(mask_mod, B, H, L, S, device="cpu")
    enable_gqa = q.shape[1] != k.shape[1]
    out = flex_attention(q, k, v, score_mod=score_mod, block_mask=bm, scale=scale,
                         enable_gqa=enable_gqa)
    return out.numpy()


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


def make_qkv(rng, layout, B, Hq, Hkv, L, S, E, Ev, qk_std):
    def r(std, *shape):
        return (std * rng.standard_normal(shape)).astype(np.float32)

    if layout == "BHLE":
        return r(qk_std, B, Hq, L, E), r(qk_std, B, Hkv, S, E), r(1.0, B, Hkv, S, Ev)
    if layout == "BLHE":
        return r(qk_std, B, L, Hq, E), r(qk_std, B, S, Hkv, E), r(1.0, B, S, Hkv, Ev)
    if layout == "HLE":
        return r(qk_std, Hq, L, E), r(qk_std, Hkv, S, E), r(1.0, Hkv, S, Ev)
    raise ValueError(layout)


def torch_sdpa(q, k, v, mask, scale, enable_gqa):
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False, scale=scale,
            enable_gqa=enable_gqa)


def maxdiff(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def check(name, what, a, b):
    d = maxdiff(a, b)
    assert d < TOL, f"{name}: {what} differs by {d:.3e}"
    return d


def per_block_reference(name, q, k, v, part, scale, enable_gqa):
    """Each packed sequence separately with torch SDPA; concatenated along L."""
    ql, kl, cv = part["queryLengths"], part["keyLengths"], part["causal"]
    qs, ks = starts(ql), starts(kl)
    chunks = []
    for b in range(len(ql)):
        qb, kb = ql[b], kl[b]
        if qb == 0:
            continue
        qq = q[:, :, qs[b]:qs[b] + qb]
        if kb == 0:
            # no keys at all: every row of this block is fully masked -> 0
            chunks.append(torch.zeros(q.shape[0], q.shape[1], qb, v.shape[-1], dtype=torch.float64))
            continue
        kk = k[:, :, ks[b]:ks[b] + kb]
        vv = v[:, :, ks[b]:ks[b] + kb]
        m = None
        if cv is not None:
            off_b = 0 if cv == "upperLeft" else kb - qb
            m = torch.tril(torch.ones(qb, kb, dtype=torch.bool), diagonal=off_b)
            if cv == "upperLeft":
                assert torch.equal(m, causal_upper_left(qb, kb)._materialize())
            else:
                assert torch.equal(m, causal_lower_right(qb, kb)._materialize())
        chunks.append(torch_sdpa(qq, kk, vv, m, scale, enable_gqa))
    return torch.cat(chunks, dim=2).numpy()


def per_batch_padding_reference(q, k, v, parts, scale, enable_gqa, B, H, L, S):
    """keyPadding: run each batch with its keys truncated to lengths[b]; the
    other parts' masks are materialised for the full S and sliced."""
    kp = [p for p in parts if p["kind"] == "keyPadding"]
    assert len(kp) == 1
    rest = [p for p in parts if p["kind"] != "keyPadding"]
    full = additive_mask(all_terms(rest, B, H, L, S), B, H, L, S) if rest else np.zeros((1, 1, L, S))
    outs = []
    for b, n in enumerate(kp[0]["lengths"]):
        if n == 0:
            outs.append(torch.zeros(1, q.shape[1], L, v.shape[-1], dtype=torch.float64))
            continue
        mb = torch.from_numpy(np.ascontiguousarray(full[min(b, full.shape[0] - 1):][:1, :, :, :n]))
        outs.append(torch_sdpa(q[b:b + 1], k[b:b + 1, :, :n], v[b:b + 1, :, :n], mb, scale, enable_gqa))
    return torch.cat(outs, dim=0).numpy()


def add_case(name, parts, layout="BHLE", B=1, H=2, Hkv=None, L=8, S=8, E=8, Ev=None,
             scale=None, qk_std=1.0):
    name = PREFIX + name
    assert name not in NAMES, name
    NAMES.add(name)
    Hkv = H if Hkv is None else Hkv
    Ev = E if Ev is None else Ev
    enable_gqa = Hkv != H
    assert H % Hkv == 0
    if layout == "HLE":
        assert B == 1 and not any(p["kind"] == "keyPadding" for p in parts)

    rng = rng_for(name)
    q, k, v = make_qkv(rng, layout, B, H, Hkv, L, S, E, Ev, qk_std)

    # float64 [B,H,L,E] views (HLE gets a leading batch of 1 for the checks)
    q64, k64, v64 = (torch.from_numpy(x).double() for x in (q, k, v))
    if layout == "BLHE":
        q64, k64, v64 = (x.permute(0, 2, 1, 3).contiguous() for x in (q64, k64, v64))
    if layout == "HLE":
        q64, k64, v64 = (x.unsqueeze(0) for x in (q64, k64, v64))
    eff_scale = 1.0 / math.sqrt(E) if scale is None else float(scale)

    terms = all_terms(parts, B, H, L, S)
    has_softcap = any(p["kind"] == "softCap" for p in parts)

    ref, full = explicit_reference(q64.numpy(), k64.numpy(), v64.numpy(), terms, eff_scale)
    checks = {}

    if not has_softcap:
        am = additive_mask(terms, B, H, L, S)  # [Bm, Hm, L, S]
        if layout == "HLE":
            am_t = torch.from_numpy(np.ascontiguousarray(am[0]))  # [Hm, L, S]
            out = torch_sdpa(q64[0], k64[0], v64[0], am_t, scale, enable_gqa).unsqueeze(0)
        else:
            am_t = torch.from_numpy(np.ascontiguousarray(am))
            out = torch_sdpa(q64, k64, v64, am_t, scale, enable_gqa)
        out = out.numpy().copy()
        checks["explicit"] = check(name, "explicit numpy vs torch SDPA", ref, out)
        source = "torch SDPA MATH, explicit float64 additive mask"
        if enable_gqa:
            g = H // Hkv
            o4 = torch_sdpa(q64, k64.repeat_interleave(g, dim=1), v64.repeat_interleave(g, dim=1),
                            torch.from_numpy(np.ascontiguousarray(am)), scale, False).numpy()
            checks["gqa_repeat"] = check(name, "GQA repeat_interleave", o4, out)
    else:
        out = ref.copy()
        source = "explicit float64 (numpy)"

    # fully masked rows must be exactly 0 (and there must be no NaN)
    assert not np.isnan(out).any(), name
    full = np.broadcast_to(full, out.shape[:-1])
    n_full = int(full.sum())
    if n_full:
        assert np.all(out[full] == 0.0), f"{name}: fully masked rows not zero"
    assert not np.any(np.all(out[~full] == 0.0, axis=-1)), name

    # independent flex_attention implementation
    fo = flex_reference(q64, k64, v64, parts, eff_scale, q64.shape[0], H, L, S)
    checks["flex"] = check(name, "flex_attention", fo, out)

    for p in parts:
        if p["kind"] == "blockDiagonal":
            assert len(parts) == 1 or all(x["kind"] in ("blockDiagonal",) for x in parts)
            pb = per_block_reference(name, q64, k64, v64, p, scale, enable_gqa)
            checks["per_block"] = check(name, "per-sequence SDPA", pb, out)
        if p["kind"] == "keyPadding" and not has_softcap:
            pp = per_batch_padding_reference(q64, k64, v64, parts, scale, enable_gqa, B, H, L, S)
            checks["per_batch"] = check(name, "per-batch truncated keys", pp, out)
        if p["kind"] == "window" and p["right"] == 0 and (p["left"] is None or p["left"] >= L + S) \
                and len(parts) == 1 and not enable_gqa:
            cb = (causal_upper_left if p["alignment"] == "upperLeft" else causal_lower_right)(L, S)
            qx, kx, vx = (q64[0], k64[0], v64[0]) if layout == "HLE" else (q64, k64, v64)
            with sdpa_kernel(SDPBackend.MATH):
                oc = F.scaled_dot_product_attention(qx, kx, vx, attn_mask=cb, scale=scale)
            if layout == "HLE":
                oc = oc.unsqueeze(0)
            checks["torch_causal_bias"] = check(name, "torch CausalBias", oc.numpy(), out)

    if layout == "HLE":
        out = out[0]
    expect = (H, L, Ev) if layout == "HLE" else (B, H, L, Ev)
    assert out.shape == expect, (name, out.shape, expect)

    entry = {
        "name": name,
        "layout": layout,
        "query": save(name, "q", q),
        "key": save(name, "k", k),
        "value": save(name, "v", v),
        "output": save(name, "out", out),
        "scale": None if scale is None else float(scale),
        "enableGQA": bool(enable_gqa),
        "dtype": "float32",
        "biases": parts,
    }
    CASES.append(entry)
    SUMMARY.append((name, layout, q.shape, k.shape, v.shape, out.shape, n_full, out.size,
                    source, checks))


SUMMARY = []


# --------------------------------------------------------------------------
# Case list
# --------------------------------------------------------------------------
def wtag(left, right, alignment):
    f = lambda x: "Null" if x is None else str(x)  # noqa: E731
    return f"window_l{f(left)}_r{f(right)}_{alignment}"


def build_cases():
    UL, LR = "upperLeft", "lowerRight"

    # 1. window alone ----------------------------------------------------------
    for (left, right) in [(3, 0), (3, 2), (0, 0), (None, 0), (2, None), (0, None)]:
        for al in (UL, LR):
            for (L, S) in [(9, 13), (13, 9), (11, 11)]:
                add_case(f"{wtag(left, right, al)}_B1_H2_L{L}_S{S}_E8",
                         [window(left, right, al)], B=1, H=2, L=L, S=S, E=8)
    # windows larger than the sequence
    for al in (UL, LR):
        add_case(f"{wtag(100, 0, al)}_B1_H2_L10_S14_E8", [window(100, 0, al)], H=2, L=10, S=14)
        add_case(f"{wtag(100, 100, al)}_B1_H2_L14_S10_E8", [window(100, 100, al)], H=2, L=14, S=10)
        add_case(f"{wtag(100, 2, al)}_B2_H2_L12_S12_E16", [window(100, 2, al)], B=2, H=2, L=12, S=12, E=16)
    add_case("window_lNull_rNull_upperLeft_B1_H2_L7_S9_E8", [window(None, None, UL)], H=2, L=7, S=9)
    # longer sequences with a narrow band, explicit scale, E = 64
    add_case("window_l16_r0_lowerRight_B1_H2_L64_S64_E64", [window(16, 0, LR)], H=2, L=64, S=64, E=64)
    add_case("window_l5_r3_upperLeft_B1_H2_L40_S70_E16_scale0p3", [window(5, 3, UL)],
             H=2, L=40, S=70, E=16, scale=0.3)
    add_case("window_l7_r1_lowerRight_B1_H2_L70_S33_E16", [window(7, 1, LR)], H=2, L=70, S=33, E=16)
    # GQA
    add_case("window_l4_r1_lowerRight_gqa_Hq6_Hkv2_B2_L10_S16_E16", [window(4, 1, LR)],
             B=2, H=6, Hkv=2, L=10, S=16, E=16)
    add_case("window_l3_r0_upperLeft_gqa_Hq6_Hkv2_B1_L14_S9_E8", [window(3, 0, UL)],
             B=1, H=6, Hkv=2, L=14, S=9, E=8)
    # BLHE
    add_case("window_l3_r2_upperLeft_BLHE_B2_H3_L9_S12_E8", [window(3, 2, UL)],
             layout="BLHE", B=2, H=3, L=9, S=12, E=8)
    add_case("window_l2_r0_lowerRight_BLHE_gqa_Hq6_Hkv2_B1_L12_S7_E8", [window(2, 0, LR)],
             layout="BLHE", B=1, H=6, Hkv=2, L=12, S=7, E=8)

    # 2. window + alibi (+ causal lowerRight) -------------------------------------
    add_case("window_l8_r0_lowerRight__alibi_std_noCausal__B1_H8_L24_S40_E16",
             [window(8, 0, LR), alibi(get_slopes(8), None)], H=8, L=24, S=40, E=16)
    add_case("causal_lowerRight__window_l6_rNull_lowerRight__alibi_std_lowerRight__B2_H4_L20_S32_E16",
             [causal(LR), window(6, None, LR), alibi(get_slopes(4), LR)], B=2, H=4, L=20, S=32, E=16)
    add_case("window_l5_r0_lowerRight__alibi_std_lowerRight__gqa_Hq8_Hkv2_B1_L16_S16_E16",
             [window(5, 0, LR), alibi(get_slopes(8), LR)], H=8, Hkv=2, L=16, S=16, E=16)
    add_case("alibi_custom_upperLeft__window_l3_r0_upperLeft__B1_H3_L12_S8_E8",
             [alibi([0.75, 0.3125, 0.0625], UL), window(3, 0, UL)], H=3, L=12, S=8, E=8)
    add_case("window_l4_r0_lowerRight__alibi_std_lowerRight__B1_H4_L12_S8_E8",
             [window(4, 0, LR), alibi(get_slopes(4), LR)], H=4, L=12, S=8, E=8)

    # 3. blockDiagonal --------------------------------------------------------------
    for cv in (None, UL, LR):
        ct = cv or "noCausal"
        add_case(f"blockDiagonal_q5-0-7-3_k5-0-7-3_{ct}_B1_H2_L15_S15_E8",
                 [block_diagonal([5, 0, 7, 3], [5, 0, 7, 3], cv)], H=2, L=15, S=15, E=8)
        add_case(f"blockDiagonal_q4-6_k9-2_{ct}_B1_H2_L10_S11_E8",
                 [block_diagonal([4, 6], [9, 2], cv)], H=2, L=10, S=11, E=8)
    ql8 = [7, 0, 12, 3, 9, 1, 15, 13]  # 60
    add_case("blockDiagonal_8seqs_sameLengths_upperLeft_B2_H4_L60_S60_E16",
             [block_diagonal(ql8, ql8, UL)], B=2, H=4, L=60, S=60, E=16)
    add_case("blockDiagonal_8seqs_sameLengths_noCausal_B2_H2_L60_S60_E16",
             [block_diagonal(ql8, ql8, None)], B=2, H=2, L=60, S=60, E=16)
    # queries / keys differ, incl. q_b = 0 < k_b, q_b > k_b = 0 and q_b > k_b > 0
    qd = [6, 0, 10, 4, 8, 2, 11, 9]   # 50
    kd = [9, 5, 10, 0, 12, 1, 15, 6]  # 58
    for cv in (None, UL, LR):
        ct = cv or "noCausal"
        add_case(f"blockDiagonal_8seqs_q6-0-10-4-8-2-11-9_k9-5-10-0-12-1-15-6_{ct}_gqa_Hq4_Hkv2_B2_L50_S58_E16",
                 [block_diagonal(qd, kd, cv)], B=2, H=4, Hkv=2, L=50, S=58, E=16)
    add_case("blockDiagonal_q3-5-0-4_k6-2-3-4_lowerRight_BLHE_B2_H3_L12_S15_E8",
             [block_diagonal([3, 5, 0, 4], [6, 2, 3, 4], LR)], layout="BLHE", B=2, H=3, L=12, S=15, E=8)

    # 4. keyPadding -----------------------------------------------------------------
    add_case("keyPadding_0-5-12_B3_H2_L7_S12_E8", [key_padding([0, 5, 12])], B=3, H=2, L=7, S=12)
    add_case("keyPadding_0-5-12__causal_lowerRight__B3_H2_L7_S12_E8",
             [key_padding([0, 5, 12]), causal(LR)], B=3, H=2, L=7, S=12)
    add_case("keyPadding_0-5-8__causal_lowerRight__B3_H2_L10_S8_E8",
             [key_padding([0, 5, 8]), causal(LR)], B=3, H=2, L=10, S=8)
    add_case("keyPadding_0-5-12__alibi_std_noCausal__B3_H4_L7_S12_E8",
             [key_padding([0, 5, 12]), alibi(get_slopes(4), None)], B=3, H=4, L=7, S=12)
    add_case("keyPadding_0-5-12__alibi_std_lowerRight__B3_H4_L7_S12_E8",
             [key_padding([0, 5, 12]), alibi(get_slopes(4), LR)], B=3, H=4, L=7, S=12)
    add_case("keyPadding_0-5-16__causal_lowerRight__gqa_Hq4_Hkv2_B3_L9_S16_E16",
             [key_padding([0, 5, 16]), causal(LR)], B=3, H=4, Hkv=2, L=9, S=16, E=16)
    add_case("keyPadding_0-5-11_BLHE_B3_H2_L6_S11_E8", [key_padding([0, 5, 11])],
             layout="BLHE", B=3, H=2, L=6, S=11)

    # 5. softCap (scale 1, q/k std 3 so scores saturate) --------------------------------
    for cap in (5.0, 50.0):
        ct = f"{cap:g}"
        add_case(f"softCap{ct}_scale1_qkStd3_B1_H2_L10_S12_E16", [soft_cap(cap)],
                 H=2, L=10, S=12, E=16, scale=1.0, qk_std=3.0)
        add_case(f"softCap{ct}__causal_upperLeft__scale1_qkStd3_B2_H2_L11_S11_E16",
                 [soft_cap(cap), causal(UL)], B=2, H=2, L=11, S=11, E=16, scale=1.0, qk_std=3.0)
        add_case(f"softCap{ct}__causal_lowerRight__scale1_qkStd3_B1_H2_L12_S8_E16",
                 [soft_cap(cap), causal(LR)], H=2, L=12, S=8, E=16, scale=1.0, qk_std=3.0)
        add_case(f"softCap{ct}__window_l4_r0_lowerRight__keyPadding_0-5-14__scale1_qkStd3_B3_H2_L9_S14_E16",
                 [soft_cap(cap), window(4, 0, LR), key_padding([0, 5, 14])],
                 B=3, H=2, L=9, S=14, E=16, scale=1.0, qk_std=3.0)
    # the cap acts on the *scaled* score
    add_case("softCap5_scale0p5_qkStd3_B1_H2_L8_S10_E16", [soft_cap(5.0)],
             H=2, L=8, S=10, E=16, scale=0.5, qk_std=3.0)
    add_case("softCap20__causal_upperLeft__defaultScale_qkStd3_gqa_Hq4_Hkv1_B1_L9_S9_E64", [soft_cap(20.0), causal(UL)],
             H=4, Hkv=1, L=9, S=9, E=64, qk_std=3.0)
    # list order matters: cap before vs after the ALiBi bias
    add_case("softCap5__alibi_custom_lowerRight__scale1_qkStd3_B1_H2_L8_S11_E16",
             [soft_cap(5.0), alibi([1.0, 0.25], LR)], H=2, L=8, S=11, E=16, scale=1.0, qk_std=3.0)
    add_case("alibi_custom_lowerRight__softCap5__scale1_qkStd3_B1_H2_L8_S11_E16",
             [alibi([1.0, 0.25], LR), soft_cap(5.0)], H=2, L=8, S=11, E=16, scale=1.0, qk_std=3.0)

    # 6. 3-D HLE -----------------------------------------------------------------------
    add_case("window_l2_r1_lowerRight_HLE_H3_L9_S13_E8", [window(2, 1, LR)],
             layout="HLE", H=3, L=9, S=13, E=8)
    add_case("window_l3_r0_upperLeft_HLE_H2_L12_S7_E8", [window(3, 0, UL)],
             layout="HLE", H=2, L=12, S=7, E=8)
    add_case("window_l4_rNull_upperLeft__alibi_std_noCausal__HLE_H4_L10_S10_E16",
             [window(4, None, UL), alibi(get_slopes(4), None)], layout="HLE", H=4, L=10, S=10, E=16)


def sanity_checks():
    """Spot checks of the mask constructors against hand-written loops."""
    L, S = 6, 9
    for al in ("upperLeft", "lowerRight"):
        off = 0 if al == "upperLeft" else S - L
        for left in (None, 0, 2, 100):
            for right in (None, 0, 1, 100):
                m = part_terms(window(left, right, al), 1, 1, L, S)[0][1][0, 0]
                for i in range(L):
                    for j in range(S):
                        ok = (left is None or j >= i + off - left) and (right is None or j <= i + off + right)
                        assert m[i, j] == ok
        c = part_terms(causal(al), 1, 1, L, S)[0][1][0, 0]
        w = part_terms(window(None, 0, al), 1, 1, L, S)[0][1][0, 0]
        assert np.array_equal(c, w)
    # block diagonal vs explicit loop
    ql, kl = [2, 0, 3, 4], [1, 3, 0, 5]
    for cv in (None, "upperLeft", "lowerRight"):
        m = part_terms(block_diagonal(ql, kl, cv), 1, 1, sum(ql), sum(kl))[0][1][0, 0]
        qs, ks = starts(ql), starts(kl)
        for i in range(sum(ql)):
            bi = int(np.searchsorted(qs, i, side="right") - 1)
            for j in range(sum(kl)):
                bj = int(np.searchsorted(ks, j, side="right") - 1)
                ok = bi == bj
                if ok and cv is not None:
                    off = 0 if cv == "upperLeft" else kl[bi] - ql[bi]
                    ok = (j - ks[bj]) <= (i - qs[bi]) + off
                assert m[i, j] == ok, (cv, i, j)


def probe():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(1, 1, 3, 8, generator=g, dtype=torch.float64)
    k = torch.zeros(1, 1, 0, 8, dtype=torch.float64)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            o = F.scaled_dot_product_attention(q, k, k)
        note(f"torch SDPA MATH with S = 0 returns shape {tuple(o.shape)}, "
             f"nan={bool(torch.isnan(o).any())}; per-sequence check fills k_b = 0 blocks with 0 itself")
    except Exception as e:  # noqa: BLE001
        note(f"torch SDPA MATH with S = 0 raises {type(e).__name__}; per-sequence check fills "
             "k_b = 0 blocks with 0 itself")


def main():
    for p in list(HERE.glob(PREFIX + "*.npy")) + [HERE / "bias_manifest.json"]:
        if p.exists():
            p.unlink()
    sanity_checks()
    probe()
    build_cases()
    (HERE / "bias_manifest.json").write_text(
        json.dumps({"generator": torch.__version__, "cases": CASES}, indent=1) + "\n")

    total = sum(p.stat().st_size for p in HERE.glob(PREFIX + "*.npy"))
    total += (HERE / "bias_manifest.json").stat().st_size
    worst = {}
    for (name, layout, qs, ks, vs, os_, n_full, _, source, checks) in SUMMARY:
        print(f"{name}: {layout} q{tuple(qs)} k{tuple(ks)} v{tuple(vs)} out{tuple(os_)} "
              f"fullyMaskedRows={n_full} [{source}]")
        for c, d in checks.items():
            worst[c] = max(worst.get(c, 0.0), d)
    print(f"torch {torch.__version__}, numpy {np.__version__}: {len(CASES)} cases, "
          f"{total / 1e6:.3f} MB (bias_* npy + bias_manifest.json)")
    for c, d in sorted(worst.items()):
        print(f"max |diff| {c}: {d:.3e}")
    for n in NOTES:
        print("note:", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
