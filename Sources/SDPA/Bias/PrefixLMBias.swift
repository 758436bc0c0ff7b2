/// Prefix-LM attention (T5's prefix LM, UniLM, PaliGemma): batch `b`'s first `prefixLengths[b]` keys
/// are seen by every query, bidirectionally within the prefix; after it attention is causal.
///
/// Query `i` stands at position `d = i + offset` (`offset` is `0` for ``CausalVariant/upperLeft``,
/// `S - L` for ``CausalVariant/lowerRight``, as in ``CausalBias``) and sees key `j` when
/// `j < prefixLengths[b]` or `j <= d`. With `L = S = 5` and prefix lengths `[3, 0]` (1 = attend):
///
/// ```
/// batch 0 (prefix 3)       batch 1 (prefix 0: plain causal)
/// [[1, 1, 1, 0, 0],        [[1, 0, 0, 0, 0],
///  [1, 1, 1, 0, 0],         [1, 1, 0, 0, 0],
///  [1, 1, 1, 0, 0],         [1, 1, 1, 0, 0],
///  [1, 1, 1, 1, 0],         [1, 1, 1, 1, 0],
///  [1, 1, 1, 1, 1]]         [1, 1, 1, 1, 1]]
/// ```
///
/// Each row sees a run of keys from 0, so the fused kernel skips every tile past the longer of the
/// prefix and the causal diagonal.
///
/// ```swift
/// let bias = PrefixLMBias(prefixLengths: [37, 120], seqLenQ: L, seqLenKV: S)   // one prefix per batch entry
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
/// ```
public struct PrefixLMBias: FusedAttnBias, Hashable {
    /// The prefix length of each batch entry, each in `0...seqLenKV`.
    public var prefixLengths: [Int]
    /// The query sequence length `L`.
    public var seqLenQ: Int
    /// The key/value sequence length `S`.
    public var seqLenKV: Int
    /// Which diagonal the causal part follows.
    public var alignment: CausalVariant

    /// A prefix-LM mask with one prefix length per batch entry.
    public init(prefixLengths: [Int], seqLenQ: Int, seqLenKV: Int, alignment: CausalVariant = .lowerRight) {
        self.prefixLengths = prefixLengths
        self.seqLenQ = seqLenQ
        self.seqLenKV = seqLenKV
        self.alignment = alignment
    }

    @inlinable var diagonalOffset: Int { alignment.diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV) }

    /// How many keys, from 0, query `i` of batch `b` sees: the prefix, or up to its own position.
    @inlinable
    func visibleCount(batch b: Int, query i: Int) -> Int {
        Swift.max(prefixLengths[b], i + diagonalOffset + 1)
    }

    /// `[B, 1, L, S]`.
    public var materializedShape: [Int] { [prefixLengths.count, 1, seqLenQ, seqLenKV] }

    /// A pure mask.
    public static var modifiesScores: Bool { false }

    /// `key < prefixLengths[batch] || key <= query + offset`.
    @inlinable
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool {
        key < visibleCount(batch: batch, query: query)
    }

    /// Exact: empty past the last row's visible run, full inside the first row's.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        if queries.isEmpty || keys.isEmpty { return .empty }
        // The visible run only grows with the query index.
        if keys.lowerBound >= visibleCount(batch: batch, query: queries.upperBound - 1) { return .empty }
        return keys.upperBound <= visibleCount(batch: batch, query: queries.lowerBound) ? .full : .partial
    }

    /// Masks the run after each row's visible keys.
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        for (r, i) in queries.enumerated() {
            _maskRow(scores + r * rowStride, keys: keys, keeping: 0..<visibleCount(batch: batch, query: i))
        }
    }

    /// Checks one prefix length per batch entry, each in `0...S`, and `seqLenQ == L`, `seqLenKV == S`.
    public func validate(for shape: AttentionShape) throws {
        try _validateParameters()
        if prefixLengths.count != shape.batch {
            throw SDPAError.biasMismatch(
                bias: "PrefixLMBias", parameter: "prefixLengths.count", expected: shape.batch,
                actual: prefixLengths.count, inputs: "one prefix length per batch entry; \(shape)")
        }
        try shape._check(bias: "PrefixLMBias", seqLenQ: seqLenQ, seqLenKV: seqLenKV)
    }
}

extension PrefixLMBias: _ParameterChecked {
    func _validateParameters() throws {
        try _checkNonNegative(seqLenQ, "PrefixLMBias", "seqLenQ")
        try _checkNonNegative(seqLenKV, "PrefixLMBias", "seqLenKV")
        if let b = prefixLengths.firstIndex(where: { $0 < 0 || $0 > seqLenKV }) {
            throw SDPAError.invalidArgument(
                argument: "PrefixLMBias.prefixLengths[\(b)]", value: "\(prefixLengths[b])",
                reason: "a prefix length must be in 0...\(seqLenKV) (seqLenKV)")
        }
    }
}
