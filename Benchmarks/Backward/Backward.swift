import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine

/// Training's cost: a forward pass (with its log-sum-exp) and the backward pass, per bias, beside
/// PyTorch's autograd on the same shapes (issue 13's targets: B=1 H=8 L=S=2048 E=64 float32).
@main
enum Backward {
    static let spec = CommandSpec(
        name: "Backward",
        synopsis: "[options]",
        abstract: """
            Times one training step of attention: the forward pass with its log-sum-exp and the backward pass \
            (dQ, dK, dV and the bias's own gradients), B=1 H=8 L=S=2048 E=64 float32, for no mask, causal, \
            ALiBi + causal and a 256-key sliding window, then float16 and bfloat16 without a mask and causal, \
            and its peak extra memory. Both passes run on the \
            fused backend (FlashAttention-2's backward: P recomputed from the log-sum-exp, empty tiles skipped). PyTorch (--compare, from Benchmarks/pytorch_bench.py) \
            runs autograd on the same shapes: its own causal API where it has one, a materialized mask \
            otherwise. --quick: L=S=256, fewer samples.
            """,
        options: [])

    /// The biases of the targets (float32).
    static let biases = ["none", "causal-upper-left", "alibi+causal-lower-right", "window:256"]
    /// Half-precision training steps: their backward pass also recomputes the forward's output in float32.
    static let halfBiases = ["none", "causal-upper-left"]

    static func workloads(quick: Bool) throws -> [AttentionWorkload] {
        let n = quick ? 256 : 2048
        let float32 = try biases.map {
            AttentionWorkload(batch: 1, heads: 8, queryLength: n, keyLength: n, headDim: 64, bias: try BiasKind.parse($0))
        }
        let half = try [DType.float16, .bfloat16].flatMap { dtype in
            try halfBiases.map {
                AttentionWorkload(batch: 1, heads: 8, queryLength: n, keyLength: n, headDim: 64, dtype: dtype, bias: try BiasKind.parse($0))
            }
        }
        return float32 + half
    }

    static func main() {
        BenchmarkCommandLine.main(spec, workloads: { try workloads(quick: $0.isQuick) }) { options, workloads, output in
            let plan = options.isQuick ? MeasurementPlan(warmUpCalls: 0, samples: 2) : MeasurementPlan(warmUpCalls: 1, samples: 5)
            let threads = SDPAThreads.effectiveCount
            var progress = output.progressReporter(total: workloads.count)
            var results = [BenchmarkResult]()
            for workload in workloads {
                progress.begin(workload.description)
                let (q, k, v) = try workload.makeInputs()
                let gradOutput = try Tensor.randomNormal(
                    shape: [workload.batch, workload.heads, workload.queryLength, workload.valueHeadDim], seed: 7, dtype: q.dtype)
                let bias = try workload.makeBias()
                let step = {
                    let (out, lse) = try attentionWithLogSumExp(query: q, key: k, value: v, bias: bias)
                    return try attentionGradients(gradOutput: gradOutput, query: q, key: k, value: v, output: out, logSumExp: lse, bias: bias)
                }
                let memory = try ResidentMemory.peakExtraBytes(during: step).bytes
                let timing = try measure(plan, step)
                results.append(BenchmarkResult(
                    workload: workload, path: "fused", threads: threads, timing: timing, peakExtraBytes: memory,
                    note: "forward (fused) + backward (fused)"))
            }
            progress.finish()
            var report = options.report(workloads: workloads, results: results)
            report.figures = figures(results, comparison: options.comparison)
            return BenchmarkOutcome(report: report)
        }
    }

    /// PyTorch's time over ours, per bias, when compared.
    static func figures(_ results: [BenchmarkResult], comparison: BenchmarkReport?) -> [String: Double]? {
        guard let comparison else { return nil }
        var figures = [String: Double]()
        for result in results {
            if let ours = result.timing?.medianSeconds, let theirs = comparison.counterpart(of: result)?.timing?.medianSeconds {
                let dtype = result.workload.dtype == "float32" ? "" : ".\(result.workload.dtype)"
                figures["\(result.workload.bias)\(dtype).speedupOverPyTorch"] = theirs / ours
            }
        }
        return figures
    }
}
