/// A chart of one row per workload (grouped under headings), read across one or more panels side by
/// side: horizontal bars from a baseline (1.0× for ratios, so ahead runs right and behind runs left),
/// or a median with its spread (box: the middle half of the samples; whisker: all of them) against a
/// target line.
///
/// ```swift
/// let chart = RowChart(
///     title: "Speed against PyTorch", subtitle: ["AMD EPYC · avx2 kernels"],
///     rows: [.init(group: "float32 · causal", label: "causal-upper-left")],
///     panels: [.init(title: "this package / PyTorch", unit: .times, scale: .ratio(0.5...2),
///                    colouring: .threshold(1, higherIsBetter: true), cells: [.init(value: 1.2)])])
/// try chart.write(to: URL(fileURLWithPath: "results/chart.svg"))
/// ```
public struct RowChart: BenchmarkChart, Equatable {
    /// One line of the chart, under the heading `group` (a heading is drawn where the group changes).
    public struct Row: Sendable, Equatable {
        /// The heading the row sits under.
        public var group: String
        /// The row's label, left of the panels.
        public var label: String

        /// A row; see the properties.
        public init(group: String, label: String) {
            self.group = group
            self.label = label
        }
    }

    /// The spread of a value's samples.
    public struct Spread: Sendable, Equatable {
        /// The smallest sample.
        public var low: Double
        /// The first quartile.
        public var lowerQuartile: Double
        /// The third quartile.
        public var upperQuartile: Double
        /// The largest sample.
        public var high: Double

        /// The spread of `samples` (quartiles interpolated between neighbouring samples); `nil` when there are none.
        public init?(samples: [Double]) {
            let sorted = samples.filter(\.isFinite).sorted()
            guard let first = sorted.first, let last = sorted.last else { return nil }
            func quantile(_ q: Double) -> Double {
                let position = q * Double(sorted.count - 1)
                let below = Int(position.rounded(.down)), above = min(below + 1, sorted.count - 1)
                return sorted[below] + (sorted[above] - sorted[below]) * (position - Double(below))
            }
            (low, lowerQuartile, upperQuartile, high) = (first, quantile(0.25), quantile(0.75), last)
        }
    }

    /// What a panel shows for one row: a value (a bar, or with a spread a box and whiskers), or a note.
    public struct Cell: Sendable, Equatable {
        /// The value; `nil` shows only ``note``.
        public var value: Double?
        /// The samples' spread around ``value`` (the median), drawn as a box and whiskers instead of a bar.
        public var spread: Spread?
        /// Grey text where there is no value (e.g. `fused only`).
        public var note: String?
        /// The tooltip.
        public var detail: String?

        /// A value, optionally with its spread and a tooltip.
        public init(value: Double, spread: Spread? = nil, detail: String? = nil) {
            self.value = value
            self.spread = spread
            self.detail = detail
        }

        /// No value, only `text`.
        public static func note(_ text: String) -> Cell {
            var cell = Cell(value: 0)
            (cell.value, cell.note) = (nil, text)
            return cell
        }
    }

    /// A vertical line across the rows, e.g. a target, labelled above the rows.
    public struct Reference: Sendable, Equatable {
        /// Where the line is, in the panel's unit.
        public var value: Double
        /// Its label (none for an empty string).
        public var label: String

        /// A reference line; see the properties.
        public init(value: Double, label: String) {
            self.value = value
            self.label = label
        }
    }

    /// How a panel colours its values.
    public enum Colouring: Sendable, Equatable {
        /// All in ``ChartPalette/neutral``: a magnitude, neither good nor bad.
        case single
        /// ``ChartPalette/ahead`` on the good side of `threshold` (inclusive), ``ChartPalette/behind`` on the other.
        case threshold(Double, higherIsBetter: Bool)
    }

    /// One column of the chart: a title, an axis, and a cell per row.
    public struct Panel: Sendable, Equatable {
        /// The heading above the axis, wrapped to the panel's width.
        public var title: String
        /// The values' unit, for tick and value labels.
        public var unit: ChartUnit
        /// The axis.
        public var scale: ChartScale
        /// Lines across the rows (targets).
        public var references: [Reference]
        /// How values are coloured.
        public var colouring: Colouring
        /// One cell per row of the chart (`nil`: nothing drawn).
        public var cells: [Cell?]
        /// The panel's width in pixels, value labels included.
        public var width: Double

        /// A panel; see the properties.
        public init(title: String, unit: ChartUnit, scale: ChartScale, references: [Reference] = [],
                    colouring: Colouring = .single, cells: [Cell?], width: Double = 300) {
            self.title = title
            self.unit = unit
            self.scale = scale
            self.references = references
            self.colouring = colouring
            self.cells = cells
            self.width = width
        }

        /// The colour of `value`.
        func colour(_ value: Double) -> String {
            switch colouring {
            case .single: return ChartPalette.neutral
            case .threshold(let threshold, let higherIsBetter):
                return (higherIsBetter ? value >= threshold : value <= threshold) ? ChartPalette.ahead : ChartPalette.behind
            }
        }

        /// Room left and right of the axis for value labels.
        var padding: (left: Double, right: Double) {
            let belowBaseline: Bool
            switch scale {
            case .ratio: belowBaseline = true
            case .linear(let d): belowBaseline = d.lowerBound < 0
            case .logarithmic, .logarithmicPowersOfTwo: belowBaseline = false
            }
            return (belowBaseline ? 56 : 10, 64)
        }
    }

    /// The heading.
    public var title: String
    /// Lines under the heading: the machine, date, commit, how to read the chart.
    public var subtitle: [String]
    /// The legend under the subtitle.
    public var legend: [ChartLegendEntry]
    /// The rows, top to bottom.
    public var rows: [Row]
    /// The panels, left to right.
    public var panels: [Panel]
    /// Lines under the chart.
    public var footnotes: [String]

    /// A chart; see the properties.
    public init(title: String, subtitle: [String] = [], legend: [ChartLegendEntry] = [], rows: [Row], panels: [Panel],
                footnotes: [String] = []) {
        self.title = title
        self.subtitle = subtitle
        self.legend = legend
        self.rows = rows
        self.panels = panels
        self.footnotes = footnotes
    }

    static let margin = 16.0, rowHeight = 24.0, groupHeight = 30.0, panelGap = 28.0, barHeight = 14.0

    /// The chart as an SVG document.
    public func svg() -> String {
        let m = Self.margin
        let labelWidth = max(rows.map { SVGDocument.textWidth($0.label) }.max() ?? 0,
                             rows.map { SVGDocument.textWidth($0.group, size: 13, bold: true) }.max() ?? 0) + 16
        var panelLefts = [Double](), cursor = m + labelWidth
        for panel in panels {
            panelLefts.append(cursor)
            cursor += panel.width + Self.panelGap
        }
        let contentWidth = cursor - Self.panelGap + m
        let width = max(contentWidth, SVGDocument.headerWidth(title: title, subtitle: subtitle, margin: m),
                        2 * m + (footnotes.map { SVGDocument.textWidth($0) }.max() ?? 0))

        // Heights: header, legend, panel titles, tick labels (and reference labels), rows, ticks, footnotes.
        let titleLines = panels.map { SVGDocument.wrapped($0.title, width: $0.width, size: 13, bold: true) }
        let titleHeight = 18 * Double(titleLines.map(\.count).max() ?? 0)
        let hasReferenceLabels = panels.contains { $0.references.contains { !$0.label.isEmpty } }
        var groupStarts = Set<Int>()
        for index in rows.indices where index == 0 || rows[index].group != rows[index - 1].group { groupStarts.insert(index) }
        var rowTops = [Double]()
        var y = 0.0
        for index in rows.indices {
            if groupStarts.contains(index) { y += Self.groupHeight }
            rowTops.append(y)
            y += Self.rowHeight
        }
        let rowsHeight = y

        var document = SVGDocument(width: width, height: 0)
        var top = document.header(title: title, subtitle: subtitle, x: m)
        if !legend.isEmpty {
            document.legend(legend, x: m, y: top + 16)
            top += 26
        }
        top += 10
        for p in panels.indices {
            for (index, line) in titleLines[p].enumerated() {
                document.text(line, x: panelLefts[p], y: top + 14 + 18 * Double(index), size: 13, bold: true, cssClass: "panel-title")
            }
        }
        top += titleHeight + 4
        let tickLabelY = top + 14
        top += 22
        let referenceLabelY = top + 12
        if hasReferenceLabels { top += 20 }
        let rowsTop = top, rowsBottom = rowsTop + rowsHeight

        // Row bands and labels.
        for (index, row) in rows.enumerated() {
            let rowTop = rowsTop + rowTops[index]
            if groupStarts.contains(index) {
                document.text(row.group, x: m, y: rowTop - 9, size: 13, bold: true, cssClass: "group")
            }
            if index % 2 == 1 {
                document.rect(x: m, y: rowTop, width: contentWidth - 2 * m, height: Self.rowHeight, fill: "#f3f3f3")
            }
            document.text(row.label, x: m + 8, y: rowTop + 16, cssClass: "row-label")
        }

        for (p, panel) in panels.enumerated() {
            let (padLeft, padRight) = panel.padding
            let axisLeft = panelLefts[p] + padLeft, axisWidth = panel.width - padLeft - padRight
            func x(_ value: Double) -> Double { axisLeft + axisWidth * min(max(panel.scale.fraction(value), 0), 1) }
            for tick in Self.legibleTicks(panel) {
                let tx = x(tick)
                document.line(x1: tx, y1: rowsTop - 4, x2: tx, y2: rowsBottom, stroke: ChartPalette.grid, cssClass: "tick",
                              data: [("panel", String(p)), ("value", Self.dataNumber(tick))])
                for labelY in [tickLabelY, rowsBottom + 16] {
                    document.text(panel.unit.label(tick), x: tx, y: labelY, anchor: .middle, fill: ChartPalette.muted, cssClass: "tick-label")
                }
            }
            let baselineX = x(panel.scale.baseline)
            if case .ratio = panel.scale {
                document.line(x1: baselineX, y1: rowsTop - 4, x2: baselineX, y2: rowsBottom, stroke: ChartPalette.reference,
                              width: 1.5, cssClass: "baseline", data: [("panel", String(p))])
            }
            for reference in panel.references {
                let rx = x(reference.value)
                document.line(x1: rx, y1: rowsTop - 4, x2: rx, y2: rowsBottom, stroke: ChartPalette.reference, width: 1.5,
                              dash: "6 4", cssClass: "reference", data: [("panel", String(p)), ("value", Self.dataNumber(reference.value))])
                if !reference.label.isEmpty {
                    document.text(reference.label, x: rx, y: referenceLabelY, anchor: .middle, bold: true, cssClass: "reference-label")
                }
            }
            for (index, cell) in panel.cells.enumerated() where index < rows.count {
                guard let cell else { continue }
                let centre = rowsTop + rowTops[index] + Self.rowHeight / 2
                let data = [("panel", String(p)), ("row", String(index))]
                guard let value = cell.value, value.isFinite else {
                    if let note = cell.note {
                        document.text(note, x: axisLeft + 4, y: centre + 4, fill: ChartPalette.muted, cssClass: "note")
                    }
                    continue
                }
                let colour = panel.colour(value)
                let tooltip = cell.detail ?? "\(rows[index].label): \(panel.unit.label(value))"
                let valueLabel = panel.unit.label(value)
                if let spread = cell.spread {
                    let (lowX, highX) = (x(spread.low), x(spread.high))
                    document.line(x1: lowX, y1: centre, x2: highX, y2: centre, stroke: colour, width: 1.5, cssClass: "whisker", data: data)
                    for (end, clipped, rightward) in [(lowX, panel.scale.fraction(spread.low) < 0, false),
                                                     (highX, panel.scale.fraction(spread.high) > 1, true)] {
                        // A whisker cut off at the axis's end gets an arrow instead of a cap: it goes on.
                        if clipped {
                            document.arrowhead(x: end, y: centre, pointingRight: rightward, fill: colour)
                        } else {
                            document.line(x1: end, y1: centre - 4, x2: end, y2: centre + 4, stroke: colour, width: 1.5)
                        }
                    }
                    let (q1, q3) = (x(spread.lowerQuartile), x(spread.upperQuartile))
                    document.rect(x: q1, y: centre - 6, width: q3 - q1, height: 12, fill: colour, cssClass: "box",
                                  data: data + [("value", Self.dataNumber(value))], title: tooltip)
                    let medianX = x(value)
                    document.line(x1: medianX, y1: centre - 8, x2: medianX, y2: centre + 8, stroke: ChartPalette.text, width: 2.5,
                                  cssClass: "median", data: data + [("value", Self.dataNumber(value))])
                    document.text(valueLabel, x: max(highX, medianX) + (panel.scale.fraction(spread.high) > 1 ? 12 : 6), y: centre + 4,
                                  cssClass: "value-label")
                } else {
                    let (start, end) = (baselineX, x(value))
                    document.rect(x: min(start, end), y: centre - Self.barHeight / 2, width: abs(end - start), height: Self.barHeight,
                                  fill: colour, cssClass: "bar", data: data + [("value", Self.dataNumber(value))], title: tooltip)
                    let rightward = value >= panel.scale.baseline
                    let clipped = !(0...1).contains(panel.scale.fraction(value))
                    if clipped { document.arrowhead(x: end, y: centre, pointingRight: rightward, fill: colour) }
                    document.text(valueLabel, x: end + (rightward ? 1 : -1) * (clipped ? 12 : 5), y: centre + 4, anchor: rightward ? .start : .end,
                                  cssClass: "value-label")
                }
            }
        }
        var bottom = rowsBottom + 28
        for note in footnotes {
            bottom += 18
            document.text(note, x: m, y: bottom, fill: ChartPalette.muted, cssClass: "footnote")
        }
        document.height = bottom + m
        return document.rendered()
    }

    /// The panel's ticks whose labels do not run into each other: from the baseline outwards, a tick
    /// is kept when its label clears the last kept one's by 6 pixels.
    static func legibleTicks(_ panel: Panel) -> [Double] {
        let ticks = panel.scale.ticks
        let (padLeft, padRight) = panel.padding
        let axisWidth = panel.width - padLeft - padRight
        func position(_ value: Double) -> Double { axisWidth * panel.scale.fraction(value) }
        func halfWidth(_ value: Double) -> Double { SVGDocument.textWidth(panel.unit.label(value)) / 2 }
        let base = panel.scale.baseline
        let start = ticks.min { abs(panel.scale.fraction($0) - panel.scale.fraction(base)) < abs(panel.scale.fraction($1) - panel.scale.fraction(base)) }
        guard let start else { return [] }
        var kept = [start]
        for direction in [1.0, -1.0] {
            var last = start
            for tick in (direction > 0 ? ticks.filter { $0 > start } : ticks.filter { $0 < start }.reversed()) {
                if abs(position(tick) - position(last)) >= halfWidth(tick) + halfWidth(last) + 6 {
                    kept.append(tick)
                    last = tick
                }
            }
        }
        return kept.sorted()
    }

    /// A value as a `data-` attribute, exactly (the shortest text that reads back as the same double),
    /// so that a chart can be checked against its report.
    static func dataNumber(_ value: Double) -> String {
        let text = "\(value)"
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }
}
