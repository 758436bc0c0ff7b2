import Foundation

/// A grouped bar chart written as a standalone SVG file: one group per category (a workload),
/// one bar per series (an implementation and path), for example throughput per bias, this
/// package against PyTorch.
///
/// ```swift
/// let chart = BarChart(title: "Throughput", valueLabel: "effective GFLOP/s",
///                      categories: ["none", "alibi"],
///                      series: [.init(name: "SDPA fused", values: [120, 110]),
///                               .init(name: "PyTorch", values: [96, nil])])
/// try chart.svg().write(toFile: "results/throughput.svg", atomically: true, encoding: .utf8)
/// ```
public struct BarChart: Sendable, Equatable {
    /// One set of bars, one per category.
    public struct Series: Sendable, Equatable {
        /// The legend entry.
        public var name: String
        /// One value per category; `nil` draws no bar.
        public var values: [Double?]

        /// A series named `name`.
        public init(name: String, values: [Double?]) {
            self.name = name
            self.values = values
        }
    }

    /// The heading.
    public var title: String
    /// What the values are, with their unit, for the vertical axis.
    public var valueLabel: String
    /// The groups along the horizontal axis.
    public var categories: [String]
    /// The bars of each group, in legend order.
    public var series: [Series]

    /// A chart; see the type's example.
    public init(title: String, valueLabel: String, categories: [String], series: [Series]) {
        self.title = title
        self.valueLabel = valueLabel
        self.categories = categories
        self.series = series
    }

    /// A chart of `metric` over the workloads of `reports[0]`, one series per (implementation, path)
    /// in the order they first appear; results of later reports are matched by workload.
    public init(title: String, valueLabel: String, reports: [BenchmarkReport],
                category: (AttentionWorkload) -> String, metric: (BenchmarkResult) -> Double?) {
        let workloads = reports.first.map { $0.workloads.isEmpty ? uniqueWorkloads($0.results) : $0.workloads } ?? []
        var keys: [String] = []
        var values: [String: [AttentionWorkload: Double]] = [:]
        for report in reports {
            for result in report.results {
                let key = "\(report.implementation) \(result.path)"
                if values[key] == nil { keys.append(key) }
                if let value = metric(result) { values[key, default: [:]][result.workload] = value }
            }
        }
        self.init(
            title: title, valueLabel: valueLabel, categories: workloads.map(category),
            series: keys.map { key in Series(name: key, values: workloads.map { values[key]?[$0] }) })
    }

    /// Colours of the series, in order (repeating after the last).
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    /// The chart as an SVG document.
    public func svg() -> String {
        let barWidth = 18.0, groupGap = 22.0, plotHeight = 260.0
        let groupWidth = Double(max(series.count, 1)) * barWidth + groupGap
        // Category labels run down and to the left at 35 degrees, about 6.2 points per character
        // at 11 points: leave room for the longest below the plot and left of the first group.
        let labelLength = 6.2 * Double(categories.map(\.count).max() ?? 0)
        let left = max(70, labelLength * cos(35 * .pi / 180) - groupWidth / 2 + 10)
        let top = 48.0 + 18.0 * Double(series.count), bottom = 30 + labelLength * sin(35 * .pi / 180), right = 20.0
        let plotWidth = max(groupWidth * Double(categories.count), 200)
        let width = left + plotWidth + right, height = top + plotHeight + bottom
        let maximum = series.flatMap { $0.values.compactMap { $0 } }.filter(\.isFinite).max() ?? 0
        let (step, ceiling) = Self.axisTicks(maximum: maximum)
        func y(_ value: Double) -> Double { top + plotHeight - plotHeight * min(max(value, 0), ceiling) / ceiling }

        var svg = [
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Self.number(width))" height="\#(Self.number(height))" viewBox="0 0 \#(Self.number(width)) \#(Self.number(height))" font-family="sans-serif" font-size="11">"#,
            #"<rect x="0" y="0" width="\#(Self.number(width))" height="\#(Self.number(height))" fill="white"/>"#,
            #"<text x="\#(Self.number(left))" y="20" font-size="14" font-weight="bold">\#(Self.escaped(title))</text>"#,
        ]
        for (s, entry) in series.enumerated() {
            let ly = 34.0 + 18.0 * Double(s)
            svg.append(#"<rect class="legend" x="\#(Self.number(left))" y="\#(Self.number(ly))" width="12" height="12" fill="\#(Self.palette[s % Self.palette.count])"/>"#)
            svg.append(#"<text x="\#(Self.number(left + 18))" y="\#(Self.number(ly + 10))">\#(Self.escaped(entry.name))</text>"#)
        }
        var tick = 0.0
        while tick <= ceiling + step / 2 {
            let ty = y(tick)
            svg.append(#"<line x1="\#(Self.number(left))" y1="\#(Self.number(ty))" x2="\#(Self.number(left + plotWidth))" y2="\#(Self.number(ty))" stroke="gainsboro"/>"#)
            svg.append(#"<text x="\#(Self.number(left - 6))" y="\#(Self.number(ty + 4))" text-anchor="end">\#(Self.label(tick))</text>"#)
            tick += step
        }
        svg.append(#"<text transform="translate(\#(Self.number(left - 50)) \#(Self.number(top + plotHeight / 2))) rotate(-90)" text-anchor="middle">\#(Self.escaped(valueLabel))</text>"#)
        svg.append(#"<line x1="\#(Self.number(left))" y1="\#(Self.number(top + plotHeight))" x2="\#(Self.number(left + plotWidth))" y2="\#(Self.number(top + plotHeight))" stroke="black"/>"#)
        for (c, category) in categories.enumerated() {
            let groupLeft = left + groupWidth * Double(c) + groupGap / 2
            for (s, entry) in series.enumerated() {
                guard c < entry.values.count, let value = entry.values[c], value.isFinite else { continue }
                let x = groupLeft + barWidth * Double(s), barTop = y(value)
                svg.append(#"<rect class="bar" x="\#(Self.number(x))" y="\#(Self.number(barTop))" width="\#(Self.number(barWidth - 2))" height="\#(Self.number(top + plotHeight - barTop))" fill="\#(Self.palette[s % Self.palette.count])"><title>\#(Self.escaped("\(entry.name), \(category): \(Self.label(value))"))</title></rect>"#)
            }
            let cx = groupLeft + barWidth * Double(series.count) / 2, cy = top + plotHeight + 12
            svg.append(#"<text transform="translate(\#(Self.number(cx)) \#(Self.number(cy))) rotate(-35)" text-anchor="end">\#(Self.escaped(category))</text>"#)
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    /// Writes ``svg()`` to `url`, creating the folder if needed.
    public func write(to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try svg().write(to: url, atomically: true, encoding: .utf8)
    }

    /// A tick step of 1, 2 or 5 times a power of ten giving about five ticks, and the axis top, a multiple of it.
    static func axisTicks(maximum: Double) -> (step: Double, ceiling: Double) {
        guard maximum > 0, maximum.isFinite else { return (1, 1) }
        let rough = maximum / 5
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        return (step, (maximum / step).rounded(.up) * step)
    }

    /// A coordinate with at most one decimal.
    static func number(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    /// A value as a label: three significant digits.
    static func label(_ value: Double) -> String {
        if value == 0 { return "0" }
        return value >= 100 ? String(Int(value.rounded())) : String(format: "%.3g", value)
    }

    /// `text` with XML's special characters escaped.
    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// The distinct workloads of `results`, in order.
private func uniqueWorkloads(_ results: [BenchmarkResult]) -> [AttentionWorkload] {
    var seen = Set<AttentionWorkload>()
    return results.map(\.workload).filter { seen.insert($0).inserted }
}
