import SDPA
import Testing

/// What is wrong with `actual` as an approximation of `expected`, or `nil` when nothing is: the
/// suite's one closeness rule.
///
/// Every element must satisfy `|actual − expected| ≤ max(atol + rtol·|expected|, floor)`; NaN must
/// stand exactly where the reference has NaN, and an infinity must be matched exactly (`abs(a − b) >
/// bound` alone is false for NaN, and `max()` skips it, so neither can be the test). The message
/// names how many elements are off and the worst one: its flat index, its coordinates in `shape`,
/// both values, the difference and the bound.
public func closenessFailure(
    _ actual: [Double], _ expected: [Double], shape: [Int], tolerance: Tolerance, floor: Double = 0
) -> String? {
    closenessFailure(actual, expected, shape: shape, bound: "\(tolerance)\(floor > 0 ? ", floor \(floor)" : "")") {
        Swift.max(tolerance.allowed(for: expected[$0]), floor)
    }
}

/// ``closenessFailure(_:_:shape:tolerance:floor:)`` with a bound of its own for each element (a
/// micro-kernel's rounding bound grows with the magnitudes it sums), described by `bound`.
public func closenessFailure(
    _ actual: [Double], _ expected: [Double], shape: [Int], bound: String, allowed: (_ index: Int) -> Double
) -> String? {
    guard actual.count == expected.count else {
        return "\(actual.count) elements, expected \(expected.count) (shape \(shape))"
    }
    var off = 0, nanMismatches = 0
    var worst: (index: Int, excess: Double)?
    for i in actual.indices {
        let (a, e) = (actual[i], expected[i])
        let excess: Double
        if a.isNaN || e.isNaN {
            guard a.isNaN != e.isNaN else { continue }
            nanMismatches += 1
            excess = .infinity
        } else if a.isInfinite || e.isInfinite {
            guard a != e else { continue }
            excess = .infinity
        } else {
            excess = Swift.abs(a - e) - allowed(i)
            guard excess > 0 else { continue }
        }
        off += 1
        if worst == nil || excess > worst!.excess { worst = (i, excess) }
    }
    guard let worst else { return nil }
    let (a, e) = (actual[worst.index], expected[worst.index])
    let nan = nanMismatches > 0 ? "; NaN pattern differs at \(nanMismatches)" : ""
    return "\(off) of \(actual.count) elements off\(nan); worst: element \(worst.index) \(coordinates(of: worst.index, in: shape)) is \(a), "
        + "expected \(e) (|diff| \(Swift.abs(a - e)), allowed \(allowed(worst.index)); \(bound))"
}

/// The coordinates of flat index `index` in a row-major array of `shape`.
public func coordinates(of index: Int, in shape: [Int]) -> [Int] {
    var (rest, at) = (index, [Int](repeating: 0, count: shape.count))
    for d in shape.indices.reversed() where shape[d] > 0 { (at[d], rest) = (rest % shape[d], rest / shape[d]) }
    return at
}

/// Checks that `actual` has `expected`'s shape, the dtype `dtype` (by default `expected`'s), and
/// every element within `tolerance` (or `floor`) of `expected`'s, NaN where it has NaN; records one
/// issue naming the worst element otherwise.
public func expectClose(
    _ actual: Tensor, _ expected: Tensor, _ tolerance: Tolerance, _ label: String = "",
    dtype: DType? = nil, floor: Double = 0, sourceLocation: SourceLocation = #_sourceLocation
) {
    let wantedDType = dtype ?? expected.dtype
    #expect(actual.dtype == wantedDType, "\(label): dtype \(actual.dtype), expected \(wantedDType)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else {
        Issue.record("\(label): shape \(actual.shape), expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    if let failure = closenessFailure(actual.doubleScalars, expected.doubleScalars, shape: expected.shape, tolerance: tolerance, floor: floor) {
        Issue.record("\(label): \(failure)", sourceLocation: sourceLocation)
    }
}

/// ``expectClose(_:_:_:_:dtype:floor:sourceLocation:)`` for a result against values computed by
/// the test (a `Double` reference laid out row-major in `actual`'s shape).
public func expectClose(
    _ actual: Tensor, _ expected: [Double], _ tolerance: Tolerance, _ label: String = "",
    floor: Double = 0, sourceLocation: SourceLocation = #_sourceLocation
) {
    if let failure = closenessFailure(actual.doubleScalars, expected, shape: actual.shape, tolerance: tolerance, floor: floor) {
        Issue.record("\(label): \(failure)", sourceLocation: sourceLocation)
    }
}

/// ``expectClose(_:_:_:_:dtype:floor:sourceLocation:)`` for two lists of values (laid out row-major
/// in `shape`, by default one dimension).
public func expectClose(
    _ actual: [Double], _ expected: [Double], _ tolerance: Tolerance, _ label: String = "",
    shape: [Int]? = nil, floor: Double = 0, sourceLocation: SourceLocation = #_sourceLocation
) {
    if let failure = closenessFailure(actual, expected, shape: shape ?? [expected.count], tolerance: tolerance, floor: floor) {
        Issue.record("\(label): \(failure)", sourceLocation: sourceLocation)
    }
}
