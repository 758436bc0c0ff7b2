/// The kernels' view of a ``FusedAttnBias``: its own tile classifier and applier, and its
/// visibility and score modifier as one biased score (masked = `-infinity`), specialised per bias type.
@usableFromInline
struct _FusedBiasKernel<Bias: FusedAttnBias>: _ScoreModifier {
    @usableFromInline let bias: Bias
    /// The bias again when its partial tiles are a dense mask (`_TileMaskedBias`): cast once per call, not per tile.
    @usableFromInline let tileMasked: (any _TileMaskedBias)?

    @inlinable init(bias: Bias) {
        self.bias = bias
        tileMasked = bias as? any _TileMaskedBias
    }

    @inlinable @inline(__always)
    func biasedScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        guard bias.isVisible(batch: batch, head: head, query: query, key: key) else { return -.infinity }
        return Bias.modifiesScores ? bias.modifyScore(score, batch: batch, head: head, query: query, key: key) : score
    }

    @inlinable static var modifiesScores: Bool { Bias.modifiesScores }

    @inlinable @inline(__always)
    func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        bias.tileVisibility(batch: batch, head: head, queries: queries, keys: keys)
    }

    @inlinable @inline(__always)
    func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        bias.apply(toScores: scores, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
    }

    @inlinable @inline(__always)
    func tileMask(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _ScoreTileMask? {
        tileMasked?.tileMask(batch: batch, head: head, queries: queries, keys: keys)
    }

    /// Packed sequences (``BlockDiagonalBias``) cut the problem; no other bias does.
    @inlinable
    func segments(groupingRows: @autoclosure () -> Int) -> [_Segment<Self>]? {
        guard let packed = bias as? BlockDiagonalBias else { return nil }
        return packed.segments(groupingRows: groupingRows()).map {
            _Segment(queries: $0.queries, keys: $0.keys, modifier: _FusedBiasKernel(bias: $0.bias as! Bias))
        }
    }
}

/// A built-in bias whose partial tiles are nothing more than a dense mask the kernels read in place
/// (``CausalBias``: a diagonal): such a tile is masked in the `Q·Kᵀ` registers as it is stored, and its
/// key step runs in one kernel call, instead of the bias's tile code on the stored scores.
@usableFromInline
protocol _TileMaskedBias: FusedAttnBias {
    /// The tile as a dense mask (see `_ScoreModifier.tileMask`), or `nil` to run ``apply(toScores:rowStride:batch:head:queries:keys:)``.
    func tileMask(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _ScoreTileMask?
}

/// The backward kernels' view: the bias's own derivative where it changes scores non-additively.
extension _FusedBiasKernel: _DifferentiableScoreModifier {
    static var hasScoreDerivative: Bool { Bias.modifiesScores && !Bias.isAdditive }

    func scoreDerivative(_ score: Double, batch: Int, head: Int, query: Int, key: Int) -> Double {
        bias.modifyScoreDerivative(score, batch: batch, head: head, query: query, key: key)
    }

    /// Soft-capping read off the final scores when it is the bias's last score modifier and every part
    /// before it is additive (Gemma 2's soft-cap, composed with masks or ALiBi); element by element
    /// otherwise.
    var scoreDerivativeTile: _ScoreDerivativeTile {
        guard Self.hasScoreDerivative else { return .none }
        let parts = _parts(of: bias)
        guard let last = parts.lastIndex(where: { type(of: $0).modifiesScores }), let cap = (parts[last] as? SoftCapBias)?.cap,
              parts[..<last].allSatisfy(\.isAdditivePart) else { return .elementwise }
        return .softCap(cap)
    }
}
