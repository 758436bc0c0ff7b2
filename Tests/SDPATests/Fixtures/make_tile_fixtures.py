#!/usr/bin/env python3
"""Generate PyTorch reference fixtures that cross the fused kernel's tiles.

Run from the repository root (after make_fixtures.py, which deletes every *.npy in this directory,
including the tile_* files written here):

    ~/.torchenv/bin/python Tests/SDPATests/Fixtures/make_tile_fixtures.py

Writes tile_manifest.json and tile_*.npy next to this script and touches nothing else.  Inputs are
random but deterministic (each case seeds its own numpy Generator from a CRC32 of its name).

Why: every other fixture has S <= 300 and nearly all S <= 70, under one 128-key tile, so the tile
loop (online softmax across key tiles, several query tiles, skipped and partial tiles of each bias,
keys split across work items and merged) met PyTorch only in its first tile.  Here L and S run from
129 to 700, off the tile sizes (query tiles of ~96 rows, balanced; 128 keys for E <= 64, 64 above),
for every built-in bias and the compositions, in float32, float16 and bfloat16.

Each case has the fields of bias_manifest.json (`name`, `layout`, `query`, `key`, `value`, `output`,
`scale`, `enableGQA`, `dtype`, `biases`: parts composed left to right, possibly none), plus
  isCausal        true: the call passes isCausal (upper-left causal), and `biases` is empty
  bias            {"kind": "tensor", "mask": file} for a TensorBias case (a bool or float32 [L, S]
                  mask), as in manifest.json; absent otherwise
  logSumExp       float64 [B, H, L] log-sum-exp of the final scores, -inf for fully masked rows
  fullyMaskedRows the number of (b, h, i) rows that see no key
  torchBackend, torchMaxAbsError, torchLogSumExpMaxAbsError
                  PyTorch at the case's dtype on the same inputs and mask, against the reference:
                  what its default CPU dispatch ran ("flash", "math", or "eager" ops for soft-capping,
                  which SDPA lacks) and its max |error| (its log-sum-exp's where the flash kernel gives
                  one); a yardstick, recorded as make_activation_fixtures.py does.

Inputs: float32 and float16 cases store `<f4` / `<f2`; bfloat16 cases store their (exactly
bfloat16) values widened to `<f4`, as the package's .npy writer does, and the test converts them back
exactly.  Outputs and log-sum-exps are `<f8`.

Reference semantics: make_bias_fixtures.py's.  The float64 output comes from its explicit numpy
implementation (parts in list order, masks after every score modifier), from the exact input values;
cases without soft-capping are cross-checked against torch SDPA under sdpa_kernel(SDPBackend.MATH) with
the parts as one explicit float64 additive mask, and cases given as parts against an eager float64
flex_attention with independently written score_mod / mask_mod; all must agree to 1e-12.
"""

import json
import math
import sys
import warnings

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

# The composable-bias generator's parts, references and checks, and the activation generator's
# PyTorch-at-the-input-dtype yardstick: one copy of each.
from make_bias_fixtures import (HERE, NEG_INF, NOTES, TOL, additive_mask, alibi, all_terms, block_diagonal, causal,
                                check, explicit_reference, flex_reference, get_slopes, key_padding, note, rng_for,
                                save, soft_cap, torch_sdpa, window)
from make_activation_fixtures import torch_low_precision

# PyTorch says why its flash kernel passes over Ev != E; torchBackend records it.
warnings.filterwarnings("ignore", message=".*Flash attention.*")

PREFIX = "tile_"
UL, LR = "upperLeft", "lowerRight"
NP_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": np.float32}
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

CASES = []
NAMES = set()


def inputs(rng, dtype, B, H, Hkv, L, S, E, Ev, qk_std):
    """q, k, v as stored ([B, H, L, E] etc.) and as torch tensors of the case's dtype."""
    def r(std, *shape):
        x = (std * rng.standard_normal(shape)).astype(np.float32)
        if dtype == "bfloat16":  # round to bfloat16, store widened exactly
            return torch.from_numpy(x).to(torch.bfloat16).float().numpy()
        return x.astype(NP_DTYPES[dtype])
    q, k, v = r(qk_std, B, H, L, E), r(qk_std, B, Hkv, S, E), r(1.0, B, Hkv, S, Ev)
    as_torch = [torch.from_numpy(x).to(TORCH_DTYPES[dtype]) for x in (q, k, v)]
    return (q, k, v), as_torch


def add_case(tag, parts=(), dtype="float32", B=1, H=2, Hkv=None, L=257, S=389, E=8, Ev=None, is_causal=False,
             mask=None, scale=None, qk_std=1.0):
    """parts: bias_manifest.json parts; is_causal: the call's isCausal (no parts); mask: "bool" or
    "float" for a TensorBias [L, S] mask drawn from the case's rng."""
    name = f"{PREFIX}{tag}_{dtype}_B{B}_H{H}" + (f"_Hkv{Hkv}" if Hkv else "") + f"_L{L}_S{S}_E{E}" + (f"_Ev{Ev}" if Ev else "")
    assert name not in NAMES, name
    NAMES.add(name)
    Hkv = Hkv or H
    Ev = Ev or E
    parts = list(parts)
    assert not (parts and (is_causal or mask)), name
    rng = rng_for(name)
    (q, k, v), (qt, kt, vt) = inputs(rng, dtype, B, H, Hkv, L, S, E, Ev, qk_std)
    q64, k64, v64 = (torch.from_numpy(x.astype(np.float64)) for x in (q, k, v))
    eff_scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    gqa = Hkv != H

    # The bias as reference terms (and, for torch, a mask).
    entry_bias = None
    if is_causal:
        terms = all_terms([causal(UL)], B, H, L, S)
    elif mask is not None:
        m = rng.random((L, S)) < 0.7 if mask == "bool" else (2.0 * rng.standard_normal((L, S))).astype(np.float32)
        if mask == "float":
            m[rng.random((L, S)) < 0.25] = NEG_INF
        m[rng.choice(L, 3, replace=False)] = False if mask == "bool" else NEG_INF  # a few rows see no key
        entry_bias = {"kind": "tensor", "mask": save(name, "mask", m)}
        terms = [("mask", m[None, None])] if mask == "bool" else [("add", m.astype(np.float64)[None, None])]
    else:
        terms = all_terms(parts, B, H, L, S)
    cap = next((val for kind, val in terms if kind == "softcap"), None)

    out, full, lse = explicit_reference(q64.numpy(), k64.numpy(), v64.numpy(), terms, eff_scale, with_lse=True)
    assert not np.isnan(out).any() and np.all(out[full] == 0.0) and np.all(np.isneginf(lse[full])), name
    assert np.isfinite(lse[~full]).all(), name
    checks = {}
    am = None
    if cap is None:
        am = additive_mask(terms, B, H, L, S)
        ref = torch_sdpa(q64, k64, v64, torch.from_numpy(np.ascontiguousarray(am)), scale, gqa).numpy()
        checks["torch SDPA MATH"] = check(name, "explicit numpy vs torch SDPA", out, ref)
    if parts:
        checks["flex_attention"] = check(name, "flex_attention", flex_reference(q64, k64, v64, parts, eff_scale, B, H, L, S), out)

    # PyTorch at the case's dtype: the mask-only parts as an additive mask after its soft-cap.
    if cap is not None:
        mask_terms = [t for t in terms if t[0] != "softcap"]
        torch_mask = torch.from_numpy(np.ascontiguousarray(additive_mask(mask_terms, B, H, L, S))) if mask_terms else None
    else:
        torch_mask = None if is_causal else torch.from_numpy(np.ascontiguousarray(am))
    t_out, t_lse, backend = torch_low_precision(qt, kt, vt, torch_mask, is_causal, eff_scale, gqa, cap)
    t_nan = np.isnan(t_out)
    assert np.all(t_nan.any(-1) <= full), name  # torch may give NaN only where no key is seen
    t_err = float(np.max(np.abs(np.where(t_nan, 0.0, t_out) - out)))
    t_lse_err = float(np.max(np.abs(t_lse[~full] - lse[~full]))) if t_lse is not None and (~full).any() else None

    entry = {
        "name": name,
        "layout": "BHLE",
        "query": save(name, "q", q),
        "key": save(name, "k", k),
        "value": save(name, "v", v),
        "output": save(name, "out", out),
        "logSumExp": save(name, "lse", lse),
        "biases": parts,
        "isCausal": bool(is_causal),
        "scale": None if scale is None else float(scale),
        "enableGQA": bool(gqa),
        "dtype": dtype,
        "fullyMaskedRows": int(full.sum()),
        "torchBackend": backend,
        "torchMaxAbsError": t_err,
        "torchLogSumExpMaxAbsError": t_lse_err,
    }
    if entry_bias is not None:
        entry["bias"] = entry_bias
    CASES.append(entry)
    worst = max(checks.values()) if checks else 0.0
    print(f"{name:64} full={int(full.sum()):4} torch {dtype} ({backend}) err={t_err:.2e} checks<= {worst:.1e}", flush=True)


def build_cases():
    # (tag, keyword arguments): every bias, L and S in 129..700 and off the tile sizes.
    slopes2, slopes4, slopes8 = get_slopes(2), get_slopes(4), get_slopes(8)
    qd, kd = [150, 0, 211, 40], [90, 260, 0, 137]  # 401 queries, 487 keys; empty blocks both ways
    configs = [
        ("none", dict(L=257, S=389)),
        ("isCausal", dict(L=300, S=450, is_causal=True)),
        ("causalUpperLeft", dict(parts=[causal(UL)], L=333, S=520)),
        ("causalLowerRight", dict(parts=[causal(LR)], L=200, S=650)),
        # L > S lower-right: the first 187 rows see no key.
        ("causalLowerRight_LgtS", dict(parts=[causal(LR)], L=520, S=333)),
        ("alibi", dict(parts=[alibi(slopes2)], L=300, S=400)),
        ("alibi_causalUpperLeft", dict(parts=[alibi(slopes2, UL)], L=450, S=300)),
        ("alibi_causalLowerRight", dict(parts=[alibi(slopes4, LR)], H=4, L=180, S=700)),
        ("window_l37_r0_lowerRight", dict(parts=[window(37, 0, LR)], L=400, S=400)),
        # Windows wider than a key tile: several full tiles inside, partial ones at both ends.
        ("window_l300_r150_upperLeft", dict(parts=[window(300, 150, UL)], L=500, S=650)),
        ("window_l200_rNull_lowerRight", dict(parts=[window(200, None, LR)], L=333, S=333)),
        ("blockDiagonal", dict(parts=[block_diagonal(qd, kd)], L=401, S=487)),
        ("blockDiagonal_causalLowerRight", dict(parts=[block_diagonal(qd, kd, LR)], L=401, S=487)),
        ("blockDiagonal_causalUpperLeft", dict(parts=[block_diagonal([130, 270], [300, 100], UL)], L=400, S=400)),
        ("keyPadding", dict(parts=[key_padding([0, 200, 389])], B=3, L=150, S=389)),
        ("softCap30", dict(parts=[soft_cap(30.0)], L=260, S=300, scale=1.0, qk_std=3.0)),
        ("boolMask", dict(mask="bool", L=200, S=300)),
        ("floatMask", dict(mask="float", L=150, S=260)),
        ("alibi_window_l256_r0_causalLowerRight",
         dict(parts=[alibi(slopes2), window(256, 0, LR), causal(LR)], L=400, S=700)),
        ("softCap20_keyPadding_window_l240_r60_upperLeft",
         dict(parts=[soft_cap(20.0), key_padding([310, 17]), window(240, 60, UL)], B=2, L=280, S=350, scale=1.0, qk_std=3.0)),
        ("blockDiagonal_causalLowerRight_keyPadding",
         dict(parts=[block_diagonal([140, 190], [200, 150], LR), key_padding([350, 160])], B=2, L=330, S=350)),
        # GQA; a query tile of at most 4 rows reads the keys as stored (decoding), across key tiles.
        ("causalLowerRight_gqa", dict(parts=[causal(LR)], H=4, Hkv=2, L=230, S=390)),
        ("decode_alibi_causalLowerRight_gqa", dict(parts=[alibi(slopes8, LR)], H=8, Hkv=2, L=3, S=700)),
        # Head dims above 64: 64-key tiles.
        ("none_E72", dict(H=1, L=140, S=200, E=72, Ev=16)),
        ("window_l100_r20_lowerRight_E96", dict(parts=[window(100, 20, LR)], H=1, L=150, S=260, E=96, Ev=8)),
    ]
    for tag, kw in configs:
        for dtype in ("float32", "float16", "bfloat16"):
            add_case(tag, dtype=dtype, **kw)


def main():
    for p in list(HERE.glob(f"{PREFIX}*.npy")) + [HERE / "tile_manifest.json"]:
        if p.exists():
            p.unlink()
    torch.set_num_threads(1)
    build_cases()
    (HERE / "tile_manifest.json").write_text(json.dumps({"generator": torch.__version__, "cases": CASES}, indent=1) + "\n")
    files = list(HERE.glob(f"{PREFIX}*.npy")) + [HERE / "tile_manifest.json"]
    total = sum(p.stat().st_size for p in files)
    print(f"torch {torch.__version__}, numpy {np.__version__}: {len(CASES)} cases, {total / 1e6:.2f} MB; "
          f"reference checks within {TOL:g}")
    for n in NOTES:
        print("note:", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
