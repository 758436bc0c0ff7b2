/// The kernels' view of a ``FusedAttnBias``: its own tile classifier and applier, and its
/// visibility and score modifier as one biased score (masked = `-infinity`), specialised per bias type.
///
/// A segment of a packed problem (`_Segmentation`) runs as a call of its own, its rows and keys counted
/// from 0; its kernel is the whole problem's bias seen from the segment's `origin`, so every position gets
/// the bias (and the visibility) it has in the whole problem, whatever the bias is made of.
@usableFromInline
struct _FusedBiasKernel<Bias: FusedAttnBias>: _ScoreModifier {
    @usableFromInline let bias: Bias
    /// The bias again when its partial tiles are a dense mask (`_TileMaskedBias`): cast once per call, not per tile.
    @usableFromInline let tileMasked: (any _TileMaskedBias)?
    /// Where the call's query row 0 and key 0 are in the bias's coordinates: (0, 0) but for a segment.
    @usableFromInline let origin: (query: Int, key: Int)

    @inlinable init(bias: Bias) {
        // Cast to the protocol's one conformer, not to the protocol: a cast to a concrete type folds away
        // once `Bias` is known, where a conformance lookup cost a tiny call about 50 ns (RFC.md, metrics).
        self.init(bias: bias, tileMasked: (bias as? CausalBias).map { $0 as any _TileMaskedBias }, origin: (0, 0))
    }

    @inlinable init(bias: Bias, tileMasked: (any _TileMaskedBias)?, origin: (query: Int, key: Int)) {
        (self.bias, self.tileMasked, self.origin) = (bias, tileMasked, origin)
    }

    /// The same bias for the call whose query row 0 and key 0 are this call's `queries` and `keys`.
    @inlinable
    func segment(queries: Int, keys: Int) -> Self {
        Self(bias: bias, tileMasked: tileMasked, origin: (origin.query + queries, origin.key + keys))
    }

    /// `queries` and `keys` in the bias's coordinates.
    @inlinable @inline(__always)
    func placed(_ queries: Range<Int>, _ keys: Range<Int>) -> (queries: Range<Int>, keys: Range<Int>) {
        (queries.shifted(by: origin.query), keys.shifted(by: origin.key))
    }

    @inlinable @inline(__always)
    func biasedScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        let (i, j) = (query + origin.query, key + origin.key)
        guard bias.isVisible(batch: batch, head: head, query: i, key: j) else { return -.infinity }
        return Bias.modifiesScores ? bias.modifyScore(score, batch: batch, head: head, query: i, key: j) : score
    }

    @inlinable static var modifiesScores: Bool { Bias.modifiesScores }

    @inlinable @inline(__always)
    func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        let tile = placed(queries, keys)
        return bias.tileVisibility(batch: batch, head: head, queries: tile.queries, keys: tile.keys)
    }

    @inlinable @inline(__always)
    func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        let tile = placed(queries, keys)
        bias.apply(toScores: scores, rowStride: rowStride, batch: batch, head: head, queries: tile.queries, keys: tile.keys)
    }

    @inlinable @inline(__always)
    func tileMask(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _ScoreTileMask? {
        guard let tileMasked else { return nil }
        let tile = placed(queries, keys)
        return tileMasked.tileMask(batch: batch, head: head, queries: tile.queries, keys: tile.keys)
    }

    /// Packed sequences (``BlockDiagonalBias``, alone or as a part of a composition) cut the problem; no
    /// other bias does. Each segment's kernel is this one seen from the segment's first row and key.
    @inlinable
    func segments(groupingRows: @autoclosure () -> Int) -> [_Segment<Self>]? {
        guard let packed = bias._packedSequences else { return nil }
        return packed.segments(groupingRows: groupingRows()).map {
            _Segment(queries: $0.queries, keys: $0.keys, modifier: segment(queries: $0.queries.lowerBound, keys: $0.keys.lowerBound))
        }
    }
}

/// A built-in bias whose partial tiles are nothing more than a dense mask the kernels read in place
/// (``CausalBias``: a diagonal): such a tile is masked in the `Q·Kᵀ` registers as it is stored, and its
/// key step runs in one kernel call, instead of the bias's tile code on the stored scores. Its only
/// conformer is ``CausalBias`` (`_FusedBiasKernel.init(bias:)` casts to it by name).
@usableFromInline
protocol _TileMaskedBias: FusedAttnBias {
    /// The tile as a dense mask (see `_ScoreModifier.tileMask`), or `nil` to run ``apply(toScores:rowStride:batch:head:queries:keys:)``.
    func tileMask(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _ScoreTileMask?
}

/// The backward kernels' view: the bias's own derivative where it changes scores non-additively.
extension _FusedBiasKernel: _DifferentiableScoreModifier {
    static var hasScoreDerivative: Bool { Bias.modifiesScores && !Bias.isAdditive }

    func scoreDerivative(_ score: Double, batch: Int, head: Int, query: Int, key: Int) -> Double {
        bias.modifyScoreDerivative(score, batch: batch, head: head, query: query + origin.query, key: key + origin.key)
    }

    /// The bias's own tile chain rule (``FusedAttnBias/_multiplyByScoreDerivative(_:scores:rowStride:batch:head:queries:keys:)``):
    /// each part's tile code advances the raw scores in place, the non-additive parts' derivatives taken on the way.
    func multiplyByScoreDerivative(
        _ gradients: UnsafeMutablePointer<Float>, rowStride: Int, rawScores: UnsafeMutablePointer<Float>,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        bias._multiplyByScoreDerivative(gradients, scores: rawScores, rowStride: rowStride, batch: batch, head: head,
                                        queries: queries.shifted(by: origin.query), keys: keys.shifted(by: origin.key), needsOutput: false)
    }

    /// Soft-capping read off the final scores when it is the bias's last score modifier and every part
    /// before it is additive (Gemma 2's soft-cap, composed with masks or ALiBi); element by element
    /// otherwise.
    var scoreDerivativeTile: _ScoreDerivativeTile {
        guard Self.hasScoreDerivative else { return .none }
        let parts = _parts(of: bias)
        guard let last = parts.lastIndex(where: { type(of: $0).modifiesScores }), let cap = (parts[last] as? SoftCapBias)?.cap,
              parts[..<last].allSatisfy(\.isAdditivePart) else { return .elementwise }
        return .softCap(Float(cap))
    }
}
