/// An SVG document built element by element, with the rules every benchmark chart follows so that
/// it reads at 100 % zoom: text of at least ``minimumFontSize`` pixels, never rotated, colours from
/// ``ChartPalette``, coordinates rounded to a tenth of a pixel, and XML's special characters escaped.
struct SVGDocument {
    /// The smallest text any chart draws, in pixels.
    static let minimumFontSize = 12.0

    /// How a text lines up with its position.
    enum Anchor: String {
        case start, middle, end
    }

    var width: Double
    var height: Double
    private var elements: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// The document, with a white background and `font-family` sans-serif.
    func rendered() -> String {
        let w = Self.number(width), h = Self.number(height)
        return ([
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(w)" height="\#(h)" viewBox="0 0 \#(w) \#(h)" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="\#(Self.number(Self.minimumFontSize))">"#,
            #"<rect x="0" y="0" width="\#(w)" height="\#(h)" fill="white"/>"#,
        ] + elements + ["</svg>"]).joined(separator: "\n") + "\n"
    }

    /// A text whose baseline starts (or centres, or ends) at (`x`, `y`); `size` below the minimum is raised to it.
    mutating func text(_ content: String, x: Double, y: Double, size: Double = minimumFontSize, anchor: Anchor = .start,
                       bold: Bool = false, fill: String = ChartPalette.text, cssClass: String? = nil, title: String? = nil) {
        var attributes = [("x", Self.number(x)), ("y", Self.number(y))]
        if anchor != .start { attributes.append(("text-anchor", anchor.rawValue)) }
        attributes.append(("font-size", Self.number(max(size, Self.minimumFontSize))))
        if bold { attributes.append(("font-weight", "bold")) }
        if fill != ChartPalette.text { attributes.append(("fill", fill)) }
        if let cssClass { attributes.append(("class", cssClass)) }
        elements.append("<text \(Self.attributes(attributes))>\(Self.escaped(content))\(title.map { "<title>\(Self.escaped($0))</title>" } ?? "")</text>")
    }

    /// A straight line; `dash` is an SVG `stroke-dasharray`.
    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String, width: Double = 1, dash: String? = nil,
                       cssClass: String? = nil, data: [(String, String)] = []) {
        var attributes = [("x1", Self.number(x1)), ("y1", Self.number(y1)), ("x2", Self.number(x2)), ("y2", Self.number(y2)),
                          ("stroke", stroke)]
        if width != 1 { attributes.append(("stroke-width", Self.number(width))) }
        if let dash { attributes.append(("stroke-dasharray", dash)) }
        if let cssClass { attributes.append(("class", cssClass)) }
        elements.append("<line \(Self.attributes(attributes + data.map { ("data-\($0.0)", $0.1) }))/>")
    }

    /// A rectangle, with a tooltip when `title` is given.
    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String, stroke: String? = nil,
                       cssClass: String? = nil, data: [(String, String)] = [], title: String? = nil) {
        var attributes = [("x", Self.number(x)), ("y", Self.number(y)), ("width", Self.number(max(0, width))),
                          ("height", Self.number(max(0, height))), ("fill", fill)]
        if let stroke { attributes.append(("stroke", stroke)) }
        if let cssClass { attributes.append(("class", cssClass)) }
        element("rect", attributes + data.map { ("data-\($0.0)", $0.1) }, title: title)
    }

    /// A marker of `shape` centred at (`x`, `y`).
    mutating func marker(_ shape: ChartPalette.Marker, x: Double, y: Double, fill: String, cssClass: String? = nil,
                         data: [(String, String)] = [], title: String? = nil) {
        let extra = [("fill", fill), ("stroke", "white"), ("stroke-width", "1")] + (cssClass.map { [("class", $0)] } ?? [])
            + data.map { ("data-\($0.0)", $0.1) }
        switch shape {
        case .circle:
            element("circle", [("cx", Self.number(x)), ("cy", Self.number(y)), ("r", "4.5")] + extra, title: title)
        case .square:
            element("rect", [("x", Self.number(x - 4)), ("y", Self.number(y - 4)), ("width", "8"), ("height", "8")] + extra, title: title)
        case .triangle, .diamond:
            let points = shape == .triangle ? [(0.0, -5.5), (5.0, 3.5), (-5.0, 3.5)] : [(0.0, -5.5), (5.0, 0), (0, 5.5), (-5.0, 0)]
            element("polygon", [("points", points.map { "\(Self.number(x + $0.0)),\(Self.number(y + $0.1))" }.joined(separator: " "))] + extra,
                    title: title)
        }
    }

    /// A small arrowhead at (`x`, `y`) pointing right (or left): something goes on beyond an axis's end.
    mutating func arrowhead(x: Double, y: Double, pointingRight: Bool, fill: String) {
        let tip = pointingRight ? x + 7 : x - 7
        let points = [(x, y - 5), (tip, y), (x, y + 5)].map { "\(Self.number($0.0)),\(Self.number($0.1))" }.joined(separator: " ")
        element("polygon", [("points", points), ("fill", fill), ("class", "clipped")], title: nil)
    }

    /// Straight segments through `points`.
    mutating func polyline(_ points: [(x: Double, y: Double)], stroke: String, width: Double = 2, dash: String? = nil, cssClass: String? = nil) {
        var attributes = [("points", points.map { "\(Self.number($0.x)),\(Self.number($0.y))" }.joined(separator: " ")),
                          ("fill", "none"), ("stroke", stroke), ("stroke-width", Self.number(width))]
        if let dash { attributes.append(("stroke-dasharray", dash)) }
        if let cssClass { attributes.append(("class", cssClass)) }
        elements.append("<polyline \(Self.attributes(attributes))/>")
    }

    private mutating func element(_ name: String, _ attributes: [(String, String)], title: String?) {
        if let title {
            elements.append("<\(name) \(Self.attributes(attributes))><title>\(Self.escaped(title))</title></\(name)>")
        } else {
            elements.append("<\(name) \(Self.attributes(attributes))/>")
        }
    }

    /// About how wide `text` runs at `size` pixels in a common sans-serif (DejaVu Sans, Helvetica):
    /// generous, so that what is laid out beside it never overlaps it.
    static func textWidth(_ text: String, size: Double = minimumFontSize, bold: Bool = false) -> Double {
        Double(text.count) * size * (bold ? 0.66 : 0.6)
    }

    static func attributes(_ pairs: [(String, String)]) -> String {
        pairs.map { "\($0.0)=\"\(escaped($0.1))\"" }.joined(separator: " ")
    }

    /// A coordinate with at most one decimal.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    /// `text` with XML's special characters escaped.
    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// The colours and markers of the charts: Okabe and Ito's palette, which stays distinct under the
/// common colour-vision deficiencies; series also differ by marker and dash, so no reading depends
/// on colour alone.
enum ChartPalette {
    /// Series colours in order (Okabe–Ito blue, vermillion, bluish green, reddish purple, orange, sky blue, black).
    static let series = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
    /// A bar where this package is ahead (Okabe–Ito blue).
    static let ahead = "#0072B2"
    /// A bar where this package is behind (Okabe–Ito vermillion).
    static let behind = "#D55E00"
    /// Text.
    static let text = "#1a1a1a"
    /// A bar that only shows a magnitude, with no judgement (Okabe–Ito sky blue).
    static let neutral = "#56B4E9"
    /// Secondary text: notes, axis labels.
    static let muted = "#555555"
    /// Grid lines.
    static let grid = "#dddddd"
    /// Reference lines (1.0×, targets).
    static let reference = "#333333"

    /// The marker shapes, in series order.
    enum Marker: CaseIterable {
        case circle, square, triangle, diamond
    }

    /// Colour of series `index`.
    static func colour(_ index: Int) -> String { series[index % series.count] }
}
