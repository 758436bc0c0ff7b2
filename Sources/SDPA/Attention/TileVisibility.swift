/// How a tile of the score matrix looks under a bias: what lets the fused kernel skip work.
public enum TileVisibility: Sendable, Hashable {
    /// Every position masked: the tile is skipped (its keys are not even read).
    case empty
    /// No position masked: a pure mask does no work on it.
    case full
    /// Some positions may be masked: the bias is applied element by element. Always a correct answer.
    case partial

    /// The visibility of a tile under a causal mask whose diagonal is shifted by `diagonalOffset`:
    /// key `j` is visible from query `i` when `j <= i + diagonalOffset`.
    ///
    /// ```swift
    /// func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
    ///     .causal(queries: queries, keys: keys, diagonalOffset: seqLenKV - seqLenQ)
    /// }
    /// ```
    @inlinable
    public static func causal(queries: Range<Int>, keys: Range<Int>, diagonalOffset offset: Int) -> TileVisibility {
        if queries.isEmpty || keys.isEmpty { return .empty }
        // The last key each boundary row sees, saturating: an offset of any size is a valid diagonal.
        func diagonal(_ query: Int) -> Int {
            let (key, overflow) = query.addingReportingOverflow(offset)
            return overflow ? (offset > 0 ? .max : .min) : key
        }
        if keys.lowerBound > diagonal(queries.upperBound - 1) { return .empty }
        if keys.upperBound - 1 <= diagonal(queries.lowerBound) { return .full }
        return .partial
    }

    /// The visibility of a tile under two biases applied together: empty if either is empty,
    /// full only if both are full.
    @inlinable
    public func intersected(with other: TileVisibility) -> TileVisibility {
        if self == .empty || other == .empty { return .empty }
        return self == .full && other == .full ? .full : .partial
    }
}
