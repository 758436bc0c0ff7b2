/// A score modifier the backward pass can differentiate: the derivative of
/// ``_ScoreModifier/biasedScore(_:batch:head:query:key:)`` with respect to the score, at a visible position.
protocol _DifferentiableScoreModifier: _ScoreModifier {
    /// Whether ``scoreDerivative(_:batch:head:query:key:)`` can differ from 1 (a non-additive bias).
    static var hasScoreDerivative: Bool { get }

    /// `d biasedScore(score) / d score` at `(batch, head, query, key)`, `score` the score before the bias.
    func scoreDerivative(_ score: Double, batch: Int, head: Int, query: Int, key: Int) -> Double

    /// How a fused backward pass takes the derivative on a tile: computed once per call.
    var scoreDerivativeTile: _ScoreDerivativeTile { get }

    /// Where the call's query row 0 and key 0 lie in the bias's coordinates, at which a trainable part's
    /// gradient is taken: (0, 0) but for a segment of a packed problem.
    var origin: (query: Int, key: Int) { get }

    /// Multiplies a tile of score gradients (`rowStride` apart) by the derivative at the scores before
    /// the bias (`rawScores`, the same stride, which it may overwrite; a gradient of 0 may stay 0 or take the
    /// product, as a vectorized tile does): what
    /// ``_ScoreDerivativeTile/elementwise`` asks for.
    func multiplyByScoreDerivative(
        _ gradients: UnsafeMutablePointer<Float>, rowStride: Int, rawScores: UnsafeMutablePointer<Float>,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>)
}

/// How the fused backward pass multiplies a tile of score gradients by the bias's derivative.
enum _ScoreDerivativeTile: Equatable {
    /// The bias is additive (or a mask): its derivative is 1.
    case none
    /// Soft-capping at `cap` is the bias's one non-additive part and only masks follow it: the
    /// derivative is `1 − (y / cap)²` of the final scores `y`, a vectorized tile (`sdpa_softcap_gradient_tile`).
    case softCap(Float)
    /// From the scores before the bias (``_DifferentiableScoreModifier/multiplyByScoreDerivative(_:rowStride:rawScores:batch:head:queries:keys:)``):
    /// a fused bias part by part on the tile, its parts' tile code advancing the scores.
    case elementwise
}

extension _DifferentiableScoreModifier {
    var scoreDerivativeTile: _ScoreDerivativeTile { Self.hasScoreDerivative ? .elementwise : .none }

    var origin: (query: Int, key: Int) { (0, 0) }

    func multiplyByScoreDerivative(
        _ gradients: UnsafeMutablePointer<Float>, rowStride: Int, rawScores: UnsafeMutablePointer<Float>,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        for (r, i) in queries.enumerated() {
            let (g, s) = (gradients + r * rowStride, rawScores + r * rowStride)
            for (c, j) in keys.enumerated() where g[c] != 0 {
                g[c] *= Float(scoreDerivative(Double(s[c]), batch: batch, head: head, query: i, key: j))
            }
        }
    }
}

/// An additive modifier (a dense mask, or none) as a differentiable one: its derivative is 1.
struct _AdditiveScores<Modifier: _ScoreModifier>: _DifferentiableScoreModifier {
    let modifier: Modifier

    static var hasScoreDerivative: Bool { false }
    static var modifiesScores: Bool { Modifier.modifiesScores }

    func scoreDerivative(_ score: Double, batch: Int, head: Int, query: Int, key: Int) -> Double { 1 }

    func biasedScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        modifier.biasedScore(score, batch: batch, head: head, query: query, key: key)
    }

    var sharesRowsAcrossHeads: Bool { modifier.sharesRowsAcrossHeads }

    func tileMask(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _ScoreTileMask? {
        modifier.tileMask(batch: batch, head: head, queries: queries, keys: keys)
    }

    func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        modifier.tileVisibility(batch: batch, head: head, queries: queries, keys: keys)
    }

    func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        modifier.apply(toScores: scores, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
    }
}
