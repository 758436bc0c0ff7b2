/// Packed variable-length sequences: queries and keys of several sequences laid end to end in one
/// sequence axis, each query attending only to the keys of its own sequence — xFormers'
/// `BlockDiagonalMask` / `BlockDiagonalCausalMask`, FlashAttention's `cu_seqlens`.
///
/// With query lengths `[2, 3]` and key lengths `[2, 3]` (1 = attend):
///
/// ```
/// causal: nil               causal: .upperLeft
/// [[1, 1, 0, 0, 0],         [[1, 0, 0, 0, 0],
///  [1, 1, 0, 0, 0],          [1, 1, 0, 0, 0],
///  [0, 0, 1, 1, 1],          [0, 0, 1, 0, 0],
///  [0, 0, 1, 1, 1],          [0, 0, 1, 1, 0],
///  [0, 0, 1, 1, 1]]          [0, 0, 1, 1, 1]]
/// ```
///
/// Inside each block the causal variant is aligned as in ``CausalBias`` (lower-right: the last query of
/// a sequence sees all of its keys). An empty sequence is allowed; a block whose queries see no key
/// gives 0. The fused kernel runs the sequences as calls of their own (short ones grouped a query tile at
/// a time) in one parallel job, so the cost is that of the sequences run one by one, and each sequence's
/// rows are those it gets alone; `explainSDPA` says when (`segments`). The same holds when the bias is a
/// part of a ``BiasComposition`` (the other parts keep their positions in the packed axes: ALiBi's
/// distances, a window, key padding) and with dropout (it drops what it drops in the packed problem),
/// forward and backward.
///
/// ```swift
/// let (q, bias) = try BlockDiagonalBias.packing(queries: sequences, causal: .upperLeft)   // [L_i, H, E] each
/// let k = try BlockDiagonalBias.pack(keySequences), v = try BlockDiagonalBias.pack(valueSequences)
/// let outputs = try bias.unpack(scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias))
/// ```
public struct BlockDiagonalBias: FusedAttnBias, Hashable {
    /// The query length of each sequence; they sum to `L`.
    @inlinable public var queryLengths: [Int] { layout.queryLengths }
    /// The key length of each sequence; they sum to `S`.
    @inlinable public var keyLengths: [Int] { layout.keyLengths }
    /// The causal mask inside each block, if any.
    public let causal: CausalVariant?

    /// The lengths and the prefix sums derived from them, in one immutable object: a copy of the bias
    /// (one per call, into the kernel) is then one retain, not four.
    @usableFromInline let layout: _BlockDiagonalLayout

    /// A block-diagonal bias from per-sequence lengths; `keyLengths` defaults to `queryLengths`.
    public init(queryLengths: [Int], keyLengths: [Int]? = nil, causal: CausalVariant? = nil) {
        layout = _BlockDiagonalLayout(queryLengths: queryLengths, keyLengths: keyLengths ?? queryLengths)
        self.causal = causal
    }

    /// Where each sequence's queries and keys start (`count + 1` prefix sums).
    @inlinable var queryStarts: [Int] { layout.queryStarts }
    @inlinable var keyStarts: [Int] { layout.keyStarts }

    /// The sequence holding packed query `i`.
    @inlinable func sequence(ofQuery i: Int) -> Int { _sequence(holding: i, starts: layout.queryStarts) }
    /// The sequence holding packed key `j`.
    @inlinable func sequence(ofKey j: Int) -> Int { _sequence(holding: j, starts: layout.keyStarts) }

    /// Equal when the lengths and the causal variant are (the tables derive from them).
    public static func == (a: BlockDiagonalBias, b: BlockDiagonalBias) -> Bool {
        a.causal == b.causal && a.queryLengths == b.queryLengths && a.keyLengths == b.keyLengths
    }

    /// Hashes what ``==`` compares: the lengths and the causal variant.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(queryLengths)
        hasher.combine(keyLengths)
        hasher.combine(causal)
    }

    /// The packed query length `L`.
    public var seqLenQ: Int { queryStarts.last! }
    /// The packed key length `S`.
    public var seqLenKV: Int { keyStarts.last! }

    /// `[L, S]`.
    public var materializedShape: [Int] { [seqLenQ, seqLenKV] }

    /// A pure mask.
    public static var modifiesScores: Bool { false }

    /// The packed keys query `i` sees: a half-open range inside its own sequence's keys.
    @inlinable
    func visibleKeys(query i: Int) -> Range<Int> { visibleKeys(query: i, inSequence: sequence(ofQuery: i)) }

    /// ``visibleKeys(query:)`` for query `i` of sequence `s`.
    @inlinable
    func visibleKeys(query i: Int, inSequence s: Int) -> Range<Int> {
        let (k0, k1) = (keyStarts[s], keyStarts[s + 1])
        guard let causal else { return k0..<k1 }
        let local = i - queryStarts[s]
        let offset = causal.diagonalOffset(seqLenQ: queryLengths[s], seqLenKV: keyLengths[s])
        return k0..<Swift.max(k0, Swift.min(k1, k0 + local + offset + 1))
    }

    /// Whether `key` lies in `query`'s own sequence (and, if causal, not after its diagonal).
    @inlinable
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool {
        visibleKeys(query: query).contains(key)
    }

    /// Empty off the diagonal blocks; inside one block, full or causal.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        if queries.isEmpty || keys.isEmpty { return .empty }
        let (q0, q1) = (sequence(ofQuery: queries.lowerBound), sequence(ofQuery: queries.upperBound - 1))
        let (k0, k1) = (sequence(ofKey: keys.lowerBound), sequence(ofKey: keys.upperBound - 1))
        if k1 < q0 || k0 > q1 { return .empty }
        guard q0 == q1, k0 == k1 else { return .partial }
        let s = q0
        guard let causal else { return .full }
        let offset = causal.diagonalOffset(seqLenQ: queryLengths[s], seqLenKV: keyLengths[s])
        // The same causal classification, in the sequence's own coordinates.
        return .causal(
            queries: (queries.lowerBound - queryStarts[s])..<(queries.upperBound - queryStarts[s]),
            keys: (keys.lowerBound - keyStarts[s])..<(keys.upperBound - keyStarts[s]), diagonalOffset: offset)
    }

    /// Masks the two runs outside each row's visible keys.
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        guard !queries.isEmpty else { return }
        // One search for the first row; the rows after it move through the sequences in order.
        var s = sequence(ofQuery: queries.lowerBound)
        let starts = queryStarts
        for (r, i) in queries.enumerated() {
            while starts[s + 1] <= i { s += 1 }
            _maskRow(scores + r * rowStride, keys: keys, keeping: visibleKeys(query: i, inSequence: s))
        }
    }

    /// Checks the lengths and that they sum to `L` and `S`.
    public func validate(for shape: AttentionShape) throws {
        try _validateParameters()
        try shape._check(bias: "BlockDiagonalBias", seqLenQ: seqLenQ, seqLenKV: seqLenKV)
    }
}

extension BlockDiagonalBias {
    /// The sequences in consecutive groups, each group's query rows and keys: a sequence starts a new
    /// group unless the group's query rows stay within `groupingRows` with it. Each group is an attention
    /// problem of its own: the fused kernel may run them as separate calls (`_Segmentation`).
    @inlinable
    func segments(groupingRows: Int) -> [(queries: Range<Int>, keys: Range<Int>)] {
        var groups = [(queries: Range<Int>, keys: Range<Int>)]()
        var first = 0
        let count = queryLengths.count
        for s in 0..<count {
            let end = s + 1
            let rows = queryStarts[end] - queryStarts[first]
            let next = end < count ? queryLengths[end] : 0
            // Close the group at the last sequence, or when the next one would not fit beside it.
            if end == count || (rows > 0 && rows + next > groupingRows) {
                groups.append((queryStarts[first]..<queryStarts[end], keyStarts[first]..<keyStarts[end]))
                first = end
            }
        }
        return groups
    }
}

extension BlockDiagonalBias {
    /// Itself: the packed sequences that cut the problem.
    @inlinable
    public var _packedSequences: BlockDiagonalBias? { self }
}

extension BlockDiagonalBias: _ParameterChecked {
    func _validateParameters() throws {
        if let error = layout.parameterError { throw error }
    }
}

/// The sequence whose half-open range `starts[s]..<starts[s + 1]` holds `index` (the last `s` with
/// `starts[s] <= index`, so empty sequences are passed over): a binary search over the prefix sums,
/// which take memory per sequence, not per query or key.
@inlinable
func _sequence(holding index: Int, starts: [Int]) -> Int {
    var (low, high) = (0, starts.count - 1)  // starts[low] <= index < starts[high]
    while high - low > 1 {
        let middle = low + (high - low) / 2
        if starts[middle] <= index { low = middle } else { high = middle }
    }
    return low
}

/// The immutable prefix sums of a ``BlockDiagonalBias``, built once from its lengths.
@usableFromInline
final class _BlockDiagonalLayout: Sendable {
    @usableFromInline let queryLengths: [Int], keyLengths: [Int]
    @usableFromInline let queryStarts: [Int], keyStarts: [Int]
    /// What is wrong with the lengths, if anything: found once here, thrown by every call's `validate`.
    let parameterError: SDPAError?

    init(queryLengths: [Int], keyLengths: [Int]) {
        (self.queryLengths, self.keyLengths) = (queryLengths, keyLengths)
        var error = _BlockDiagonalLayout.check(queryLengths: queryLengths, keyLengths: keyLengths)
        /// Prefix sums, negative lengths counted as 0 and sums saturating at `Int.max` (both are errors).
        func starts(_ lengths: [Int], _ name: String) -> [Int] {
            var sums = [0]
            sums.reserveCapacity(lengths.count + 1)
            for length in lengths {
                let (sum, overflow) = sums.last!.addingReportingOverflow(Swift.max(0, length))
                if overflow, error == nil {
                    error = SDPAError.invalidArgument(
                        argument: "BlockDiagonalBias.\(name)", value: "\(lengths)", reason: "the lengths sum past Int.max")
                }
                sums.append(overflow ? Int.max : sum)
            }
            return sums
        }
        (queryStarts, keyStarts) = (starts(queryLengths, "queryLengths"), starts(keyLengths, "keyLengths"))
        parameterError = error
    }

    private static func check(queryLengths: [Int], keyLengths: [Int]) -> SDPAError? {
        if queryLengths.count != keyLengths.count {
            return SDPAError.invalidArgument(
                argument: "BlockDiagonalBias.keyLengths", value: "\(keyLengths)",
                reason: "there are \(queryLengths.count) query lengths but \(keyLengths.count) key lengths; give one of each per sequence")
        }
        for (lengths, name) in [(queryLengths, "queryLengths"), (keyLengths, "keyLengths")] {
            if let n = lengths.firstIndex(where: { $0 < 0 }) {
                return SDPAError.invalidArgument(
                    argument: "BlockDiagonalBias.\(name)[\(n)]", value: "\(lengths[n])", reason: "a sequence length cannot be negative")
            }
        }
        return nil
    }
}

extension BlockDiagonalBias {
    /// Packs sequences stored `[L_i, H, E]` (the "TND" layout) into one `[1, H, ΣL_i, E]` input.
    ///
    /// The result is a view of one contiguous `[ΣL_i, H, E]` tensor, which the fused kernel reads in place.
    /// - Throws: ``SDPAError`` when the sequences are not rank 3 or disagree on `H`, `E` or dtype.
    public static func pack(_ sequences: [Tensor]) throws -> Tensor {
        for (n, t) in sequences.enumerated() where t.rank != 3 {
            throw SDPAError.rank(argument: "sequences[\(n)]", shape: t.shape, expected: "rank 3 [L_i, H, E]")
        }
        return try Tensor.concatenated(sequences, along: 0).transposed(0, 1)._unsqueezed(at: 0)
    }

    /// Packs query sequences `[L_i, H, E]` and builds the bias for them, with key lengths equal to query
    /// lengths unless `keyLengths` is given.
    public static func packing(
        queries: [Tensor], keyLengths: [Int]? = nil, causal: CausalVariant? = nil
    ) throws -> (query: Tensor, bias: BlockDiagonalBias) {
        let bias = BlockDiagonalBias(queryLengths: queries.map { $0.shape.first ?? 0 }, keyLengths: keyLengths, causal: causal)
        return (try pack(queries), bias)
    }

    /// Splits a packed output `[1, H, L, Ev]` back into one `[L_i, H, Ev]` tensor per sequence.
    ///
    /// - Throws: ``SDPAError/shapeMismatch(argument:shape:other:otherShape:reason:)`` when `output` is not
    ///   `[1, H, L, Ev]` with `L` the packed query length.
    public func unpack(_ output: Tensor) throws -> [Tensor] {
        guard output.rank == 4, output.shape[0] == 1, output.shape[2] == seqLenQ else {
            throw SDPAError.shapeMismatch(
                argument: "output", shape: output.shape, other: "BlockDiagonalBias.queryLengths", otherShape: queryLengths,
                reason: "expected [1, H, \(seqLenQ), Ev]: the packed output of this bias")
        }
        let tnd = try output.sliced(0..<1, along: 0).reshaped(Array(output.shape.dropFirst())).transposed(0, 1)
        return try queryLengths.indices.map {
            try tnd.sliced(queryStarts[$0]..<queryStarts[$0 + 1], along: 0).contiguous()
        }
    }
}
