import Foundation

extension ScalingWorkloads {
    /// The report figure holding the simulated speedup of `workload` at `threads` threads.
    public static func speedupFigure(_ workload: AttentionWorkload, threads: Int) -> String {
        "\(workload.description) · simulated speedup at \(threads)"
    }

    /// The report figures of a measured check of the model: the measured and the predicted time at
    /// `baseline` threads over the time at `threads`.
    public static func measuredFigures(_ workload: AttentionWorkload, threads: Int, baseline: Int) -> (measured: String, predicted: String) {
        ("\(workload.description) · measured \(baseline)/\(threads) time ratio",
         "\(workload.description) · predicted \(baseline)/\(threads) time ratio")
    }
}

extension BenchmarkPresentation {
    /// `ThreadScaling`: per workload, the simulated speedup at each modeled thread count, the targets met
    /// or missed, and where the run measured real thread counts, the measured time ratio beside the
    /// predicted one.
    static func threadScaling(_ report: BenchmarkReport) -> BenchmarkPresentation {
        let figures = report.figures ?? [:]
        let counts = ScalingWorkloads.threadCounts.filter { t in
            report.workloads.contains { figures[ScalingWorkloads.speedupFigure($0, threads: t)] != nil }
        }
        var table = TextTable(columns: [.init("bias"), .init("shape"), .init("dtype")]
            + counts.map { .init("\($0) threads", alignment: .right) })
        var notes = [String]()
        for w in report.workloads {
            table.append([w.bias, w.shapeDescription, w.dtype] + counts.map { t in
                MeasurementFormat.optional(figures[ScalingWorkloads.speedupFigure(w, threads: t)]) { MeasurementFormat.fixed($0, 1) + "x" }
            })
            for t in counts {
                guard let target = ScalingWorkloads.target(w, threads: t),
                      let speedup = figures[ScalingWorkloads.speedupFigure(w, threads: t)] else { continue }
                if speedup < target {
                    notes.append("missed: \(w) at \(t) threads: \(MeasurementFormat.fixed(speedup, 1))x, target \(MeasurementFormat.fixed(target, 0))x")
                }
            }
        }
        let targets = report.workloads.flatMap { w in counts.compactMap { t in ScalingWorkloads.target(w, threads: t).map { _ in (w, t) } } }
        if !targets.isEmpty, notes.isEmpty, !report.workloads.isEmpty {
            notes.append("every target met (\(targets.count): 48x at 64 threads for prefill, 32x for one decoding sequence, 90x at 128 threads for prefill at L=S=8192)")
        }
        // Measured checks: ratios keyed by the baseline and thread counts the run used.
        for (key, measured) in figures.sorted(by: { $0.key < $1.key }) where key.contains(" · measured ") {
            let predictedKey = key.replacingOccurrences(of: " · measured ", with: " · predicted ")
            guard let predicted = figures[predictedKey] else { continue }
            notes.append("\(key): \(MeasurementFormat.fixed(measured, 2)) (predicted \(MeasurementFormat.fixed(predicted, 2)); "
                         + "measured/predicted \(MeasurementFormat.fixed(measured / predicted, 2)))")
        }
        return BenchmarkPresentation(
            question: "How far does the fused kernel's work decomposition let a call scale, simulated at 1 to 128 threads?",
            preface: ["simulated speedup over one thread: the kernel's own work items at each count and a simulated run of its pool (modeled times, no memory limits)"],
            table: table, notes: notes, chart: nil)
    }
}
