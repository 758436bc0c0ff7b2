extension BenchmarkPresentation {
    /// Sentence embeddings per second, padded and packed, beside sentence-transformers: the figures
    /// the `Embed` benchmark records (`sentencesPerSecond.padded|packed`,
    /// `sentenceTransformers.sentencesPerSecond`, `speedup.padded|packed`).
    static func embed(_ report: BenchmarkReport, comparison: BenchmarkReport?) -> BenchmarkPresentation {
        let figures = report.figures ?? [:]
        var table = TextTable(columns: [
            .init("layout"), .init("sentences/s", alignment: .right), .init("median", alignment: .right),
            .init("sentence-transformers", alignment: .right), .init("ratio", alignment: .right),
        ])
        let theirs = figures["sentenceTransformers.sentencesPerSecond"]
        var rows = [RowChart.Row](), cells = [RowChart.Cell](), values = [Double]()
        for r in report.results {
            let perSecond = figures["sentencesPerSecond.\(r.path)"]
            table.append([
                r.path, MeasurementFormat.optional(perSecond) { MeasurementFormat.fixed($0, 1) },
                MeasurementFormat.optional(r.timing?.medianSeconds, MeasurementFormat.duration),
                MeasurementFormat.optional(theirs) { MeasurementFormat.fixed($0, 1) },
                MeasurementFormat.optional(figures["speedup.\(r.path)"]) { MeasurementFormat.fixed($0, 2) + "×" },
            ])
            rows.append(.init(group: "this package", label: r.path))
            cells.append(perSecond.map { RowChart.Cell(value: $0) } ?? .note("did not run"))
            values += perSecond.map { [$0] } ?? []
        }
        if let theirs {
            rows.append(.init(group: comparison?.implementation ?? "sentence-transformers", label: "padded batches"))
            cells.append(RowChart.Cell(value: theirs))
            values.append(theirs)
        }
        let chart = RowChart(
            title: "Sentence embeddings per second (longer is faster)",
            subtitle: chartSubtitle(report, comparison: comparison), rows: rows,
            panels: [.init(title: "sentences per second", unit: .count,
                           scale: .linear(fitting: values, including: [0]), cells: cells, width: 420)])
        return BenchmarkPresentation(
            question: "How many sentences per second does sdpa embed encode, padded and packed, against sentence-transformers?",
            preface: report.results.first?.note.map { [$0] } ?? [], table: table, chart: chart)
    }
}
