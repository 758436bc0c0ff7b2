import SDPA
import SDPABenchmarkHarness
import Testing

/// Issue 20's targets on the scaling model: what the fused kernel's work decomposition allows each
/// standard workload at 2, 64 and 128 threads (simulated; nothing is computed, so full sizes are cheap).
@Suite("Scaling targets")
struct ScalingTargetTests {
    @Test("every standard workload meets its simulated speedup target, and two threads run at least 1.9 times as fast as one",
          arguments: ScalingWorkloads.standard())
    func meetsTargets(_ workload: AttentionWorkload) throws {
        let predictions = try ScalingWorkloads.predictions(workload, threads: [2, 64, 128])
        #expect(predictions[0].speedup >= 1.9, "\(workload) at 2 threads: \(predictions[0])")
        for p in predictions {
            if let target = ScalingWorkloads.target(workload, threads: p.threads) {
                #expect(p.speedup >= target, "\(workload): \(p); target \(target)x")
            }
        }
    }

    @Test("the targets cover prefill at 64 threads, one decoding sequence at 64, and L = S = 8192 prefill at 128")
    func targetsAreTheIssues() {
        let all = ScalingWorkloads.standard()
        #expect(all.count == 12)
        #expect(all.filter { ScalingWorkloads.target($0, threads: 64) == 48 }.count == 10)
        #expect(all.filter { ScalingWorkloads.target($0, threads: 64) == 32 }.map(\.batch) == [1])
        #expect(all.filter { ScalingWorkloads.target($0, threads: 128) == 90 }.allSatisfy { $0.queryLength == 8192 })
        #expect(all.filter { ScalingWorkloads.target($0, threads: 128) == 90 }.count == 5)
        #expect(ScalingWorkloads.packedLengths(total: 2048).reduce(0, +) == 2048)
        // --quick's smaller workloads (L = 512, decoding against 2048 keys) have none.
        let smaller = Set(ScalingWorkloads.standard(quick: true)).subtracting(all)
        #expect(smaller.count == 7 && smaller.allSatisfy { ScalingWorkloads.target($0, threads: 64) == nil })
    }

    @Test("the ThreadScaling presentation tabulates the speedups and names a missed target")
    func presentationNamesMisses() throws {
        let w = ScalingWorkloads.prefill(length: 8192)[1]
        var report = BenchmarkReport(benchmark: "ThreadScaling", machine: MachineDescription(threads: 2, peakGFLOPSPerCore: 50), workloads: [w])
        report.figures = [ScalingWorkloads.speedupFigure(w, threads: 64): 60, ScalingWorkloads.speedupFigure(w, threads: 128): 80]
        let text = BenchmarkPresentation(report: report).text
        #expect(text.contains("60.0x") && text.contains("80.0x"), "\(text)")
        #expect(text.contains("missed: \(w) at 128 threads: 80.0x, target 90x"), "\(text)")
        report.figures![ScalingWorkloads.speedupFigure(w, threads: 128)] = 100
        #expect(BenchmarkPresentation(report: report).text.contains("every target met (2:"))
    }
}
