import Foundation

/// What a chart's values are, for their tick and value labels.
public enum ChartUnit: Sendable, Equatable {
    /// A ratio: `1.25×`.
    case times
    /// A percentage: `64 %`.
    case percent
    /// Seconds, shown as `850 ns`, `3.2 µs`, `12 ms`.
    case seconds
    /// Nanoseconds: `85 ns`, `1.2 µs`.
    case nanoseconds
    /// Bytes, shown as `512 KiB`, `32 MiB`.
    case bytes
    /// A plain count: `2048`.
    case count

    /// `value` in this unit, compact: two or three significant digits.
    public func label(_ value: Double) -> String {
        switch self {
        case .times: return Self.compact(value) + "×"
        case .percent: return Self.compact(value) + " %"
        case .seconds:
            let magnitude = abs(value)
            if magnitude == 0 { return "0" }
            if magnitude < 1e-6 { return Self.compact(value * 1e9) + " ns" }
            if magnitude < 1e-3 { return Self.compact(value * 1e6) + " µs" }
            if magnitude < 1 { return Self.compact(value * 1e3) + " ms" }
            return Self.compact(value) + " s"
        case .nanoseconds: return abs(value) < 1000 ? Self.compact(value) + " ns" : Self.compact(value / 1000) + " µs"
        case .bytes:
            let magnitude = abs(value)
            if magnitude < 1024 { return Self.compact(value) + " B" }
            if magnitude < 1024 * 1024 { return Self.compact(value / 1024) + " KiB" }
            if magnitude < 1024 * 1024 * 1024 { return Self.compact(value / 1024 / 1024) + " MiB" }
            return Self.compact(value / 1024 / 1024 / 1024) + " GiB"
        case .count: return Self.compact(value)
        }
    }

    /// Three significant digits, without trailing zeros; whole numbers from 100 up.
    static func compact(_ value: Double) -> String {
        guard value.isFinite else { return "–" }
        if value == 0 { return "0" }
        if abs(value) >= 100 { return String(Int(value.rounded())) }
        var text = String(format: "%.3g", value)
        if text.contains("."), !text.contains("e") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }
}

/// How values map onto a chart's axis: the fraction 0...1 of its length, and the ticks to draw.
public enum ChartScale: Sendable, Equatable {
    /// Evenly spaced values.
    case linear(ClosedRange<Double>)
    /// Values spaced by their logarithm: equal factors are equal distances (ticks at 1, 2, 5 × 10ⁿ).
    case logarithmic(ClosedRange<Double>)
    /// Logarithmic, ticks at powers of two: for sequence lengths.
    case logarithmicPowersOfTwo(ClosedRange<Double>)
    /// A ratio on a logarithmic axis, so that 2× ahead and 2× behind are equally long; bars start at 1.
    case ratio(ClosedRange<Double>)

    /// The value range.
    public var domain: ClosedRange<Double> {
        switch self {
        case .linear(let d), .logarithmic(let d), .logarithmicPowersOfTwo(let d), .ratio(let d): return d
        }
    }

    /// Where a bar starts: 1 for a ratio, 0 (or the domain's lower end) otherwise.
    public var baseline: Double {
        switch self {
        case .ratio: return 1
        case .linear(let d): return min(max(0, d.lowerBound), d.upperBound)
        case .logarithmic(let d), .logarithmicPowersOfTwo(let d): return d.lowerBound
        }
    }

    /// `value`'s position along the axis, 0 at the domain's lower end and 1 at its upper end (not clamped).
    public func fraction(_ value: Double) -> Double {
        let d = domain
        switch self {
        case .linear:
            return d.upperBound > d.lowerBound ? (value - d.lowerBound) / (d.upperBound - d.lowerBound) : 0
        case .logarithmic, .logarithmicPowersOfTwo, .ratio:
            guard value > 0, d.lowerBound > 0, d.upperBound > d.lowerBound else { return value > 0 ? 0 : -.infinity }
            return log(value / d.lowerBound) / log(d.upperBound / d.lowerBound)
        }
    }

    /// The values to mark along the axis, in order.
    public var ticks: [Double] {
        let d = domain
        switch self {
        case .linear:
            let step = Self.niceStep(d.upperBound - d.lowerBound)
            return stride(from: (d.lowerBound / step).rounded(.up) * step, through: d.upperBound + step * 1e-9, by: step).map { $0 }
        case .logarithmic:
            let decades = Int(floor(log10(d.lowerBound)))...Int(ceil(log10(d.upperBound)))
            var all = [Double]()
            for exponent in decades {
                for mantissa in [1.0, 2, 5] {
                    let value = Self.scaled(mantissa, tenTo: exponent)
                    if value >= d.lowerBound * (1 - 1e-9) && value <= d.upperBound * (1 + 1e-9) { all.append(value) }
                }
            }
            return all.count <= 8 ? all : all.filter { log10($0) == log10($0).rounded() }
        case .logarithmicPowersOfTwo:
            let powers = Int(floor(log2(d.lowerBound)))...Int(ceil(log2(d.upperBound)))
            let all = powers.map { pow(2, Double($0)) }.filter { d.contains($0) }
            return all.count <= 8 ? all : all.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        case .ratio:
            let candidates = [0.125, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 4, 8, 16, 32]
            let inside = candidates.filter { d.contains($0) }
            return inside.count <= 7 ? inside : inside.filter { log2($0) == log2($0).rounded() }
        }
    }

    /// A linear scale from 0 (or below, for negative values) to a round number above `values` and `including`.
    public static func linear(fitting values: [Double], including: [Double] = []) -> ChartScale {
        let all = (values + including).filter(\.isFinite)
        let high = max(all.max() ?? 1, 0), low = min(all.min() ?? 0, 0)
        let step = niceStep(high - low)
        let upper = high > 0 ? (high / step * (1 - 1e-9)).rounded(.up) * step : step
        return .linear((low < 0 ? (low / step * (1 - 1e-9)).rounded(.down) * step : 0)...upper)
    }

    /// A logarithmic scale over whole 1-2-5 steps around the positive `values`, starting a step below
    /// the smallest so that its bar has a length.
    public static func logarithmic(fitting values: [Double], including: [Double] = []) -> ChartScale {
        let all = (values + including).filter { $0 > 0 && $0.isFinite }
        guard let low = all.min(), let high = all.max() else { return .logarithmic(1...10) }
        return .logarithmic(Self.oneTwoFive(below: low / 1.25)...Self.oneTwoFive(above: high))
    }

    /// A logarithmic scale over whole powers of two around the positive `values`.
    public static func logarithmicPowersOfTwo(fitting values: [Double]) -> ChartScale {
        let all = values.filter { $0 > 0 && $0.isFinite }
        guard let low = all.min(), let high = all.max() else { return .logarithmicPowersOfTwo(1...2) }
        let lower = pow(2, floor(log2(low))), upper = pow(2, ceil(log2(high)))
        return .logarithmicPowersOfTwo(lower...(upper > lower ? upper : lower * 2))
    }

    /// A ratio scale from at most 0.5× to at least 2×, widened to whole powers of two around `values`.
    public static func ratio(fitting values: [Double]) -> ChartScale {
        let all = values.filter { $0 > 0 && $0.isFinite }
        let low = min(0.5, pow(2, floor(log2((all.min() ?? 1) / 1.1))))
        let high = max(2, pow(2, ceil(log2((all.max() ?? 1) * 1.1))))
        return .ratio(low...high)
    }

    /// A step of 1, 2 or 5 times a power of ten giving about five steps over `span`.
    static func niceStep(_ span: Double) -> Double {
        guard span > 0, span.isFinite else { return 1 }
        let rough = span / 5
        let magnitude = pow(10, floor(log10(rough)))
        return [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough * (1 - 1e-9) } ?? 10 * magnitude
    }

    static func oneTwoFive(below value: Double) -> Double {
        let exponent = Int(floor(log10(value)))
        return [5.0, 2, 1].map { scaled($0, tenTo: exponent) }.first { $0 <= value * (1 + 1e-9) } ?? scaled(1, tenTo: exponent)
    }

    static func oneTwoFive(above value: Double) -> Double {
        let exponent = Int(floor(log10(value)))
        return [1.0, 2, 5, 10].map { scaled($0, tenTo: exponent) }.first { $0 >= value * (1 - 1e-9) } ?? scaled(10, tenTo: exponent)
    }

    /// `mantissa × 10^exponent`, rounded once: `5e-6` is the literal's double, not `5 * pow(10, -6)`'s.
    static func scaled(_ mantissa: Double, tenTo exponent: Int) -> Double {
        let power = pow(10, Double(abs(exponent)))  // exact up to 10^22
        return exponent < 0 ? mantissa / power : mantissa * power
    }
}
