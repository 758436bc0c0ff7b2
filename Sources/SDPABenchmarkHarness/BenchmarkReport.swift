import Foundation
import SDPA

/// The results of one benchmark run, as written to JSON by the benchmark executables,
/// `sdpa bench --json` and `Benchmarks/pytorch_bench.py` (schema ``schemaVersion``).
///
/// ```json
/// {"schema": "sdpa-benchmark/1", "benchmark": "KernelThroughput", "implementation": "SDPA",
///  "date": "2025-01-01T00:00:00Z", "commit": "0f91beb",
///  "machine": {"processors": 2, "threads": 2, "peakGFLOPSPerCore": 144, "peakGFLOPS": 288, "cpuModel": "AMD EPYC",
///              "kernelFamily": "avx2", "peakSource": "measured"},
///  "workloads": [{"batch": 1, "heads": 8, ..., "dtype": "float32", "bias": "alibi"}],
///  "results": [{"workload": {...}, "path": "fused", "threads": 2,
///               "timing": {"samples": 10, "callsPerSample": 1, "minSeconds": ..., "medianSeconds": ..., "maxSeconds": ...},
///               "gflops": ..., "effectiveGFLOPS": ..., "percentOfPeak": ..., "peakExtraBytes": ...}]}
/// ```
public struct BenchmarkReport: Codable, Sendable, Equatable {
    /// The schema name and version every report carries.
    public static let schemaVersion = "sdpa-benchmark/1"

    /// ``schemaVersion``.
    public var schema: String
    /// The benchmark's name, e.g. `KernelThroughput`.
    public var benchmark: String
    /// `SDPA`, or `PyTorch <version>`.
    public var implementation: String
    /// When the run started, ISO 8601 in UTC.
    public var date: String
    /// The source revision measured (`git describe --always --dirty`), when known.
    public var commit: String?
    /// The machine and the peak the percentages refer to.
    public var machine: MachineDescription
    /// The workloads the benchmark runs, in order; `--list` writes a report with only these.
    public var workloads: [AttentionWorkload]
    /// One entry per workload and path measured.
    public var results: [BenchmarkResult]
    /// Figures derived from the results, by name (e.g. a fitted slope, a ratio of two paths), for
    /// benchmarks that have some; absent otherwise.
    public var figures: [String: Double]?

    /// A report dated now, for `implementation` `SDPA`.
    public init(benchmark: String, implementation: String = "SDPA", commit: String? = nil, machine: MachineDescription,
                workloads: [AttentionWorkload], results: [BenchmarkResult] = [], figures: [String: Double]? = nil) {
        self.schema = Self.schemaVersion
        self.benchmark = benchmark
        self.implementation = implementation
        self.date = ISO8601DateFormatter().string(from: Date())
        self.commit = commit
        self.machine = machine
        self.workloads = workloads
        self.results = results
        self.figures = figures
    }

    /// The encoder of every benchmark JSON: pretty-printed with sorted keys, so that two runs diff line by line.
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The report as JSON; see ``encoder``.
    public func jsonData() throws -> Data { try Self.encoder.encode(self) }

    /// Parses a report.
    ///
    /// - Throws: `DecodingError` for JSON that does not follow the schema.
    public init(jsonData: Data) throws {
        self = try JSONDecoder().decode(BenchmarkReport.self, from: jsonData)
    }

    /// Reads a report from a file.
    public init(contentsOf url: URL) throws {
        try self.init(jsonData: Data(contentsOf: url))
    }

    /// Writes the report as JSON, creating the folder if needed.
    public func write(to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try jsonData().write(to: url, options: .atomic)
    }

    /// The results for `workload`, in report order.
    public func results(for workload: AttentionWorkload) -> [BenchmarkResult] {
        results.filter { $0.workload == workload }
    }

    /// `KernelThroughput · SDPA · 2026-12-01 20:14 UTC · commit 2630cd1`: what ran, when, at which revision.
    public var heading: String {
        [benchmark, implementation, readableDate, "commit \(commit ?? "unknown")"].joined(separator: " · ")
    }

    /// ``date`` to the minute: `2026-12-01 20:14 UTC` for `2026-12-01T20:14:05Z`.
    public var readableDate: String {
        date.count >= 16 && date.hasSuffix("Z") ? String(date.prefix(10) + " " + date.dropFirst(11).prefix(5) + " UTC") : date
    }

    /// The working tree's revision, `git describe --always --dirty`, or `nil` outside a git checkout.
    public static func currentCommit() -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "describe", "--always", "--dirty"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}

/// One measured (workload, path) pair.
public struct BenchmarkResult: Codable, Sendable, Equatable {
    /// What ran.
    public var workload: AttentionWorkload
    /// How it ran: ``AttentionPath`` raw values for throughput, `entry point` / `direct` for dispatch.
    public var path: String
    /// Threads the kernel used.
    public var threads: Int
    /// Per-call times; `nil` when the configuration did not run (see ``note``).
    public var timing: TimingSummary?
    /// ``AttentionWorkload/flops`` per median second, in GFLOP/s.
    public var gflops: Double?
    /// ``AttentionWorkload/effectiveFlops`` per median second, in GFLOP/s.
    public var effectiveGFLOPS: Double?
    /// ``effectiveGFLOPS`` as a percentage of ``MachineDescription/peakGFLOPS``.
    public var percentOfPeak: Double?
    /// How far resident memory rose above its level before the call, at its peak.
    public var peakExtraBytes: Int?
    /// The process's peak resident memory (`VmHWM`), for benchmarks that run each configuration in a fresh process.
    public var peakResidentBytes: Int?
    /// Nanoseconds a call spends outside the kernel (dispatch overhead), where measured: the median of
    /// ``overheadSamplesNanoseconds`` when those are given.
    public var overheadNanoseconds: Double?
    /// The overhead of each back-to-back sample pair, in sample order: its spread across repetitions.
    public var overheadSamplesNanoseconds: [Double]?
    /// Why a configuration was skipped or failed, or how it was measured.
    public var note: String?

    /// A result; throughput figures are derived from `timing` with ``withThroughput(peakGFLOPS:)``.
    public init(workload: AttentionWorkload, path: String, threads: Int, timing: TimingSummary?,
                peakExtraBytes: Int? = nil, peakResidentBytes: Int? = nil, overheadNanoseconds: Double? = nil,
                overheadSamplesNanoseconds: [Double]? = nil, note: String? = nil) {
        self.workload = workload
        self.path = path
        self.threads = threads
        self.timing = timing
        self.peakExtraBytes = peakExtraBytes
        self.peakResidentBytes = peakResidentBytes
        self.overheadNanoseconds = overheadNanoseconds
        self.overheadSamplesNanoseconds = overheadSamplesNanoseconds
        self.note = note
    }

    /// This result with GFLOP/s, effective GFLOP/s and percent of `peakGFLOPS` filled in from the median time.
    public func withThroughput(peakGFLOPS: Double) -> BenchmarkResult {
        var result = self
        guard let median = timing?.medianSeconds, median > 0 else { return result }
        result.gflops = workload.flops / median / 1e9
        let effective = workload.effectiveFlops / median / 1e9
        result.effectiveGFLOPS = effective
        result.percentOfPeak = peakGFLOPS > 0 ? 100 * effective / peakGFLOPS : nil
        return result
    }
}
