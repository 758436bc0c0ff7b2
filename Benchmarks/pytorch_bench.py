#!/usr/bin/env python3
"""PyTorch on the workloads of a Swift benchmark, written in the same JSON schema (sdpa-benchmark/1).

    .build/release/KernelThroughput --list --json results/KernelThroughput.workloads.json
    ~/.torchenv/bin/python Benchmarks/pytorch_bench.py \
        --workloads results/KernelThroughput.workloads.json --json results/pytorch-KernelThroughput.json
    .build/release/KernelThroughput --compare results/pytorch-KernelThroughput.json

`swift package --allow-writing-to-package-directory benchmark --pytorch ~/.torchenv/bin/python` does all three.
--workloads takes any report of the schema (a `--list` output or a results file). Paths, as in Swift:
  fused                 the bias as PyTorch's own API takes it: no mask, is_causal / CausalBias objects
                        (torch.nn.attention.bias.causal_upper_left / causal_lower_right)
  materialized          a dense mask built beforehand (PyTorch has no ALiBi bias type: a float mask)
  materialized+build    the same, building the mask inside the timed call
DispatchOverhead: `entry point` is F.scaled_dot_product_attention with the bias as a user passes it,
`direct` is torch.ops.aten._scaled_dot_product_flash_attention_for_cpu, the CPU kernel itself.
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
# FP32 FMA peak per core of the development machine (Zen 3), as in Swift's MachinePeak.
MEASURED_GFLOPS_PER_CORE = 98.0
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


def visible_positions(bias, L, S):
    if bias in ("causal-upper-left", "alibi+causal-upper-left"):
        return causal_visible("upper-left", L, S)
    if bias in ("causal-lower-right", "alibi+causal-lower-right"):
        return causal_visible("lower-right", L, S)
    if bias == "mask-bool":
        return int(bool_pattern(L, S).sum())
    return L * S


def materialize(bias, H, L, S, dtype):
    """The dense mask the Swift bias materializes to: bool for causal and mask-bool, float otherwise."""
    if bias.startswith("causal-"):
        offset = causal_offset(bias[len("causal-"):], L, S)
        return torch.ones(L, S, dtype=torch.bool).tril(diagonal=offset)
    if bias.startswith("alibi"):
        variant = bias.split("+causal-")[1] if "+causal-" in bias else None
        offset = causal_offset(variant or "lower-right", L, S)
        i = torch.arange(L).view(1, L, 1)
        j = torch.arange(S).view(1, 1, S)
        distance = (i + offset - j).float()
        slopes = torch.tensor(alibi_slopes(H), dtype=torch.float32).view(H, 1, 1)
        mask = -slopes * distance.abs()
        if variant is not None:
            mask = mask.masked_fill(distance < 0, float("-inf"))
        return mask.to(dtype)
    if bias == "mask-bool":
        return bool_pattern(L, S)
    if bias == "mask-float":
        return float_pattern(L, S).to(dtype)
    raise ValueError(f"unknown bias {bias}")


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
    effective = 4.0 * w["batch"] * H * visible_positions(w["bias"], L, S) * w["headDim"]
    calls = {}
    native = native_call(w["bias"], q, k, v)
    if native is not None:
        calls["fused"] = (native, native)
    if w["bias"] != "none":
        mask = materialize(w["bias"], H, L, S, dtype)
        build = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=materialize(w["bias"], H, L, S, dtype))
        calls["materialized"] = (lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), build)
        if not w["bias"].startswith("mask-"):
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
            "percentOfPeak": 100 * effective / median / 1e9 / peak,
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
        mask = materialize(bias, H, L, S, q.dtype)
        float_mask = mask if mask.dtype != torch.bool else torch.zeros(mask.shape, dtype=q.dtype).masked_fill(~mask, float("-inf"))
        if float_mask.dim() == 3:  # the CPU kernel takes [L, S] or [B, H, L, S] masks
            float_mask = float_mask.unsqueeze(0)
        entry = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        direct = lambda: flash(q, k, v, attn_mask=float_mask)
    plan = (200, 7, 0.005) if args.quick else (1000, 21, 0.01)
    results = []
    for path, body in (("entry point", entry), ("direct", direct)):
        results.append({"workload": w, "path": path, "threads": args.threads, "timing": measure(body, *plan)})
    overhead = (results[0]["timing"]["medianSeconds"] - results[1]["timing"]["medianSeconds"]) * 1e9
    results[0]["overheadNanoseconds"] = overhead
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", required=True, help="a report JSON whose workloads to run")
    parser.add_argument("--json", required=True, help="where to write PyTorch's report")
    parser.add_argument("--benchmark", help="the benchmark (default: the one named in --workloads)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--peak-gflops", type=float, default=MEASURED_GFLOPS_PER_CORE, help="FP32 peak per core")
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    # The plugin passes the Swift benchmarks' options through; ignore the ones that mean nothing here.
    args, _ = parser.parse_known_args()

    with open(args.workloads) as f:
        source = json.load(f)
    benchmark = args.benchmark or source["benchmark"]
    workloads = source.get("workloads") or []
    if not workloads:
        seen = []
        for r in source.get("results", []):
            if r["workload"] not in seen:
                seen.append(r["workload"])
        workloads = seen
    if benchmark not in ("KernelThroughput", "DispatchOverhead", "sdpa bench", "sdpa demo"):
        print(f"pytorch_bench.py: no PyTorch counterpart for {benchmark}; nothing written", file=sys.stderr)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    processors = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    peak = args.peak_gflops * max(1, min(args.threads, processors))

    results = []
    with torch.inference_mode():
        for index, w in enumerate(workloads):
            print(f"[{index + 1}/{len(workloads)}] {w['bias']} B={w['batch']} H={w['heads']} L={w['queryLength']} "
                  f"S={w['keyLength']} E={w['headDim']} {w['dtype']}", file=sys.stderr, flush=True)
            if benchmark == "DispatchOverhead":
                results += dispatch_results(w, args)
            else:
                results += throughput_results(w, args, peak)

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
