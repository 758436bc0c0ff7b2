import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine

/// Issue 20's targets: how far the fused kernel's work decomposition lets each standard workload scale,
/// from the scaling model (the kernel's own work items, a simulated run of its pool), on any machine;
/// with --measure, real runs at a few thread counts beside the model's prediction for them.
@main
enum ThreadScaling {
    static let spec = CommandSpec(
        name: "ThreadScaling",
        synopsis: "[options]",
        abstract: """
            The scaling model's speedup over one thread at 1, 2, 8, 16, 32, 64 and 128 threads for prefill at B=1, \
            H=8, E=64, L=S=2048 and 8192 (no mask, causal, ALiBi, window:256, 8 packed causal sequences), one \
            decoding step of GQA 32/8, E=128, against 8192 keys, and a batch of 16 of them; targets 48x at 64 \
            threads for prefill, 32x for one decoding sequence, 90x at 128 threads for prefill at 8192. Nothing is \
            computed for the model, so a small machine answers for a large one. --measure 1,N times each workload \
            at those thread counts (interleaved samples against the first) and prints the measured time ratios \
            beside the predicted ones: the check of the model on the machine at hand. --quick: lengths / 4.
            """,
        options: [
            .value("measure", "N,...", "also time each workload at these thread counts (the first is the baseline), e.g. 1,2"),
        ])

    static func main() {
        BenchmarkCommandLine.main(spec, workloads: { ScalingWorkloads.standard(quick: $0.isQuick) }) { options, workloads, output in
            let measured = try options.parsed.integerList("measure", minimum: 1)
            if let measured, measured.count < 2 {
                throw UsageError("--measure needs a baseline and at least one other thread count, e.g. 1,2", command: spec.name)
            }
            var progress = output.progressReporter(total: workloads.count)
            var figures = [String: Double](), results = [BenchmarkResult]()
            let counts = Array(Set(ScalingWorkloads.threadCounts + (measured ?? []))).sorted()
            for workload in workloads {
                progress.begin(workload.description)
                let predictions = try ScalingWorkloads.predictions(workload, threads: counts)
                for p in predictions where ScalingWorkloads.threadCounts.contains(p.threads) {
                    figures[ScalingWorkloads.speedupFigure(workload, threads: p.threads)] = p.speedup
                }
                guard let measured else { continue }
                let (q, k, v) = try workload.makeInputs()
                let bias = try workload.makeBias(), gqa = workload.keyValueHeads != workload.heads
                let call = { try attention(query: q, key: k, value: v, bias: bias, enableGQA: gqa) }
                let plan = MeasurementPlan(warmUpCalls: 1, samples: options.isQuick ? 5 : 15)
                let base = predictions.first { $0.threads == measured[0] }!
                for threads in measured.dropFirst() {
                    let pair = try measureInterleaved(plan, { try withSDPAThreads(measured[0], call) }, { try withSDPAThreads(threads, call) })
                    let (baseline, other) = (pair.first, pair.second)
                    let prediction = predictions.first { $0.threads == threads }!
                    let keys = ScalingWorkloads.measuredFigures(workload, threads: threads, baseline: measured[0])
                    figures[keys.measured] = baseline.medianSeconds / other.medianSeconds
                    figures[keys.predicted] = base.criticalPath / prediction.criticalPath
                    if results.last?.workload != workload || results.last?.threads != measured[0] {
                        results.append(BenchmarkResult(workload: workload, path: "fused", threads: measured[0], timing: baseline))
                    }
                    results.append(BenchmarkResult(workload: workload, path: "fused", threads: threads, timing: other))
                }
            }
            progress.finish()
            var report = options.report(workloads: workloads, results: results)
            report.figures = figures
            return BenchmarkOutcome(report: report)
        }
    }
}
