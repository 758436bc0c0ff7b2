/// Two fused biases applied together, as one bias that runs as a single fused-kernel instantiation.
///
/// A position is visible when both parts see it; visible scores go through `first`'s modifier, then
/// `second`'s; a tile is skipped when either part would skip it, and is free of mask work only when
/// both parts find it fully visible. Compositions nest, so any number of parts combine:
///
/// ```swift
/// // ALiBi + a 4096-key sliding window + lower-right causal, as in long-context models:
/// let bias = AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S)
///     .combined(with: SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 4096, right: 0))
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
/// ```
///
/// Order matters only between score modifiers (soft-capping then ALiBi is not ALiBi then soft-capping);
/// masks commute.
public struct BiasComposition<First: FusedAttnBias, Second: FusedAttnBias>: FusedAttnBias {
    /// The part applied first.
    public var first: First
    /// The part applied second.
    public var second: Second

    /// `first` and `second` applied together.
    public init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }

    /// Whether either part modifies scores.
    public static var modifiesScores: Bool { First.modifiesScores || Second.modifiesScores }

    /// Whether both parts are additive.
    public static var isAdditive: Bool { First.isAdditive && Second.isAdditive }

    /// The broadcast of the parts' shapes.
    public var materializedShape: [Int] {
        let (a, b) = (first.materializedShape, second.materializedShape)
        let rank = Swift.max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a, pb = [Int](repeating: 1, count: rank - b.count) + b
        return zip(pa, pb).map { $0 == 1 ? $1 : $0 }
    }

    /// `second`'s modifier applied to `first`'s.
    @inlinable
    public func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        var s = score
        if First.modifiesScores { s = first.modifyScore(s, batch: batch, head: head, query: query, key: key) }
        if Second.modifiesScores { s = second.modifyScore(s, batch: batch, head: head, query: query, key: key) }
        return s
    }

    /// The chain rule through the parts: `second′(first(score)) · first′(score)`; 1 when both are additive.
    @inlinable
    public func modifyScoreDerivative<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        if Self.isAdditive { return 1 }
        var (s, derivative) = (score, T(1))
        if First.modifiesScores {
            derivative = first.modifyScoreDerivative(s, batch: batch, head: head, query: query, key: key)
            s = first.modifyScore(s, batch: batch, head: head, query: query, key: key)
        }
        if Second.modifiesScores { derivative *= second.modifyScoreDerivative(s, batch: batch, head: head, query: query, key: key) }
        return derivative
    }

    /// Visible when both parts see the position.
    @inlinable
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool {
        first.isVisible(batch: batch, head: head, query: query, key: key)
            && second.isVisible(batch: batch, head: head, query: query, key: key)
    }

    /// The intersection of the parts' classifications.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        let a = first.tileVisibility(batch: batch, head: head, queries: queries, keys: keys)
        if a == .empty { return .empty }
        return a.intersected(with: second.tileVisibility(batch: batch, head: head, queries: queries, keys: keys))
    }

    /// Each part's own tile code in turn (masked scores stay `-inf` through both).
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        first.apply(toScores: scores, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
        second.apply(toScores: scores, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
    }

    /// The chain rule part by part: `first`'s derivative at the input, the tile advanced through `first` (when
    /// `second` reads it), then `second`'s, each by its own tile code.
    @inlinable
    public func _multiplyByScoreDerivative(
        _ gradients: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>, needsOutput: Bool
    ) {
        // `second` reads its input when some part of it is not additive, or when its own output is needed.
        first._multiplyByScoreDerivative(gradients, scores: scores, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys,
                                         needsOutput: needsOutput || (Second.modifiesScores && !Second.isAdditive))
        second._multiplyByScoreDerivative(gradients, scores: scores, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys,
                                          needsOutput: needsOutput)
    }

    /// Both parts' checks.
    public func validate(for shape: AttentionShape) throws {
        try first.validate(for: shape)
        try second.validate(for: shape)
    }
}

extension BiasComposition: _ParameterChecked {
    /// Both parts' checks, and that each part's shape broadcasts to the whole: ``materializedShape`` takes each
    /// dimension from the first part that is not 1, and a mask part of another shape would be read out of its bounds.
    func _validateParameters() throws {
        try first._validateParameters()
        try second._validateParameters()
        let whole = materializedShape
        for own in [first.materializedShape, second.materializedShape] {
            let aligned = [Int](repeating: 1, count: Swift.max(0, whole.count - own.count)) + own
            guard own.count <= whole.count, zip(aligned, whole).allSatisfy({ $0 == 1 || $0 == $1 }) else {
                throw SDPAError.maskNotBroadcastable(mask: own, target: whole)
            }
        }
    }
}

extension BiasComposition: Equatable where First: Equatable, Second: Equatable {}
extension BiasComposition: Hashable where First: Hashable, Second: Hashable {}

extension FusedAttnBias {
    /// This bias and `other` applied together, fused into one kernel instantiation.
    ///
    /// ```swift
    /// let bias = causalLowerRight(L, S).combined(with: KeyPaddingBias(validKeyLengths: lengths, seqLenKV: S))
    /// ```
    /// See also: ``BiasComposition``.
    public func combined<Other: FusedAttnBias>(with other: Other) -> BiasComposition<Self, Other> {
        BiasComposition(self, other)
    }
}
