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
        epilogue: "direct: " + BenchmarkPresentation.directCallDescription)

    static func workloads(quick: Bool) -> [AttentionWorkload] {
        [(1, 8, 16), (8, 64, 64)].flatMap { heads, length, headDim in
            BiasKind.all.map {
                AttentionWorkload(batch: 1, heads: heads, queryLength: length, keyLength: length, headDim: headDim, bias: $0)
            }
        }
    }

    /// A call made with a bias's concrete type, as a user's code makes it: the generic entry points (all
    /// `@inlinable`) are then specialised for it here, in the caller's module.
    protocol TypedCall {
        associatedtype Result
        func callAsFunction<Bias: AttnBias>(_ bias: Bias) throws -> Result
        /// The call for a fused bias, where the call can use that (the prepared call can).
        func fused<Bias: FusedAttnBias>(_ bias: Bias) throws -> Result
    }

    /// `call` with `bias` cast to its static type. A type not listed falls back to a call through the
    /// opened existential (unspecialised generic code), which this benchmark would show.
    static func withStaticType<Call: TypedCall>(_ bias: any AttnBias, _ call: Call) throws -> Call.Result {
        switch bias {
        case let bias as CausalBias: return try call.fused(bias)
        case let bias as AlibiBias: return try call.fused(bias)
        case let bias as SlidingWindowBias: return try call.fused(bias)
        case let bias as KeyPaddingBias: return try call.fused(bias)
        case let bias as BlockDiagonalBias: return try call.fused(bias)
        case let bias as BiasComposition<SoftCapBias, CausalBias>: return try call.fused(bias)
        case let bias as BiasComposition<BiasComposition<AlibiBias, SlidingWindowBias>, CausalBias>: return try call.fused(bias)
        case let bias as TensorBias: return try call(bias)
        default: return try call(bias)
        }
    }

    /// The direct kernel call for `bias`: everything the entry point decides, decided once, the kernel
    /// specialised here as the entry point's is.
    struct DirectCall: TypedCall {
        let query: Tensor, key: Tensor, value: Tensor
        func callAsFunction<Bias: AttnBias>(_ bias: Bias) throws -> () throws -> Tensor {
            let prepared = try _PreparedAttention(query: query, key: key, value: value, attnMask: bias, isCausal: false, options: AttentionOptions())
            return { try prepared.run() }
        }
        func fused<Bias: FusedAttnBias>(_ bias: Bias) throws -> () throws -> Tensor {
            let prepared = try _PreparedAttention(query: query, key: key, value: value, fusedBias: bias, options: AttentionOptions())
            return { try prepared.run() }
        }
    }

    static func directCall(query: Tensor, key: Tensor, value: Tensor, bias: (any AttnBias)?) throws -> () throws -> Tensor {
        guard let bias else {
            let prepared = try _PreparedAttention(
                query: query, key: key, value: value, attnMask: nil as CausalBias?, isCausal: false, options: AttentionOptions())
            return { try prepared.run() }
        }
        return try withStaticType(bias, DirectCall(query: query, key: key, value: value))
    }

    /// A call through the public entry point with the bias's concrete type, as a user's code makes it.
    struct EntryPointCall: TypedCall {
        let query: Tensor, key: Tensor, value: Tensor
        func callAsFunction<Bias: AttnBias>(_ bias: Bias) -> () throws -> Tensor {
            { try scaledDotProductAttention(query: query, key: key, value: value, attnMask: bias) }
        }
        func fused<Bias: FusedAttnBias>(_ bias: Bias) -> () throws -> Tensor { self(bias) }
    }

    static func entryPointCall(query: Tensor, key: Tensor, value: Tensor, bias: (any AttnBias)?) throws -> () throws -> Tensor {
        guard let bias else { return { try scaledDotProductAttention(query: query, key: key, value: value) } }
        return try withStaticType(bias, EntryPointCall(query: query, key: key, value: value))
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
                let pair = try measureInterleaved(
                    plan, try entryPointCall(query: q, key: k, value: v, bias: bias), directCall(query: q, key: k, value: v, bias: bias))
                results.append(BenchmarkResult(workload: workload, path: "entry point", threads: threads, timing: pair.first,
                                               overheadNanoseconds: pair.medianDifferenceSeconds * 1e9,
                                               overheadSamplesNanoseconds: pair.differenceSeconds.map { $0 * 1e9 }))
                results.append(BenchmarkResult(workload: workload, path: "direct", threads: threads, timing: pair.second))
            }
            progress.finish()
            return BenchmarkOutcome(report: options.report(workloads: workloads, results: results))
        }
    }
}
