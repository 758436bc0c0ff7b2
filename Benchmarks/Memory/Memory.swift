import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine

/// Peak resident memory of the fused and the materialized path as L = S grows (H = 8, E = 64).
///
/// Each configuration runs in a child process (this executable, re-invoked with `--child`), so
/// one configuration's peak cannot hide in another's: the child reports the rise of its resident
/// memory over the level before the call (`VmHWM` after resetting it) and its whole peak.
@main
enum MemoryBenchmark {
    static let defaultLengths = [1024, 2048, 4096, 8192, 16384]
    static let defaultBiases = ["causal-lower-right", "alibi+causal-lower-right"]

    static let spec = CommandSpec(
        name: "Memory",
        synopsis: "[--lengths L1,L2,...] [--bias KIND ...] [options]",
        abstract: """
            Runs one attention call per (L, bias, path) in a fresh process, B=1 H=8 E=64 L=S, and reports how far \
            resident memory rose during the call (output, kernel buffers and, materialized, the mask) and the \
            process's peak. A materialized configuration whose mask would not fit in available memory is skipped. \
            --backward: a training step instead, the forward pass with its log-sum-exp and the backward pass, on \
            the fused path (the issue's bound: O(L·E) extra memory, no L × S buffer).
            """,
        options: [
            .value("lengths", "L1,L2,...", "sequence lengths (default \(defaultLengths.map(String.init).joined(separator: ",")))"),
            .value("bias", "KIND", "bias kinds (default \(defaultBiases.joined(separator: ", ")))", repeatable: true),
            .flag("backward", "measure the forward and the backward pass (fused path only)"),
            .flag("child", "internal: measure one configuration and print its result as JSON"),
            .value("path", "PATH", "internal, with --child: fused or materialized"),
        ])

    static func workloads(_ options: BenchmarkCommandLine) throws -> [AttentionWorkload] {
        let lengths = try options.parsed.integerList("lengths", minimum: 1) ?? (options.isQuick ? [1024, 2048] : defaultLengths)
        let spellings = options.parsed.strings("bias").isEmpty ? defaultBiases : options.parsed.strings("bias")
        for spelling in spellings {
            try ParsedArguments.check(spelling, option: "bias", among: BiasKind.all.map(\.spelling), command: spec.name)
        }
        return lengths.flatMap { length in
            spellings.map { AttentionWorkload(batch: 1, heads: 8, queryLength: length, keyLength: length, headDim: 64, bias: BiasKind.named($0)!) }
        }
    }

    static func main() {
        BenchmarkCommandLine.main(spec, workloads: workloads) { options, workloads, output in
            if options.parsed.has("child") {
                let path = AttentionPath(rawValue: try options.parsed.required("path"))!
                let result = try measureInThisProcess(workloads[0], path: path, options: options)
                output.standardOutput(String(decoding: try BenchmarkReport.encoder.encode(result), as: UTF8.self) + "\n")
                return nil
            }
            var progress = output.progressReporter(total: workloads.count * 2)
            var results = [BenchmarkResult]()
            for workload in workloads {
                for path in options.parsed.has("backward") ? [AttentionPath.fused] : [.fused, .materialized] {
                    progress.begin("\(workload) \(path.rawValue)")
                    results.append(try measureInChild(workload, path: path, options: options))
                }
            }
            progress.finish()
            return BenchmarkOutcome(report: options.report(workloads: workloads, results: results))
        }
    }

    /// Bytes of the mask `workload`'s bias materializes to, from a small mask scaled up (exact for masks of [L, S] or [H, L, S]).
    static func maskBytes(_ workload: AttentionWorkload) throws -> Int {
        var small = workload
        (small.queryLength, small.keyLength) = (8, 8)
        guard let mask = try small.makeBias()?.materialize(device: .cpu) else { return 0 }
        return mask.count * mask.dtype.byteWidth / 64 * workload.queryLength * workload.keyLength
    }

    static func measureInChild(_ workload: AttentionWorkload, path: AttentionPath, options: BenchmarkCommandLine) throws -> BenchmarkResult {
        let skipped = { (note: String) in
            BenchmarkResult(workload: workload, path: path.rawValue, threads: options.machine.threads, timing: nil, note: note)
        }
        let mask = path == .materialized ? try maskBytes(workload) : 0
        if let available = ResidentMemory.availableBytes, mask > available {
            return skipped("skipped: the mask alone needs \(MeasurementFormat.bytes(mask)), \(MeasurementFormat.bytes(available)) available")
        }
        let process = Process()
        process.executableURL = Bundle.main.executableURL
        process.arguments = [
            "--child", "--path", path.rawValue, "--lengths", "\(workload.queryLength)", "--bias", workload.bias,
            "--peak-gflops", "\(options.peakGFLOPSPerCore)",
        ] + (options.threads.map { ["--threads", "\($0)"] } ?? []) + (options.parsed.has("backward") ? ["--backward"] : [])
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal {
            return skipped("stopped: the child process was killed by signal \(process.terminationStatus)"
                + (process.terminationStatus == 9 ? " (out of memory)" : ""))
        }
        guard process.terminationStatus == 0, let result = try? JSONDecoder().decode(BenchmarkResult.self, from: data) else {
            return skipped("failed: the child process exited with status \(process.terminationStatus)")
        }
        return result
    }

    static func measureInThisProcess(_ workload: AttentionWorkload, path: AttentionPath, options: BenchmarkCommandLine) throws -> BenchmarkResult {
        ResidentMemory.volunteerForOutOfMemoryKill()
        let (q, k, v) = try workload.makeInputs()
        let bias = try workload.makeBias()
        let backward = options.parsed.has("backward")
        // The output's gradient exists only for a training step: the forward's figures keep their baseline.
        let gradOutput = backward ? try Tensor.randomNormal(
            shape: [workload.batch, workload.heads, workload.queryLength, workload.valueHeadDim], seed: 7, dtype: q.dtype) : q
        let call = {
            try attention(query: q, key: k, value: v, bias: path == .fused ? bias : try bias.map { TensorBias(try $0.materialize(device: .cpu)) })
        }
        let step = {
            let (out, lse) = try attentionWithLogSumExp(query: q, key: k, value: v, bias: bias)
            return try attentionGradients(gradOutput: gradOutput, query: q, key: k, value: v, output: out, logSumExp: lse, bias: bias)
        }
        var timing: TimingSummary?
        let extra = try ResidentMemory.peakExtraBytes {
            timing = backward ? try measure(MeasurementPlan(warmUpCalls: 0, samples: 1), step)
                : try measure(MeasurementPlan(warmUpCalls: 0, samples: 1), call)
        }.bytes
        let mask = path == .materialized ? try maskBytes(workload) : 0
        return BenchmarkResult(
            workload: workload, path: path.rawValue, threads: SDPAThreads.effectiveCount, timing: timing,
            peakExtraBytes: extra, peakResidentBytes: ResidentMemory.peakBytes,
            note: backward ? "forward + backward"
                : mask > 0 ? "mask \(MeasurementFormat.bytes(mask)); time includes building it" : nil)
    }
}
