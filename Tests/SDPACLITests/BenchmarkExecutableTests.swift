import Foundation
import SDPABenchmarkHarness
import Testing

// The benchmark executables of Benchmarks/ run as separate processes (their `main` exits), from
// the folder `swift build` / `swift test` put them in, beside this test runner. They are asked for
// their workloads (`--list`, with and without `--quick`) and given bad options; the measurements
// themselves take seconds even with --quick, which is the plugin's business, not a unit test's.

/// What a benchmark executable printed and returned.
private struct ProcessResult {
    var status: Int32, standardOutput: String, standardError: String
}

private func run(_ url: URL, _ arguments: [String]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = url
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    (process.standardOutput, process.standardError) = (out, err)
    try process.run()
    let output = out.fileHandleForReading.readDataToEndOfFile(), error = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, standardOutput: String(decoding: output, as: UTF8.self),
                         standardError: String(decoding: error, as: UTF8.self))
}

@Suite("Benchmark executables")
struct BenchmarkExecutableTests {
    static let names = ["DispatchOverhead", "KernelThroughput", "Memory", "BiasScaling", "Backward", "Decode", "ThreadScaling"]

    @Test("--help, --list and --list --quick", arguments: names)
    func listsItsWorkloads(_ name: String) throws {
        let url = try #require(builtExecutable(name), "\(name) is not built beside the test runner (swift test builds every product)")
        let help = try run(url, ["--help"])
        #expect(help.status == 0 && help.standardOutput.hasPrefix("usage: \(name) "), "\(help.standardError)")
        for option in ["--list", "--quick", "--json", "--svg", "--compare", "--threads", "--peak-gflops"] {
            #expect(help.standardOutput.contains(option), "\(name) --help does not list \(option)")
        }

        let full = try run(url, ["--list"]), quick = try run(url, ["--list", "--quick"])
        #expect(full.status == 0 && quick.status == 0, "\(full.standardError) \(quick.standardError)")
        let fullReport = try BenchmarkReport(jsonData: Data(full.standardOutput.utf8))
        let quickReport = try BenchmarkReport(jsonData: Data(quick.standardOutput.utf8))
        #expect(fullReport.benchmark == name && fullReport.schema == "sdpa-benchmark/1")
        #expect(fullReport.results.isEmpty && !fullReport.workloads.isEmpty, "--list lists workloads without running them")
        #expect(!quickReport.workloads.isEmpty)
        let work = { (r: BenchmarkReport) in r.workloads.map { $0.flops }.reduce(0, +) }
        // --quick shortens the run (fewer or smaller workloads, or fewer samples), never lengthens it.
        #expect(work(quickReport) <= work(fullReport), "--quick lists more work than the full run")

        // --json with --list writes the list there; --threads and --peak-gflops describe the machine.
        let folder = FileManager.default.temporaryDirectory.appending(path: "sdpa-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let json = folder.appending(path: "list.json")
        let written = try run(url, ["--list", "--quick", "--json", json.path, "--threads", "1", "--peak-gflops", "50"])
        #expect(written.status == 0 && written.standardOutput.isEmpty, "\(written.standardError)")
        let report = try BenchmarkReport(contentsOf: json)
        #expect(report.workloads == quickReport.workloads)
        #expect(report.machine.threads == 1 && report.machine.peakGFLOPSPerCore == 50)
    }

    @Test("bad options exit 2, a missing --compare file 1", arguments: names)
    func rejectsBadOptions(_ name: String) throws {
        let url = try #require(builtExecutable(name), "\(name) is not built beside the test runner")
        for (arguments, status, message) in [
            (["--nope"], Int32(2), "\(name): error: unknown option '--nope'"),
            (["--list", "--threads", "0"], 2, "\(name): error: --threads expects a positive integer, got '0'"),
            (["--list", "--peak-gflops", "x"], 2, "\(name): error: --peak-gflops expects a number in 0.001...1000000, got 'x'"),
            (["--list", "--quick=yes"], 2, "\(name): error: --quick is a flag and takes no value"),
            (["--list", "--compare", "/nonexistent/pytorch.json"], 1, "\(name): error: "),
        ] {
            let result = try run(url, arguments)
            #expect(result.status == status, "\(arguments): \(result.standardError)")
            #expect(result.standardError.hasPrefix(message), "\(arguments): \(result.standardError)")
            #expect(result.standardOutput.isEmpty)
        }
    }

    @Test("ThreadScaling --quick runs the scaling model on every workload and reports its speedups")
    func threadScalingRuns() throws {
        let url = try #require(builtExecutable("ThreadScaling"), "ThreadScaling is not built beside the test runner")
        let folder = FileManager.default.temporaryDirectory.appending(path: "sdpa-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let json = folder.appending(path: "scaling.json")
        let result = try run(url, ["--quick", "--json", json.path])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try BenchmarkReport(contentsOf: json)
        #expect(report.workloads == ScalingWorkloads.standard(quick: true))
        for w in report.workloads {
            for t in ScalingWorkloads.threadCounts {
                let speedup = try #require(report.figures?[ScalingWorkloads.speedupFigure(w, threads: t)], "\(w) at \(t)")
                #expect(speedup > 0.9 && speedup <= Double(t) * 1.0001, "\(w) at \(t): \(speedup)")
            }
        }
        #expect(result.standardOutput.contains("128 threads") && result.standardOutput.contains("block-diagonal-causal:"))
        let bad = try run(url, ["--measure", "2"])
        #expect(bad.status == 2 && bad.standardError.hasPrefix("ThreadScaling: error: --measure needs a baseline"), "\(bad.standardError)")
    }
}
