import Foundation

/// Lines of points on logarithmic axes: a quantity that grows as `x^k` is a straight line of slope
/// `k`, so "linear in L" and "quadratic in L" can be told apart by eye, against dashed guides.
///
/// ```swift
/// let chart = LogLogChart(
///     title: "Time per call", xLabel: "L = S (tokens)", yLabel: "time per call",
///     xUnit: .count, yUnit: .seconds,
///     series: [.init(name: "window:256", points: [(2048, 0.004), (4096, 0.008)])])
/// ```
public struct LogLogChart: BenchmarkChart, Equatable {
    /// A line (or, with one point, a marker) of one configuration.
    public struct Series: Sendable, Equatable {
        /// The legend entry.
        public var name: String
        /// The points, in x order; points that are not positive are left out.
        public var points: [Point]
        /// The colour and marker, by index into ``ChartPalette``.
        public var style: Int
        /// Whether the line is dashed (e.g. the materialized path beside the solid fused one).
        public var dashed: Bool

        /// A series; see the properties.
        public init(name: String, points: [(Double, Double)], style: Int = 0, dashed: Bool = false) {
            self.name = name
            self.points = points.map { Point(x: $0.0, y: $0.1) }
            self.style = style
            self.dashed = dashed
        }
    }

    /// A point of a series.
    public struct Point: Sendable, Equatable {
        /// Its x value, in the x unit.
        public var x: Double
        /// Its y value, in the y unit.
        public var y: Double

        /// A point at (`x`, `y`).
        public init(x: Double, y: Double) {
            self.x = x
            self.y = y
        }
    }

    /// A grey line of a given slope through a point: what a growth `x^slope` would look like.
    public struct Guide: Sendable, Equatable {
        /// Its label, at its right end.
        public var label: String
        /// The exponent: 1 for linear, 2 for quadratic.
        public var slope: Double
        /// A point it goes through.
        public var through: Point

        /// A guide; see the properties.
        public init(label: String, slope: Double, through: (Double, Double)) {
            self.label = label
            self.slope = slope
            self.through = Point(x: through.0, y: through.1)
        }
    }

    /// The heading.
    public var title: String
    /// Lines under the heading.
    public var subtitle: [String]
    /// What x is.
    public var xLabel: String
    /// What y is.
    public var yLabel: String
    /// x's unit.
    public var xUnit: ChartUnit
    /// y's unit.
    public var yUnit: ChartUnit
    /// The lines.
    public var series: [Series]
    /// Slope guides.
    public var guides: [Guide]
    /// Lines under the chart (e.g. configurations that did not run).
    public var footnotes: [String]

    /// A chart; see the properties.
    public init(title: String, subtitle: [String] = [], xLabel: String, yLabel: String, xUnit: ChartUnit, yUnit: ChartUnit,
                series: [Series], guides: [Guide] = [], footnotes: [String] = []) {
        self.title = title
        self.subtitle = subtitle
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.xUnit = xUnit
        self.yUnit = yUnit
        self.series = series
        self.guides = guides
        self.footnotes = footnotes
    }

    /// The x axis: powers of two around the points.
    public var xScale: ChartScale { .logarithmicPowersOfTwo(fitting: series.flatMap { $0.points.map(\.x) }) }
    /// The y axis: powers of two around the points for bytes (1, 2, 4 MiB), 1-2-5 steps otherwise.
    public var yScale: ChartScale {
        let values = series.flatMap { $0.points.map(\.y) }
        return yUnit == .bytes ? .logarithmicPowersOfTwo(fitting: values) : .logarithmic(fitting: values)
    }

    /// The dash patterns of the guides, in order: dotted, then dash-dot, then long dashes.
    static let guideDashes = ["2 4", "9 4 2 4", "12 6"]

    static let margin = 16.0, plotWidth = 560.0, plotHeight = 380.0

    /// The chart as an SVG document.
    public func svg() -> String {
        let m = Self.margin
        let (xScale, yScale) = (self.xScale, self.yScale)
        let yTickWidth = yScale.ticks.map { SVGDocument.textWidth(yUnit.label($0)) }.max() ?? 30
        let legendWidth = max(series.map { SVGDocument.textWidth($0.name) }.max() ?? 0,
                              guides.map { SVGDocument.textWidth($0.label) }.max() ?? 0) + 40
        let plotLeft = m + yTickWidth + 10
        let contentWidth = plotLeft + Self.plotWidth + 24 + legendWidth + m
        let width = max(contentWidth, SVGDocument.headerWidth(title: title, subtitle: subtitle, margin: m),
                        2 * m + (footnotes.map { SVGDocument.textWidth($0) }.max() ?? 0))

        var document = SVGDocument(width: width, height: 0)
        var top = document.header(title: title, subtitle: subtitle, x: m) + 16
        document.text(yLabel, x: m, y: top, bold: true, cssClass: "axis-label")
        top += 22
        let plotTop = top, plotBottom = top + Self.plotHeight, plotRight = plotLeft + Self.plotWidth
        func px(_ value: Double) -> Double { plotLeft + Self.plotWidth * xScale.fraction(value) }
        func py(_ value: Double) -> Double { plotBottom - Self.plotHeight * yScale.fraction(value) }

        for tick in xScale.ticks {
            document.line(x1: px(tick), y1: plotTop, x2: px(tick), y2: plotBottom, stroke: ChartPalette.grid, cssClass: "x-tick",
                          data: [("value", RowChart.dataNumber(tick))])
            document.text(xUnit.label(tick), x: px(tick), y: plotBottom + 18, anchor: .middle, fill: ChartPalette.muted, cssClass: "tick-label")
        }
        for tick in yScale.ticks {
            document.line(x1: plotLeft, y1: py(tick), x2: plotRight, y2: py(tick), stroke: ChartPalette.grid, cssClass: "y-tick",
                          data: [("value", RowChart.dataNumber(tick))])
            document.text(yUnit.label(tick), x: plotLeft - 8, y: py(tick) + 4, anchor: .end, fill: ChartPalette.muted, cssClass: "tick-label")
        }
        document.line(x1: plotLeft, y1: plotBottom, x2: plotRight, y2: plotBottom, stroke: ChartPalette.reference)
        document.line(x1: plotLeft, y1: plotTop, x2: plotLeft, y2: plotBottom, stroke: ChartPalette.reference)
        document.text(xLabel, x: plotLeft + Self.plotWidth / 2, y: plotBottom + 40, anchor: .middle, bold: true, cssClass: "axis-label")

        // Guides, clipped to the plot: y = through.y * (x / through.x)^slope.
        let (xLow, xHigh) = (xScale.domain.lowerBound, xScale.domain.upperBound)
        let (yLow, yHigh) = (yScale.domain.lowerBound, yScale.domain.upperBound)
        for (index, guide) in guides.enumerated() where guide.through.x > 0 && guide.through.y > 0 {
            func yAt(_ x: Double) -> Double { guide.through.y * pow(x / guide.through.x, guide.slope) }
            func xAt(_ y: Double) -> Double { guide.through.x * pow(y / guide.through.y, 1 / guide.slope) }
            let start = max(xLow, xAt(yLow)), end = min(xHigh, xAt(yHigh))
            guard end > start else { continue }
            document.polyline([(px(start), py(yAt(start))), (px(end), py(yAt(end)))], stroke: ChartPalette.muted, width: 1.5,
                              dash: Self.guideDashes[index % Self.guideDashes.count], cssClass: "guide")
        }

        var legendY = plotTop + 6
        let legendX = plotRight + 24
        for entry in series {
            let colour = ChartPalette.colour(entry.style)
            let marker = ChartPalette.Marker.allCases[entry.style % ChartPalette.Marker.allCases.count]
            let points = entry.points.filter { $0.x > 0 && $0.y > 0 && $0.x.isFinite && $0.y.isFinite }
            if points.count > 1 {
                document.polyline(points.map { (px($0.x), py($0.y)) }, stroke: colour, dash: entry.dashed ? "7 4" : nil, cssClass: "series")
            }
            for point in points {
                document.marker(marker, x: px(point.x), y: py(point.y), fill: colour, cssClass: "point",
                                data: [("x", RowChart.dataNumber(point.x)), ("y", RowChart.dataNumber(point.y))],
                                title: "\(entry.name): \(xUnit.label(point.x)), \(yUnit.label(point.y))")
            }
            document.line(x1: legendX, y1: legendY, x2: legendX + 28, y2: legendY, stroke: colour, width: 2, dash: entry.dashed ? "7 4" : nil)
            document.marker(marker, x: legendX + 14, y: legendY, fill: colour)
            document.text(entry.name, x: legendX + 36, y: legendY + 4, cssClass: "legend-label")
            legendY += 22
        }
        for (index, guide) in guides.enumerated() {
            document.line(x1: legendX, y1: legendY, x2: legendX + 28, y2: legendY, stroke: ChartPalette.muted, width: 1.5,
                          dash: Self.guideDashes[index % Self.guideDashes.count])
            document.text(guide.label, x: legendX + 36, y: legendY + 4, fill: ChartPalette.muted, cssClass: "legend-label")
            legendY += 22
        }

        var bottom = plotBottom + 52
        for note in footnotes {
            bottom += 18
            document.text(note, x: m, y: bottom, fill: ChartPalette.muted, cssClass: "footnote")
        }
        document.height = max(bottom, legendY) + m
        return document.rendered()
    }
}
