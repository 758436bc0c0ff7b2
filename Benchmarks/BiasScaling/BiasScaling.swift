import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine

/// Issue 5's targets, measured: a sliding window's cost grows linearly with `L`; packed
/// block-diagonal causal attention costs what the sequences cost one by one; a plugin bias
/// (a user's `FusedAttnBias`) runs as fast as the built-in bias it is equivalent to.
@main
enum BiasScaling {
    static let spec = CommandSpec(
        name: "BiasScaling",
        synopsis: "[options]",
        abstract: """
            (a) window:256 (causal, lower-right), B=1 H=8 E=64, L=S from 2048 to 16384: time per L, the fitted \
            slope (time per token) and a linearity check; PyTorch (--compare) at L=8192 with the same bool mask \
            materialized. (b) block-diagonal-causal, 8 sequences of lengths around 1024 packed into 8192 tokens, \
            against the 8 sequences one by one through the causal kernel (target: ratio <= 1.3) and PyTorch with \
            the materialized mask. (c) causal written as a plugin FusedAttnBias (isVisible + tileVisibility) \
            against the built-in causal-upper-left, L=S=2048 (target: ratio <= 1.15). Pairs that make a ratio \
            are timed with interleaved samples. --quick: sizes / 4.
            """,
        options: [])

    /// Lengths around 1024 that sum to 8192.
    static let packedLengths = [832, 1216, 960, 1088, 1152, 896, 1024, 1024]

    static func workloads(quick: Bool) -> [AttentionWorkload] {
        let scale = quick ? 4 : 1
        func shape(_ spelling: String, _ length: Int) -> AttentionWorkload {
            AttentionWorkload(batch: 1, heads: 8, queryLength: length, keyLength: length, headDim: 64, bias: try! BiasKind.parse(spelling))
        }
        let windows = [2048, 4096, 8192, 12288, 16384].map { shape("window:256", $0 / scale) }
        let lengths = packedLengths.map { $0 / scale }
        let packed = shape("block-diagonal-causal:" + lengths.map(String.init).joined(separator: ","), lengths.reduce(0, +))
        return windows + [packed, shape("causal-upper-left", 2048 / scale)]
    }

    /// Causal attention written as a user would write it with the plugin protocol: a mask predicate and a
    /// tile classifier, no SIMD code.
    struct PluginCausal: FusedAttnBias {
        var seqLenQ: Int, seqLenKV: Int
        static var modifiesScores: Bool { false }
        var materializedShape: [Int] { [seqLenQ, seqLenKV] }
        func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { key <= query }
        func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
            .causal(queries: queries, keys: keys, diagonalOffset: 0)
        }
    }

    static func main() {
        BenchmarkCommandLine.main(spec, workloads: { workloads(quick: $0.isQuick) }) { options, workloads, output in
            let benchmark = ThroughputBenchmark(plan: options.isQuick ? .quickKernel : .kernel, peakGFLOPSPerCore: options.givenPeakGFLOPSPerCore)
            let pairPlan = MeasurementPlan(warmUpCalls: 1, samples: options.isQuick ? 5 : 15)
            let peak = options.machine.peakGFLOPS
            let threads = SDPAThreads.effectiveCount
            var progress = output.progressReporter(total: workloads.count)
            var results = [BenchmarkResult]()
            for workload in workloads {
                progress.begin(workload.description)
                let (q, k, v) = try workload.makeInputs()
                if workload.bias.hasPrefix("window") {
                    results.append(try benchmark.measure(workload, path: .fused))
                } else if workload.bias.hasPrefix("block-diagonal") {
                    let bias = try workload.makeBias()!
                    let lengths = (bias as! BlockDiagonalBias).queryLengths
                    let sequences = try lengths.enumerated().map { n, length in
                        try AttentionWorkload(batch: 1, heads: workload.heads, queryLength: length, keyLength: length,
                                              headDim: workload.headDim, bias: BiasKind.parse("causal-upper-left"))
                            .makeInputs(seed: UInt64(10 * n + 5))
                    }
                    let pair = try measureInterleaved(pairPlan, {
                        try attention(query: q, key: k, value: v, bias: bias)
                    }, {
                        try sequences.map { s in
                            try scaledDotProductAttention(
                                query: s.query, key: s.key, value: s.value, attnMask: causalUpperLeft(s.query.shape[2], s.key.shape[2]))
                        }
                    })
                    results.append(BenchmarkResult(workload: workload, path: "fused", threads: threads, timing: pair.first).withThroughput(peakGFLOPS: peak))
                    results.append(BenchmarkResult(workload: workload, path: "one by one", threads: threads, timing: pair.second,
                                                   note: "the \(lengths.count) sequences through causal-upper-left, one call each")
                        .withThroughput(peakGFLOPS: peak))
                } else {
                    let (l, s) = (workload.queryLength, workload.keyLength)
                    let plugin = PluginCausal(seqLenQ: l, seqLenKV: s)
                    let pair = try measureInterleaved(pairPlan, {
                        try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalUpperLeft(l, s))
                    }, {
                        try scaledDotProductAttention(query: q, key: k, value: v, attnMask: plugin)
                    })
                    results.append(BenchmarkResult(workload: workload, path: "fused", threads: threads, timing: pair.first).withThroughput(peakGFLOPS: peak))
                    results.append(BenchmarkResult(workload: workload, path: "plugin", threads: threads, timing: pair.second,
                                                   note: "causal as a user's FusedAttnBias: isVisible + tileVisibility")
                        .withThroughput(peakGFLOPS: peak))
                }
            }
            progress.finish()
            var report = options.report(workloads: workloads, results: results)
            report.figures = self.figures(results, comparison: options.comparison)
            return BenchmarkOutcome(report: report)
        }
    }

    /// The targets' figures from the results (medians).
    static func figures(_ results: [BenchmarkResult], comparison: BenchmarkReport?) -> [String: Double] {
        var figures = [String: Double]()
        let median = { (r: BenchmarkResult) in r.timing?.medianSeconds ?? .nan }
        // (a) least-squares line through (L, fastest seconds) of the window rows: on shared cores the
        // fastest sample is the one least disturbed by other processes.
        let window = results.filter { $0.workload.bias.hasPrefix("window") && $0.path == "fused" }
        if window.count >= 2 {
            let xs = window.map { Double($0.workload.queryLength) }, ys = window.map { $0.timing?.minSeconds ?? .nan }
            let n = Double(xs.count), mx = xs.reduce(0, +) / n, my = ys.reduce(0, +) / n
            let sxy = zip(xs, ys).map { ($0 - mx) * ($1 - my) }.reduce(0, +), sxx = xs.map { ($0 - mx) * ($0 - mx) }.reduce(0, +)
            let slope = sxy / sxx, intercept = my - slope * mx
            let residual = zip(xs, ys).map { pow($1 - (intercept + slope * $0), 2) }.reduce(0, +)
            let total = ys.map { pow($0 - my, 2) }.reduce(0, +)
            figures["window.slopeNanosecondsPerToken"] = slope * 1e9
            figures["window.interceptMilliseconds"] = intercept * 1e3
            figures["window.rSquared"] = total > 0 ? 1 - residual / total : 1
            // Time per token at the longest L over that at the shortest: 1 for perfectly linear cost,
            // L_max / L_min (8) for quadratic.
            let perToken = zip(xs, ys).map { $1 / $0 }
            figures["window.perTokenGrowth"] = perToken.last! / perToken.first!
            for (x, y) in zip(xs, ys) { figures["window.L\(Int(x)).microsecondsPerToken"] = y / x * 1e6 }
            if let comparison {
                for row in window {
                    if let other = comparison.counterpart(of: row), let theirs = other.timing?.medianSeconds {
                        figures["window.L\(row.workload.queryLength).speedupOverPyTorch"] = theirs / median(row)
                    }
                }
            }
        }
        // (b) packed against one by one.
        if let packed = results.first(where: { $0.workload.bias.hasPrefix("block-diagonal") && $0.path == "fused" }),
           let single = results.first(where: { $0.workload.bias.hasPrefix("block-diagonal") && $0.path == "one by one" }) {
            figures["blockDiagonal.ratioToOneByOne"] = median(packed) / median(single)
            if let other = comparison?.counterpart(of: packed), let theirs = other.timing?.medianSeconds {
                figures["blockDiagonal.speedupOverPyTorch"] = theirs / median(packed)
            }
        }
        // (c) plugin against built-in.
        if let builtIn = results.first(where: { $0.workload.bias == "causal-upper-left" && $0.path == "fused" }),
           let plugin = results.first(where: { $0.path == "plugin" }) {
            figures["plugin.ratioToBuiltIn"] = median(plugin) / median(builtIn)
            figures["plugin.ratioToBuiltInMin"] = (plugin.timing?.minSeconds ?? .nan) / (builtIn.timing?.minSeconds ?? .nan)
        }
        return figures
    }
}
