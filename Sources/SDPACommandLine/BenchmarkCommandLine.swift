import Foundation
import SDPA
import SDPABenchmarkHarness

/// What a benchmark executable's run produces: its report, and the report it is compared with.
public struct BenchmarkOutcome {
    /// The results, written with `--json`.
    public var report: BenchmarkReport
    /// The report compared with: `--compare`'s, or PyTorch's when the benchmark timed it itself.
    public var comparison: BenchmarkReport?

    /// An outcome; see the properties.
    public init(report: BenchmarkReport, comparison: BenchmarkReport? = nil) {
        self.report = report
        self.comparison = comparison
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
    /// `--peak-gflops`, if given.
    public var givenPeakGFLOPSPerCore: Double?
    /// `--peak-gflops`, else the peak measured for the kernel family in use (``MachinePeak/measuredGFLOPSPerCore``).
    public var peakGFLOPSPerCore: Double { givenPeakGFLOPSPerCore ?? MachinePeak.measuredGFLOPSPerCore }
    /// Every option as parsed, for a benchmark's own options.
    public var parsed: ParsedArguments
    /// The benchmark's name, as in its reports.
    public var benchmarkName: String

    /// The options all benchmarks share.
    public static let commonOptions: [OptionSpec] = [
        .value("json", "FILE", "write the results as JSON (schema sdpa-benchmark/1)"),
        .value("svg", "FILE", "write the chart of the results (SVG)"),
        .value("compare", "FILE", "a PyTorch report of this benchmark (Benchmarks/pytorch_bench.py) to compare with"),
        .flag("list", "write the workloads (to --json, else standard output) without running them"),
        .flag("quick", "fewer samples, for a smoke run"),
        .value("threads", "N", "threads of the fused kernel (default: one per processor)"),
        .value("peak-gflops", "X", "the machine's FP32 peak per core, GFLOP/s (default: measured, an FMA loop of the kernel family in use)"),
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
        givenPeakGFLOPSPerCore = try parsed.number("peak-gflops", in: 0.001...1_000_000)
    }

    /// The options of a benchmark that times PyTorch itself, workload by workload between its own timings,
    /// through `Benchmarks/pytorch_bench.py --serve` (``servePyTorch(caller:)``).
    public static let interleavedPyTorchOptions: [OptionSpec] = [
        .value("pytorch", "PYTHON", "a Python with torch: time PyTorch interleaved with this package"),
        .value("pytorch-json", "FILE", "with --pytorch: write PyTorch's report here"),
        .value("pytorch-script", "FILE", "with --pytorch: pytorch_bench.py (default: the one beside this benchmark's sources)"),
        .value("rounds", "N", "with --pytorch: rounds per workload, each side keeping its median (default 3)"),
    ]

    /// With `--pytorch`, PyTorch's process serving this benchmark (`--pytorch-script`, else
    /// `Benchmarks/pytorch_bench.py`, found from the calling benchmark's source file `caller`; with
    /// `--quick`, `--threads` and the peak passed on) and the rounds `--rounds` asks for; `nil` without
    /// `--pytorch`. Call inside the thread scope.
    ///
    /// - Throws: ``UsageError`` for a malformed `--rounds`, ``PyTorchCounterpartError`` when the process
    ///   does not start.
    public func servePyTorch(caller: String = #filePath) throws -> (pytorch: PyTorchCounterpart, rounds: Int)? {
        guard let python = parsed.string("pytorch") else { return nil }
        let rounds = try parsed.integer("rounds", minimum: 1) ?? 3
        // Benchmarks/<Name>/<Name>.swift -> Benchmarks/pytorch_bench.py
        let script = parsed.string("pytorch-script").map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: caller).deletingLastPathComponent().deletingLastPathComponent().appending(path: "pytorch_bench.py")
        // PyTorch's percentages use the same peak as ours.
        var arguments = (isQuick ? ["--quick"] : []) + ["--peak-gflops", String(peakGFLOPSPerCore)]
        if let threads { arguments += ["--threads", String(threads)] }
        let pytorch = try PyTorchCounterpart(python: URL(fileURLWithPath: python), script: script, benchmark: benchmarkName, arguments: arguments)
        return (pytorch, rounds)
    }

    /// PyTorch's report of `results` from ``servePyTorch(caller:)``'s process, written to `--pytorch-json` if given.
    ///
    /// - Throws: file errors from writing it.
    public func pytorchReport(_ pytorch: PyTorchCounterpart, workloads: [AttentionWorkload], results: [BenchmarkResult]) throws -> BenchmarkReport {
        let report = pytorch.report(benchmark: benchmarkName, workloads: workloads, results: results)
        if let path = parsed.string("pytorch-json") { try report.write(to: URL(fileURLWithPath: path)) }
        return report
    }

    /// The machine as this run uses it; call inside the thread scope.
    public var machine: MachineDescription {
        MachineDescription(threads: SDPAThreads.effectiveCount, peakGFLOPSPerCore: givenPeakGFLOPSPerCore)
    }

    /// A report of this run dated now, with the working tree's commit; call inside the thread scope.
    public func report(workloads: [AttentionWorkload], results: [BenchmarkResult]) -> BenchmarkReport {
        BenchmarkReport(benchmark: benchmarkName, commit: BenchmarkReport.currentCommit(), machine: machine,
                        workloads: workloads, results: results)
    }

    /// A benchmark executable's `main`: parses the options, answers `--help` and `--list`, runs
    /// `body` with the thread count asked for, writes `--json` and `--svg`, prints the
    /// report's heading, machine and ``BenchmarkPresentation`` text, and exits with
    /// ``CommandExitCode`` statuses. `body` returns `nil` when it has written its own output.
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
                // The machine as the run would use it: --threads applies to the list too.
                let machine = withThreads(options.threads) { options.machine }
                let report = BenchmarkReport(benchmark: spec.name, machine: machine, workloads: list)
                if let url = options.jsonURL { return try report.write(to: url) }
                return output.standardOutput(String(decoding: try report.jsonData(), as: UTF8.self) + "\n")
            }
            guard let outcome = try withThreads(options.threads, { try run(options, list, output) }) else { return }
            let report = outcome.report
            let presentation = BenchmarkPresentation(report: report, comparison: outcome.comparison ?? options.comparison)
            if let url = options.jsonURL { try report.write(to: url) }
            if let url = options.svgURL, let chart = presentation.chart { try chart.write(to: url) }
            output.standardOutput(report.heading + "\n" + report.machine.summary + "\n\n" + presentation.text + "\n")
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

extension DecodeBenchmark {
    /// ``measureInterleaved(_:with:rounds:progress:)`` with a progress display on `output`'s standard error.
    ///
    /// - Throws: ``SDPAError`` from a workload, ``PyTorchCounterpartError`` from PyTorch's process.
    public func measureInterleaved(
        _ workloads: [AttentionWorkload], with pytorch: PyTorchCounterpart, rounds: Int, showingProgressOn output: CommandOutput
    ) throws -> (ours: [Outcome], pytorch: [BenchmarkResult]) {
        try output.showingProgress { try measureInterleaved(workloads, with: pytorch, rounds: rounds, progress: $0) }
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
