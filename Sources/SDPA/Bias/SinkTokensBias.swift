/// StreamingLLM's attention sinks as a mask (Xiao et al., "Efficient Streaming Language Models with
/// Attention Sinks"): every query sees the first `sinkTokens` keys and a causal window of the `window`
/// keys before its own position, and nothing else.
///
/// Query `i` stands at position `d = i + offset` (`offset` is `0` for ``CausalVariant/upperLeft``,
/// `S - L` for ``CausalVariant/lowerRight``) and sees key `j` when `j <= d` and (`j < sinkTokens` or
/// `j >= d - window`): the window counts as ``SlidingWindowBias``'s `left`. With `L = S = 7`,
/// `sinkTokens = 2`, `window = 1` (1 = attend):
///
/// ```
/// [[1, 0, 0, 0, 0, 0, 0],
///  [1, 1, 0, 0, 0, 0, 0],
///  [1, 1, 1, 0, 0, 0, 0],
///  [1, 1, 1, 1, 0, 0, 0],
///  [1, 1, 0, 1, 1, 0, 0],
///  [1, 1, 0, 0, 1, 1, 0],
///  [1, 1, 0, 0, 0, 1, 1]]
/// ```
///
/// The fused kernel visits the sink tiles and the band's: the cost grows as `O(L · (sinkTokens + window))`.
/// This is a mask over the sink *tokens*; learned per-head sink *logits* (gpt-oss) are
/// ``AttentionOptions/sinks``.
///
/// ```swift
/// let streaming = SinkTokensBias(sinkTokens: 4, window: 1020, seqLenQ: L, seqLenKV: S)
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: streaming)
/// ```
public struct SinkTokensBias: FusedAttnBias, Hashable {
    /// Keys at the start of the sequence that every query sees (at or before its position).
    public var sinkTokens: Int
    /// Keys before the query's own position that it sees besides the sinks.
    public var window: Int
    /// The query sequence length `L`.
    public var seqLenQ: Int
    /// The key/value sequence length `S`.
    public var seqLenKV: Int
    /// Which diagonal the causal window follows.
    public var alignment: CausalVariant

    /// The first `sinkTokens` keys plus a causal window of `window` keys before each query.
    public init(sinkTokens: Int, window: Int, seqLenQ: Int, seqLenKV: Int, alignment: CausalVariant = .lowerRight) {
        self.sinkTokens = sinkTokens
        self.window = window
        self.seqLenQ = seqLenQ
        self.seqLenKV = seqLenKV
        self.alignment = alignment
    }

    @inlinable var diagonalOffset: Int { alignment.diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV) }

    /// The two runs of keys query `i` sees, half-open (either may be empty, and they may touch or overlap).
    @inlinable
    func visibleKeys(query i: Int) -> (sinks: Range<Int>, window: Range<Int>) {
        let d = i + diagonalOffset
        guard d >= 0 else { return (0..<0, 0..<0) }
        let start = Swift.max(0, d - window)
        return (0..<Swift.min(sinkTokens, d + 1), start..<(d + 1))
    }

    /// `[L, S]`.
    public var materializedShape: [Int] { [seqLenQ, seqLenKV] }

    /// A pure mask.
    public static var modifiesScores: Bool { false }

    /// Whether `key` is a sink or in the window, at or before `query`'s position.
    @inlinable
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool {
        let runs = visibleKeys(query: query)
        return runs.sinks.contains(key) || runs.window.contains(key)
    }

    /// Exact: empty where no row's sinks or window reach the tile, full where each row's visible keys
    /// cover it.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        if queries.isEmpty || keys.isEmpty { return .empty }
        let top = visibleKeys(query: queries.lowerBound), bottom = visibleKeys(query: queries.upperBound - 1)
        // Every run's ends only move right as the query index grows (the window's start from the top row
        // reaches the tile's last key, its end from the bottom row the first).
        let sinksReach = keys.lowerBound < bottom.sinks.upperBound
        let windowReaches = keys.lowerBound < bottom.window.upperBound && keys.upperBound > top.window.lowerBound
        if !sinksReach && !windowReaches { return .empty }
        // A key past the top row's position is masked for it.
        if keys.upperBound > top.window.upperBound { return .partial }
        for i in queries {
            let runs = visibleKeys(query: i)
            // Below every row's position, a row covers the tile unless a gap between its runs meets it.
            let gap = runs.sinks.upperBound..<Swift.max(runs.sinks.upperBound, runs.window.lowerBound)
            if gap.overlaps(keys) { return .partial }
        }
        return .full
    }

    /// Masks the gap between each row's sinks and its window, and the keys after its position.
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        for (r, i) in queries.enumerated() {
            let runs = visibleKeys(query: i), row = scores + r * rowStride
            // The visible keys are 0..<end with the gap taken out.
            let end = Swift.max(runs.sinks.upperBound, runs.window.upperBound)
            _maskRow(row, keys: keys, keeping: 0..<end)
            let gap = runs.sinks.upperBound..<Swift.max(runs.sinks.upperBound, runs.window.lowerBound)
            let from = Swift.max(gap.lowerBound, keys.lowerBound), to = Swift.min(gap.upperBound, keys.upperBound)
            if from < to { (row + (from - keys.lowerBound)).update(repeating: -.infinity, count: to - from) }
        }
    }

    /// Checks the sizes and `seqLenQ == L`, `seqLenKV == S`.
    public func validate(for shape: AttentionShape) throws {
        try _validateParameters()
        try shape._check(bias: "SinkTokensBias", seqLenQ: seqLenQ, seqLenKV: seqLenKV)
    }
}

extension SinkTokensBias: _ParameterChecked {
    func _validateParameters() throws {
        try _checkNonNegative(seqLenQ, "SinkTokensBias", "seqLenQ")
        try _checkNonNegative(seqLenKV, "SinkTokensBias", "seqLenKV")
        try _checkNonNegative(sinkTokens, "SinkTokensBias", "sinkTokens", "a count of sink tokens cannot be negative")
        try _checkNonNegative(window, "SinkTokensBias", "window", "a window size cannot be negative")
    }
}
