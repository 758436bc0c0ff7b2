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
            L=512 S=2048, and float16/bfloat16. Soft-capping has no materialized form: fused path only.
            """,
        options: [])

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
        return list
    }

    static func main() {
        BenchmarkCommandLine.main(spec, workloads: { workloads(quick: $0.isQuick) }) { options, workloads, output in
            let benchmark = ThroughputBenchmark(plan: options.isQuick ? .quickKernel : .kernel, peakGFLOPSPerCore: options.peakGFLOPSPerCore)
            let results = try benchmark.measureAll(workloads, paths: AttentionPath.allCases, showingProgressOn: output)
            let report = options.report(workloads: workloads, results: results)
            let chart = options.chart(
                of: report, title: "Attention throughput, \(report.machine.threads) thread\(report.machine.threads == 1 ? "" : "s") (peak \(Int(report.machine.peakGFLOPS)) GFLOP/s)",
                valueLabel: "effective GFLOP/s",
                category: { "\($0.bias) \($0.dtype == "float32" ? "" : $0.dtype + " ")L=\($0.queryLength) S=\($0.keyLength) E=\($0.headDim)" },
                metric: \.effectiveGFLOPS)
            return BenchmarkOutcome(
                report: report,
                table: ThroughputTable.summaryLine(report) + "\n" + ThroughputTable.rendered(results, comparison: options.comparison),
                chart: chart)
        }
    }
}
