import Foundation
import SDPA
import SDPABenchmarkHarness

/// What a benchmark executable produces: its report, the table to print, and a chart for `--svg`.
public struct BenchmarkOutcome {
    /// The results, written with `--json`.
    public var report: BenchmarkReport
    /// The text printed on standard output.
    public var table: String
    /// The chart written with `--svg`, if the benchmark has one.
    public var chart: BarChart?

    /// An outcome; see the properties.
    public init(report: BenchmarkReport, table: String, chart: BarChart?) {
        self.report = report
        self.table = table
        self.chart = chart
    }
}

/// The options every benchmark executable in `Benchmarks/` takes, and its `main`.
///
/// ```
/// KernelThroughput [--json FILE] [--svg FILE] [--compare FILE] [--list] [--quick] [--threads N] [--peak-gflops X]
/// ```
public struct BenchmarkCommandLine {
    /// `--json`: where to write the report.
    public var jsonURL: URL?
    /// `--svg`: where to write the chart.
    public var svgURL: URL?
    /// `--compare`: the PyTorch report of the same benchmark, read.
    public var comparison: BenchmarkReport?
    /// `--quick`: fewer samples and sizes, for a smoke run.
    public var isQuick: Bool
    /// `--threads`.
    public var threads: Int?
    /// `--peak-gflops`, else ``MachinePeak/measuredGFLOPSPerCore``.
    public var peakGFLOPSPerCore: Double
    /// Every option as parsed, for a benchmark's own options.
    public var parsed: ParsedArguments
    /// The benchmark's name, as in its reports.
    public var benchmarkName: String

    /// The options all benchmarks share.
    public static let commonOptions: [OptionSpec] = [
        .value("json", "FILE", "write the results as JSON (schema sdpa-benchmark/1)"),
        .value("svg", "FILE", "write a bar chart of the results"),
        .value("compare", "FILE", "a PyTorch report of this benchmark (Benchmarks/pytorch_bench.py) to compare with"),
        .flag("list", "write the workloads (to --json, else standard output) without running them"),
        .flag("quick", "fewer samples, for a smoke run"),
        .value("threads", "N", "threads of the fused kernel (default: one per processor)"),
        .value("peak-gflops", "X", "the machine's FP32 peak per core, GFLOP/s (default \(MachinePeak.measuredGFLOPSPerCore))"),
    ]

    /// Reads the common options from `parsed`; `--compare` is read at once.
    ///
    /// - Throws: ``UsageError`` for malformed values and for `--json` and `--svg` naming the same file or
    ///   the `--compare` file; file and decoding errors for `--compare`.
    public init(_ parsed: ParsedArguments) throws {
        try checkOutputPaths(["json", "svg"].compactMap { name in parsed.string(name).map { (name, $0) } },
                             inputs: parsed.string("compare").map { [("compare", $0)] } ?? [], command: parsed.command)
        self.parsed = parsed
        benchmarkName = parsed.command
        jsonURL = parsed.string("json").map { URL(fileURLWithPath: $0) }
        svgURL = parsed.string("svg").map { URL(fileURLWithPath: $0) }
        comparison = try parsed.string("compare").map { try BenchmarkReport(contentsOf: URL(fileURLWithPath: $0)) }
        isQuick = parsed.has("quick")
        threads = try parsed.integer("threads", minimum: 1)
        peakGFLOPSPerCore = try parsed.number("peak-gflops", in: 0.001...1_000_000) ?? MachinePeak.measuredGFLOPSPerCore
    }

    /// The machine as this run uses it; call inside the thread scope.
    public var machine: MachineDescription {
        MachineDescription(threads: SDPAThreads.effectiveCount, peakGFLOPSPerCore: peakGFLOPSPerCore)
    }

    /// A report of this run dated now, with the working tree's commit; call inside the thread scope.
    public func report(workloads: [AttentionWorkload], results: [BenchmarkResult]) -> BenchmarkReport {
        BenchmarkReport(benchmark: benchmarkName, commit: BenchmarkReport.currentCommit(), machine: machine,
                        workloads: workloads, results: results)
    }

    /// A chart of `metric` over `report`'s workloads, with the `--compare` report's results beside them.
    public func chart(of report: BenchmarkReport, title: String, valueLabel: String,
                      category: (AttentionWorkload) -> String, metric: (BenchmarkResult) -> Double?) -> BarChart {
        BarChart(title: title, valueLabel: valueLabel, reports: [report] + (comparison.map { [$0] } ?? []),
                 category: category, metric: metric)
    }

    /// A benchmark executable's `main`: parses the options, answers `--help` and `--list`, runs
    /// `body` with the thread count asked for, writes `--json` and `--svg`, prints the table, and
    /// exits with ``CommandExitCode`` statuses. `body` returns `nil` when it has written its own output.
    public static func main(
        _ spec: CommandSpec, arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        workloads: (BenchmarkCommandLine) throws -> [AttentionWorkload],
        run: (BenchmarkCommandLine, [AttentionWorkload], CommandOutput) throws -> BenchmarkOutcome?
    ) -> Never {
        var spec = spec
        spec.options += commonOptions
        let output = CommandOutput.process
        let status = SDPACommandLine.handlingErrors(command: spec.name, output: output) {
            let parsed = try spec.parse(arguments)
            if parsed.helpRequested { return output.standardOutput(spec.help) }
            let options = try BenchmarkCommandLine(parsed)
            let list = try workloads(options)
            if parsed.has("list") {
                let report = BenchmarkReport(benchmark: spec.name, machine: options.machine, workloads: list)
                if let url = options.jsonURL { return try report.write(to: url) }
                return output.standardOutput(String(decoding: try report.jsonData(), as: UTF8.self) + "\n")
            }
            guard let outcome = try withThreads(options.threads, { try run(options, list, output) }) else { return }
            if let url = options.jsonURL { try outcome.report.write(to: url) }
            if let url = options.svgURL, let chart = outcome.chart { try chart.write(to: url) }
            output.standardOutput(outcome.table + "\n")
        }
        exit(status)
    }
}

extension ThroughputBenchmark {
    /// Measures every applicable (workload, path) pair with a progress display on `output`'s standard error.
    ///
    /// - Throws: ``SDPAError`` from the first configuration that fails.
    public func measureAll(_ workloads: [AttentionWorkload], paths: [AttentionPath], showingProgressOn output: CommandOutput) throws -> [BenchmarkResult] {
        try output.showingProgress { try measureAll(workloads, paths: paths, progress: $0) }
    }

    /// ``measureInterleaved(_:paths:with:rounds:progress:)`` with a progress display on `output`'s standard error.
    ///
    /// - Throws: ``SDPAError`` from a configuration, ``PyTorchCounterpartError`` from PyTorch's process.
    public func measureInterleaved(
        _ workloads: [AttentionWorkload], paths: [AttentionPath], with pytorch: PyTorchCounterpart, rounds: Int,
        showingProgressOn output: CommandOutput
    ) throws -> (ours: [BenchmarkResult], pytorch: [BenchmarkResult]) {
        try output.showingProgress { try measureInterleaved(workloads, paths: paths, with: pytorch, rounds: rounds, progress: $0) }
    }
}

extension CommandOutput {
    /// A progress display of `total` steps on standard error (a bar on a terminal, lines otherwise).
    public func progressReporter(total: Int) -> ProgressReporter {
        ProgressReporter(total: total, isTerminal: standardErrorIsTerminal, write: standardError)
    }

    /// Runs `body` with a progress callback `(step, total, label)` drawn on standard error.
    func showingProgress<Result>(_ body: ((Int, Int, String) -> Void) throws -> Result) rethrows -> Result {
        var progress: ProgressReporter?
        let result = try body { _, total, label in
            if progress == nil { progress = progressReporter(total: total) }
            progress?.begin(label)
        }
        progress?.finish()
        return result
    }
}
