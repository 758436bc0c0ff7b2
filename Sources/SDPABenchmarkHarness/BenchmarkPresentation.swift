/// How a benchmark report is shown, the same way on the terminal, in its SVG and on the results
/// page: the question it answers, lines before its table, the table, lines after it, and a chart.
/// Everything here is computed from the report (and the PyTorch report it is compared with), so a
/// chart redrawn from the JSON is the chart the run drew.
public struct BenchmarkPresentation: Sendable {
    /// The question the benchmark answers, one sentence.
    public var question: String
    /// Lines before the table (what the figures refer to).
    public var preface: [String]
    /// The results.
    public var table: TextTable
    /// Lines after the table (targets met or missed, derived figures).
    public var notes: [String]
    /// The chart, if the benchmark has one.
    public var chart: (any BenchmarkChart)?

    /// A presentation; see the properties.
    public init(question: String, preface: [String] = [], table: TextTable, notes: [String] = [], chart: (any BenchmarkChart)?) {
        self.question = question
        self.preface = preface
        self.table = table
        self.notes = notes
        self.chart = chart
    }

    /// The presentation of `report`'s benchmark, compared with `comparison` (PyTorch's report of the
    /// same benchmark) when given; a benchmark without its own gets a table of median times per
    /// configuration and a chart of them.
    public init(report: BenchmarkReport, comparison: BenchmarkReport? = nil) {
        switch report.benchmark {
        case "KernelThroughput", "sdpa bench": self = .throughput(report, comparison: comparison)
        case "DispatchOverhead": self = .dispatchOverhead(report, comparison: comparison)
        case "Memory": self = .memory(report)
        case "BiasScaling": self = .biasScaling(report, comparison: comparison)
        case "Embed": self = .embed(report, comparison: comparison)
        case "Decode": self = .decode(report, comparison: comparison)
        case "ThreadScaling": self = .threadScaling(report)
        default: self = .generic(report, comparison: comparison)
        }
    }

    /// The text printed on the terminal: preface, table, notes.
    public var text: String {
        (preface + [table.rendered()] + (notes.isEmpty ? [] : [""] + notes)).joined(separator: "\n")
    }

    /// The lines under a chart's title: the machine, and when, at which commit and against what it ran.
    static func chartSubtitle(_ report: BenchmarkReport, comparison: BenchmarkReport?) -> [String] {
        let ran = report.heading.split(separator: " · ").dropFirst(2).joined(separator: " · ")
        return [report.machine.summary, ran + (comparison.map { " · compared with \($0.implementation)" } ?? "")]
    }

    /// Median time per call of every configuration: for benchmarks without a presentation of their own.
    static func generic(_ report: BenchmarkReport, comparison: BenchmarkReport?) -> BenchmarkPresentation {
        var table = TextTable(columns: [
            .init("bias"), .init("shape"), .init("dtype"), .init("path"), .init("median", alignment: .right),
            .init("eff. GFLOP/s", alignment: .right), .init("peak extra mem", alignment: .right), .init("note"),
        ])
        for r in report.results {
            table.append([
                r.workload.bias, r.workload.shapeDescription, r.workload.dtype, r.path,
                MeasurementFormat.optional(r.timing?.medianSeconds, MeasurementFormat.duration),
                MeasurementFormat.optional(r.effectiveGFLOPS) { MeasurementFormat.fixed($0, 1) },
                MeasurementFormat.optional(r.peakExtraBytes, MeasurementFormat.bytes), r.note ?? "",
            ])
        }
        let timed = report.results.map { ("", $0) } + (comparison.map { c in c.results.map { ("\(c.implementation) · ", $0) } } ?? [])
        let rows = timed.map { prefix, r in
            RowChart.Row(group: "\(r.workload.shapeDescription) \(r.workload.dtype)", label: "\(prefix)\(r.workload.bias) · \(r.path)")
        }
        let times = timed.map { $0.1.timing?.medianSeconds }
        let chart = RowChart(
            title: "\(report.benchmark): median time per call (shorter is faster)",
            subtitle: chartSubtitle(report, comparison: comparison), rows: rows,
            panels: [.init(title: "median time per call (log scale)", unit: .seconds,
                           scale: .logarithmic(fitting: times.compactMap { $0 }),
                           cells: times.map { $0.map { RowChart.Cell(value: $0) } ?? .note("did not run") }, width: 420)])
        return BenchmarkPresentation(question: "How long does each configuration take?", preface: [], table: table, chart: chart)
    }
}
