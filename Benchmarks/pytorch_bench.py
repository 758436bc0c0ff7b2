#!/usr/bin/env python3
"""PyTorch on the workloads of a Swift benchmark, written in the same JSON schema (sdpa-benchmark/1).

    .build/release/KernelThroughput --list --json results/KernelThroughput.workloads.json
    ~/.torchenv/bin/python Benchmarks/pytorch_bench.py \
        --workloads results/KernelThroughput.workloads.json --json results/pytorch-KernelThroughput.json
    .build/release/KernelThroughput --compare results/pytorch-KernelThroughput.json

`swift package --allow-writing-to-package-directory benchmark --pytorch ~/.torchenv/bin/python` does all three
(KernelThroughput and Decode interleave instead: see --serve).
--serve: the Swift benchmark drives PyTorch workload by workload, so both sides are timed seconds apart and a
shared machine's slow spells hit both alike. The first line written is a header object (implementation,
threads, processors, peakGFLOPS); then each workload read from standard input, one JSON object per line,
is answered with one line: the JSON list of its results. The process ends at the end of its input.
--workloads takes any report of the schema (a `--list` output or a results file). Paths, as in Swift:
  fused                 the bias as PyTorch's own API takes it: no mask, is_causal / CausalBias objects
                        (torch.nn.attention.bias.causal_upper_left / causal_lower_right)
  materialized          a dense mask built beforehand (PyTorch has no ALiBi bias type: a float mask)
  materialized+build    the same, building the mask inside the timed call
DispatchOverhead: `entry point` is F.scaled_dot_product_attention with the bias as a user passes it,
`direct` is torch.ops.aten._scaled_dot_product_flash_attention_for_cpu, the CPU kernel itself.
Backward: one training step, the forward pass and autograd's backward pass for dQ, dK and dV, with the bias as
PyTorch's own API takes it (`fused`) or, where it has none, a mask materialized beforehand (`materialized`).
Decode: `contiguous` is one decoding call on a contiguous cache; `per sequence` is a continuous batch stepped
token by token with SDPA on each sequence's contiguous cache (PyTorch has no paged CPU path); see decode_results.
"""

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right, causal_upper_left

SCHEMA = "sdpa-benchmark/1"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


# --- biases: the same definitions as Sources/SDPABenchmarkHarness/BiasKind.swift and the SDPA library ---

def alibi_slopes(heads):
    """The ALiBi paper's slopes, as AlibiBias.standardSlopes(numHeads:)."""
    def power_of_two(n):
        return [2 ** (-8 * (i + 1) / n) for i in range(n)]
    closest = 1
    while closest * 2 <= heads:
        closest *= 2
    slopes = power_of_two(closest)
    if closest < heads:
        slopes += power_of_two(2 * closest)[0::2][: heads - closest]
    return slopes


def causal_offset(variant, L, S):
    return 0 if variant == "upper-left" else S - L


def causal_visible(variant, L, S):
    offset = causal_offset(variant, L, S)
    return sum(min(max(i + offset + 1, 0), S) for i in range(L))


def bool_pattern(L, S):
    i = torch.arange(L).unsqueeze(1)
    j = torch.arange(S).unsqueeze(0)
    return (3 * i + 7 * j) % 10 != 0


def float_pattern(L, S):
    i = torch.arange(L).unsqueeze(1)
    j = torch.arange(S).unsqueeze(0)
    return -0.125 * ((i + 2 * j) % 17).float()


FIXED = ("none", "alibi+causal-upper-left", "alibi+causal-lower-right", "mask-bool", "mask-float")
DEFAULT_PACKED_SEQUENCES = 8  # BiasKind.swift's defaultPackedSequences


def equal_lengths(total, count):
    return [total // count + (1 if n < total % count else 0) for n in range(count)]


def bias_parts(bias):
    """The parts of a spelling as (name, [arguments] or None), as BiasKind.parse splits it."""
    if bias in FIXED:
        if bias.startswith("alibi+"):
            # AlibiBias with its own causal mask measures distances from that mask's diagonal.
            variant = bias[len("alibi+causal-"):]
            return [("alibi", [variant]), (bias[len("alibi+"):], None)]
        return [(bias, None)]
    parts = []
    for text in bias.split("+"):
        name, _, arguments = text.partition(":")
        parts.append((name, arguments.split(",") if arguments else None))
    return parts


def bias_terms(bias, B, H, L, S):
    """(bool mask broadcastable to [B, H, L, S] or None, additive float bias or None, soft-cap or None)."""
    visible, additive, cap = None, None, None
    i = torch.arange(L).view(L, 1)
    j = torch.arange(S).view(1, S)

    def both(m):
        return m if visible is None else visible & m

    for name, arguments in bias_parts(bias):
        if name in ("causal-upper-left", "causal-lower-right"):
            visible = both(j <= i + causal_offset(name[len("causal-"):], L, S))
        elif name == "alibi":
            slopes = torch.tensor(alibi_slopes(H), dtype=torch.float32).view(H, 1, 1)
            offset = causal_offset(arguments[0] if arguments else "lower-right", L, S)
            term = -slopes * (i + offset - j).abs().float()
            additive = term if additive is None else additive + term
        elif name in ("window", "window-upper-left"):
            left = int(arguments[0])
            right = int(arguments[1]) if len(arguments) > 1 else 0
            d = i + (S - L if name == "window" else 0)
            visible = both((j >= d - left) & (j <= d + right))
        elif name == "padding":
            lengths = [int(a) for a in arguments] if arguments else [(S + 1) // 2] * B
            valid = torch.tensor(lengths).view(B, 1, 1, 1)
            visible = both(torch.arange(S).view(1, 1, 1, S) < valid)
        elif name in ("block-diagonal", "block-diagonal-causal"):
            lengths = [int(a) for a in arguments] if arguments else equal_lengths(L, DEFAULT_PACKED_SEQUENCES)
            owner = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
            starts = torch.tensor([0] + lengths).cumsum(0)[:-1]
            m = owner.view(L, 1) == owner.view(1, S)
            if name.endswith("-causal"):
                m = m & (j - starts[owner].view(1, S) <= i - starts[owner].view(L, 1))
            visible = both(m)
        elif name in ("chunked-causal", "chunked-causal-upper-left"):
            size = int(arguments[0])
            d = i + (S - L if name == "chunked-causal" else 0)
            visible = both((j <= d) & (d >= 0) & (j // size == d.clamp(min=0) // size))
        elif name == "prefix-lm":
            lengths = [int(a) for a in arguments] if arguments else [(S + 1) // 2] * B
            prefix = torch.arange(S).view(1, 1, 1, S) < torch.tensor(lengths).view(B, 1, 1, 1)
            visible = both(prefix | (j <= i + S - L).view(1, 1, L, S))
        elif name == "sink-tokens":
            sinks, window = int(arguments[0]), int(arguments[1])
            d = i + S - L
            visible = both((j <= d) & ((j < sinks) | (j >= d - window)))
        elif name == "softcap":
            cap = float(arguments[0])
        elif name == "mask-bool":
            visible = both(bool_pattern(L, S))
        elif name == "mask-float":
            additive = float_pattern(L, S)
        elif name != "none":
            raise ValueError(f"unknown bias {bias}")
    return visible, additive, cap


def visible_positions(bias, B, H, L, S):
    """Visible positions over [B, H, L, S], as BiasKind.visiblePositions."""
    visible, _, _ = bias_terms(bias, B, H, L, S)
    if visible is None:
        return B * H * L * S
    while visible.dim() < 4:
        visible = visible.unsqueeze(0)
    # Each mask dimension is the full size or 1 (broadcast).
    return int(visible.sum()) * (B * H * L * S) // visible.numel()


def materialize(bias, B, H, L, S, dtype):
    """The dense mask the Swift bias materializes to: bool for pure masks, float with -inf otherwise;
    None when the bias has no materialized form (soft-capping)."""
    visible, additive, cap = bias_terms(bias, B, H, L, S)
    if cap is not None:
        return None
    if additive is None:
        return visible
    if visible is not None:
        additive = additive.masked_fill(~visible, float("-inf"))
    return additive.to(dtype)


def native_call(bias, q, k, v):
    """The fused path: the bias as PyTorch's own API takes it, or None when PyTorch has no such API."""
    L, S = q.shape[-2], k.shape[-2]
    if bias == "none":
        return lambda: F.scaled_dot_product_attention(q, k, v)
    if bias == "causal-upper-left":
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if bias == "causal-lower-right":
        b = causal_lower_right(L, S)
        return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=b)
    return None


# --- measurement: the harness's conventions (warm-up, samples, median per call) ---

def measure(body, warm_up, samples, minimum_sample_seconds=0.0):
    for _ in range(warm_up):
        body()
    calls = 1
    if minimum_sample_seconds > 0:
        while True:
            start = time.perf_counter()
            for _ in range(calls):
                body()
            seconds = time.perf_counter() - start
            if seconds >= minimum_sample_seconds:
                break
            factor = minimum_sample_seconds / seconds * 1.2 if seconds > 0 else 10
            calls = max(calls * 2, math.ceil(calls * min(factor, 100)))
    per_call = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(calls):
            body()
        per_call.append((time.perf_counter() - start) / calls)
    per_call.sort()
    return {"samples": samples, "callsPerSample": calls, "minSeconds": per_call[0],
            "medianSeconds": statistics.median(per_call), "maxSeconds": per_call[-1]}


def proc_kilobytes(field, path="/proc/self/status"):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_extra_bytes(body):
    """Rise of resident memory during body(), as ResidentMemory.peakExtraBytes in Swift."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        body()
        return None
    before = proc_kilobytes("VmRSS")
    body()
    peak = proc_kilobytes("VmHWM")
    return None if before is None or peak is None else max(0, peak - before) * 1024


def inputs(w):
    dtype = DTYPES[w["dtype"]]
    g = torch.Generator().manual_seed(1)
    q = torch.randn(w["batch"], w["heads"], w["queryLength"], w["headDim"], generator=g).to(dtype)
    k = torch.randn(w["batch"], w["keyValueHeads"], w["keyLength"], w["headDim"], generator=g).to(dtype)
    v = torch.randn(w["batch"], w["keyValueHeads"], w["keyLength"], w["valueHeadDim"], generator=g).to(dtype)
    return q, k, v


def throughput_results(w, args, peak):
    q, k, v = inputs(w)
    H, L, S = w["heads"], w["queryLength"], w["keyLength"]
    dtype = DTYPES[w["dtype"]]
    flops = 4.0 * w["batch"] * H * L * S * w["headDim"]
    B = w["batch"]
    effective = 4.0 * visible_positions(w["bias"], B, H, L, S) * w["headDim"]
    calls = {}
    native = native_call(w["bias"], q, k, v)
    if native is not None:
        calls["fused"] = (native, native)
    mask = materialize(w["bias"], B, H, L, S, dtype) if w["bias"] != "none" else None
    if mask is not None:
        build = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=materialize(w["bias"], B, H, L, S, dtype))
        calls["materialized"] = (lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), build)
        if not w["bias"].startswith("mask-") and args.benchmark != "BiasScaling":
            calls["materialized+build"] = (build, build)
    results = []
    for path in ("materialized", "materialized+build", "fused"):
        if path not in calls:
            continue
        timed, memory_call = calls[path]
        timing = measure(timed, 1, 3 if args.quick else 10)
        median = timing["medianSeconds"]
        results.append({
            "workload": w, "path": path, "threads": args.threads, "timing": timing,
            "gflops": flops / median / 1e9, "effectiveGFLOPS": effective / median / 1e9,
            "percentOfPeak": 100 * effective / median / 1e9 / peak if peak else None,
            "peakExtraBytes": peak_extra_bytes(memory_call),
        })
    return results


def dispatch_results(w, args):
    q, k, v = inputs(w)
    H, L, S = w["heads"], w["queryLength"], w["keyLength"]
    bias = w["bias"]
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    if bias == "none":
        entry = lambda: F.scaled_dot_product_attention(q, k, v)
        direct = lambda: flash(q, k, v)
    elif bias.startswith("causal-"):
        b = (causal_upper_left if bias == "causal-upper-left" else causal_lower_right)(L, S)
        entry = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=b)
        if bias == "causal-upper-left" or L == S:
            direct = lambda: flash(q, k, v, is_causal=True)
        else:
            m = b._materialize()
            direct = lambda: flash(q, k, v, attn_mask=m)
    else:
        mask = materialize(bias, w["batch"], H, L, S, q.dtype)
        if mask is None:  # soft-capping: PyTorch's SDPA has no such score modifier
            return []
        float_mask = mask if mask.dtype != torch.bool else torch.zeros(mask.shape, dtype=q.dtype).masked_fill(~mask, float("-inf"))
        if float_mask.dim() == 3:  # the CPU kernel takes [L, S] or [B, H, L, S] masks
            float_mask = float_mask.unsqueeze(0)
        if float_mask.dim() == 4 and float_mask.shape[1:3] != (H, L):
            float_mask = float_mask.expand(float_mask.shape[0], H, L, S).contiguous()
        entry = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        direct = lambda: flash(q, k, v, attn_mask=float_mask)
    plan = (200, 7, 0.005) if args.quick else (1000, 21, 0.01)
    results = []
    for path, body in (("entry point", entry), ("direct", direct)):
        results.append({"workload": w, "path": path, "threads": args.threads, "timing": measure(body, *plan)})
    overhead = (results[0]["timing"]["medianSeconds"] - results[1]["timing"]["medianSeconds"]) * 1e9
    results[0]["overheadNanoseconds"] = overhead
    return results


def backward_results(w, args):
    """One training step: the forward pass and autograd's backward pass (dQ, dK, dV)."""
    q, k, v = (x.requires_grad_(True) for x in inputs(w))
    B, H, L, S = w["batch"], w["heads"], w["queryLength"], w["keyLength"]
    g = torch.Generator().manual_seed(2)
    d_out = torch.randn(B, H, L, w["valueHeadDim"], generator=g).to(q.dtype)
    forward, path = native_call(w["bias"], q, k, v), "fused"
    if forward is None:
        mask = materialize(w["bias"], B, H, L, S, q.dtype)
        if mask is None:  # soft-capping: PyTorch's SDPA has no such score modifier
            return []
        forward, path = (lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)), "materialized"

    def step():
        for x in (q, k, v):
            x.grad = None
        forward().backward(d_out)

    return [{"workload": w, "path": path, "threads": args.threads, "timing": measure(step, 1, 2 if args.quick else 5),
             "peakExtraBytes": peak_extra_bytes(step), "note": "forward + autograd backward"}]
DECODE_SHORTEST = 128  # DecodeBenchmark.shortestLength


def decode_lengths(count, longest):
    """DecodeBenchmark.sequenceLengths: count lengths spread evenly from 128 (or longest) to longest."""
    shortest = min(DECODE_SHORTEST, longest)
    if count <= 1:
        return [longest]
    return [shortest + (longest - shortest) * n // (count - 1) for n in range(count)]


def decode_results(w, args):
    """Decode: batch 1 is one query row against a contiguous cache of S keys ('contiguous'); batch B > 1 is
    continuous batching ('per sequence'): B contiguous caches of 128...S tokens, preallocated for the steps, each
    step writing one token into every cache and running SDPA on each sequence; 100 steps (10 with --quick), as
    Benchmarks/Decode. The samples of a continuous batch are its steps."""
    dtype = DTYPES[w["dtype"]]
    B, H, Hkv, S, E, Ev = w["batch"], w["heads"], w["keyValueHeads"], w["keyLength"], w["headDim"], w["valueHeadDim"]
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, H, 1, E, generator=g).to(dtype)
    if B == 1:
        k = torch.randn(1, Hkv, S, E, generator=g).to(dtype)
        v = torch.randn(1, Hkv, S, Ev, generator=g).to(dtype)
        timing = measure(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=Hkv != H), 1, 3 if args.quick else 10)
        return [{"workload": w, "path": "contiguous", "threads": args.threads, "timing": timing}]
    steps = 10 if args.quick else 100
    lengths = decode_lengths(B, S)
    # One untimed step first, as DecodeBenchmark does.
    caches = [(torch.randn(1, Hkv, n + steps + 1, E, generator=g).to(dtype), torch.randn(1, Hkv, n + steps + 1, Ev, generator=g).to(dtype))
              for n in lengths]
    token_k = torch.randn(1, Hkv, E, generator=g).to(dtype)
    token_v = torch.randn(1, Hkv, Ev, generator=g).to(dtype)
    seconds = []
    for step in range(steps + 1):
        start = time.perf_counter()
        for (k, v), n in zip(caches, lengths):
            k[:, :, n + step] = token_k
            v[:, :, n + step] = token_v
            F.scaled_dot_product_attention(q, k[:, :, :n + step + 1], v[:, :, :n + step + 1], enable_gqa=Hkv != H)
        if step > 0:
            seconds.append(time.perf_counter() - start)
    ordered = sorted(seconds)
    timing = {"samples": steps, "callsPerSample": 1, "minSeconds": ordered[0],
              "medianSeconds": statistics.median(ordered), "maxSeconds": ordered[-1]}
    note = f"{B} sequences of {lengths[0]}...{lengths[-1]} tokens, {steps} steps, SDPA per sequence on contiguous caches"
    return [{"workload": w, "path": "per sequence", "threads": args.threads, "timing": timing, "note": note}]


def set_threads(args):
    """Applies --threads; returns (processors, the peak GFLOP/s of the threads used: 0 when no peak is known)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    args.peak_gflops = args.peak_gflops or 0.0
    processors = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return processors, args.peak_gflops * max(1, min(args.threads, processors))


BENCHMARKS = ("KernelThroughput", "DispatchOverhead", "BiasScaling", "Backward", "Decode", "sdpa bench", "sdpa demo")


def results_for(w, args, peak):
    """The results of workload w as args.benchmark times it."""
    if args.benchmark == "DispatchOverhead":
        return dispatch_results(w, args)
    if args.benchmark == "Backward":
        return backward_results(w, args)
    if args.benchmark == "Decode":
        return decode_results(w, args)
    return throughput_results(w, args, peak)


def serve(args):
    """--serve: a header line, then one line of results per workload line read."""
    args.benchmark = args.benchmark or "KernelThroughput"
    if args.benchmark not in BENCHMARKS:
        print(f"pytorch_bench.py: no PyTorch counterpart for {args.benchmark}", file=sys.stderr)
        return 2
    processors, peak = set_threads(args)
    header = {"implementation": f"PyTorch {torch.__version__.split('+')[0]}", "threads": args.threads,
              "processors": processors, "peakGFLOPSPerCore": args.peak_gflops, "peakGFLOPS": peak}
    print(json.dumps(header), flush=True)
    # Backward needs autograd; the others run without it.
    with torch.inference_mode(args.benchmark != "Backward"):
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(results_for(json.loads(line), args, peak)), flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", help="a report JSON whose workloads to run")
    parser.add_argument("--json", help="where to write PyTorch's report")
    parser.add_argument("--serve", action="store_true", help="answer workloads from standard input (see above)")
    parser.add_argument("--benchmark", help="the benchmark (default: the one named in --workloads)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--peak-gflops", type=float, default=None,
                        help="FP32 peak per core (default: the one the Swift benchmark measured, from --workloads' machine)")
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    # The plugin passes the Swift benchmarks' options through; ignore the ones that mean nothing here.
    args, _ = parser.parse_known_args()
    if args.serve:
        return serve(args)
    if not args.workloads or not args.json:
        parser.error("--workloads and --json are required without --serve")

    with open(args.workloads) as f:
        source = json.load(f)
    if args.peak_gflops is None:
        # The Swift benchmark's `--list` report carries the peak it measured: percentages on both sides then agree.
        args.peak_gflops = (source.get("machine") or {}).get("peakGFLOPSPerCore")
    benchmark = args.benchmark or source["benchmark"]
    workloads = source.get("workloads") or []
    if not workloads:
        seen = []
        for r in source.get("results", []):
            if r["workload"] not in seen:
                seen.append(r["workload"])
        workloads = seen
    if benchmark == "BiasScaling":
        # PyTorch's side of issue 5's targets: the L = 8192 workloads (a dense [L, S] mask beyond that
        # is what the targets avoid measuring), with the mask materialized.
        workloads = [w for w in workloads if w["queryLength"] <= 8192 and not w["bias"].startswith("causal")]
    args.benchmark = benchmark
    if benchmark not in BENCHMARKS:
        print(f"pytorch_bench.py: no PyTorch counterpart for {benchmark}; nothing written", file=sys.stderr)
        return 0
    processors, peak = set_threads(args)

    results = []
    # Backward needs autograd; the others run without it.
    with torch.inference_mode(benchmark != "Backward"):
        for index, w in enumerate(workloads):
            print(f"[{index + 1}/{len(workloads)}] {w['bias']} B={w['batch']} H={w['heads']} L={w['queryLength']} "
                  f"S={w['keyLength']} E={w['headDim']} {w['dtype']}", file=sys.stderr, flush=True)
            if benchmark == "BiasScaling" and w["queryLength"] < 8192 and not args.quick:
                continue
            results += results_for(w, args, peak)

    report = {
        "schema": SCHEMA, "benchmark": benchmark, "implementation": f"PyTorch {torch.__version__.split('+')[0]}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": None,
        "machine": {"processors": processors, "threads": args.threads,
                    "peakGFLOPSPerCore": args.peak_gflops, "peakGFLOPS": peak},
        "workloads": workloads, "results": results,
    }
    directory = os.path.dirname(os.path.abspath(args.json))
    os.makedirs(directory, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    print(f"pytorch_bench.py: wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
