extension BenchmarkPresentation {
    /// What `DispatchOverhead`'s "direct" measurement calls.
    public static let directCallDescription = """
        _PreparedAttention(query:key:value:attnMask:options:).run() (fusedBias: for a fused bias), prepared once \
        per bias: the same kernel the entry point selects, specialised for the bias's type in the caller's module \
        as the entry point's is, with shapes checked, the bias validated (a dense mask built) and the backend \
        chosen beforehand
        """

    /// The dispatch overhead target, nanoseconds per call.
    static let overheadTargetNanoseconds = 100.0
    /// The whole-call target for the tiny shape (L = S = 8), seconds.
    static let tinyCallTargetSeconds = 3e-6

    /// `DispatchOverhead`: per bias and shape, the entry point's time, the direct call's and the overhead
    /// (a table, the targets' status), and a chart of the overhead with its spread against the 100 ns
    /// target beside the whole call's time on a logarithmic axis.
    static func dispatchOverhead(_ report: BenchmarkReport, comparison: BenchmarkReport?) -> BenchmarkPresentation {
        var columns: [TextTable.Column] = [
            .init("bias"), .init("shape"), .init("entry point", alignment: .right), .init("direct", alignment: .right),
            .init("overhead", alignment: .right), .init("middle half", alignment: .right),
        ]
        if let comparison {
            columns += [.init("\(comparison.implementation) entry point", alignment: .right), .init("\(comparison.implementation) direct", alignment: .right)]
        }
        var table = TextTable(columns: columns)
        let median = { (r: BenchmarkResult?) in MeasurementFormat.optional(r?.timing?.medianSeconds, MeasurementFormat.duration) }
        let workloads = report.distinctWorkloads
        for workload in workloads {
            let rows = report.results(for: workload)
            let entry = rows.first { $0.path == "entry point" }
            let spread = entry?.overheadSamplesNanoseconds.flatMap { RowChart.Spread(samples: $0) }
            var row = [
                workload.bias, workload.shapeDescription, median(entry), median(rows.first { $0.path == "direct" }),
                MeasurementFormat.optional(entry?.overheadNanoseconds) { MeasurementFormat.fixed($0, 0) + " ns" },
                MeasurementFormat.optional(spread) { "\(MeasurementFormat.fixed($0.lowerQuartile, 0))…\(MeasurementFormat.fixed($0.upperQuartile, 0)) ns" },
            ]
            if let comparison {
                let others = comparison.results(for: workload)
                row += [median(others.first { $0.path == "entry point" }), median(others.first { $0.path == "direct" })]
            }
            table.append(row)
        }
        let tiny = report.results.filter { $0.workload.queryLength == 8 && $0.path == "entry point" }
        let worstOverhead = tiny.compactMap(\.overheadNanoseconds).max() ?? .nan
        let slowestCall = tiny.compactMap { $0.timing?.medianSeconds }.max() ?? .nan
        let targets = "tiny calls (L=S=8): largest overhead \(MeasurementFormat.fixed(worstOverhead, 0)) ns (target <= 100 ns), "
            + "slowest whole call \(MeasurementFormat.duration(slowestCall)) (target < 3 us)"
        return BenchmarkPresentation(
            question: "How much time does the public entry point add to a call, per bias, over calling the same kernel directly?",
            preface: ["median per call, \(report.machine.threads) threads; overhead = median over back-to-back sample pairs of entry point - direct, "
                + "middle half = its quartiles; direct = \(directCallDescription)"],
            table: table, notes: [targets], chart: dispatchOverheadChart(report, workloads: workloads, comparison: comparison))
    }

    /// The chart of ``dispatchOverhead(_:comparison:)``.
    static func dispatchOverheadChart(_ report: BenchmarkReport, workloads: [AttentionWorkload], comparison: BenchmarkReport?) -> RowChart {
        let entries = workloads.map { w in report.results(for: w).first { $0.path == "entry point" } }
        let rows = workloads.map {
            RowChart.Row(group: "B=\($0.batch) H=\($0.heads) L=\($0.queryLength) S=\($0.keyLength) E=\($0.headDim) \($0.dtype)", label: $0.bias)
        }
        let overheadCells: [RowChart.Cell?] = entries.map { entry in
            guard let entry, let overhead = entry.overheadNanoseconds else { return nil }
            let spread = entry.overheadSamplesNanoseconds.flatMap { RowChart.Spread(samples: $0) }
            let detail = spread.map {
                "overhead median \(MeasurementFormat.fixed(overhead, 1)) ns; quartiles \(MeasurementFormat.fixed($0.lowerQuartile, 1))…"
                    + "\(MeasurementFormat.fixed($0.upperQuartile, 1)) ns; range \(MeasurementFormat.fixed($0.low, 1))…\(MeasurementFormat.fixed($0.high, 1)) ns "
                    + "over \(entry.overheadSamplesNanoseconds?.count ?? 0) sample pairs"
            }
            return RowChart.Cell(value: overhead, spread: spread, detail: detail)
        }
        // The axis fits the medians and the middle halves, within -3 to +5 times the target: the question
        // is tens of nanoseconds, and a noisy row (a larger shape on a busy machine, microseconds of
        // spread) must not squash every other row to a point. What lies beyond runs off the axis's end
        // (an arrow), and its value label still gives the median.
        let target = overheadTargetNanoseconds
        let overheadValues = overheadCells.flatMap { cell -> [Double] in
            guard let cell, let value = cell.value else { return [] }
            return ([value] + (cell.spread.map { [$0.lowerQuartile, $0.upperQuartile] } ?? [])).map { min(max($0, -3 * target), 5 * target) }
        }
        let callCells: [RowChart.Cell?] = entries.map { entry in
            entry?.timing.map { RowChart.Cell(value: $0.medianSeconds, detail: "whole call through the entry point: \(MeasurementFormat.duration($0.medianSeconds)) (median)") }
        }
        let hasTiny = workloads.contains { $0.queryLength == 8 }
        let callTimes = callCells.compactMap { $0?.value }
        return RowChart(
            title: "\(report.benchmark): time the entry point adds per call, per bias",
            subtitle: chartSubtitle(report, comparison: comparison),
            legend: [ChartLegendEntry(colour: ChartPalette.ahead, label: "within the target"),
                     ChartLegendEntry(colour: ChartPalette.behind, label: "over the target")],
            rows: rows,
            panels: [
                .init(title: "Overhead: entry point - direct call, ns (bar: median; box: middle half of the sample pairs; whisker: all of them)",
                      unit: .nanoseconds,
                      scale: .linear(fitting: overheadValues, including: [target * 1.2]),
                      references: [.init(value: target, label: "target \(Int(target)) ns")],
                      colouring: .threshold(target, higherIsBetter: false), cells: overheadCells, width: 380),
                .init(title: "Whole call through the entry point (log scale)", unit: .seconds,
                      scale: .logarithmic(fitting: callTimes, including: hasTiny ? [tinyCallTargetSeconds] : []),
                      references: hasTiny ? [.init(value: tinyCallTargetSeconds, label: "3 µs: L=8 target")] : [],
                      cells: callCells, width: 320),
            ],
            footnotes: ["Each sample pair times the entry point and the direct call back to back, so a slow spell of the machine falls on both."])
    }
}
