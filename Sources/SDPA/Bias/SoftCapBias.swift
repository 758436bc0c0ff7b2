import Foundation

/// Soft-capping (Gemma 2): every visible score becomes `cap * tanh(score / cap)`, bounding the
/// logits to `(-cap, cap)` before the softmax. Combine it with a mask or ALiBi with
/// ``FusedAttnBias/combined(with:)``; masked positions stay masked.
///
/// ```
/// score:      -100   -10    0    10    100      (cap = 50)
/// soft-capped: -48.2  -9.87  0    9.87  48.2
/// ```
///
/// It is not additive, so it has no materialized mask: ``materialize(device:)`` throws, and it is
/// checked against the math backend (`withSDPBackends([.math])`) instead.
///
/// ```swift
/// let gemma = SoftCapBias(cap: 50).combined(with: SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 4096, right: 0))
/// ```
public struct SoftCapBias: FusedAttnBias, Hashable {
    /// The bound on the scores; positive and finite. A `Double`, as PyTorch's and Hugging Face's Python floats: the
    /// math backend (float64 inputs) caps with it as given, the fused kernels take it rounded to `Float` once.
    public var cap: Double

    /// Soft-capping at `cap`.
    public init(cap: Double) { self.cap = cap }

    /// Soft-capping at `cap` of any floating-point type (a `Float` cap, the property's type until 2026-12-07, is
    /// widened exactly).
    @_disfavoredOverload
    public init<Cap: BinaryFloatingPoint>(cap: Cap) { self.init(cap: Double(cap)) }

    /// Not additive: there is no mask for it.
    public static var isAdditive: Bool { false }

    /// `[1, 1]`: the same everywhere.
    public var materializedShape: [Int] { [1, 1] }

    /// `cap * tanh(score / cap)`; `-inf` stays `-inf` so that masks composed before it hold.
    @inlinable
    public func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        if score == -.infinity { return score }
        return T(cap * Foundation.tanh(Double(score) / cap))
    }

    /// `1 − tanh²(score / cap)`, as `1 / cosh²(score / cap)`: no cancellation where the cap saturates.
    @inlinable
    public func modifyScoreDerivative<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        let c = Foundation.cosh(Double(score) / cap)
        return T(1 / (c * c))
    }

    /// Full everywhere.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        queries.isEmpty || keys.isEmpty ? .empty : .full
    }

    /// `cap * tanh(score / cap)` in `Float` with the kernel layer's vectorized soft-capping (a few
    /// ulp), skipping masked scores.
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        if queries.isEmpty || keys.isEmpty { return }
        _softCapTile(scores, rowStride: rowStride, rows: queries.count, columns: keys.count, cap: Float(cap))
    }

    /// The capped scores by the vectorized tile, then `1 − (y / cap)²` of them, vectorized too (0 where masked).
    @inlinable
    public func _multiplyByScoreDerivative(
        _ gradients: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>, needsOutput: Bool
    ) {
        if queries.isEmpty || keys.isEmpty { return }
        _softCapTile(scores, rowStride: rowStride, rows: queries.count, columns: keys.count, cap: Float(cap))
        _softCapGradientTile(gradients, rowStride: rowStride, cappedScores: scores, rows: queries.count, columns: keys.count, cap: Float(cap))
    }

    /// Checks that `cap` is positive and finite, and a positive finite `Float` too (the fused kernels' cap).
    public func validate(for shape: AttentionShape) throws { try _validateParameters() }
}

extension SoftCapBias: _ParameterChecked {
    func _validateParameters() throws {
        guard cap > 0, cap.isFinite else {
            throw SDPAError.invalidArgument(argument: "SoftCapBias.cap", value: "\(cap)", reason: "the cap must be positive and finite")
        }
        guard Float(cap) > 0, Float(cap).isFinite else {
            throw SDPAError.invalidArgument(argument: "SoftCapBias.cap", value: "\(cap)",
                                            reason: "the cap must be within float32's range (the fused kernels cap in float32)")
        }
    }
}
