import Foundation

/// A plain-text table with aligned columns, as the benchmarks and `sdpa bench` print.
///
/// ```swift
/// var table = TextTable(columns: [.init("bias"), .init("median", alignment: .right)])
/// table.append(["alibi", "12.1 ms"])
/// print(table.rendered())
/// ```
public struct TextTable: Sendable, Equatable {
    /// Which side of its column a cell keeps to.
    public enum Alignment: Sendable, Equatable {
        /// Text.
        case left
        /// Numbers.
        case right
    }

    /// A column's title and alignment.
    public struct Column: Sendable, Equatable {
        /// The header.
        public var title: String
        /// How cells line up.
        public var alignment: Alignment

        /// A column titled `title`.
        public init(_ title: String, alignment: Alignment = .left) {
            self.title = title
            self.alignment = alignment
        }
    }

    /// The columns, left to right.
    public var columns: [Column]
    /// The rows; a row shorter than ``columns`` leaves the rest empty.
    public var rows: [[String]] = []

    /// An empty table with `columns`.
    public init(columns: [Column]) { self.columns = columns }

    /// Adds a row.
    public mutating func append(_ row: [String]) { rows.append(row) }

    /// The header, a rule, and the rows, each line without trailing spaces.
    public func rendered() -> String {
        let widths = columns.indices.map { c in
            rows.reduce(columns[c].title.count) { max($0, c < $1.count ? $1[c].count : 0) }
        }
        func line(_ cells: [String]) -> String {
            let padded = columns.indices.map { c -> String in
                let text = c < cells.count ? cells[c] : ""
                let fill = String(repeating: " ", count: widths[c] - text.count)
                return columns[c].alignment == .left ? text + fill : fill + text
            }
            return String(padded.joined(separator: "  ").reversed().drop { $0 == " " }.reversed())
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(columns.map(\.title)), rule] + rows.map(line)).joined(separator: "\n")
    }
}

/// Human-readable figures for tables.
public enum MeasurementFormat {
    /// `850 ns`, `3.21 µs`, `12.3 ms`, `1.52 s`.
    public static func duration(_ seconds: Double) -> String {
        switch seconds {
        case ..<1e-6: return "\(fixed(seconds * 1e9, 0)) ns"
        case ..<1e-3: return "\(fixed(seconds * 1e6, 2)) µs"
        case ..<1: return "\(fixed(seconds * 1e3, 2)) ms"
        default: return "\(fixed(seconds, 2)) s"
        }
    }

    /// `512 B`, `4.0 KiB`, `32.0 MiB`, `8.00 GiB`.
    public static func bytes(_ bytes: Int) -> String {
        let b = Double(bytes)
        switch b {
        case ..<1024: return "\(bytes) B"
        case ..<(1024 * 1024): return "\(fixed(b / 1024, 1)) KiB"
        case ..<(1024 * 1024 * 1024): return "\(fixed(b / 1024 / 1024, 1)) MiB"
        default: return "\(fixed(b / 1024 / 1024 / 1024, 2)) GiB"
        }
    }

    /// `value` with `digits` decimals.
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        String(format: "%.\(max(0, digits))f", value)
    }

    /// `1.19e-07`, or `0` for zero.
    public static func scientific(_ value: Double) -> String {
        value == 0 ? "0" : String(format: "%.2e", value)
    }

    /// An optional figure, or `–` when there is none.
    public static func optional<T>(_ value: T?, _ format: (T) -> String) -> String {
        value.map(format) ?? "–"
    }
}
