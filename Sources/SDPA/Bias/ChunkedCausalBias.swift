/// Chunked local attention (Llama 4's local layers): the sequence is cut into chunks of `chunkSize`
/// positions, and each query attends causally to the keys of its own chunk only.
///
/// Query `i` stands at position `d = i + offset` (`offset` is `0` for ``CausalVariant/upperLeft``,
/// `S - L` for ``CausalVariant/lowerRight``, as in ``CausalBias``) and sees key `j` when `j <= d` and
/// `j / chunkSize == d / chunkSize`. With `L = S = 6`, `chunkSize = 3` (1 = attend):
///
/// ```
/// [[1, 0, 0, 0, 0, 0],
///  [1, 1, 0, 0, 0, 0],
///  [1, 1, 1, 0, 0, 0],
///  [0, 0, 0, 1, 0, 0],
///  [0, 0, 0, 1, 1, 0],
///  [0, 0, 0, 1, 1, 1]]
/// ```
///
/// Chunk boundaries are positions, so decoding with the lower-right alignment (the new tokens are the
/// last `L` of `S`) cuts the cache where a full prefill would. The fused kernel visits only the tiles
/// of the diagonal chunks: the cost grows as `O(L · chunkSize)`.
///
/// ```swift
/// let local = ChunkedCausalBias(seqLenQ: L, seqLenKV: S, chunkSize: 8192)
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: local)
/// ```
///
/// See also: ``SlidingWindowBias`` for a window that slides with the query instead.
public struct ChunkedCausalBias: FusedAttnBias, Hashable {
    /// The query sequence length `L`.
    public var seqLenQ: Int
    /// The key/value sequence length `S`.
    public var seqLenKV: Int
    /// Positions per chunk; at least 1.
    public var chunkSize: Int
    /// Which diagonal the causal mask follows, and so where query positions start.
    public var alignment: CausalVariant

    /// Causal attention within chunks of `chunkSize` positions.
    public init(seqLenQ: Int, seqLenKV: Int, chunkSize: Int, alignment: CausalVariant = .lowerRight) {
        self.seqLenQ = seqLenQ
        self.seqLenKV = seqLenKV
        self.chunkSize = chunkSize
        self.alignment = alignment
    }

    @inlinable var diagonalOffset: Int { alignment.diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV) }

    /// The keys query `i` sees, half-open: from the start of its chunk to its own position (empty when
    /// its position is negative, lower-right with `L > S`).
    @inlinable
    func visibleKeys(query i: Int) -> Range<Int> {
        let d = i + diagonalOffset
        guard d >= 0 else { return 0..<0 }
        return (d - d % chunkSize)..<(d + 1)
    }

    /// `[L, S]`.
    public var materializedShape: [Int] { [seqLenQ, seqLenKV] }

    /// A pure mask.
    public static var modifiesScores: Bool { false }

    /// Whether `key` is at or before `query`'s position, in its chunk.
    @inlinable
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool {
        visibleKeys(query: query).contains(key)
    }

    /// Exact: empty off the diagonal chunks and above the diagonal, full where every query of the tile
    /// sees every key of it.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        if queries.isEmpty || keys.isEmpty { return .empty }
        // Both ends of a row's visible range only move right as the query index grows, so the tile is
        // empty when the first row that reaches `keys` (by its end) starts (its chunk) after them.
        let first = Swift.max(queries.lowerBound, keys.lowerBound - diagonalOffset)
        if first >= queries.upperBound || visibleKeys(query: first).lowerBound >= keys.upperBound { return .empty }
        let top = visibleKeys(query: queries.lowerBound), bottom = visibleKeys(query: queries.upperBound - 1)
        if keys.upperBound <= top.upperBound && keys.lowerBound >= bottom.lowerBound { return .full }
        return .partial
    }

    /// Masks what lies outside each row's chunk: two runs per row.
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        _maskRows(scores, rowStride: rowStride, queries: queries, keys: keys, keeping: visibleKeys(query:))
    }

    /// Checks the chunk size and `seqLenQ == L`, `seqLenKV == S`.
    public func validate(for shape: AttentionShape) throws {
        try _validateParameters()
        try shape._check(bias: "ChunkedCausalBias", seqLenQ: seqLenQ, seqLenKV: seqLenKV)
    }
}

extension ChunkedCausalBias: _ParameterChecked {
    func _validateParameters() throws {
        try _checkNonNegative(seqLenQ, "ChunkedCausalBias", "seqLenQ")
        try _checkNonNegative(seqLenKV, "ChunkedCausalBias", "seqLenKV")
        if chunkSize < 1 {
            throw SDPAError.invalidArgument(argument: "ChunkedCausalBias.chunkSize", value: "\(chunkSize)", reason: "a chunk holds at least one position")
        }
    }
}
