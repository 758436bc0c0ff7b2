#!/usr/bin/env python3
"""Generate PyTorch float64 autograd fixtures for the attention backward pass.

Run from the repository root (after make_fixtures.py, which deletes every *.npy in this directory,
including the grad_* files written here):

    ~/.torchenv/bin/python Tests/SDPATests/Fixtures/make_grad_fixtures.py

Writes grad_manifest.json and grad_*.npy next to this script and touches nothing else.  Inputs are
random but deterministic (each case seeds its own numpy Generator from a CRC32 of its name).

Each case has bias_manifest.json's fields (`name`, `layout`, `query`, `key`, `value`, `scale`,
`enableGQA`, `dtype`, `biases`: parts composed left to right, possibly none), plus
  isCausal        true: the call passes isCausal (upper-left causal), and `biases` is empty
  bias            {"kind": "tensor", "mask": file} for a TensorBias case (bool or float32 mask of any
                  shape broadcastable to [B, H, L, S]); absent otherwise
  gradOutput      dL/doutput, float32, stored like the inputs (BLHE: [B, L, H, Ev], viewed as [B, H, L, Ev])
  dropout         {"p": float32 value, "seed": int} or null; with it, `output` (float64 [B, H, L, Ev]) too
  gradQuery, gradKey, gradValue
                  float64 dL/dq, dL/dk, dL/dv, as [B, H, L, E] etc. (3-D for HLE), whatever the layout
  gradMask        float64 dL/dmask in the mask's own shape (summed over broadcast dimensions), for a
                  float mask; absent otherwise
  alibiSlopesGradient
                  for each alibi part (in order), float64 dL/dslopes, one per query head; [] without one
  fullyMaskedRows the number of (b, h, i) rows that see no key
  sinks, sinksGradient
                  only in the cases with learned attention sinks: a file of H float32 sink logits (one per
                  query head, -inf for none) and float64 dL/dsinks, H values
  torchFloat32MaxAbsError
                  PyTorch's float32 autograd on the same inputs against the float64 gradients (dq, dk, dv):
                  a yardstick, as make_activation_fixtures.py records for the forward.

Reference semantics: make_bias_fixtures.py's forward (parts in list order; score modifiers on the
scaled score, masks after every modifier; a float mask adds, -inf masks; rows that see no key give 0;
the scale and the slopes rounded to float32, as the package takes them),
differentiated by torch autograd in float64 from the exact input values, with a safe softmax (a fully
masked row has zero gradients, never NaN).  ALiBi slopes and float masks are leaf tensors, so their
gradients come from autograd too.  GQA repeats K/V (autograd sums each group's query heads).

Dropout: the keep decision of position (b, h, i, j) is the package's counter-based generator
(Sources/SDPA/Kernels/CounterRandom.swift), written here in numpy: counter n = ((b H + h) L + i) S + j,
z = seed + (n + 1) * 0x9E3779B97F4A7C15, then SplitMix64's finalizer; the weight is dropped when
(z >> 11) * 2^-53 < p, kept ones scaled by 1 / (1 - p).

Cross-checks (each must agree to 1e-10, relative to the largest gradient of its kind where that exceeds 1): an independent
numpy implementation of the analytic backward (P, dP, D = rowsum(P o dP), dS = P o (dP - D), the
soft-cap derivative 1 - tanh^2, dslope = -sum dS |i + off - j|, dmask = dS summed over broadcast
dimensions) on every case (and for sinks, central differences of the loss in float64, to 1e-7); and torch SDPA
under sdpa_kernel(SDPBackend.MATH) differentiated by
autograd, with the bias as an explicit float64 additive mask built from leaf tensors (the slopes, the
float mask), on every case without soft-capping or dropout.

Sinks (gpt-oss; PyTorch has none): row i of head h is softmax over its visible scores and sinks[h], the
sink's weight dropped (it feeds no output); a row that sees no key gives 0.  Autograd differentiates that
written out; the numpy backward adds dsinks[h] = -sum_{b,i} p_sink D; the SDPA cross-check runs torch SDPA
on K and V with one more key and value row of zeros, whose score is the sink through an additive mask
column built from the sinks' leaf tensor.
"""

import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# The composable-bias generator's parts and conventions: one copy of each.
from make_bias_fixtures import (HERE, NEG_INF, alibi, all_terms, block_diagonal, causal, get_slopes, key_padding,
                                rng_for, save, soft_cap, window)

PREFIX = "grad_"
TOL = 1e-10
UL, LR = "upperLeft", "lowerRight"
CASES = []
NAMES = set()


def dropout_keep(seed, p, B, H, L, S):
    """The package's keep mask [B, H, L, S] for float32 probability p."""
    n = np.arange(B * H * L * S, dtype=np.uint64).reshape(B, H, L, S)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (n + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    unit = (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return unit >= np.float64(np.float32(p))


def alibi_distance(part, L, S):
    off = 0 if part["causal"] == UL else S - L
    i, j = np.arange(L).reshape(L, 1), np.arange(S).reshape(1, S)
    return np.abs(i + off - j).astype(np.float64)


def forward_torch(q, k, v, parts, mask, is_causal, scale, keep_dropout, p, dtype=torch.float64, sinks=None, mask_at=None):
    """Explicit ops on [B, H, L, E] tensors; returns (out, leaves: slopes per alibi part, the float mask,
    fully masked rows, the sinks). mask_at: the mask is a part of the composition, applied before parts[mask_at]
    (None: after every part)."""
    B, H, L, _ = q.shape
    S = k.shape[2]
    g = H // k.shape[1]
    k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
    s = (q @ k.transpose(-1, -2)) * scale
    keep = torch.ones(1, 1, L, S, dtype=torch.bool)
    slopes = []
    mask_leaf = None

    def apply_mask(s, keep):
        nonlocal mask_leaf
        if mask.dtype == np.bool_:
            return s, keep & torch.from_numpy(mask)
        mask_leaf = torch.tensor(mask.astype(np.float64), dtype=dtype, requires_grad=True)
        finite = torch.from_numpy(mask != NEG_INF)
        return s + mask_leaf.masked_fill(~finite, 0), keep & finite

    for n, part in enumerate(parts):
        if mask is not None and mask_at == n:
            s, keep = apply_mask(s, keep)
        if part["kind"] == "alibi":
            t = torch.tensor(part["slopes"], dtype=dtype, requires_grad=True)
            slopes.append(t)
            s = s - t.view(H, 1, 1) * torch.from_numpy(alibi_distance(part, L, S)).to(dtype)
            if part["causal"] is not None:
                off = 0 if part["causal"] == UL else S - L
                keep = keep & torch.from_numpy(np.tril(np.ones((L, S), dtype=bool), k=off))
        elif part["kind"] == "softCap":
            s = part["cap"] * torch.tanh(s / part["cap"])
        else:
            (_, m), = all_terms([part], B, H, L, S)
            keep = keep & torch.from_numpy(np.ascontiguousarray(m))
    if mask is not None and (mask_at is None or mask_at == len(parts)):
        s, keep = apply_mask(s, keep)
    if is_causal:
        keep = keep & torch.from_numpy(np.tril(np.ones((L, S), dtype=bool)))
    keep = keep.expand(B, H, L, S)
    s = s.masked_fill(~keep, NEG_INF)
    full = ~keep.any(-1, keepdim=True)
    sink_leaf = None
    if sinks is None:
        m = torch.where(full, torch.zeros((), dtype=dtype), s.max(-1, keepdim=True).values).detach()
        e = torch.exp(s - m)
        w = e / torch.where(full, torch.ones((), dtype=dtype), e.sum(-1, keepdim=True))
    else:
        sink_leaf = torch.tensor(sinks, dtype=dtype, requires_grad=True)
        sk = sink_leaf.view(1, H, 1, 1)
        top = torch.maximum(s.max(-1, keepdim=True).values, sk).detach()
        m = torch.where(torch.isfinite(top), top, torch.zeros((), dtype=dtype))
        e = torch.exp(s - m)
        den = e.sum(-1, keepdim=True) + torch.exp(sk - m)
        w = e / torch.where(den == 0, torch.ones((), dtype=dtype), den)
    if keep_dropout is not None:
        w = w * torch.from_numpy(keep_dropout).to(dtype) / (1 - float(np.float32(p)))
    return w @ v, slopes, mask_leaf, full[..., 0], sink_leaf


def numpy_backward(q, k, v, dO, parts, mask, is_causal, scale, keep_dropout, p, sinks=None, mask_at=None):
    """The analytic backward in numpy, written independently of autograd: (dq, dk, dv, dmask, dslopes, dsinks)."""
    B, H, L, E = q.shape
    S, Hkv = k.shape[2], k.shape[1]
    g = H // Hkv
    kk, vv = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
    raw = np.matmul(q, np.swapaxes(kk, -1, -2)) * scale
    keep = np.ones((B, H, L, S), dtype=bool)
    stages = []  # (kind, input scores, part) for the modifiers, in order
    s = raw
    at = len(parts) if mask_at is None else mask_at
    for n, part in enumerate(list(parts) + [None]):
        if mask is not None and n == at:
            if mask.dtype == np.bool_:
                keep &= mask
            else:
                stages.append(("mask", s, None))
                keep &= mask != NEG_INF
                s = s + np.where(mask == NEG_INF, 0.0, mask.astype(np.float64))
        if part is None:
            break
        if part["kind"] == "alibi":
            stages.append(("alibi", s, part))
            s = s - np.asarray(part["slopes"]).reshape(H, 1, 1) * alibi_distance(part, L, S)
            if part["causal"] is not None:
                off = 0 if part["causal"] == UL else S - L
                keep &= np.tril(np.ones((L, S), dtype=bool), k=off)
        elif part["kind"] == "softCap":
            stages.append(("softCap", s, part))
            s = part["cap"] * np.tanh(s / part["cap"])
        else:
            (_, m), = all_terms([part], B, H, L, S)
            keep &= m
    if is_causal:
        keep &= np.tril(np.ones((L, S), dtype=bool))
    s = np.where(keep, s, NEG_INF)
    full = ~keep.any(-1, keepdims=True)
    sk = np.full((1, H, 1, 1), NEG_INF) if sinks is None else np.asarray(sinks, dtype=np.float64).reshape(1, H, 1, 1)
    top = np.maximum(np.max(s, axis=-1, keepdims=True), sk)
    mx = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(s - mx)
    den = e.sum(-1, keepdims=True) + np.exp(sk - mx)
    den = np.where(den == 0, 1.0, den)
    P, p_sink = e / den, np.exp(sk - mx) / den
    Z = np.ones_like(P) if keep_dropout is None else keep_dropout / (1 - float(np.float32(p)))
    dv = np.matmul(np.swapaxes(P * Z, -1, -2), dO)
    dP = np.matmul(dO, np.swapaxes(vv, -1, -2)) * Z
    D = np.sum(P * dP, axis=-1, keepdims=True)
    dS = P * (dP - D)
    dsinks = -np.sum(p_sink * D, axis=(0, 2, 3))
    dmask = None

    def summed_to_mask(grad):
        # sum over the dimensions the mask was broadcast along
        full_shape = grad.shape
        shape = (1,) * (4 - mask.ndim) + mask.shape
        for axis in range(4):
            if shape[axis] == 1 and full_shape[axis] != 1:
                grad = grad.sum(axis=axis, keepdims=True)
        return grad.reshape(mask.shape)

    dslopes = []
    grad = dS
    for kind, inp, part in reversed(stages):
        if kind == "alibi":
            dslopes.append(-np.sum(grad * alibi_distance(part, L, S), axis=(0, 2, 3)))
        elif kind == "mask":
            dmask = summed_to_mask(grad)
        else:
            grad = grad * (1 - np.tanh(inp / part["cap"]) ** 2)
    dslopes.reverse()
    dq = np.matmul(grad, kk) * scale
    dk = np.matmul(np.swapaxes(grad, -1, -2), q) * scale
    dk = dk.reshape(B, Hkv, g, S, E).sum(axis=2)
    dv = dv.reshape(B, Hkv, g, S, v.shape[-1]).sum(axis=2)
    return dq, dk, dv, dmask, dslopes, dsinks


def sdpa_backward(q, k, v, dO, parts, mask, is_causal, scale, gqa, sinks=None):
    """torch SDPA (MATH) with the bias as one explicit additive float64 mask built from leaf tensors; sinks as
    one more key and value row of zeros whose mask column is the sink."""
    B, H, L, _ = q.shape
    S = k.shape[2]
    leaves = [x.detach().clone().requires_grad_(True) for x in (q, k, v)]
    add = torch.zeros(1, 1, L, S, dtype=torch.float64)
    keep = torch.ones(1, 1, L, S, dtype=torch.bool)
    slopes, mask_leaf = [], None
    for part in parts:
        if part["kind"] == "alibi":
            t = torch.tensor(part["slopes"], dtype=torch.float64, requires_grad=True)
            slopes.append(t)
            add = add - t.view(1, H, 1, 1) * torch.from_numpy(alibi_distance(part, L, S))
            if part["causal"] is not None:
                off = 0 if part["causal"] == UL else S - L
                keep = keep & torch.from_numpy(np.tril(np.ones((L, S), dtype=bool), k=off))
        else:
            (_, m), = all_terms([part], B, H, L, S)
            keep = keep & torch.from_numpy(np.ascontiguousarray(m))
    if mask is not None:
        if mask.dtype == np.bool_:
            keep = keep & torch.from_numpy(mask)
        else:
            mask_leaf = torch.tensor(mask.astype(np.float64), requires_grad=True)
            add = add + mask_leaf.masked_fill(torch.from_numpy(mask == NEG_INF), 0)
            keep = keep & torch.from_numpy(mask != NEG_INF)
    if is_causal:
        keep = keep & torch.from_numpy(np.tril(np.ones((L, S), dtype=bool)))
    attn = add.masked_fill(~keep, NEG_INF)
    qkv, sink_leaf = list(leaves), None
    if sinks is not None:
        sink_leaf = torch.tensor(sinks, dtype=torch.float64, requires_grad=True)
        column = sink_leaf.view(1, H, 1, 1).expand(B, H, L, 1)
        attn = torch.cat([attn.expand(B, H, L, S), column], dim=-1)
        qkv[1:] = [torch.cat([x, torch.zeros(*x.shape[:2], 1, x.shape[3], dtype=torch.float64)], dim=2) for x in leaves[1:]]
    with sdpa_kernel(SDPBackend.MATH):
        out = F.scaled_dot_product_attention(*qkv, attn_mask=attn, scale=scale, enable_gqa=gqa)
    out.backward(dO)
    grads = [x.grad.numpy() for x in leaves]
    return (grads, (None if mask_leaf is None else mask_leaf.grad.numpy()), [t.grad.numpy() for t in slopes],
            None if sink_leaf is None else sink_leaf.grad.numpy())


def check(name, what, a, b):
    # relative to the largest value, or absolute below 1 (a [L, 1] mask's gradient is 0 up to rounding)
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1.0)
    d = float(np.max(np.abs(a - b))) / scale if a.size else 0.0
    assert d < TOL, f"{name}: {what} differs by {d:.3e} (relative to its largest value)"
    return d


def add_case(tag, parts=(), layout="BHLE", B=1, H=2, Hkv=None, L=8, S=8, E=8, Ev=None, scale=None, qk_std=1.0,
             is_causal=False, mask=None, mask_shape=None, dropout=None, sinks=None, mask_at=None):
    """mask: "bool" or "float" for a TensorBias of `mask_shape` (default [L, S]) drawn from the case's rng;
    mask_at: with parts, the mask is composed with them as part number mask_at (before parts[mask_at]);
    dropout: (p, seed); sinks: H logits (rounded to float32, as stored)."""
    name = f"{PREFIX}{tag}"
    assert name not in NAMES, name
    NAMES.add(name)
    Hkv = Hkv or H
    Ev = Ev or E
    # The package takes the scale and ALiBi slopes as float32: the reference uses those values.
    scale = None if scale is None else float(np.float32(scale))
    parts = [dict(x, slopes=[float(np.float32(v)) for v in x["slopes"]]) if x["kind"] == "alibi" else x for x in parts]
    gqa = Hkv != H
    sinks = None if sinks is None else [float(np.float32(x)) for x in sinks]
    assert sinks is None or len(sinks) == H, name
    assert not (parts and (is_causal or (mask and mask_at is None))), name
    assert mask_at is None or (mask and 0 <= mask_at <= len(parts)), name
    assert layout != "HLE" or B == 1
    rng = rng_for(name)

    def draw(std, *shape):
        return (std * rng.standard_normal(shape)).astype(np.float32)

    # [B, H, L, E] views of what is stored (BLHE stores [B, L, H, E]; HLE drops B)
    shapes = [(B, H, L, E), (B, Hkv, S, E), (B, Hkv, S, Ev), (B, H, L, Ev)]
    arrays = [draw(std, *s) for std, s in zip((qk_std, qk_std, 1.0, 1.0), shapes)]
    q, k, v, dO = arrays
    stored = [np.swapaxes(x, 1, 2) if layout == "BLHE" else x[0] if layout == "HLE" else x for x in arrays]

    mask_array = None
    entry_bias = None
    if mask is not None:
        ms = tuple(mask_shape or (L, S))
        if mask == "bool":
            mask_array = rng.random(ms) < 0.7
        else:
            mask_array = (2.0 * rng.standard_normal(ms)).astype(np.float32)
            mask_array[rng.random(ms) < 0.2] = NEG_INF
        if ms[-2:] == (L, S) and L > 2:  # a row that sees no key
            mask_array[..., 1, :] = False if mask == "bool" else NEG_INF
        entry_bias = {"kind": "tensor", "mask": save(name, "mask", mask_array)}

    eff_scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    keep_dropout = None if dropout is None else dropout_keep(dropout[1], dropout[0], B, H, L, S)
    p = None if dropout is None else dropout[0]

    # float64 autograd
    leaves = [torch.from_numpy(x.astype(np.float64)).requires_grad_(True) for x in (q, k, v)]
    out, slopes, mask_leaf, full, sink_leaf = forward_torch(*leaves, parts, mask_array, is_causal, eff_scale, keep_dropout, p,
                                                            sinks=sinks, mask_at=mask_at)
    out.backward(torch.from_numpy(dO.astype(np.float64)))
    dq, dk, dv = (x.grad.numpy() for x in leaves)
    dsinks = None if sink_leaf is None else sink_leaf.grad.numpy()
    dmask = None if mask_leaf is None else mask_leaf.grad.numpy()
    dslopes = [t.grad.numpy() for t in slopes]
    for x in (dq, dk, dv) + ((dmask,) if dmask is not None else ()):
        assert np.isfinite(x).all(), f"{name}: non-finite gradient"
    full = full.numpy()
    assert np.all(out.detach().numpy()[full] == 0), name

    # cross-checks
    checks = {}
    nq, nk, nv, nm, ns, nsk = numpy_backward(*(x.astype(np.float64) for x in (q, k, v, dO)), parts, mask_array, is_causal,
                                             eff_scale, keep_dropout, p, sinks=sinks, mask_at=mask_at)
    for what, a, b in [("dq", nq, dq), ("dk", nk, dk), ("dv", nv, dv)] + ([("dmask", nm, dmask)] if dmask is not None else []) \
            + [(f"dslopes{n}", a, b) for n, (a, b) in enumerate(zip(ns, dslopes))] \
            + ([("dsinks", nsk, dsinks)] if dsinks is not None else []):
        checks["numpy " + what] = check(name, f"numpy {what}", a, b)
    if dropout is None and not any(x["kind"] == "softCap" for x in parts):
        (sq, sk, sv), sm, ss, ssk = sdpa_backward(*(torch.from_numpy(x.astype(np.float64)) for x in (q, k, v)),
                                                  torch.from_numpy(dO.astype(np.float64)), parts, mask_array, is_causal,
                                                  eff_scale, gqa, sinks=sinks)
        for what, a, b in [("dq", sq, dq), ("dk", sk, dk), ("dv", sv, dv)] + ([("dmask", sm, dmask)] if dmask is not None else []) \
                + [(f"dslopes{n}", a, b) for n, (a, b) in enumerate(zip(ss, dslopes))] \
                + ([("dsinks", ssk, dsinks)] if dsinks is not None else []):
            checks["sdpa " + what] = check(name, f"SDPA autograd {what}", a, b)

    # dsinks by central differences of the loss <out, dO> in float64: independent of any backward formula
    if sinks is not None:
        def loss(logits):
            with torch.no_grad():
                o, *_ = forward_torch(*(torch.from_numpy(x.astype(np.float64)) for x in (q, k, v)), parts, mask_array, is_causal,
                                      eff_scale, keep_dropout, p, sinks=logits, mask_at=mask_at)
            return float((o * torch.from_numpy(dO.astype(np.float64))).sum())
        step = 1e-6
        differences = np.array([0.0 if not math.isfinite(x) else
                                (loss(sinks[:h] + [x + step] + sinks[h + 1:]) - loss(sinks[:h] + [x - step] + sinks[h + 1:])) / (2 * step)
                                for h, x in enumerate(sinks)])
        d = float(np.max(np.abs(differences - dsinks))) / max(float(np.max(np.abs(dsinks))), 1.0)
        assert d < 1e-7, f"{name}: dsinks differs from central differences by {d:.3e}"
        checks["differences dsinks"] = d

    # a composed float mask's gradient by central differences at a few of its finite entries: independent of the chain rule
    if mask_at is not None and dmask is not None:
        def mask_loss(values):
            with torch.no_grad():
                o, *_ = forward_torch(*(torch.from_numpy(x.astype(np.float64)) for x in (q, k, v)), parts, values, is_causal,
                                      eff_scale, keep_dropout, p, sinks=sinks, mask_at=mask_at)
            return float((o * torch.from_numpy(dO.astype(np.float64))).sum())
        finite = np.flatnonzero(mask_array != NEG_INF)
        probe = finite[np.linspace(0, len(finite) - 1, min(8, len(finite))).astype(int)]
        step, worst = 1e-6, 0.0
        for n in probe:
            up, down = mask_array.astype(np.float64), mask_array.astype(np.float64)
            up.flat[n] += step
            down.flat[n] -= step
            difference = (mask_loss(up) - mask_loss(down)) / (2 * step)
            worst = max(worst, abs(difference - dmask.flat[n]) / max(float(np.max(np.abs(dmask))), 1.0))
        assert worst < 1e-7, f"{name}: dmask differs from central differences by {worst:.3e}"
        checks["differences dmask"] = worst

    # PyTorch's float32 autograd on the same inputs: a yardstick
    l32 = [torch.from_numpy(x).requires_grad_(True) for x in (q, k, v)]
    o32, _, _, _, _ = forward_torch(*l32, parts, mask_array, is_causal, eff_scale, keep_dropout, p, dtype=torch.float32, sinks=sinks,
                                    mask_at=mask_at)
    o32.backward(torch.from_numpy(dO))
    t_err = max(float(np.max(np.abs(x.grad.numpy().astype(np.float64) - r))) for x, r in zip(l32, (dq, dk, dv)))

    def as_layout(x):
        return x[0] if layout == "HLE" else x

    entry = {
        "name": name,
        "layout": layout,
        "query": save(name, "q", stored[0]),
        "key": save(name, "k", stored[1]),
        "value": save(name, "v", stored[2]),
        "gradOutput": save(name, "dout", stored[3]),
        "scale": None if scale is None else float(scale),
        "enableGQA": bool(gqa),
        "dtype": "float32",
        "biases": parts,
        "isCausal": bool(is_causal),
        "dropout": None if dropout is None else {"p": float(np.float32(dropout[0])), "seed": int(dropout[1])},
        "gradQuery": save(name, "dq", as_layout(dq)),
        "gradKey": save(name, "dk", as_layout(dk)),
        "gradValue": save(name, "dv", as_layout(dv)),
        "alibiSlopesGradient": [[float(x) for x in s] for s in dslopes],
        "fullyMaskedRows": int(full.sum()),
        "torchFloat32MaxAbsError": t_err,
    }
    if entry_bias is not None:
        entry["bias"] = entry_bias
    if mask_at is not None:
        entry["maskPart"] = mask_at
    if dmask is not None:
        entry["gradMask"] = save(name, "dmask", dmask)
    if dropout is not None:
        entry["output"] = save(name, "out", as_layout(out.detach().numpy()))
    if sinks is not None:
        entry["sinks"] = save(name, "sinks", np.asarray(sinks, dtype=np.float32))
        entry["sinksGradient"] = [float(x) for x in dsinks]
    CASES.append(entry)
    worst = max(checks.values()) if checks else 0.0
    print(f"{name:58} full={int(full.sum()):4} torch float32 err={t_err:.2e} checks<= {worst:.1e}", flush=True)


def build_cases():
    s2, s4, s8 = get_slopes(2), get_slopes(4), get_slopes(8)
    # No bias, isCausal, causal variants (L > S lower-right: rows that see no key), Ev != E, scale.
    add_case("none_B2_H3_L9_S13_E8", B=2, H=3, L=9, S=13)
    add_case("none_Ev5_E16_L7_S11", L=7, S=11, E=16, Ev=5)
    add_case("none_scale0p3_L6_S10", L=6, S=10, scale=0.3)
    add_case("isCausal_L11_S11", L=11, S=11, is_causal=True)
    add_case("isCausal_L7_S12", L=7, S=12, is_causal=True)
    add_case("causalUpperLeft_L9_S13", [causal(UL)], L=9, S=13)
    add_case("causalLowerRight_L13_S9", [causal(LR)], L=13, S=9)
    # ALiBi: the paper's slopes, causal variants, and slopes of any sign (their gradients).
    add_case("alibi_H4_L8_S12", [alibi(s4)], H=4, L=8, S=12)
    add_case("alibi_causalLowerRight_H4_L10_S14", [alibi(s4, LR)], H=4, L=10, S=14)
    add_case("alibi_causalUpperLeft_slopes_L9_S9", [alibi([0.7, -0.3], UL)], L=9, S=9)
    # Windows, packed sequences, key padding, and compositions.
    add_case("window_l3_r2_lowerRight_L12_S12", [window(3, 2, LR)], L=12, S=12)
    add_case("alibi_window_l4_r0_causalLowerRight_L10_S16", [alibi(s2), window(4, 0, LR), causal(LR)], L=10, S=16)
    add_case("blockDiagonal_causalLowerRight_L9_S10", [block_diagonal([3, 0, 4, 2], [2, 3, 0, 5], LR)], L=9, S=10)
    add_case("keyPadding_B3_L6_S9", [key_padding([9, 0, 4])], B=3, L=6, S=9)
    # Soft-capping: alone, with a mask, before and after ALiBi (the slopes' gradient through the cap).
    add_case("softCap5_L8_S10", [soft_cap(5.0)], L=8, S=10, scale=1.0, qk_std=2.0)
    add_case("softCap3_causalLowerRight_L9_S9", [soft_cap(3.0), causal(LR)], L=9, S=9, scale=1.0, qk_std=2.0)
    add_case("alibi_softCap4_L8_S11", [alibi([0.5, 0.25]), soft_cap(4.0)], L=8, S=11, scale=1.0, qk_std=2.0)
    add_case("softCap4_alibi_causalUpperLeft_L10_S10", [soft_cap(4.0), alibi([0.5, 0.25], UL)], L=10, S=10, scale=1.0, qk_std=2.0)
    # Dense masks (TensorBias): float masks of every broadcast shape (their gradients summed over the
    # broadcast dimensions), a bool mask, rows that see no key.
    add_case("floatMask_L7_S9", mask="float", L=7, S=9)
    add_case("floatMask_B2_H3_L5_S6_full", mask="float", mask_shape=(2, 3, 5, 6), B=2, H=3, L=5, S=6)
    add_case("floatMask_B2_1_1_S_padding", mask="float", mask_shape=(2, 1, 1, 8), B=2, L=5, S=8)
    add_case("floatMask_H_L_S", mask="float", mask_shape=(3, 6, 7), H=3, L=6, S=7)
    add_case("floatMask_L_1_rows", mask="float", mask_shape=(6, 1), L=6, S=7)
    add_case("boolMask_L8_S10", mask="bool", L=8, S=10)
    # GQA (dK, dV summed over each group), decoding.
    add_case("alibi_causalLowerRight_gqa_Hq6_Hkv2_B2_L7_S11", [alibi(get_slopes(6), LR)], B=2, H=6, Hkv=2, L=7, S=11)
    add_case("floatMask_gqa_Hq4_Hkv2_L6_S8", mask="float", mask_shape=(1, 4, 6, 8), H=4, Hkv=2, L=6, S=8)
    add_case("decode_alibi_causalLowerRight_gqa_Hq8_Hkv2_L1_S40", [alibi(s8, LR)], H=8, Hkv=2, L=1, S=40, E=16)
    add_case("decode_none_L1_S33_Ev12", L=1, S=33, E=16, Ev=12)
    # Layouts: [B, L, H, E] files viewed as [B, H, L, E] (strided), and 3-D [H, L, E].
    add_case("window_l2_r1_upperLeft_BLHE_B2_H3_L7_S9", [window(2, 1, UL)], layout="BLHE", B=2, H=3, L=7, S=9)
    add_case("causalLowerRight_HLE_H3_L6_S9", [causal(LR)], layout="HLE", H=3, L=6, S=9)
    add_case("floatMask_HLE_H2_L5_S7", mask="float", mask_shape=(2, 5, 7), layout="HLE", L=5, S=7)
    # Dropout with the package's generator (forward output included).
    add_case("dropout0p3_none_B2_L6_S9", B=2, L=6, S=9, dropout=(0.3, 1234))
    add_case("dropout0p5_alibi_causalLowerRight_gqa_Hq4_Hkv2_L7_S10", [alibi(s4, LR)], H=4, Hkv=2, L=7, S=10,
             dropout=(0.5, 99))
    # Across the fused kernel's tiles: L and S in 129..300.
    add_case("tile_none_L257_S300", L=257, S=300)
    add_case("tile_causalLowerRight_L200_S289", [causal(LR)], L=200, S=289)
    add_case("tile_alibi_causalUpperLeft_L150_S260", [alibi(s2, UL)], L=150, S=260)
    add_case("tile_floatMask_L140_S150", mask="float", L=140, S=150)
    add_case("tile_softCap20_window_l100_r30_lowerRight_L160_S210", [soft_cap(20.0), window(100, 30, LR)], L=160, S=210,
             scale=1.0, qk_std=2.0)
    add_case("tile_causalLowerRight_gqa_Hq4_Hkv2_L131_S250", [causal(LR)], H=4, Hkv=2, L=131, S=250)
    add_case("tile_none_E72_Ev16_L129_S200", H=1, L=129, S=200, E=72, Ev=16)
    # Learned attention sinks (one logit per query head, -inf: none): every route, rows that see no key, a sink
    # that outweighs the keys, dropout, packed sequences, decoding, and across the fused kernel's tiles.
    inf = float("inf")
    add_case("sinks_none_gqa_Hq4_Hkv2_B2_L7_S11", B=2, H=4, Hkv=2, L=7, S=11, sinks=[0.5, -1.0, 2.0, -inf])
    add_case("sinks_isCausal_L9_S12", L=9, S=12, is_causal=True, sinks=[6.0, -3.0])
    add_case("sinks_causalLowerRight_L13_S9", [causal(LR)], L=13, S=9, sinks=[1.5, 0.25])
    add_case("sinks_alibi_causalLowerRight_H4_L10_S14", [alibi(s4, LR)], H=4, L=10, S=14, sinks=[0.0, 1.0, -2.0, 3.0])
    add_case("sinks_softCap5_L8_S10", [soft_cap(5.0)], L=8, S=10, scale=1.0, qk_std=2.0, sinks=[2.0, -0.5])
    add_case("sinks_floatMask_B2_H3_L5_S6", mask="float", mask_shape=(2, 3, 5, 6), B=2, H=3, L=5, S=6, sinks=[1.0, -inf, 0.3])
    add_case("sinks_dropout0p3_B2_L6_S9", B=2, L=6, S=9, dropout=(0.3, 77), sinks=[0.7, 1.2])
    add_case("sinks_blockDiagonal_causalLowerRight_L9_S10", [block_diagonal([3, 0, 4, 2], [2, 3, 0, 5], LR)], L=9, S=10,
             sinks=[-0.25, 2.5])
    add_case("sinks_decode_window_l7_r0_lowerRight_gqa_Hq8_Hkv2_L1_S40", [window(7, 0, LR)], H=8, Hkv=2, L=1, S=40, E=16,
             sinks=[round(0.1 * h - 0.3, 1) for h in range(8)])
    add_case("sinks_tile_causalLowerRight_gqa_Hq4_Hkv2_L131_S250", [causal(LR)], H=4, Hkv=2, L=131, S=250,
             sinks=[1.0, 4.0, -inf, -1.0])
    # A float mask composed with other parts (TensorBias(mask).combined(with: ...)): its gradient is the one that reaches
    # its part, through the soft-capping after it; broadcast shapes; packed sequences; decoding; across tiles; a bool
    # mask composed (no gradient).
    add_case("composedFloatMask_alibi_causalLowerRight_L9_S12", [alibi([0.5, 0.25], LR)], L=9, S=12, mask="float", mask_at=0)
    add_case("composedFloatMask_H_1_S_softCap4_L8_S10", [soft_cap(4.0)], L=8, S=10, scale=1.0, qk_std=2.0, mask="float",
             mask_shape=(2, 1, 10), mask_at=0)
    add_case("softCap4_composedFloatMask_B2_1_L_S", [soft_cap(4.0)], B=2, L=8, S=10, scale=1.0, qk_std=2.0, mask="float",
             mask_shape=(2, 1, 8, 10), mask_at=1)
    add_case("softCap6_composedFloatMask_alibi_softCap3_L9_S11", [soft_cap(6.0), alibi([0.5, -0.25]), soft_cap(3.0)], L=9, S=11,
             scale=1.0, qk_std=2.0, mask="float", mask_at=1)
    add_case("composedFloatMask_blockDiagonal_causalLowerRight_L9_S10", [block_diagonal([3, 0, 4, 2], [2, 3, 0, 5], LR)],
             L=9, S=10, mask="float", mask_at=1)
    add_case("decode_composedFloatMask_B2_1_1_S_alibi_causalLowerRight_gqa_Hq4_Hkv2_L1_S40", [alibi(s4, LR)], B=2, H=4, Hkv=2,
             L=1, S=40, E=16, mask="float", mask_shape=(2, 1, 1, 40), mask_at=0)
    add_case("tile_composedFloatMask_window_l100_r30_lowerRight_gqa_Hq4_Hkv2_L140_S200", [window(100, 30, LR)], H=4, Hkv=2,
             L=140, S=200, mask="float", mask_at=0)
    add_case("composedBoolMask_alibi_L8_S10", [alibi([0.5, 0.25])], L=8, S=10, mask="bool", mask_at=1)


def main():
    for p in list(HERE.glob(f"{PREFIX}*.npy")) + [HERE / "grad_manifest.json"]:
        if p.exists():
            p.unlink()
    torch.set_num_threads(1)
    build_cases()
    (HERE / "grad_manifest.json").write_text(json.dumps({"generator": torch.__version__, "cases": CASES}, indent=1) + "\n")
    files = list(HERE.glob(f"{PREFIX}*.npy")) + [HERE / "grad_manifest.json"]
    total = sum(p.stat().st_size for p in files)
    print(f"torch {torch.__version__}, numpy {np.__version__}: {len(CASES)} cases, {total / 1e6:.2f} MB; "
          f"cross-checks within {TOL:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
