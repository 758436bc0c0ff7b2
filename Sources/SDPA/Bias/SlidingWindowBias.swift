/// Local attention: each query sees a window of keys around its aligned diagonal, with
/// FlashAttention-2's `window_size = (left, right)` semantics.
///
/// Query `i` sees key `j` when `i + offset - left <= j <= i + offset + right`, where `offset` is `0`
/// for ``CausalVariant/upperLeft`` alignment and `S - L` for ``CausalVariant/lowerRight`` (FlashAttention-2's
/// default). `nil` leaves a side unbounded; `right: 0` makes the window causal. With `L = S = 6`
/// (1 = attend):
///
/// ```
/// left: 2, right: 0 (causal)     left: 1, right: 1
/// [[1, 0, 0, 0, 0, 0],           [[1, 1, 0, 0, 0, 0],
///  [1, 1, 0, 0, 0, 0],            [1, 1, 1, 0, 0, 0],
///  [1, 1, 1, 0, 0, 0],            [0, 1, 1, 1, 0, 0],
///  [0, 1, 1, 1, 0, 0],            [0, 0, 1, 1, 1, 0],
///  [0, 0, 1, 1, 1, 0],            [0, 0, 0, 1, 1, 1],
///  [0, 0, 0, 1, 1, 1]]            [0, 0, 0, 0, 1, 1]]
/// ```
///
/// The fused kernel visits only the tiles the band crosses, so the cost grows as `O(L · window)`.
///
/// ```swift
/// let local = SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 256, right: 0)   // causal, 256 back
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: local)
/// ```
///
/// See also: ``FusedAttnBias/combined(with:)`` to add ALiBi or padding to the window.
public struct SlidingWindowBias: FusedAttnBias, Hashable {
    /// The query sequence length `L`.
    public var seqLenQ: Int
    /// The key/value sequence length `S`.
    public var seqLenKV: Int
    /// Keys visible before the aligned diagonal; `nil` for all of them.
    public var left: Int?
    /// Keys visible after the aligned diagonal; `nil` for all of them, `0` for a causal window.
    public var right: Int?
    /// Which diagonal the window follows.
    public var alignment: CausalVariant

    /// A window of `left` keys before and `right` keys after the aligned diagonal.
    public init(seqLenQ: Int, seqLenKV: Int, left: Int?, right: Int? = 0, alignment: CausalVariant = .lowerRight) {
        self.seqLenQ = seqLenQ
        self.seqLenKV = seqLenKV
        self.left = left
        self.right = right
        self.alignment = alignment
    }

    @inlinable var diagonalOffset: Int { alignment.diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV) }

    /// The visible keys of query `i`, as a closed range that may be empty or reach outside `0..<S`.
    ///
    /// Saturating: a side wider than the keys it could reach (up to `Int.max`) is unbounded, `first`
    /// no lower than -1 and `last` below `Int.max`, so `last + 1` and the kernels' arithmetic on the
    /// range cannot overflow, and the keys seen, all in `0..<S`, are exactly those of the window.
    @inlinable
    func visibleKeys(query i: Int) -> (first: Int, last: Int) {
        let d = i + diagonalOffset
        var first = -1, last = Int.max - 1
        if let left {
            let (edge, overflow) = d.subtractingReportingOverflow(left)
            if !overflow { first = Swift.max(-1, edge) }
        }
        if let right {
            let (edge, overflow) = d.addingReportingOverflow(right)
            if !overflow { last = Swift.min(Int.max - 1, edge) }
        }
        return (first, last)
    }

    /// `[L, S]`.
    public var materializedShape: [Int] { [seqLenQ, seqLenKV] }

    /// A pure mask.
    public static var modifiesScores: Bool { false }

    /// Whether `key` lies in the window of `query`.
    @inlinable
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool {
        let window = visibleKeys(query: query)
        return key >= window.first && key <= window.last
    }

    /// Empty outside the band, full inside it.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        if queries.isEmpty || keys.isEmpty { return .empty }
        let top = visibleKeys(query: queries.lowerBound), bottom = visibleKeys(query: queries.upperBound - 1)
        // The window only moves right as the query index grows.
        if keys.upperBound - 1 < top.first || keys.lowerBound > bottom.last { return .empty }
        if keys.lowerBound >= bottom.first && keys.upperBound - 1 <= top.last { return .full }
        return .partial
    }

    /// Masks what lies outside each row's window: two runs per row.
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        for (r, i) in queries.enumerated() {
            let window = visibleKeys(query: i)
            _maskRow(scores + r * rowStride, keys: keys, keeping: window.first..<Swift.max(window.first, window.last + 1))
        }
    }

    /// Checks the window sizes and `seqLenQ == L`, `seqLenKV == S`.
    public func validate(for shape: AttentionShape) throws {
        try _validateParameters()
        try shape._check(bias: "SlidingWindowBias", seqLenQ: seqLenQ, seqLenKV: seqLenKV)
    }
}

extension SlidingWindowBias: _ParameterChecked {
    func _validateParameters() throws {
        try _checkNonNegative(seqLenQ, "SlidingWindowBias", "seqLenQ")
        try _checkNonNegative(seqLenKV, "SlidingWindowBias", "seqLenKV")
        let unbounded: StaticString = "a window size cannot be negative; use nil for an unbounded side"
        try _checkNonNegative(left ?? 0, "SlidingWindowBias", "left", unbounded)
        try _checkNonNegative(right ?? 0, "SlidingWindowBias", "right", unbounded)
    }
}
