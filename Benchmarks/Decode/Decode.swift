import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine

/// Issue 14's decoding targets: (a) one sequence, GQA 32/8, E = 128, S = 8192, float32 and bfloat16,
/// against the time of reading as many bytes (a read pass after each call) and at the read bandwidth
/// measured at start-up; (b) continuous
/// batching, 64 sequences of 128…8192 tokens, 100 steps of one token each through the paged cache,
/// in tokens per second, float32 and bfloat16 caches.
@main
enum Decode {
    static let spec = CommandSpec(
        name: "Decode",
        synopsis: "[options]",
        abstract: """
            (a) one decoding call (L=1) against a contiguous cache of S=8192, H=32 query and 8 key/value heads, E=128, \
            float32 and bfloat16: median time, and the same against the time of reading K and V once: the median, over \
            the samples, of a call's time over the time of a read pass of as many bytes right after it (STREAM-like, in \
            process, the threads the kernel uses), and at the read bandwidth measured at start-up. (b) continuous \
            batching, float32 and bfloat16: 64 sequences of lengths spread from 128 to 8192 in a PagedKVCache (blocks of 128), 100 steps \
            each appending one token to every sequence and attending over all of them in one call: median step, \
            tokens per second, the last quarter's median step against the first's, and each step against a read pass \
            of as many bytes right after it and against the start-up bandwidth. PyTorch \
            (Benchmarks/pytorch_bench.py) runs SDPA per sequence on contiguous caches: with --pytorch it times each \
            workload right after this package, --rounds times over, each side keeping its median round (a shared \
            host's read bandwidth drifts over minutes); --compare reads a report it wrote beforehand. --quick: \
            S=1024, 8 sequences, 10 steps.
            """,
        options: BenchmarkCommandLine.interleavedPyTorchOptions)

    /// Decode steps of a continuous batch; `pytorch_bench.py` runs as many (10 with --quick).
    static func steps(quick: Bool) -> Int { quick ? 10 : 100 }

    static func workloads(quick: Bool) -> [AttentionWorkload] {
        let (S, sequences) = quick ? (1024, 8) : (8192, 64)
        func decode(_ batch: Int, _ dtype: DType) -> AttentionWorkload {
            var w = AttentionWorkload(batch: batch, heads: 32, queryLength: 1, keyLength: S, headDim: 128, dtype: dtype, bias: BiasKind.named("none")!)
            w.keyValueHeads = 8
            return w
        }
        // Batching in both storage dtypes: float32 reads twice the bytes a step, where a server's bfloat16 cache reads half.
        return [decode(1, .float32), decode(1, .bfloat16), decode(sequences, .float32), decode(sequences, .bfloat16)]
    }

    static func main() {
        BenchmarkCommandLine.main(spec, workloads: { workloads(quick: $0.isQuick) }) { options, workloads, output in
            let bandwidth = MemoryBandwidth.measure(bytes: options.isQuick ? 64 << 20 : 256 << 20, threads: SDPAThreads.effectiveCount)
            // Calls of a few milliseconds: many samples cost little and steady the median of the pairs.
            let benchmark = DecodeBenchmark(plan: options.isQuick ? .quickKernel : MeasurementPlan(warmUpCalls: 2, samples: 31), steps: steps(quick: options.isQuick), bandwidth: bandwidth)
            var outcomes = [DecodeBenchmark.Outcome](), comparison = options.comparison
            if let served = try options.servePyTorch() {
                let measured = try benchmark.measureInterleaved(workloads, with: served.pytorch, rounds: served.rounds, showingProgressOn: output)
                outcomes = measured.ours
                comparison = try options.pytorchReport(served.pytorch, workloads: workloads, results: measured.pytorch)
            } else {
                var progress = output.progressReporter(total: workloads.count)
                for workload in workloads {
                    progress.begin(workload.description)
                    outcomes.append(try benchmark.measure(workload))
                }
                progress.finish()
            }
            let results = outcomes.map(\.result)
            var figures = ["memoryReadGBPerSecond": bandwidth.bytesPerSecond / 1e9]
            for outcome in outcomes { figures.merge(outcome.figures) { $1 } }
            figures.merge(DecodeBenchmark.comparisonFigures(results, comparison: comparison)) { $1 }
            var report = options.report(workloads: workloads, results: results)
            report.figures = figures
            output.standardOutput("memory read bandwidth: \(bandwidth)\n")
            return BenchmarkOutcome(report: report, comparison: comparison)
        }
    }
}
