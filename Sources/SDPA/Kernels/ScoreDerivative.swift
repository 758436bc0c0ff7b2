/// A score modifier the backward pass can differentiate: the derivative of
/// ``_ScoreModifier/biasedScore(_:batch:head:query:key:)`` with respect to the score, at a visible position.
protocol _DifferentiableScoreModifier: _ScoreModifier {
    /// Whether ``scoreDerivative(_:batch:head:query:key:)`` can differ from 1 (a non-additive bias).
    static var hasScoreDerivative: Bool { get }

    /// `d biasedScore(score) / d score` at `(batch, head, query, key)`, `score` the score before the bias.
    func scoreDerivative(_ score: Double, batch: Int, head: Int, query: Int, key: Int) -> Double
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
