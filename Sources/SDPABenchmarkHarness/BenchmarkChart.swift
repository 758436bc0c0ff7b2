import Foundation

/// A chart of a benchmark report, drawn as a standalone SVG document (``RowChart``, ``LogLogChart``).
public protocol BenchmarkChart: Sendable {
    /// The heading.
    var title: String { get }
    /// The chart as an SVG document.
    func svg() -> String
}

extension BenchmarkChart {
    /// Writes ``svg()`` to `url`, creating the folder if needed.
    public func write(to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try svg().write(to: url, atomically: true, encoding: .utf8)
    }
}

/// One entry of a chart's legend: a swatch (or marker) of `colour` and what it means.
public struct ChartLegendEntry: Sendable, Equatable {
    /// The swatch's colour.
    public var colour: String
    /// What the colour stands for.
    public var label: String

    /// An entry; see the properties.
    public init(colour: String, label: String) {
        self.colour = colour
        self.label = label
    }
}

extension SVGDocument {
    /// Draws a chart's title and subtitle lines from `y` = 0 at `x`; returns the height they take.
    mutating func header(title: String, subtitle: [String], x: Double) -> Double {
        text(title, x: x, y: 26, size: 17, bold: true, cssClass: "title")
        for (index, line) in subtitle.enumerated() {
            text(line, x: x, y: 48 + 18 * Double(index), fill: ChartPalette.muted, cssClass: "subtitle")
        }
        return 38 + 18 * Double(subtitle.count)
    }

    /// Draws `entries` side by side from (`x`, `y`), the baseline of their text; returns the width used.
    @discardableResult
    mutating func legend(_ entries: [ChartLegendEntry], x: Double, y: Double) -> Double {
        var cursor = x
        for entry in entries {
            rect(x: cursor, y: y - 11, width: 14, height: 14, fill: entry.colour, cssClass: "legend")
            text(entry.label, x: cursor + 20, y: y)
            cursor += 20 + Self.textWidth(entry.label) + 24
        }
        return cursor - x
    }

    /// The width the header of `title` and `subtitle` needs, margins included.
    static func headerWidth(title: String, subtitle: [String], margin: Double) -> Double {
        2 * margin + max(textWidth(title, size: 17, bold: true), subtitle.map { textWidth($0) }.max() ?? 0)
    }

    /// `text` broken at spaces into lines of at most `width` pixels at `size`.
    static func wrapped(_ text: String, width: Double, size: Double = minimumFontSize, bold: Bool = false) -> [String] {
        var lines: [String] = [], current = ""
        for word in text.split(separator: " ") {
            let candidate = current.isEmpty ? String(word) : current + " " + word
            if textWidth(candidate, size: size, bold: bold) > width, !current.isEmpty {
                lines.append(current)
                current = String(word)
            } else {
                current = candidate
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }
}
