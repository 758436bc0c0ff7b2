import Foundation
import SDPA
import SDPABenchmarkHarness
import Testing

/// Small benchmark reports with known figures, for the chart and results-page tests.
enum KnownReports {
    static func machine() -> MachineDescription {
        var machine = MachineDescription(threads: 2, peakGFLOPSPerCore: 100)
        (machine.processors, machine.peakGFLOPS, machine.cpuModel, machine.kernelFamily, machine.peakSource) = (2, 200, "Test CPU 9000", "avx2", .measured)
        return machine
    }

    static func workload(_ bias: String, l: Int = 512, s: Int? = nil, h: Int = 8, e: Int = 64, dtype: DType = .float32) -> AttentionWorkload {
        AttentionWorkload(batch: 1, heads: h, queryLength: l, keyLength: s ?? l, headDim: e, dtype: dtype, bias: BiasKind.named(bias)!)
    }

    static func result(_ w: AttentionWorkload, _ path: String, seconds: Double?, effective: Double? = nil) -> BenchmarkResult {
        var r = BenchmarkResult(workload: w, path: path, threads: 2, timing: seconds.map { TimingSummary(perCallSeconds: [$0], callsPerSample: 1) })
        r.effectiveGFLOPS = effective
        r.percentOfPeak = effective.map { 100 * $0 / 200 }
        return r
    }

    /// A report as written and read back: what a chart redrawn from the JSON sees.
    static func report(_ benchmark: String, implementation: String = "SDPA", _ results: [BenchmarkResult],
                        figures: [String: Double]? = nil) throws -> BenchmarkReport {
        var seen = Set<AttentionWorkload>()
        let workloads = results.map(\.workload).filter { seen.insert($0).inserted }
        let report = BenchmarkReport(benchmark: benchmark, implementation: implementation, commit: "abc1234", machine: machine(),
                                     workloads: workloads, results: results, figures: figures)
        return try BenchmarkReport(jsonData: report.jsonData())
    }

    static let none32 = workload("none"), causal = workload("causal-upper-left"), maskBool = workload("mask-bool")
    static let softcap = workload("softcap:30+causal-upper-left"), noneBF16 = workload("none", dtype: .bfloat16)

    /// KernelThroughput: ratios to PyTorch 1.5, 0.75, none, 1.0, 2.0; fused against materialized 2.0 for causal only;
    /// % of peak 75, 60, 50, 45, 65 (rows in group order).
    static func throughput() throws -> (ours: BenchmarkReport, pytorch: BenchmarkReport) {
        let ours = try report("KernelThroughput", [
            result(none32, "fused", seconds: 0.010, effective: 150),
            result(noneBF16, "fused", seconds: 0.012, effective: 130),
            result(causal, "fused", seconds: 0.005, effective: 120),
            result(causal, "materialized", seconds: 0.010, effective: 60),
            result(causal, "materialized+build", seconds: 0.015, effective: 40),
            result(maskBool, "materialized", seconds: 0.020, effective: 90),
            result(softcap, "fused", seconds: 0.008, effective: 100),
        ])
        let pytorch = try report("KernelThroughput", implementation: "PyTorch 2.15.0", [
            result(none32, "fused", seconds: 0.015, effective: 100),
            result(noneBF16, "fused", seconds: 0.024, effective: 65),
            result(causal, "fused", seconds: 0.004, effective: 160),
            result(maskBool, "materialized", seconds: 0.020, effective: 90),
        ])
        return (ours, pytorch)
    }

    /// A benchmark without a presentation of its own: one configuration timed, one that did not run.
    static func unknownBenchmark() throws -> BenchmarkReport {
        try report("SomeLaterBenchmark", [result(none32, "fused", seconds: 0.01), result(causal, "fused", seconds: nil)])
    }

    /// The Embed benchmark's report: sentences per second in its figures.
    static func embed() throws -> BenchmarkReport {
        var report = try report("Embed", [result(workload("padding", l: 8, h: 1, e: 16), "padded", seconds: 2),
                                          result(workload("block-diagonal", l: 8, h: 1, e: 16), "packed", seconds: 1)])
        report.figures = ["sentencesPerSecond.padded": 128, "sentencesPerSecond.packed": 256,
                          "sentenceTransformers.sentencesPerSecond": 100, "speedup.padded": 1.28, "speedup.packed": 2.56]
        return report
    }

    static let tiny = workload("none", l: 8, h: 1, e: 16), tinyCausal = workload("causal-upper-left", l: 8, h: 1, e: 16)

    static func dispatch() throws -> BenchmarkReport {
        var fast = result(tiny, "entry point", seconds: 2e-6)
        (fast.overheadNanoseconds, fast.overheadSamplesNanoseconds) = (30, [50, 10, 40, 20, 30])
        var slow = result(tinyCausal, "entry point", seconds: 3.5e-6)
        (slow.overheadNanoseconds, slow.overheadSamplesNanoseconds) = (150, [120, 400, 150, 140, 160])
        return try report("DispatchOverhead", [fast, result(tiny, "direct", seconds: 1.97e-6), slow, result(tinyCausal, "direct", seconds: 3.35e-6)])
    }

    static func memory() throws -> BenchmarkReport {
        let mib = 1024 * 1024
        func memory(_ l: Int, _ path: String, _ bytes: Int?, note: String? = nil) -> BenchmarkResult {
            BenchmarkResult(workload: workload("causal-lower-right", l: l), path: path, threads: 2,
                            timing: bytes == nil ? nil : TimingSummary(perCallSeconds: [0.01], callsPerSample: 1), peakExtraBytes: bytes, note: note)
        }
        return try report("Memory", [
            memory(1024, "fused", mib), memory(1024, "materialized", 4 * mib),
            memory(2048, "fused", 2 * mib), memory(2048, "materialized", 16 * mib),
            memory(4096, "fused", 4 * mib), memory(4096, "materialized", nil, note: "skipped: the mask alone needs 64.0 MiB"),
        ])
    }

    static func biasScaling() throws -> BenchmarkReport {
        let packed = workload("block-diagonal-causal:256,256,512", l: 1024)
        return try report("BiasScaling", [
            result(workload("window:256", l: 512), "fused", seconds: 0.001),
            result(workload("window:256", l: 1024), "fused", seconds: 0.002),
            result(workload("window:256", l: 2048), "fused", seconds: 0.004),
            result(packed, "fused", seconds: 0.003), result(packed, "one by one", seconds: 0.0028),
            result(workload("causal-upper-left", l: 512), "fused", seconds: 0.002), result(workload("causal-upper-left", l: 512), "plugin", seconds: 0.0021),
        ], figures: ["blockDiagonal.ratioToOneByOne": 1.07, "plugin.ratioToBuiltIn": 1.05, "plugin.ratioToBuiltInMin": 1.04])
    }
}

/// The elements of `chart`'s SVG; fails the test when it is not well-formed.
func parsedSVG(_ chart: (any BenchmarkChart)?) throws -> XMLDocumentTree {
    let svg = try #require(chart).svg()
    let (tree, error) = XMLDocumentTree.parse(svg)
    return try #require(tree, "not well-formed: \(error ?? "")")
}
