import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import SDPA
import SDPABenchmarkHarness
import Testing

// MARK: - bias table

/// Spellings beyond ``BiasKind/all`` whose visible counts are checked too.
private let extraSpellings = [
    "window:0", "window:2,1", "window-upper-left:1,3", "window:100,100", "padding:0,3", "window:2+padding:4,1",
    "block-diagonal:2,0,3,4", "block-diagonal-causal:1,4,4", "causal-lower-right+alibi", "softcap:5+window:1",
]

/// Whether each of the `B x H x L x S` positions is visible under `mask`, broadcast from the right.
private func visibleCount(_ mask: Tensor, batch: Int, heads: Int, queryLength: Int, keyLength: Int) -> Int {
    let shape = [Int](repeating: 1, count: 4 - mask.rank) + mask.shape
    let values = mask.doubleScalars
    var strides = [Int](repeating: 0, count: 4), stride = 1
    for d in (0..<4).reversed() {
        strides[d] = shape[d] == 1 ? 0 : stride
        stride *= shape[d]
    }
    var count = 0
    for b in 0..<batch { for h in 0..<heads { for i in 0..<queryLength { for j in 0..<keyLength {
        let value = values[b * strides[0] + h * strides[1] + i * strides[2] + j * strides[3]]
        if mask.dtype == .bool ? value != 0 : value != -.infinity { count += 1 }
    } } } }
    return count
}

@Suite("Benchmark harness") struct HarnessTests {
    @Test(arguments: [(1, 1), (5, 7), (7, 5), (9, 9), (3, 12), (12, 3), (16, 16), (130, 130), (70, 200)])
    func visiblePositionsMatchTheMaterializedMask(queryLength: Int, keyLength: Int) throws {
        for kind in try BiasKind.all + extraSpellings.map({ try BiasKind.parse($0) }) {
            for batch in [1, 2] {
                let parameters = BiasParameters(batch: batch, heads: 2, queryLength: queryLength, keyLength: keyLength)
                let total = batch * 2 * queryLength * keyLength
                var bias: (any AttnBias)?
                do { bias = try kind.makeBias(parameters) } catch {
                    // Parameters that do not fit these sizes (explicit lengths, packed sequences with L != S).
                    #expect(kind.visiblePositions(parameters) == total, "\(kind)")
                    continue
                }
                var counted = total
                if let b = bias {
                    if !hasMaterializedForm(b) {
                        // Soft-capping changes no visibility: count the mask of the other parts.
                        let rest = kind.spelling.split(separator: "+").filter { !$0.hasPrefix("softcap") }.joined(separator: "+")
                        bias = try BiasKind.parse(rest.isEmpty ? "none" : rest).makeBias(parameters)
                    }
                }
                if let mask = try bias?.materialize(device: .cpu) {
                    counted = visibleCount(mask, batch: batch, heads: 2, queryLength: queryLength, keyLength: keyLength)
                }
                #expect(kind.visiblePositions(parameters) == counted, "\(kind) B=\(batch) L=\(queryLength) S=\(keyLength)")
                if batch == 1 {
                    #expect(kind.visiblePositions(queryLength: queryLength, keyLength: keyLength) * 2 == counted, "\(kind)")
                }
            }
        }
    }

    @Test("a placeholder part is skipped, quoted in errors as written, and refused alone")
    func placeholderPartIsSkipped() throws {
        let mask = (part: "mask", meaning: "elsewhere")
        #expect(try BiasKind.parse("softcap:20+mask+causal-lower-right", placeholder: mask).spelling == "softcap:20+causal-lower-right")
        #expect(try BiasKind.parse("alibi+mask+causal-lower-right", placeholder: mask).spelling == "alibi+causal-lower-right")
        #expect(throws: BiasSpellingError("'window:2' appears twice in 'window:2+mask+window:2'")) {
            try BiasKind.parse("window:2+mask+window:2", placeholder: mask)
        }
        for spelling in ["mask", "mask+mask"] {
            #expect(throws: BiasSpellingError("'\(spelling)' has no part but 'mask'")) { try BiasKind.parse(spelling, placeholder: mask) }
        }
        #expect(throws: BiasSpellingError.self) { try BiasKind.parse("mask") }
    }

    @Test func compositionsAreOneFusedBiasOfTheirParts() throws {
        let p = BiasParameters(heads: 2, queryLength: 8, keyLength: 16)
        let bias = try #require(try BiasKind.parse("alibi+window:4+causal-lower-right").makeBias(p))
        #expect(bias is BiasComposition<BiasComposition<AlibiBias, SlidingWindowBias>, CausalBias>)
        #expect(!bias.needsMaterialization)
        #expect(try BiasKind.parse("alibi+causal-lower-right").makeBias(p) is AlibiBias, "the fixed spelling keeps its single bias type")
        let combined = combinedBias(SoftCapBias(cap: 3), KeyPaddingBias(validKeyLengths: [2], seqLenKV: 16))
        #expect(combined is BiasComposition<SoftCapBias, KeyPaddingBias>)
        let dense = TensorBias(try Tensor(zeros: [1, 1]))
        #expect(!hasMaterializedForm(combined) && hasMaterializedForm(causalUpperLeft(2, 2)) && hasMaterializedForm(dense))
        #expect(try BiasKind.parse("alibi+window:4").acceptsAlibiSlopes)
        #expect(try !BiasKind.parse("window:4").acceptsAlibiSlopes)
        // A score modifier may repeat (it caps or shifts the scores again); a mask may not (it would be the same mask).
        let twice = try #require(try BiasKind.parse("softcap:20+alibi+softcap:20").makeBias(p))
        #expect(twice is BiasComposition<BiasComposition<SoftCapBias, AlibiBias>, SoftCapBias>)
        #expect(throws: BiasSpellingError.self) { try BiasKind.parse("causal-lower-right+alibi+causal-lower-right") }
    }

    @Test func malformedSpellingsNameTheParameter() {
        let cases: [(String, String)] = [
            ("window:-1", "window:-1: LEFT must be a non-negative integer, got '-1' (a window size cannot be negative)"),
            ("window:2,-1", "window:2,-1: RIGHT must be a non-negative integer, got '-1' (a window size cannot be negative)"),
            ("padding:1,-3", "padding:1,-3: LEN2 must be a non-negative integer, got '-3' (a length cannot be negative)"),
            ("block-diagonal-causal:4,-1", "block-diagonal-causal:4,-1: L2 must be a non-negative integer, got '-1' (a length cannot be negative)"),
            ("softcap:-2", "softcap:-2: CAP must be a positive finite number (in float32's range), got '-2'"),
            ("softcap:inf", "softcap:inf: CAP must be a positive finite number (in float32's range), got 'inf'"),
            ("softcap:1e39", "softcap:1e39: CAP must be a positive finite number (in float32's range), got '1e39'"),
            ("chunked-causal:0", "chunked-causal:0: SIZE must be a positive integer, got '0' (a chunk holds at least one position)"),
            ("chunked-causal:-4", "chunked-causal:-4: SIZE must be a non-negative integer, got '-4' (a chunk size cannot be negative)"),
            ("chunked-causal", "chunked-causal: chunked-causal needs its chunk size, e.g. chunked-causal:8192"),
            ("prefix-lm:3,-1", "prefix-lm:3,-1: LEN2 must be a non-negative integer, got '-1' (a length cannot be negative)"),
            ("sink-tokens:4", "sink-tokens:4: expected N,WINDOW, got '4'"),
            ("sink-tokens:-1,8", "sink-tokens:-1,8: N must be a non-negative integer, got '-1' (a count cannot be negative)"),
            ("sink-tokens:1,x", "sink-tokens:1,x: WINDOW must be a non-negative integer, got 'x'"),
        ]
        for (spelling, message) in cases {
            #expect(throws: BiasSpellingError(message)) { try BiasKind.parse(spelling) }
        }
        #expect(BiasKind.named("window:3") != nil && BiasKind.named("window:x") == nil)
    }

    @Test func shapeDependentParametersThrowNamingTheParameter() {
        func message(_ spelling: String, _ p: BiasParameters) -> String {
            do { _ = try BiasKind.parse(spelling).makeBias(p); return "" } catch { return "\(error)" }
        }
        let p = BiasParameters(batch: 2, heads: 1, queryLength: 6, keyLength: 6)
        #expect(message("padding:1,7", p).hasPrefix("--bias padding:1,7 (LEN of batch 1) = 7: a valid key length cannot be longer than the key length S = 6"))
        #expect(message("padding:1,2,3", p).contains("batch size B is 2"))
        #expect(message("prefix-lm:1,2,3", p).contains("prefix-lm takes one prefix length per batch entry, and the batch size B is 2"))
        #expect(message("prefix-lm:1,7", p).hasPrefix("--bias prefix-lm:1,7 (LEN of batch 1) = 7: a prefix length cannot be longer than the key length S = 6"))
        #expect(message("block-diagonal:3,2", p).hasPrefix("--bias block-diagonal:3,2 (sequence lengths) = sum 5: the packed sequence lengths must sum to the query length L = 6"))
        #expect(message("padding:6,0", p).isEmpty && message("block-diagonal:3,0,3", p).isEmpty)
    }

    @Test func spellingsAreUniqueAndFound() {
        let spellings = BiasKind.all.map(\.spelling)
        #expect(Set(spellings).count == spellings.count)
        for spelling in spellings { #expect(BiasKind.named(spelling)?.spelling == spelling) }
        #expect(BiasKind.named("nope") == nil)
        #expect(BiasKind.commandLineKinds.allSatisfy { !$0.isBenchmarkMask })
    }

    @Test func workloadFlopsFollowTheConvention() {
        let w = AttentionWorkload(batch: 2, heads: 3, queryLength: 4, keyLength: 6, headDim: 8, bias: BiasKind.named("causal-lower-right")!)
        #expect(w.flops == 4 * 2 * 3 * 4 * 6 * 8)
        // Lower-right, L = 4, S = 6: rows see 3, 4, 5, 6 keys.
        #expect(w.effectiveFlops == 4 * 2 * 3 * 18 * 8)
        #expect(w.description == "causal-lower-right B=2 H=3 L=4 S=6 E=8 float32")
    }

    // MARK: - measurement

    @Test func timingSummaryTakesTheMedian() {
        let odd = TimingSummary(perCallSeconds: [3, 1, 2], callsPerSample: 4)
        #expect((odd.minSeconds, odd.medianSeconds, odd.maxSeconds, odd.samples, odd.callsPerSample) == (1, 2, 3, 3, 4))
        #expect(TimingSummary(perCallSeconds: [4, 1, 2, 3], callsPerSample: 1).medianSeconds == 2.5)
    }

    @Test func measureRunsWarmUpAndSamples() {
        var calls = 0
        let timing = measure(MeasurementPlan(warmUpCalls: 2, samples: 3)) { calls += 1 }
        #expect(calls == 5)
        #expect(timing.samples == 3 && timing.callsPerSample == 1)
        #expect(timing.minSeconds <= timing.medianSeconds && timing.medianSeconds <= timing.maxSeconds)

        // A sample must last 20 ms: a single call taking that long would need the thread stopped for all of it
        // (at 1 ms, being scheduled out during the first trial call could make one call a whole sample).
        var batched = 0
        let long = measure(MeasurementPlan(warmUpCalls: 0, samples: 2, minimumSampleSeconds: 0.02)) { batched += 1 }
        #expect(long.callsPerSample > 1)
    }

    @Test func measureInterleavedAlternatesAndPairsTheSamples() {
        var order = [Character]()
        let pair = measureInterleaved(MeasurementPlan(warmUpCalls: 1, samples: 3), { order.append("a") }, { order.append("b") })
        #expect(String(order) == "abababab")
        #expect(pair.firstSeconds.count == 3 && pair.secondSeconds.count == 3)
        #expect(pair.first == TimingSummary(perCallSeconds: pair.firstSeconds, callsPerSample: 1))
        #expect(pair.firstCallsPerSample == 1 && pair.secondCallsPerSample == 1)

        // The pairs' figures come from the pairs, not from the two medians.
        let fixed = InterleavedTiming(firstSeconds: [1, 4, 9], secondSeconds: [1, 1, 3])
        #expect((fixed.first.medianSeconds, fixed.second.medianSeconds) == (4, 1))
        #expect(fixed.differenceSeconds == [0, 3, 6])
        #expect(fixed.medianDifferenceSeconds == 3)
        #expect(fixed.medianRatio == 3)
    }

    @Test func residentMemoryIsReadOnLinux() {
        #if os(Linux)
        #expect((ResidentMemory.currentBytes ?? 0) > 0 && (ResidentMemory.peakBytes ?? 0) > 0)
        // The peak is at least the current figure within one reading of /proc/self/status; two readings are
        // not comparable: another test's measurement may reset the peak between them.
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        func kilobytes(_ field: String) -> Int? {
            status.split(separator: "\n").first { $0.hasPrefix(field + ":") }
                .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
        }
        let (rss, hwm) = (kilobytes("VmRSS") ?? 0, kilobytes("VmHWM") ?? 0)
        #expect(rss > 0 && hwm >= rss, "VmRSS \(rss) kB, VmHWM \(hwm) kB")
        // The measure is the whole process's, and other tests free memory while this one runs, which can hide
        // its 64 MiB from one measurement: one of a score must see them.
        var seen = [Int]()
        for _ in 0..<20 {
            let (_, extra) = ResidentMemory.peakExtraBytes { () -> Int in
                // Touch 64 MiB so that it becomes resident.
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 20, alignment: 64)
                defer { buffer.deallocate() }
                for offset in stride(from: 0, to: buffer.count, by: 4096) { buffer[offset] = 1 }
                return Int(buffer[4096])
            }
            guard let extra else { return }
            seen.append(extra)
            if extra >= 60 << 20 { break }
        }
        #expect(seen.contains { $0 >= 60 << 20 }, "extra resident bytes measured: \(seen)")
        #endif
    }

    // MARK: - JSON

    private let fixedWorkload = AttentionWorkload(batch: 1, heads: 8, queryLength: 2048, keyLength: 2048, headDim: 64, bias: BiasKind.named("alibi")!)

    /// A PyTorch report as `Benchmarks/pytorch_bench.py` writes it.
    private let pytorchJSON = """
        {"benchmark": "KernelThroughput", "commit": null, "date": "2025-01-01T00:00:00Z", "implementation": "PyTorch 2.15.0",
         "machine": {"peakGFLOPS": 196.0, "peakGFLOPSPerCore": 98.0, "processors": 2, "threads": 2},
         "results": [
          {"effectiveGFLOPS": 26.0, "gflops": 26.0, "path": "materialized", "peakExtraBytes": 134217728, "percentOfPeak": 13.3,
           "threads": 2, "timing": {"callsPerSample": 1, "maxSeconds": 0.2, "medianSeconds": 0.165, "minSeconds": 0.16, "samples": 10},
           "workload": {"batch": 1, "bias": "alibi", "dtype": "float32", "headDim": 64, "heads": 8, "keyLength": 2048,
                        "keyValueHeads": 8, "queryLength": 2048, "valueHeadDim": 64}},
          {"effectiveGFLOPS": 18.0, "gflops": 18.0, "path": "materialized+build", "peakExtraBytes": null, "percentOfPeak": 9.2,
           "threads": 2, "timing": {"callsPerSample": 1, "maxSeconds": 0.3, "medianSeconds": 0.24, "minSeconds": 0.2, "samples": 10},
           "workload": {"batch": 1, "bias": "alibi", "dtype": "float32", "headDim": 64, "heads": 8, "keyLength": 2048,
                        "keyValueHeads": 8, "queryLength": 2048, "valueHeadDim": 64}}],
         "schema": "sdpa-benchmark/1",
         "workloads": [{"batch": 1, "bias": "alibi", "dtype": "float32", "headDim": 64, "heads": 8, "keyLength": 2048,
                        "keyValueHeads": 8, "queryLength": 2048, "valueHeadDim": 64}]}
        """

    private func fixedSwiftReport() -> BenchmarkReport {
        let timing = { (median: Double) in TimingSummary(perCallSeconds: [median], callsPerSample: 1) }
        var machine = MachineDescription(threads: 2)
        (machine.processors, machine.peakGFLOPSPerCore, machine.peakGFLOPS) = (2, 98, 196)
        var report = BenchmarkReport(benchmark: "KernelThroughput", commit: "abc1234", machine: machine, workloads: [fixedWorkload])
        report.results = [
            BenchmarkResult(workload: fixedWorkload, path: "materialized", threads: 2, timing: timing(0.1), peakExtraBytes: 134_217_728),
            BenchmarkResult(workload: fixedWorkload, path: "fused", threads: 2, timing: timing(0.0343597), peakExtraBytes: 2_097_152),
        ].map { $0.withThroughput(peakGFLOPS: 196) }
        return report
    }

    @Test func reportsRoundTripThroughJSON() throws {
        let report = fixedSwiftReport()
        let decoded = try BenchmarkReport(jsonData: report.jsonData())
        #expect(decoded == report)
        let text = String(decoding: try report.jsonData(), as: UTF8.self)
        #expect(text.contains(#""schema" : "sdpa-benchmark\/1""#) || text.contains(#""schema" : "sdpa-benchmark/1""#))
        // Sorted keys: "benchmark" comes before "commit", "date", ...
        #expect(text.range(of: "\"benchmark\"")!.lowerBound < text.range(of: "\"commit\"")!.lowerBound)
    }

    @Test func pytorchReportsDecode() throws {
        let report = try BenchmarkReport(jsonData: Data(pytorchJSON.utf8))
        #expect(report.implementation == "PyTorch 2.15.0" && report.commit == nil)
        #expect(report.workloads == [fixedWorkload])
        #expect(report.results.map(\.path) == ["materialized", "materialized+build"])
        #expect(report.results[1].peakExtraBytes == nil)
    }

    @Test func throughputIsDerivedFromTheMedian() {
        let fused = fixedSwiftReport().results[1]
        // 4 * 8 * 2048 * 2048 * 64 FLOP = 8.59 GFLOP in 34.36 ms.
        #expect(abs(fused.gflops! - 250) < 0.01)
        #expect(fused.effectiveGFLOPS == fused.gflops)
        #expect(abs(fused.percentOfPeak! - 100 * 250 / 196) < 0.01)
    }

    @Test func counterpartIsTheSamePathOrTheBestPrebuiltOne() throws {
        let pytorch = try BenchmarkReport(jsonData: Data(pytorchJSON.utf8))
        let swift = fixedSwiftReport()
        #expect(pytorch.counterpart(of: swift.results[0])?.path == "materialized")
        // PyTorch has no fused ALiBi: compare with its fastest path that does not build the mask in the call.
        #expect(pytorch.counterpart(of: swift.results[1])?.path == "materialized")
    }

    // MARK: - tables

    @Test func textTableAlignsColumns() {
        var table = TextTable(columns: [.init("name"), .init("value", alignment: .right)])
        table.append(["a", "1"])
        table.append(["longer", "12.5"])
        table.append(["short"])
        #expect(table.rendered() == """
            name    value
            ------  -----
            a           1
            longer   12.5
            short
            """)
    }

    @Test func figuresAreFormatted() {
        #expect(MeasurementFormat.duration(850e-9) == "850 ns")
        #expect(MeasurementFormat.duration(3.214e-6) == "3.21 µs")
        #expect(MeasurementFormat.duration(0.0123) == "12.30 ms")
        #expect(MeasurementFormat.duration(1.5) == "1.50 s")
        #expect(MeasurementFormat.bytes(512) == "512 B")
        #expect(MeasurementFormat.bytes(2 << 20) == "2.0 MiB")
        #expect(MeasurementFormat.bytes(8 << 30) == "8.00 GiB")
        #expect(MeasurementFormat.scientific(0) == "0")
        #expect(MeasurementFormat.scientific(1.19e-7) == "1.19e-07")
    }

    @Test func throughputTableComparesWithPyTorch() throws {
        let pytorch = try BenchmarkReport(jsonData: Data(pytorchJSON.utf8))
        let lines = ThroughputTable.rendered(fixedSwiftReport().results, comparison: pytorch).split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("bias   path") && lines[0].hasSuffix("PyTorch 2.15.0 eff.  ratio"))
        #expect(lines[2].hasPrefix("alibi  materialized") && lines[2].hasSuffix("26.0 (materialized)  3.30x"))
        #expect(lines[3].hasPrefix("       fused") && lines[3].contains("250.0") && lines[3].contains("127.6%")
            && lines[3].contains("2.0 MiB") && lines[3].hasSuffix("26.0 (materialized)  9.62x"))
    }

    // MARK: - PyTorch interleaved

    /// A stand-in for `pytorch_bench.py --serve`: a header, then per workload line one fused result
    /// whose median time is 3, 1, 2, 3, 1, 2, … ms; after `limit` answers it exits.
    private func fakePyTorchServer(limit: Int = 1000) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appending(path: "fake-pytorch-\(UUID().uuidString).sh")
        try """
        echo '{"implementation": "PyTorch fake", "processors": 2, "threads": 2, "peakGFLOPSPerCore": 98, "peakGFLOPS": 196}'
        n=0
        while IFS= read -r line; do
          [ $n -ge \(limit) ] && exit 3
          case $((n % 3)) in 0) t=0.003;; 1) t=0.001;; *) t=0.002;; esac
          n=$((n + 1))
          printf '[{"workload": %s, "path": "fused", "threads": 2, "timing": {"samples": 1, "callsPerSample": 1, "minSeconds": %s, "medianSeconds": %s, "maxSeconds": %s}}]\\n' "$line" $t $t $t
        done
        """.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func interleavedRoundsKeepEachSidesMedianRound() throws {
        let script = try fakePyTorchServer()
        defer { try? FileManager.default.removeItem(at: script) }
        let pytorch = try PyTorchCounterpart(python: URL(fileURLWithPath: "/bin/sh"), script: script, benchmark: "KernelThroughput")
        #expect(pytorch.implementation == "PyTorch fake")
        #expect(pytorch.machine.threads == 2 && pytorch.machine.peakGFLOPS == 196)
        let workloads = [
            AttentionWorkload(batch: 1, heads: 1, queryLength: 8, keyLength: 8, headDim: 8, bias: try BiasKind.parse("none")),
            AttentionWorkload(batch: 1, heads: 2, queryLength: 5, keyLength: 9, headDim: 4, bias: try BiasKind.parse("causal-lower-right")),
        ]
        let plan = MeasurementPlan(warmUpCalls: 0, samples: 1, minimumSampleSeconds: 0)
        var steps = [String]()
        // No memory measurement: it resets the process's peak, which residentMemoryIsReadOnLinux reads concurrently.
        let measured = try ThroughputBenchmark(plan: plan, measuresMemory: false).measureInterleaved(
            workloads, paths: [.fused, .materialized], with: pytorch, rounds: 3) { _, _, label in steps.append(label) }
        #expect(steps.count == 6 && steps[0].hasSuffix("round 1 of 3") && steps[5].hasSuffix("round 3 of 3"))
        // Ours: one result per applicable path; "none" has only the fused one.
        #expect(measured.ours.map(\.path) == ["fused", "fused", "materialized"])
        #expect(measured.ours.map(\.workload) == [workloads[0], workloads[1], workloads[1]])
        #expect(measured.ours.allSatisfy { $0.timing != nil })
        // PyTorch: per workload the round of median time (3, 1, 2 ms -> 2 ms), answered for that workload.
        #expect(measured.pytorch.map(\.workload) == workloads)
        #expect(measured.pytorch.map { $0.timing?.medianSeconds } == [0.002, 0.002])
        let report = pytorch.report(benchmark: "KernelThroughput", workloads: workloads, results: measured.pytorch)
        #expect(report.implementation == "PyTorch fake" && report.results.count == 2)
    }

    @Test func decodingInterleavedWithPyTorchKeepsEachSidesMedianRound() throws {
        let script = try fakePyTorchServer()
        defer { try? FileManager.default.removeItem(at: script) }
        let pytorch = try PyTorchCounterpart(python: URL(fileURLWithPath: "/bin/sh"), script: script, benchmark: "Decode")
        func decode(_ batch: Int, _ length: Int) -> AttentionWorkload {
            var w = AttentionWorkload(batch: batch, heads: 4, queryLength: 1, keyLength: length, headDim: 16, bias: BiasKind.named("none")!)
            w.keyValueHeads = 2
            return w
        }
        let workloads = [decode(1, 64), decode(2, 200)]
        let benchmark = DecodeBenchmark(plan: MeasurementPlan(warmUpCalls: 0, samples: 1, minimumSampleSeconds: 0), steps: 2, blockSize: 16)
        var steps = [String]()
        let measured = try benchmark.measureInterleaved(workloads, with: pytorch, rounds: 3) { _, _, label in steps.append(label) }
        #expect(steps.count == 6 && steps[0].hasSuffix("round 1 of 3") && steps[5].hasSuffix("round 3 of 3"))
        #expect(measured.ours.map(\.result.path) == ["contiguous", "paged"])
        #expect(measured.ours.map(\.result.workload) == workloads)
        #expect(measured.ours[1].figures["batching.float32.tokensPerSecond"] != nil)
        // PyTorch: per workload the round of median time (3, 1, 2 ms -> 2 ms).
        #expect(measured.pytorch.map { $0.timing?.medianSeconds } == [0.002, 0.002])
        let theirs = pytorch.report(benchmark: "Decode", workloads: workloads, results: measured.pytorch)
        let figures = DecodeBenchmark.comparisonFigures(measured.ours.map(\.result), comparison: theirs)
        let ours = try #require(measured.ours[1].result.timing?.medianSeconds)
        #expect(figures["batching.float32.tokensPerSecondOverPyTorch"] == 0.002 / ours)
        // With the bandwidth known, the steps are paired with read passes, as single calls are.
        var paired = benchmark
        paired.bandwidth = MemoryBandwidth.measure(bytes: 1 << 20, threads: 1, repetitions: 1)
        let batching = try paired.measure(workloads[1]).figures
        #expect(batching["batching.float32.timeOverReadTime"].map { $0 > 0 && $0.isFinite } == true)
        #expect(batching["batching.float32.interleavedReadGBPerSecond"].map { $0 > 0 } == true)
        #expect(batching["batching.float32.timeOverStartUpReadTime"] != nil)
    }

    @Test func aPyTorchProcessThatEndsIsAnError() throws {
        let script = try fakePyTorchServer(limit: 1)
        defer { try? FileManager.default.removeItem(at: script) }
        let pytorch = try PyTorchCounterpart(python: URL(fileURLWithPath: "/bin/sh"), script: script, benchmark: "KernelThroughput")
        let workload = AttentionWorkload(batch: 1, heads: 1, queryLength: 4, keyLength: 4, headDim: 4, bias: try BiasKind.parse("none"))
        #expect(try pytorch.measure(workload).count == 1)
        #expect(throws: PyTorchCounterpartError.self) { try pytorch.measure(workload) }
        let silent = FileManager.default.temporaryDirectory.appending(path: "silent-\(UUID().uuidString).sh")
        try "exit 0\n".write(to: silent, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: silent) }
        #expect(throws: PyTorchCounterpartError.self) {
            try PyTorchCounterpart(python: URL(fileURLWithPath: "/bin/sh"), script: silent, benchmark: "KernelThroughput")
        }
    }
}
