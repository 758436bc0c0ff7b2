extension BenchmarkPresentation {
    /// `KernelThroughput` and `sdpa bench`: the throughput table, and a chart of one row per workload
    /// grouped by dtype and bias family, read across three panels: speed against PyTorch (with a
    /// comparison), fused against materialized, and percent of the machine's peak.
    static func throughput(_ report: BenchmarkReport, comparison: BenchmarkReport?) -> BenchmarkPresentation {
        BenchmarkPresentation(
            question: "Where is this package ahead of PyTorch, where behind, and by how much; what does computing the bias "
                + "in the kernel save over reading a materialized mask; how close does it run to the machine's peak?",
            preface: [ThroughputTable.summaryLine(report)],
            table: ThroughputTable.table(report.results, comparison: comparison),
            chart: throughputChart(report, comparison: comparison))
    }

    /// The chart of ``throughput(_:comparison:)``.
    static func throughputChart(_ report: BenchmarkReport, comparison: BenchmarkReport?) -> RowChart {
        let workloads = report.distinctWorkloads.filter { !report.results(for: $0).filter { $0.timing != nil }.isEmpty }
        let ordered = workloads.enumerated().sorted { a, b in
            let (ka, kb) = (groupOrder(a.element), groupOrder(b.element))
            return ka != kb ? ka < kb : a.offset < b.offset
        }.map(\.element)
        let sharedShape = sharedBatchAndHeads(ordered)
        let rows = ordered.map { RowChart.Row(group: "\($0.dtype) · \(biasFamily($0.bias))", label: "\($0.bias)  \(compactShape($0, omitting: sharedShape))") }
        let mains = ordered.map { mainResult(report.results(for: $0)) }

        var panels = [RowChart.Panel]()
        var footnotes = [String]()
        if let comparison {
            let cells: [RowChart.Cell?] = mains.map { ours in
                guard let ours, let theirs = comparison.counterpart(of: ours),
                      let mine = ours.effectiveGFLOPS, let other = theirs.effectiveGFLOPS, other > 0 else { return .note("no counterpart") }
                return RowChart.Cell(value: mine / other, detail: "this package, \(ours.path): \(MeasurementFormat.fixed(mine, 1)) eff. GFLOP/s; "
                    + "\(comparison.implementation), \(theirs.path): \(MeasurementFormat.fixed(other, 1))")
            }
            panels.append(.init(
                title: "Speed against \(comparison.implementation): effective GFLOP/s ratio (right of 1× = this package faster)",
                unit: .times, scale: .ratio(fitting: cells.compactMap { $0?.value }), colouring: .threshold(1, higherIsBetter: true),
                cells: cells, width: 320))
            footnotes.append("Against \(comparison.implementation): the same path where it has one, else its fastest path with the mask built beforehand.")
        } else {
            footnotes.append("Run with --pytorch to add the speed against PyTorch.")
        }
        let fusedCells: [RowChart.Cell?] = ordered.map { workload -> RowChart.Cell? in
            let results = report.results(for: workload)
            let fused = results.first { $0.path == AttentionPath.fused.rawValue }?.timing?.medianSeconds
            let materialized = results.first { $0.path == AttentionPath.materialized.rawValue }?.timing?.medianSeconds
            switch (fused, materialized) {
            case let (f?, m?) where f > 0:
                return RowChart.Cell(value: m / f, detail: "fused \(MeasurementFormat.duration(f)), materialized (mask built beforehand) \(MeasurementFormat.duration(m))")
            case (_?, nil): return .note("fused only")
            case (nil, _?): return .note("materialized only")
            default: return nil
            }
        }
        if fusedCells.contains(where: { $0?.value != nil }) {
            panels.append(.init(
                title: "Fused against materialized: time with the mask built beforehand / fused time (right of 1× = fused faster)",
                unit: .times, scale: .ratio(fitting: fusedCells.compactMap { $0?.value }), colouring: .threshold(1, higherIsBetter: true),
                cells: fusedCells, width: 320))
        }
        let peakCells: [RowChart.Cell?] = mains.map { ours in
            guard let ours, let percent = ours.percentOfPeak else { return nil }
            return RowChart.Cell(value: percent, detail: "\(ours.path): \(MeasurementFormat.fixed(ours.effectiveGFLOPS ?? 0, 1)) eff. GFLOP/s, "
                + "\(MeasurementFormat.fixed(percent, 1)) % of \(MeasurementFormat.fixed(report.machine.peakGFLOPS, 0)) GFLOP/s")
        }
        panels.append(.init(
            title: "This package's effective GFLOP/s as % of the peak (\(MeasurementFormat.fixed(report.machine.peakGFLOPS, 0)) GFLOP/s)",
            unit: .percent, scale: .linear(fitting: peakCells.compactMap { $0?.value }, including: [100]), cells: peakCells, width: 280))

        let legend = [ChartLegendEntry(colour: ChartPalette.ahead, label: "this package faster"),
                      ChartLegendEntry(colour: ChartPalette.behind, label: "this package slower")]
        let shapeNote = sharedShape.map { "Every row: \($0). " } ?? ""
        footnotes.insert(shapeNote + "A row's figures are its fused path, or its materialized path for a dense mask. "
            + "Effective GFLOP/s count visible score positions only.", at: 0)
        return RowChart(
            title: "\(report.benchmark): attention throughput per workload, \(report.machine.threads) thread\(report.machine.threads == 1 ? "" : "s")",
            subtitle: chartSubtitle(report, comparison: comparison), legend: legend, rows: rows, panels: panels, footnotes: footnotes)
    }

    /// The result a workload's row shows: the fused path, else the materialized one, else the first that ran.
    static func mainResult(_ results: [BenchmarkResult]) -> BenchmarkResult? {
        let timed = results.filter { $0.timing != nil }
        return timed.first { $0.path == AttentionPath.fused.rawValue }
            ?? timed.first { $0.path == AttentionPath.materialized.rawValue } ?? timed.first
    }

    /// The family a bias spelling belongs to, for grouping: its most specific part.
    static func biasFamily(_ spelling: String) -> String {
        let parts = spelling.split(separator: "+").map { $0.split(separator: ":").first.map(String.init) ?? "" }
        let families: [(String, String)] = [
            ("mask-", "dense mask"), ("softcap", "soft-capping"), ("block-diagonal", "packed sequences"), ("padding", "key padding"),
            ("window", "sliding window"), ("alibi", "ALiBi"), ("causal", "causal"), ("none", "no mask"),
        ]
        return families.first { family in parts.contains { $0.hasPrefix(family.0) } }?.1 ?? parts.first ?? spelling
    }

    /// Groups in order: dtypes float32, float16, bfloat16, then the families of ``biasFamily(_:)`` in their order.
    static func groupOrder(_ workload: AttentionWorkload) -> GroupOrder {
        let dtypes = ["float32", "float16", "bfloat16", "float64"]
        let families = ["no mask", "causal", "ALiBi", "sliding window", "key padding", "packed sequences", "soft-capping", "dense mask"]
        return GroupOrder(dtype: dtypes.firstIndex(of: workload.dtype) ?? dtypes.count,
                          family: families.firstIndex(of: biasFamily(workload.bias)) ?? families.count)
    }

    /// A group's place: by dtype, then by family.
    struct GroupOrder: Comparable {
        var dtype: Int, family: Int
        static func < (a: GroupOrder, b: GroupOrder) -> Bool { (a.dtype, a.family) < (b.dtype, b.family) }
    }

    /// `B=1 H=8` when every workload has that batch and head count.
    static func sharedBatchAndHeads(_ workloads: [AttentionWorkload]) -> String? {
        let shared = Set(workloads.map { "B=\($0.batch) H=\($0.heads)" })
        return shared.count == 1 ? shared.first : nil
    }

    /// `L=S=2048 E=64`, `L=512 S=2048 E=64` (B and H too unless `omitting` says they are shared).
    static func compactShape(_ w: AttentionWorkload, omitting shared: String?) -> String {
        var parts = shared == nil ? ["B=\(w.batch)", "H=\(w.heads)"] : []
        if w.keyValueHeads != w.heads { parts.append("Hkv=\(w.keyValueHeads)") }
        parts.append(w.queryLength == w.keyLength ? "L=S=\(w.queryLength)" : "L=\(w.queryLength) S=\(w.keyLength)")
        parts.append("E=\(w.headDim)")
        if w.valueHeadDim != w.headDim { parts.append("Ev=\(w.valueHeadDim)") }
        return parts.joined(separator: " ")
    }
}

extension BenchmarkReport {
    /// ``workloads``, or for a report without that list, the distinct workloads of its results in order.
    var distinctWorkloads: [AttentionWorkload] {
        if !workloads.isEmpty { return workloads }
        var seen = Set<AttentionWorkload>()
        return results.map(\.workload).filter { seen.insert($0).inserted }
    }
}
