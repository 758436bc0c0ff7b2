/// Masks every score of one tile row except those of the keys in `visible` (absolute key
/// indices, clamped to the tile): the two runs outside a contiguous visible range.
@inlinable
func _maskRow(_ row: UnsafeMutablePointer<Float>, keys: Range<Int>, keeping visible: Range<Int>) {
    let n = keys.count
    // Compared before subtracting, so a range reaching far outside the tile cannot overflow.
    func column(_ key: Int) -> Int { key <= keys.lowerBound ? 0 : key >= keys.upperBound ? n : key - keys.lowerBound }
    let start = column(visible.lowerBound)
    let end = Swift.max(start, column(visible.upperBound))
    row.update(repeating: -.infinity, count: start)
    (row + end).update(repeating: -.infinity, count: n - end)
}

/// ``_maskRow(_:keys:keeping:)`` for every row of a tile: row `r` is query `queries[r]`, which sees the
/// keys `visible(query)`. The `apply` of the biases whose rows each see one contiguous range.
@inlinable
func _maskRows(
    _ scores: UnsafeMutablePointer<Float>, rowStride: Int, queries: Range<Int>, keys: Range<Int>, keeping visible: (Int) -> Range<Int>
) {
    for (r, i) in queries.enumerated() { _maskRow(scores + r * rowStride, keys: keys, keeping: visible(i)) }
}

/// Throws ``SDPAError/invalidArgument(argument:value:reason:)`` naming `bias.parameter` when `value` is
/// negative. Called on every dispatch, so it builds no array and no string unless it throws.
@inline(__always)
func _checkNonNegative(_ value: Int, _ bias: StaticString, _ parameter: StaticString, _ reason: StaticString = "a sequence length cannot be negative") throws {
    if value < 0 {
        throw SDPAError.invalidArgument(argument: "\(bias).\(parameter)", value: "\(value)", reason: "\(reason)")
    }
}

/// Built-in biases that check their own parameters (negative lengths, NaN slopes, …) before
/// materializing; their `validate(for:)` runs the same check.
protocol _ParameterChecked {
    func _validateParameters() throws
}
