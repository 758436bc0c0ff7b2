import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine

/// Throughput of every bias, fused against materialized, on the shapes of the fused-kernel
/// issue (issue 3): GFLOP/s, effective GFLOP/s and percent of the machine's peak.
@main
enum KernelThroughput {
    static let spec = CommandSpec(
        name: "KernelThroughput",
        synopsis: "[options]",
        abstract: """
            Times every bias on the fused path (computed in the kernel), the materialized path (mask built \
            beforehand) and the materialized path including building the mask, at B=1, H=8: L=S=2048 with \
            E=64 (every bias of BiasKind.all: causal, ALiBi, sliding windows, key padding, packed block-diagonal \
            sequences, soft-capping, a composition, dense masks) and E=128, lower-right causal and a window at \
            L=512 S=2048, float16/bfloat16, and decoding (L=1 against S=4096, E=64 and 128, float32 and \
            bfloat16). Soft-capping has no materialized form: fused path only. \
            With --pytorch, PyTorch times each workload right after this package, --rounds times over, and \
            each side reports its median round: a shared machine's slow spells then hit both sides alike.
            """,
        options: BenchmarkCommandLine.interleavedPyTorchOptions)

    /// The workloads of issue 3's targets.
    static func workloads(quick: Bool) -> [AttentionWorkload] {
        func shape(_ kind: BiasKind, _ l: Int, _ s: Int, _ e: Int, _ dtype: DType = .float32) -> AttentionWorkload {
            AttentionWorkload(batch: 1, heads: 8, queryLength: l, keyLength: s, headDim: e, dtype: dtype, bias: kind)
        }
        let n = quick ? 512 : 2048
        let kind = { BiasKind.named($0)! }
        var list = BiasKind.all.map { shape($0, n, n, 64) }
        list += ["none", "causal-upper-left"].map { shape(kind($0), n, n, 128) }
        list += ["causal-upper-left", "causal-lower-right", "alibi+causal-lower-right", "alibi+window:256+causal-lower-right"]
            .map { shape(kind($0), n / 4, n, 64) }
        for dtype in [DType.float16, .bfloat16] {
            list += ["none", "causal-upper-left", "alibi+causal-lower-right"].map { shape(kind($0), n, n, 64, dtype) }
        }
        // Decoding: one query row against a long cache, memory-bound (beyond the targets).
        list += [shape(kind("none"), 1, 2 * n, 64), shape(kind("none"), 1, 2 * n, 128), shape(kind("none"), 1, 2 * n, 64, .bfloat16)]
        return list
    }

    static func main() {
        BenchmarkCommandLine.main(spec, workloads: { workloads(quick: $0.isQuick) }) { options, workloads, output in
            let benchmark = ThroughputBenchmark(plan: options.isQuick ? .quickKernel : .kernel, peakGFLOPSPerCore: options.givenPeakGFLOPSPerCore)
            let results: [BenchmarkResult]
            var comparison = options.comparison
            if let served = try options.servePyTorch() {
                let measured = try benchmark.measureInterleaved(
                    workloads, paths: AttentionPath.allCases, with: served.pytorch, rounds: served.rounds, showingProgressOn: output)
                results = measured.ours
                comparison = try options.pytorchReport(served.pytorch, workloads: workloads, results: measured.pytorch)
            } else {
                results = try benchmark.measureAll(workloads, paths: AttentionPath.allCases, showingProgressOn: output)
            }
            return BenchmarkOutcome(report: options.report(workloads: workloads, results: results), comparison: comparison)
        }
    }
}
