import Foundation
import SDPA
import SDPABenchmarkHarness

/// `sdpa bench`: the materialized and the fused path of each bias, timed side by side.
enum BenchCommand {
    static let dtypeChoices = [DType.float32, .float16, .bfloat16].map(\.rawValue)
    /// The shape of `sdpa bench` without `--shape`, and of the demo: a few tens of milliseconds a call.
    static let defaultShape = [1, 8, 1024, 1024, 64]
    /// The shape of `sdpa bench --decode` without `--shape`: one token against 8192 cached, Llama-like heads.
    static let defaultDecodeShape = [1, 32, 1, 8192, 128]
    /// Continuous-batching steps without `--steps`.
    static let defaultDecodeSteps = 20

    static let spec = CommandSpec(
        name: "sdpa bench",
        synopsis: "[--shape B,H,L,S,E] [--bias KIND ...] [--dtype T] [--decode [--kv-heads N] [--steps N]] [--threads N] [--json FILE] [--svg FILE]",
        summary: "time each bias, materialized and fused, side by side",
        abstract: """
            Times each bias on the materialized path (the mask built beforehand and read by the kernel) and \
            on the fused path (the bias computed in the kernel): median time, GFLOP/s, effective GFLOP/s \
            (visible score positions only), percent of the machine's peak, and peak extra memory. \
            With --decode, times decoding instead (the Decode benchmark's workloads): B = 1 is one query row against a \
            contiguous cache of S keys, set against the time of reading K and V once (a read pass of as many bytes after \
            each call, and the read bandwidth measured at start-up); \
            B > 1 is continuous batching, B sequences of 128…S tokens in a PagedKVCache, each step appending one token \
            to every sequence and attending over all of them (tokens per second).
            """,
        options: [
            .value("shape", "B,H,L,S,E", "the problem size (default \(defaultShape.map(String.init).joined(separator: ",")))"),
            .value("bias", "KIND", "a bias to time (default: every bias kind below)", repeatable: true),
            .value("dtype", dtypeChoices.joined(separator: "|"), "the inputs' dtype (default float32)"),
            .value("samples", "N", "timed calls per configuration (default \(MeasurementPlan.kernel.samples))"),
            .flag("decode", "time decoding: L must be 1; B = 1 one sequence, B > 1 continuous batching (default shape \(defaultDecodeShape.map(String.init).joined(separator: ",")))"),
            .value("kv-heads", "N", "with --decode: key/value heads, dividing H (default H)"),
            .value("steps", "N", "with --decode and B > 1: decode steps (default \(defaultDecodeSteps))"),
        ] + BenchmarkCommandLine.commonOptions.filter { !["list", "quick"].contains($0.name) },
        epilogue: AttentionSettings.biasHelp(kinds: BiasKind.all, title: "bias kinds (--bias)") + "\n\nbenchmark masks (sdpa bench only):\n"
            + BiasKind.fixed.filter(\.isBenchmarkMask).map { "  \($0.spelling.padding(12))\($0.summary)" }.joined(separator: "\n"))

    static func run(_ parsed: ParsedArguments, output: CommandOutput) throws {
        if parsed.has("decode") { return try runDecode(parsed, output: output) }
        for option in ["kv-heads", "steps"] where parsed.has(option) {
            throw UsageError("--\(option) applies only with --decode", command: spec.name)
        }
        let s = try parsed.integerList("shape", counts: [5], minimum: 1) ?? defaultShape
        let spellings = parsed.strings("bias")
        let kinds = spellings.isEmpty ? BiasKind.commandLineKinds
            : try spellings.map { try AttentionSettings.parseBias($0, command: spec.name, allowingBenchmarkMasks: true) }
        let dtype = DType(rawValue: try parsed.choice("dtype", among: dtypeChoices) ?? "float32")!
        let samples = try parsed.integer("samples", minimum: 1) ?? MeasurementPlan.kernel.samples
        let options = try BenchmarkCommandLine(parsed)
        // Sizes whose element or byte counts overflow are an input error before anything is built.
        try AttentionShape(batch: s[0], queryHeads: s[1], keyValueHeads: s[1], queryLength: s[2], keyLength: s[3],
                           headDim: s[4], valueHeadDim: s[4]).validate(dtype: dtype, enableGQA: false)

        let workloads = kinds.map {
            AttentionWorkload(batch: s[0], heads: s[1], queryLength: s[2], keyLength: s[3], headDim: s[4], dtype: dtype, bias: $0)
        }
        let benchmark = ThroughputBenchmark(plan: MeasurementPlan(warmUpCalls: 1, samples: samples), peakGFLOPSPerCore: options.givenPeakGFLOPSPerCore)
        let report = try withThreads(options.threads) {
            try measure(benchmark, workloads: workloads, name: "sdpa bench", output: output)
        }
        let presentation = BenchmarkPresentation(report: report, comparison: options.comparison)
        output.standardOutput(presentation.text + "\n")
        if let url = options.jsonURL { try report.write(to: url) }
        if let url = options.svgURL { try presentation.chart?.write(to: url) }
    }

    /// `--decode`: the workload of `--shape` as the Decode benchmark times it, in a report named `Decode`.
    static func runDecode(_ parsed: ParsedArguments, output: CommandOutput) throws {
        let s = try parsed.integerList("shape", counts: [5], minimum: 1) ?? defaultDecodeShape
        guard s[2] == 1 else { throw UsageError("--decode times one query row per sequence: L in --shape must be 1, got \(s[2])", command: spec.name) }
        if !parsed.strings("bias").isEmpty { throw UsageError("--bias does not apply with --decode (decoding is causal)", command: spec.name) }
        let kvHeads = try parsed.integer("kv-heads", minimum: 1) ?? s[1]
        guard s[1] % kvHeads == 0 else {
            throw UsageError("--kv-heads must divide the query heads H = \(s[1]), got \(kvHeads)", command: spec.name)
        }
        let steps = try parsed.integer("steps", minimum: 1) ?? defaultDecodeSteps
        let dtype = DType(rawValue: try parsed.choice("dtype", among: dtypeChoices) ?? "float32")!
        let samples = try parsed.integer("samples", minimum: 1) ?? MeasurementPlan.kernel.samples
        let options = try BenchmarkCommandLine(parsed)
        var workload = AttentionWorkload(batch: s[0], heads: s[1], queryLength: 1, keyLength: s[3], headDim: s[4], dtype: dtype, bias: BiasKind.named("none")!)
        workload.keyValueHeads = kvHeads
        let report = try withThreads(options.threads) {
            let bandwidth = MemoryBandwidth.measure(threads: SDPAThreads.effectiveCount)
            let benchmark = DecodeBenchmark(plan: MeasurementPlan(warmUpCalls: 1, samples: samples), steps: steps, bandwidth: bandwidth)
            let outcome = try output.showingProgress { progress in
                progress(0, 1, workload.description)
                return try benchmark.measure(workload)
            }
            var figures = outcome.figures.merging(["memoryReadGBPerSecond": bandwidth.bytesPerSecond / 1e9]) { $1 }
            figures.merge(DecodeBenchmark.comparisonFigures([outcome.result], comparison: options.comparison)) { $1 }
            let machine = MachineDescription(threads: SDPAThreads.effectiveCount, peakGFLOPSPerCore: options.givenPeakGFLOPSPerCore)
            return BenchmarkReport(benchmark: "Decode", commit: BenchmarkReport.currentCommit(), machine: machine,
                                   workloads: [workload], results: [outcome.result], figures: figures)
        }
        let presentation = BenchmarkPresentation(report: report, comparison: options.comparison)
        output.standardOutput(presentation.text + "\n")
        if let url = options.jsonURL { try report.write(to: url) }
        if let url = options.svgURL { try presentation.chart?.write(to: url) }
    }

    /// Measures `workloads` on the materialized and fused paths with a progress display on standard error.
    static func measure(_ benchmark: ThroughputBenchmark, workloads: [AttentionWorkload], name: String, output: CommandOutput) throws -> BenchmarkReport {
        let results = try benchmark.measureAll(workloads, paths: [.materialized, .fused], showingProgressOn: output)
        let machine = MachineDescription(threads: SDPAThreads.effectiveCount, peakGFLOPSPerCore: benchmark.peakGFLOPSPerCore)
        return BenchmarkReport(benchmark: name, commit: BenchmarkReport.currentCommit(), machine: machine, workloads: workloads, results: results)
    }
}
