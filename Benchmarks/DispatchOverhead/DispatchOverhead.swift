@_spi(Benchmarking) import SDPA
import SDPABenchmarkHarness
import SDPACommandLine

/// The RFC's "kernel dispatch overhead" metric: for each bias type, a call through
/// `scaledDotProductAttention(attnMask:)` against a direct call of the kernel, at a tiny and a
/// small shape; the difference is the time the entry point adds per call.
@main
enum DispatchOverhead {
    static let spec = CommandSpec(
        name: "DispatchOverhead",
        synopsis: "[options]",
        abstract: """
            Times whole attention calls at B=1 H=1 L=S=8 E=16 and B=1 H=8 L=S=64 E=64, for every bias: through \
            the public entry point, and directly (see 'direct' below); overhead = the median over back-to-back sample pairs of entry point - direct. \
            Targets: overhead <= 100 ns, tiny calls under 3 us. Every bias kind of BiasKind.all runs, the \
            sliding window, key padding, block-diagonal, soft-cap and composed biases included.
            """,
        options: [],
        epilogue: "direct: " + directCallDescription)

    static func workloads(quick: Bool) -> [AttentionWorkload] {
        [(1, 8, 16), (8, 64, 64)].flatMap { heads, length, headDim in
            BiasKind.all.map {
                AttentionWorkload(batch: 1, heads: heads, queryLength: length, keyLength: length, headDim: headDim, bias: $0)
            }
        }
    }

    /// What the "direct" measurement calls.
    static let directCallDescription = """
        _PreparedAttention(query:key:value:attnMask:options:).run(), prepared once per bias: the same kernel \
        the entry point selects, with shapes checked, the bias validated (a dense mask built) and the backend \
        chosen beforehand
        """

    /// The direct kernel call for `bias`: everything the entry point decides, decided once.
    static func directCall(query: Tensor, key: Tensor, value: Tensor, bias: (any AttnBias)?) throws -> () throws -> Tensor {
        let options = AttentionOptions()
        guard let bias else {
            let prepared = try _PreparedAttention(query: query, key: key, value: value, attnMask: nil as CausalBias?, isCausal: false, options: options)
            return { try prepared.run() }
        }
        func typed<Bias: AttnBias>(_ bias: Bias) throws -> _PreparedAttention {
            try _PreparedAttention(query: query, key: key, value: value, attnMask: bias, isCausal: false, options: options)
        }
        let prepared = try typed(bias)
        return { try prepared.run() }
    }

    /// A call through the public entry point with the bias's concrete type, as a user's code makes
    /// it: the bias is cast to its static type first, so the generic entry point is specialised for
    /// it here (it is `@inlinable`), as in an application. A type not listed falls back to a call
    /// through the opened existential (unspecialised generic code), which this benchmark would show.
    static func entryPointCall(query: Tensor, key: Tensor, value: Tensor, bias: (any AttnBias)?) -> () throws -> Tensor {
        guard let bias else { return { try scaledDotProductAttention(query: query, key: key, value: value) } }
        func typed<Bias: AttnBias>(_ bias: Bias) -> () throws -> Tensor {
            { try scaledDotProductAttention(query: query, key: key, value: value, attnMask: bias) }
        }
        switch bias {
        case let bias as CausalBias: return typed(bias)
        case let bias as AlibiBias: return typed(bias)
        case let bias as SlidingWindowBias: return typed(bias)
        case let bias as KeyPaddingBias: return typed(bias)
        case let bias as BlockDiagonalBias: return typed(bias)
        case let bias as TensorBias: return typed(bias)
        case let bias as BiasComposition<SoftCapBias, CausalBias>: return typed(bias)
        case let bias as BiasComposition<BiasComposition<AlibiBias, SlidingWindowBias>, CausalBias>: return typed(bias)
        default: return typed(bias)
        }
    }

    static func main() {
        BenchmarkCommandLine.main(spec, workloads: { workloads(quick: $0.isQuick) }) { options, workloads, output in
            let plan: MeasurementPlan = options.isQuick ? .quickDispatch : .dispatch
            let threads = SDPAThreads.effectiveCount
            var progress = output.progressReporter(total: workloads.count)
            var results = [BenchmarkResult]()
            for workload in workloads {
                progress.begin(workload.description)
                let (q, k, v) = try workload.makeInputs()
                let bias = try workload.makeBias()
                // Interleaved samples: the difference of two medians is only as good as their conditions are alike.
                let (entry, direct, difference) = try measureInterleaved(
                    plan, entryPointCall(query: q, key: k, value: v, bias: bias), directCall(query: q, key: k, value: v, bias: bias))
                let overhead = difference * 1e9
                results.append(BenchmarkResult(workload: workload, path: "entry point", threads: threads, timing: entry, overheadNanoseconds: overhead))
                results.append(BenchmarkResult(workload: workload, path: "direct", threads: threads, timing: direct))
            }
            progress.finish()
            let report = options.report(workloads: workloads, results: results)
            let chart = options.chart(
                of: report, title: "Whole-call time per bias (lower is better)", valueLabel: "microseconds per call",
                category: { "\($0.bias) L=\($0.queryLength) E=\($0.headDim)" },
                metric: { $0.timing.map { $0.medianSeconds * 1e6 } })
            return BenchmarkOutcome(report: report, table: table(report, comparison: options.comparison), chart: chart)
        }
    }

    static func table(_ report: BenchmarkReport, comparison: BenchmarkReport?) -> String {
        var columns: [TextTable.Column] = [
            .init("bias"), .init("shape"), .init("entry point", alignment: .right), .init("direct", alignment: .right),
            .init("overhead", alignment: .right),
        ]
        if let comparison {
            columns += [.init("\(comparison.implementation) entry point", alignment: .right), .init("\(comparison.implementation) direct", alignment: .right)]
        }
        var table = TextTable(columns: columns)
        let median = { (r: BenchmarkResult?) in MeasurementFormat.optional(r?.timing?.medianSeconds, MeasurementFormat.duration) }
        for workload in report.workloads {
            let rows = report.results(for: workload)
            let entry = rows.first { $0.path == "entry point" }
            var row = [
                workload.bias, workload.shapeDescription, median(entry), median(rows.first { $0.path == "direct" }),
                MeasurementFormat.optional(entry?.overheadNanoseconds) { MeasurementFormat.fixed($0, 0) + " ns" },
            ]
            if let comparison {
                let others = comparison.results(for: workload)
                row += [median(others.first { $0.path == "entry point" }), median(others.first { $0.path == "direct" })]
            }
            table.append(row)
        }
        let tiny = report.results.filter { $0.workload.queryLength == 8 && $0.path == "entry point" }
        let worstOverhead = tiny.compactMap(\.overheadNanoseconds).max() ?? .nan
        let slowestCall = tiny.compactMap { $0.timing?.medianSeconds }.max() ?? .nan
        let targets = "tiny calls (L=S=8): largest overhead \(MeasurementFormat.fixed(worstOverhead, 0)) ns (target <= 100 ns), "
            + "slowest whole call \(MeasurementFormat.duration(slowestCall)) (target < 3 us)"
        return "median per call, \(report.machine.threads) threads; direct = \(directCallDescription)\n" + table.rendered() + "\n" + targets
    }
}
