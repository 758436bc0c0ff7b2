import Foundation
import SDPA
import SDPABenchmarkHarness

/// `sdpa bench`: the materialized and the fused path of each bias, timed side by side.
enum BenchCommand {
    static let dtypeChoices = [DType.float32, .float16, .bfloat16].map(\.rawValue)
    /// The shape of `sdpa bench` without `--shape`, and of the demo: a few tens of milliseconds a call.
    static let defaultShape = [1, 8, 1024, 1024, 64]

    static let spec = CommandSpec(
        name: "sdpa bench",
        synopsis: "[--shape B,H,L,S,E] [--bias KIND ...] [--dtype T] [--threads N] [--json FILE] [--svg FILE]",
        summary: "time each bias, materialized and fused, side by side",
        abstract: """
            Times each bias on the materialized path (the mask built beforehand and read by the kernel) and \
            on the fused path (the bias computed in the kernel): median time, GFLOP/s, effective GFLOP/s \
            (visible score positions only), percent of the machine's peak, and peak extra memory.
            """,
        options: [
            .value("shape", "B,H,L,S,E", "the problem size (default \(defaultShape.map(String.init).joined(separator: ",")))"),
            .value("bias", "KIND", "a bias to time (default: every bias kind below)", repeatable: true),
            .value("dtype", dtypeChoices.joined(separator: "|"), "the inputs' dtype (default float32)"),
            .value("samples", "N", "timed calls per configuration (default \(MeasurementPlan.kernel.samples))"),
        ] + BenchmarkCommandLine.commonOptions.filter { !["list", "quick"].contains($0.name) },
        epilogue: AttentionSettings.biasHelp(kinds: BiasKind.all, title: "bias kinds (--bias)") + "\n\nbenchmark masks (sdpa bench only):\n"
            + BiasKind.fixed.filter(\.isBenchmarkMask).map { "  \($0.spelling.padding(12))\($0.summary)" }.joined(separator: "\n"))

    static func run(_ parsed: ParsedArguments, output: CommandOutput) throws {
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

    /// Measures `workloads` on the materialized and fused paths with a progress display on standard error.
    static func measure(_ benchmark: ThroughputBenchmark, workloads: [AttentionWorkload], name: String, output: CommandOutput) throws -> BenchmarkReport {
        let results = try benchmark.measureAll(workloads, paths: [.materialized, .fused], showingProgressOn: output)
        let machine = MachineDescription(threads: SDPAThreads.effectiveCount, peakGFLOPSPerCore: benchmark.peakGFLOPSPerCore)
        return BenchmarkReport(benchmark: name, commit: BenchmarkReport.currentCommit(), machine: machine, workloads: workloads, results: results)
    }
}
