/// The throughput table `sdpa bench`, the demo and `KernelThroughput` print: one line per bias
/// and path, with PyTorch's figure and the ratio when a PyTorch report is given.
public enum ThroughputTable {
    /// `B=1 H=8 L=1024 S=1024 E=64 float32, 2 threads, peak 288 GFLOP/s (144 per core, measured: …); ...`: what the
    /// table's figures refer to.
    public static func summaryLine(_ report: BenchmarkReport) -> String {
        let shapes = Set(report.workloads.map { "\($0.shapeDescription) \($0.dtype)" })
        let m = report.machine
        return (shapes.count == 1 ? shapes.first! + ", " : "")
            + "\(m.threads) thread\(m.threads == 1 ? "" : "s"), \(m.peakDescription); % peak uses effective GFLOP/s (visible positions only)"
    }

    /// The table of `results`; `comparison` adds a PyTorch column matched by workload (see
    /// ``BenchmarkReport/counterpart(of:)``).
    ///
    /// Shape and dtype get columns only when the results have more than one.
    public static func rendered(_ results: [BenchmarkResult], comparison: BenchmarkReport? = nil) -> String {
        table(results, comparison: comparison).rendered()
    }

    /// The table of ``rendered(_:comparison:)``, as cells.
    public static func table(_ results: [BenchmarkResult], comparison: BenchmarkReport? = nil) -> TextTable {
        let showsShape = Set(results.map(\.workload.shapeDescription)).count > 1
        let showsDType = Set(results.map(\.workload.dtype)).count > 1
        var columns: [TextTable.Column] = [.init("bias")]
        if showsShape { columns.append(.init("shape")) }
        if showsDType { columns.append(.init("dtype")) }
        columns += [
            .init("path"), .init("median", alignment: .right), .init("GFLOP/s", alignment: .right),
            .init("eff. GFLOP/s", alignment: .right), .init("% peak", alignment: .right),
            .init("peak extra mem", alignment: .right),
        ]
        if let comparison {
            columns += [.init("\(comparison.implementation) eff.", alignment: .right), .init("ratio", alignment: .right)]
        }
        var table = TextTable(columns: columns)
        var previous: AttentionWorkload?
        for result in results {
            let w = result.workload
            // Consecutive paths of one workload share its label.
            var row = [previous == w ? "" : w.bias]
            if showsShape { row.append(previous == w ? "" : w.shapeDescription) }
            if showsDType { row.append(previous == w ? "" : w.dtype) }
            previous = w
            row += [
                result.path,
                MeasurementFormat.optional(result.timing?.medianSeconds, MeasurementFormat.duration),
                MeasurementFormat.optional(result.gflops) { MeasurementFormat.fixed($0, 1) },
                MeasurementFormat.optional(result.effectiveGFLOPS) { MeasurementFormat.fixed($0, 1) },
                MeasurementFormat.optional(result.percentOfPeak) { MeasurementFormat.fixed($0, 1) + "%" },
                MeasurementFormat.optional(result.peakExtraBytes, MeasurementFormat.bytes),
            ]
            if let comparison {
                let other = comparison.counterpart(of: result)
                row.append(MeasurementFormat.optional(other?.effectiveGFLOPS) { MeasurementFormat.fixed($0, 1) + " (\(other!.path))" })
                let ratio = zip(result.effectiveGFLOPS, other?.effectiveGFLOPS).map { $0 / $1 }
                row.append(MeasurementFormat.optional(ratio) { MeasurementFormat.fixed($0, 2) + "x" })
            }
            table.append(row)
            if let note = result.note { table.append(["", "note: \(note)"]) }
        }
        return table
    }
}

extension BenchmarkReport {
    /// The result of this report to compare `result` with: the same workload and path, or else
    /// this report's fastest result for the workload that does not build its mask in the timed call.
    public func counterpart(of result: BenchmarkResult) -> BenchmarkResult? {
        let candidates = results(for: result.workload).filter { $0.timing != nil }
        if let same = candidates.first(where: { $0.path == result.path }) { return same }
        return candidates.filter { $0.path != AttentionPath.materializedIncludingBuild.rawValue }
            .max { ($0.effectiveGFLOPS ?? 0) < ($1.effectiveGFLOPS ?? 0) }
    }
}

private func zip(_ a: Double?, _ b: Double?) -> (Double, Double)? {
    guard let a, let b, b > 0 else { return nil }
    return (a, b)
}
