/// A causal mask, upper-left or lower-right aligned, that is never materialized on the fused path.
///
/// With `L = 3` queries and `S = 4` keys (1 = attend):
///
/// ```
/// causalUpperLeft(3, 4)     causalLowerRight(3, 4)
/// [[1, 0, 0, 0],            [[1, 1, 0, 0],
///  [1, 1, 0, 0],             [1, 1, 1, 0],
///  [1, 1, 1, 0]]             [1, 1, 1, 1]]
/// ```
///
/// ```swift
/// // Decode 4 new tokens against a cache of 128 keys.
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(4, 128))
/// ```
///
/// The fused kernel skips every tile above the diagonal and does mask work only on the tiles the
/// diagonal crosses. ``materialize(device:)`` gives the bool mask `[L, S]`.
///
/// See also: ``CausalVariant``, ``causalUpperLeft(_:_:)``, ``causalLowerRight(_:_:)``.
public struct CausalBias: FusedAttnBias, Hashable {
    /// Which diagonal the mask is aligned to.
    public var variant: CausalVariant
    /// The query sequence length `L` the bias was built for.
    public var seqLenQ: Int
    /// The key/value sequence length `S` the bias was built for.
    public var seqLenKV: Int

    /// A causal bias for `seqLenQ` queries and `seqLenKV` keys. Lower-right with `L > S` is allowed:
    /// its first `L - S` rows are fully masked and give 0.
    public init(variant: CausalVariant, seqLenQ: Int, seqLenKV: Int) {
        self.variant = variant
        self.seqLenQ = seqLenQ
        self.seqLenKV = seqLenKV
    }

    /// Key `j` is visible from query `i` when `j <= i + offset`.
    @inlinable
    var diagonalOffset: Int { variant.diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV) }

    /// `[L, S]`.
    public var materializedShape: [Int] { [seqLenQ, seqLenKV] }

    /// Checks `seqLenQ == L` and `seqLenKV == S`.
    public func validate(for shape: AttentionShape) throws {
        try _validateParameters()
        try shape._check(bias: "CausalBias", seqLenQ: seqLenQ, seqLenKV: seqLenKV)
    }

    /// A pure mask.
    public static var modifiesScores: Bool { false }

    /// `key <= query + offset`.
    @inlinable
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { key <= query + diagonalOffset }

    /// Empty above the diagonal, full below it.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        .causal(queries: queries, keys: keys, diagonalOffset: diagonalOffset)
    }

    /// Masks the run of keys after the diagonal in each row.
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        let offset = diagonalOffset
        for (r, i) in queries.enumerated() {
            _maskRow(scores + r * rowStride, keys: keys, keeping: keys.lowerBound..<Swift.max(keys.lowerBound, i + offset + 1))
        }
    }
}

extension CausalBias: _TileMaskedBias {
    /// The diagonal as a bool mask read in place (no mask tensor): the first row's last visible key
    /// is `queries.lowerBound + offset`.
    @inlinable
    func tileMask(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _ScoreTileMask? {
        _DiagonalMask.tile(rows: queries.count, cols: keys.count,
                           lastVisibleColumn: queries.lowerBound + diagonalOffset - keys.lowerBound)
    }
}

extension CausalBias: _ParameterChecked {
    func _validateParameters() throws {
        try _checkNonNegative(seqLenQ, "CausalBias", "seqLenQ")
        try _checkNonNegative(seqLenKV, "CausalBias", "seqLenKV")
    }
}

/// An upper-left causal bias, `tril(ones(L, S))`: the same as `isCausal: true`.
///
/// See also: ``CausalBias``.
public func causalUpperLeft(_ seqLenQ: Int, _ seqLenKV: Int) -> CausalBias {
    CausalBias(variant: .upperLeft, seqLenQ: seqLenQ, seqLenKV: seqLenKV)
}

/// A lower-right causal bias, `tril(ones(L, S), diagonal: S - L)`: the last query sees every key.
///
/// See also: ``CausalBias``.
public func causalLowerRight(_ seqLenQ: Int, _ seqLenKV: Int) -> CausalBias {
    CausalBias(variant: .lowerRight, seqLenQ: seqLenQ, seqLenKV: seqLenKV)
}
