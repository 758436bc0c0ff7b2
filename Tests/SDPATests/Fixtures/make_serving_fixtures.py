#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for the serving biases and for attention sinks.

Run from the repository root (after make_fixtures.py, which deletes every *.npy in this directory,
including the serving_* files written here):

    ~/.torchenv/bin/python Tests/SDPATests/Fixtures/make_serving_fixtures.py

Writes serving_manifest.json and serving_*.npy next to this script and touches nothing else.  Inputs are
random but deterministic (each case seeds its own numpy Generator from a CRC32 of its name).

Each case has the fields of bias_manifest.json (`name`, `layout`, `query`, `key`, `value`, `output`,
`scale`, `enableGQA`, `dtype`, `biases`: parts composed left to right, possibly none), plus
  logSumExp       float64 [B, H, L] log-sum-exp of the final scores (with the sink, when there is one)
  sinks           a file of H sink logits (<f4, or <f2 for one case), or null
  fullyMaskedRows the number of (b, h, i) rows that see no key

New parts (the older ones are make_bias_fixtures.py's):
  {"kind": "chunkedCausal", "chunkSize": C, "alignment": "upperLeft"|"lowerRight"}
      query i stands at d = i + off (off = 0 or S - L) and sees key j iff j <= d and j // C == d // C
      (Llama 4's chunked local attention).
  {"kind": "prefixLM", "lengths": [one per batch], "alignment": ...}
      batch b: query i sees key j iff j < lengths[b] or j <= i + off.
  {"kind": "sinkTokens", "sinkTokens": N, "window": W, "alignment": ...}
      query i sees key j iff j <= d and (j < N or j >= d - W), d = i + off (StreamingLLM).

Sinks (gpt-oss): one logit per query head joins every row's softmax denominator,
p_ij = exp(s_ij) / (exp(sink_h) + sum_j exp(s_ij)), and contributes to no output; the log-sum-exp is
log(exp(sink_h) + sum_j exp(s_ij)), and a fully masked row gives 0 with a log-sum-exp of sink_h.  PyTorch
has no sinks: the reference appends the sink as one more key column to the float64 scores, runs
torch.softmax, drops the column and multiplies by V (GQA by repeat_interleave), all in float64.

Reference semantics and checks.  Without sinks, the output comes from torch SDPA under
sdpa_kernel(SDPBackend.MATH) in float64 with the parts as one explicit additive mask (make_bias_fixtures.py's
torch_sdpa), and must agree to 1e-12 with make_bias_fixtures.py's explicit numpy implementation.  With sinks,
the torch float64 softmax above must agree to 1e-12 with the numpy formula out_no_sink * exp(lse - lse_sink),
lse_sink = logaddexp(lse, sink).  The new parts' masks are also built by plain Python loops from the
definitions above and must equal the vectorized ones.
"""

import json
import math
import sys

import numpy as np
import torch

from make_bias_fixtures import (HERE, NEG_INF, TOL, additive_mask, alibi, causal, check, explicit_reference,
                                expand_gqa, final_scores, get_slopes, key_padding, part_terms, rng_for, save, soft_cap,
                                torch_sdpa, window)

PREFIX = "serving_"
UL, LR = "upperLeft", "lowerRight"
CASES = []
NAMES = set()


def chunked_causal(chunk, alignment):
    return {"kind": "chunkedCausal", "chunkSize": chunk, "alignment": alignment}


def prefix_lm(lengths, alignment):
    return {"kind": "prefixLM", "lengths": list(lengths), "alignment": alignment}


def sink_tokens(n, w, alignment):
    return {"kind": "sinkTokens", "sinkTokens": n, "window": w, "alignment": alignment}


def offset(alignment, L, S):
    return 0 if alignment == UL else S - L


def serving_terms(part, B, H, L, S):
    """The new parts' masks, vectorized; the older parts are make_bias_fixtures.py's."""
    i = np.arange(L).reshape(L, 1)
    j = np.arange(S).reshape(1, S)
    kind = part["kind"]
    if kind == "chunkedCausal":
        d = i + offset(part["alignment"], L, S)
        c = part["chunkSize"]
        keep = (j <= d) & (d >= 0) & (j // c == np.maximum(d, 0) // c)
        return [("mask", keep[None, None])]
    if kind == "prefixLM":
        lens = np.asarray(part["lengths"]).reshape(-1, 1, 1)
        assert lens.shape[0] == B
        keep = (j[None] < lens) | (j[None] <= i[None] + offset(part["alignment"], L, S))
        return [("mask", keep[:, None])]
    if kind == "sinkTokens":
        d = i + offset(part["alignment"], L, S)
        keep = (j <= d) & ((j < part["sinkTokens"]) | (j >= d - part["window"]))
        return [("mask", keep[None, None])]
    return part_terms(part, B, H, L, S)


def loop_mask(part, b, L, S):
    """The new parts' masks from their definitions, one position at a time (an independent check)."""
    off = offset(part["alignment"], L, S)
    m = np.zeros((L, S), dtype=bool)
    for i in range(L):
        d = i + off
        for j in range(S):
            if part["kind"] == "chunkedCausal":
                m[i, j] = d >= 0 and j <= d and j // part["chunkSize"] == d // part["chunkSize"]
            elif part["kind"] == "prefixLM":
                m[i, j] = j < part["lengths"][b] or j <= d
            else:
                m[i, j] = j <= d and (j < part["sinkTokens"] or j >= d - part["window"])
    return m


def with_sinks_torch(q, k, v, scores, sinks):
    """Float64 torch: the sink as one more key column, softmax, the column dropped, times V."""
    B, H, L, S = scores.shape
    sink = torch.from_numpy(sinks.astype(np.float64)).view(1, H, 1, 1).expand(B, H, L, 1)
    p = torch.softmax(torch.cat([torch.from_numpy(scores), sink], dim=-1), dim=-1)[..., :S]
    p = torch.nan_to_num(p, nan=0.0)  # a fully masked row with a -inf sink: 0, as without sinks
    kk, vv = expand_gqa(k, v, H)
    return torch.matmul(p, torch.from_numpy(vv)).numpy()


def add_case(tag, parts, B=1, H=2, Hkv=None, L=9, S=13, E=8, scale=None, sinks=None, sink_dtype=np.float32, qk_std=1.0):
    name = f"{PREFIX}{tag}_B{B}_H{H}" + (f"_Hkv{Hkv}" if Hkv else "") + f"_L{L}_S{S}_E{E}"
    assert name not in NAMES, name
    NAMES.add(name)
    Hkv = Hkv or H
    rng = rng_for(name)
    q = (qk_std * rng.standard_normal((B, H, L, E))).astype(np.float32)
    k = (qk_std * rng.standard_normal((B, Hkv, S, E))).astype(np.float32)
    v = rng.standard_normal((B, Hkv, S, E)).astype(np.float32)
    q64, k64, v64 = (x.astype(np.float64) for x in (q, k, v))
    eff_scale = 1.0 / math.sqrt(E) if scale is None else float(scale)

    terms = [t for p in parts for t in serving_terms(p, B, H, L, S)]
    for p in parts:
        if p["kind"] in ("chunkedCausal", "prefixLM", "sinkTokens"):
            vectorized = serving_terms(p, B, H, L, S)[0][1]
            for b in range(B):
                assert np.array_equal(vectorized[min(b, vectorized.shape[0] - 1), 0], loop_mask(p, b, L, S)), (name, b)
    out, full, lse = explicit_reference(q64, k64, v64, terms, eff_scale, with_lse=True)
    checks = {}
    if not any(p["kind"] == "softCap" for p in parts):
        mask = torch.from_numpy(np.ascontiguousarray(additive_mask(terms, B, H, L, S))) if terms else None
        torch_out = torch_sdpa(torch.from_numpy(q64), torch.from_numpy(k64), torch.from_numpy(v64), mask, scale, Hkv != H).numpy()
        checks["explicit"] = check(name, "explicit numpy vs torch SDPA", out, torch_out)
        out = torch_out
    sink_file = None
    if sinks is not None:
        sinks = np.asarray(sinks, dtype=sink_dtype)
        s64 = sinks.astype(np.float64)
        torch_out = with_sinks_torch(q64, k64, v64, final_scores(q64, k64, terms, eff_scale), sinks)
        with np.errstate(invalid="ignore"):
            lse_sink = np.logaddexp(lse, s64.reshape(1, H, 1))
            weight = np.exp(np.where(np.isneginf(lse), NEG_INF, lse - lse_sink))
        formula = np.where(np.isneginf(lse_sink)[..., None], 0.0, out * weight[..., None])
        checks["sinks"] = check(name, "torch softmax with a sink column vs the numpy formula", torch_out, formula)
        out, lse = torch_out, lse_sink
        sink_file = save(name, "sinks", sinks)
    full = np.broadcast_to(full, out.shape[:-1])
    assert not np.isnan(out).any(), name
    if full.any():
        assert np.all(out[full] == 0.0), f"{name}: fully masked rows not zero"
    CASES.append({
        "name": name, "layout": "BHLE",
        "query": save(name, "q", q), "key": save(name, "k", k), "value": save(name, "v", v),
        "output": save(name, "out", out), "logSumExp": save(name, "lse", lse),
        "scale": None if scale is None else float(scale), "enableGQA": Hkv != H, "dtype": "float32",
        "biases": parts, "sinks": sink_file, "fullyMaskedRows": int(full.sum()),
    })
    print(f"{name}: fullyMaskedRows={int(full.sum())} " + " ".join(f"{c}={d:.1e}" for c, d in checks.items()))


def build_cases():
    # Chunked causal (Llama 4): both alignments, L < S, L > S (fully masked rows), chunks of 1 and
    # longer than S, GQA, composed with ALiBi and a window.
    add_case("chunkedCausal_c4_upperLeft", [chunked_causal(4, UL)], L=13, S=13)
    add_case("chunkedCausal_c5_lowerRight", [chunked_causal(5, LR)], L=9, S=21)
    add_case("chunkedCausal_c4_lowerRight_LgtS", [chunked_causal(4, LR)], L=21, S=9)
    add_case("chunkedCausal_c6_upperLeft", [chunked_causal(6, UL)], L=12, S=20)
    add_case("chunkedCausal_c1_lowerRight", [chunked_causal(1, LR)], L=7, S=10)
    add_case("chunkedCausal_c100_lowerRight", [chunked_causal(100, LR)], L=8, S=15)
    add_case("chunkedCausal_c16_lowerRight_gqa", [chunked_causal(16, LR)], B=2, H=4, Hkv=2, L=40, S=70, E=16)
    add_case("chunkedCausal_c5_lowerRight__alibi", [chunked_causal(5, LR), alibi(get_slopes(4), None)], H=4, L=11, S=19)
    add_case("chunkedCausal_c8_upperLeft__window_l3", [chunked_causal(8, UL), window(3, 0, UL)], L=20, S=20)
    # Prefix LM: per-batch prefixes (0 = plain causal, S = bidirectional), both alignments, L < S, GQA,
    # composed with key padding and soft-capping.
    add_case("prefixLM_0-5-12_lowerRight", [prefix_lm([0, 5, 12], LR)], B=3, L=12, S=12)
    add_case("prefixLM_3-9_lowerRight", [prefix_lm([3, 9], LR)], B=2, L=6, S=14)
    add_case("prefixLM_4-0_upperLeft", [prefix_lm([4, 0], UL)], B=2, L=10, S=7)
    add_case("prefixLM_7-2_lowerRight_gqa", [prefix_lm([7, 2], LR)], B=2, H=6, Hkv=2, L=15, S=15, E=16)
    add_case("prefixLM_6-10_lowerRight__keyPadding", [prefix_lm([6, 10], LR), key_padding([8, 12])], B=2, L=12, S=12)
    add_case("prefixLM_5_upperLeft__softCap", [prefix_lm([5], UL), soft_cap(4.0)], L=9, S=9, scale=1.0, qk_std=2.0)
    # Sink tokens (StreamingLLM): sinks and a window, a window alone, sinks alone, windows wider than S,
    # both alignments, L > S lower-right (fully masked rows), composed with ALiBi.
    add_case("sinkTokens_n2_w1_lowerRight", [sink_tokens(2, 1, LR)], L=11, S=11)
    add_case("sinkTokens_n0_w3_lowerRight", [sink_tokens(0, 3, LR)], L=8, S=14)
    add_case("sinkTokens_n4_w0_upperLeft", [sink_tokens(4, 0, UL)], L=12, S=9)
    add_case("sinkTokens_n3_w50_lowerRight", [sink_tokens(3, 50, LR)], L=10, S=16)
    add_case("sinkTokens_n1_w2_lowerRight_LgtS", [sink_tokens(1, 2, LR)], L=12, S=7)
    add_case("sinkTokens_n4_w6_lowerRight_gqa", [sink_tokens(4, 6, LR)], B=2, H=4, Hkv=1, L=30, S=45, E=16)
    add_case("sinkTokens_n2_w3_lowerRight__alibi", [sink_tokens(2, 3, LR), alibi(get_slopes(2), LR)], L=9, S=17)
    # Learned sinks (gpt-oss): no mask, causal with fully masked rows, GQA with ALiBi and a window, a head
    # without a sink (-inf), large sinks that dominate, float16 sinks, and sinks with the new parts.
    add_case("sinks_none", [], H=4, L=7, S=11, sinks=[0.5, -1.0, 2.0, 0.0])
    add_case("sinks_causal_lowerRight_LgtS", [causal(LR)], H=2, L=10, S=6, sinks=[1.5, -0.75])
    add_case("sinks_alibi_window_gqa", [alibi(get_slopes(8), LR), window(5, 0, LR)], B=2, H=8, Hkv=2, L=12, S=20, E=16,
             sinks=[0.25 * h - 1 for h in range(8)])
    add_case("sinks_negInf_head", [causal(UL)], H=3, L=6, S=9, sinks=[NEG_INF, 3.0, -2.0])
    add_case("sinks_large", [], H=2, L=5, S=8, sinks=[12.0, -12.0], qk_std=2.0)
    add_case("sinks_float16", [window(4, 1, LR)], H=2, L=9, S=13, sinks=[0.3333, -1.7], sink_dtype=np.float16)
    add_case("sinks_chunkedCausal_softCap", [chunked_causal(4, LR), soft_cap(3.0)], H=2, L=9, S=14, scale=1.0, sinks=[1.0, 0.0],
             qk_std=2.0)
    add_case("sinks_sinkTokens_prefixLM", [sink_tokens(2, 2, LR), prefix_lm([3], LR)], H=2, L=8, S=12, sinks=[-0.5, 0.5])


def main():
    for p in list(HERE.glob(PREFIX + "*.npy")) + [HERE / "serving_manifest.json"]:
        if p.exists():
            p.unlink()
    build_cases()
    (HERE / "serving_manifest.json").write_text(json.dumps({"generator": torch.__version__, "cases": CASES}, indent=1) + "\n")
    total = sum(p.stat().st_size for p in HERE.glob(PREFIX + "*.npy")) + (HERE / "serving_manifest.json").stat().st_size
    print(f"torch {torch.__version__}, numpy {np.__version__}: {len(CASES)} cases, {total / 1e6:.3f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
