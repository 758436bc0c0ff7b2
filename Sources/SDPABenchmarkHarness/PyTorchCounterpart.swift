import Foundation

/// PyTorch timing the same workloads in a process of its own (`Benchmarks/pytorch_bench.py --serve`),
/// one workload at a time, so that a benchmark can interleave its measurements with PyTorch's.
///
/// On a shared machine throughput drifts by ±15 % over minutes; timing all of one side and then all
/// of the other turns that drift into the ratio. Asked workload by workload, both sides are timed
/// seconds apart. See ``ThroughputBenchmark/measureInterleaved(_:paths:with:rounds:progress:)``.
public final class PyTorchCounterpart {
    /// `PyTorch <version>`, as its reports name it.
    public let implementation: String
    /// The threads PyTorch runs and the peak its percentages use.
    public let machine: MachineDescription

    private let process: Process
    private let input: FileHandle
    private let output: FileHandle
    private var buffered = Data()

    private struct Header: Decodable {
        var implementation: String
        var processors: Int
        var threads: Int
        var peakGFLOPSPerCore: Double
        var peakGFLOPS: Double
    }

    /// Starts `python script --serve --benchmark benchmark arguments…` and reads its header.
    ///
    /// - Throws: ``PyTorchCounterpartError`` when the process cannot start or does not answer with a header.
    public init(python: URL, script: URL, benchmark: String, arguments: [String] = []) throws {
        process = Process()
        process.executableURL = python
        process.arguments = [script.path, "--serve", "--benchmark", benchmark] + arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        input = stdin.fileHandleForWriting
        output = stdout.fileHandleForReading
        // A request to a process that has died must be an error, not a SIGPIPE ending this process.
        signal(SIGPIPE, SIG_IGN)
        do { try process.run() } catch {
            throw PyTorchCounterpartError("cannot start \(python.path) \(script.path): \(error)")
        }
        let line = try Self.readLine(from: output, buffer: &buffered, process: process)
        guard let header = try? JSONDecoder().decode(Header.self, from: line) else {
            throw PyTorchCounterpartError("\(script.lastPathComponent) --serve sent no header: \(String(decoding: line, as: UTF8.self))")
        }
        implementation = header.implementation
        var machine = MachineDescription(threads: header.threads, peakGFLOPSPerCore: header.peakGFLOPSPerCore)
        machine.processors = header.processors
        machine.peakGFLOPS = header.peakGFLOPS
        machine.kernelFamily = nil  // PyTorch runs kernels of its own
        self.machine = machine
    }

    deinit {
        try? input.close()
        process.waitUntilExit()
    }

    /// PyTorch's results for `workload`: one per path it has (see `pytorch_bench.py`).
    ///
    /// - Throws: ``PyTorchCounterpartError`` when the process has ended or answers something else.
    public func measure(_ workload: AttentionWorkload) throws -> [BenchmarkResult] {
        var request = try JSONEncoder().encode(workload)
        request.append(0x0A)
        do { try input.write(contentsOf: request) } catch {
            throw PyTorchCounterpartError("PyTorch's process ended before \(workload): \(error)")
        }
        let line = try Self.readLine(from: output, buffer: &buffered, process: process)
        do {
            return try JSONDecoder().decode([BenchmarkResult].self, from: line)
        } catch {
            throw PyTorchCounterpartError("PyTorch's answer for \(workload) is not a result list: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
    }

    /// A report of PyTorch's `results` for `benchmark`, dated now.
    public func report(benchmark: String, workloads: [AttentionWorkload], results: [BenchmarkResult]) -> BenchmarkReport {
        BenchmarkReport(benchmark: benchmark, implementation: implementation, machine: machine, workloads: workloads, results: results)
    }

    private static func readLine(from handle: FileHandle, buffer: inout Data, process: Process) throws -> Data {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<newline]
                buffer = Data(buffer[(newline + 1)...])
                return Data(line)
            }
            let chunk = handle.availableData
            if chunk.isEmpty {
                process.waitUntilExit()
                throw PyTorchCounterpartError("PyTorch's process ended (status \(process.terminationStatus)) without an answer")
            }
            buffer.append(chunk)
        }
    }
}

/// Why talking to PyTorch's process failed, shown as its message.
public struct PyTorchCounterpartError: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String
    /// An error with `description`.
    public init(_ description: String) { self.description = description }
}
