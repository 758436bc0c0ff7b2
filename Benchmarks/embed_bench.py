#!/usr/bin/env python3
"""sentence-transformers' encode on the Embed benchmark's sentences, for Benchmarks/Embed (schema sdpa-benchmark/1).

    ~/.torchenv/bin/python Benchmarks/embed_bench.py --serve --model Models/all-MiniLM-L6-v2 --sentences FILE --threads 2

The Embed benchmark starts this with --serve (through PyTorchCounterpart, as KernelThroughput does with
pytorch_bench.py): the first line written is a header (implementation, threads, processors, peak), then each
workload read from standard input, one JSON object per line, is answered with one line: a JSON list holding one
result, the time of `SentenceTransformer.encode(sentences, batch_size=N)` (which sorts the sentences by length and
pads each batch to its longest). --model is a local directory: nothing is downloaded (HF_HUB_OFFLINE is set).
Without --serve: one measurement, printed as a result list.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import sentence_transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

MEASURED_GFLOPS_PER_CORE = 98.0  # as Swift's MachinePeak and pytorch_bench.py


def measure(body, warm_up, samples):
    for _ in range(warm_up):
        body()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    times.sort()
    return {"samples": len(times), "callsPerSample": 1, "minSeconds": times[0],
            "medianSeconds": statistics.median(times), "maxSeconds": times[-1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a sentence-transformers model directory")
    parser.add_argument("--sentences", required=True, help="a file of sentences, one per line")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--serve", action="store_true", help="answer workloads from standard input (see above)")
    parser.add_argument("--benchmark", default="Embed", help="the benchmark asking (accepted for PyTorchCounterpart)")
    parser.add_argument("--quick", action="store_true", help="one sample")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with open(args.sentences, encoding="utf-8") as f:
        sentences = f.read().split("\n")[:-1]
    model = SentenceTransformer(args.model, device="cpu")
    threads = torch.get_num_threads()
    implementation = f"sentence-transformers {sentence_transformers.__version__} (PyTorch {torch.__version__.split('+')[0]})"

    def result(workload):
        timing = measure(lambda: model.encode(sentences, batch_size=args.batch_size, convert_to_numpy=True),
                         warm_up=1, samples=1 if args.quick else 3)
        return [{"workload": workload, "path": "sentence-transformers", "threads": threads, "timing": timing,
                 "note": f"{len(sentences)} sentences, encode(batch_size={args.batch_size}): sorted by length, padded per batch"}]

    if not args.serve:
        print(json.dumps(result(None)))
        return
    header = {"implementation": implementation, "processors": os.cpu_count(), "threads": threads,
              "peakGFLOPSPerCore": MEASURED_GFLOPS_PER_CORE, "peakGFLOPS": MEASURED_GFLOPS_PER_CORE * threads}
    print(json.dumps(header), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(result(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
