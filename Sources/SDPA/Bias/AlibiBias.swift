import Foundation

/// ALiBi (Press et al., "Train Short, Test Long"): a per-head linear penalty on the
/// distance between query and key, optionally causal, computed inside the kernel.
///
/// Bias for head `h`, query `i`, key `j`: `-slopes[h] * |i + offset - j|`, with
/// `offset = 0` for ``CausalVariant/upperLeft`` and `S - L` otherwise (FlashAttention-2's
/// convention). With `L = 3`, `S = 4`, one head of slope 1 (`-inf` = masked):
///
/// ```
/// causal: nil               causal: .lowerRight       causal: .upperLeft
/// [[-1,  0, -1, -2],        [[-1,  0, -inf, -inf],    [[ 0, -inf, -inf, -inf],
///  [-2, -1,  0, -1],         [-2, -1,    0, -inf],     [-1,    0, -inf, -inf],
///  [-3, -2, -1,  0]]         [-3, -2,   -1,    0]]     [-2,   -1,    0, -inf]]
/// ```
///
/// ```swift
/// let bias = AlibiBias(slopes: AlibiBias.standardSlopes(numHeads: 8), seqLenQ: L, seqLenKV: S, causal: .lowerRight)
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
/// ```
///
/// See also: ``standardSlopes(numHeads:)``, ``CausalBias``.
public struct AlibiBias: FusedAttnBias, Hashable {
    /// One slope per query head, in `Double` (PyTorch's float64 references compute them so): the math
    /// backend (float64 inputs, or any under `withSDPBackends([.math])`) takes them as given, as it does the
    /// scale; the fused kernels round them to float32.
    public var slopes: [Double]
    /// The query sequence length `L` the bias was built for.
    public var seqLenQ: Int
    /// The key/value sequence length `S` the bias was built for.
    public var seqLenKV: Int
    /// The causal mask combined with the bias, if any.
    public var causal: CausalVariant?

    /// A bias with explicit per-head slopes.
    public init(slopes: [Double], seqLenQ: Int, seqLenKV: Int, causal: CausalVariant? = nil) {
        self.slopes = slopes
        self.seqLenQ = seqLenQ
        self.seqLenKV = seqLenKV
        self.causal = causal
    }

    /// A bias with explicit per-head slopes of another floating-point type (`[Float]`, say), each taken as the
    /// `Double` nearest to it (exactly, for float32 and the half precisions).
    public init<Slope: BinaryFloatingPoint>(slopes: [Slope], seqLenQ: Int, seqLenKV: Int, causal: CausalVariant? = nil) {
        self.init(slopes: slopes.map { Double($0) }, seqLenQ: seqLenQ, seqLenKV: seqLenKV, causal: causal)
    }

    /// A bias with the paper's slopes for `numHeads` heads.
    public init(numHeads: Int, seqLenQ: Int, seqLenKV: Int, causal: CausalVariant? = nil) {
        self.init(slopes: AlibiBias.standardSlopes(numHeads: numHeads), seqLenQ: seqLenQ, seqLenKV: seqLenKV, causal: causal)
    }

    /// The ALiBi paper's slopes: for a power of two `n`, `2^(-8/n), 2^(-16/n), …`; otherwise the
    /// slopes for the largest power of two `m < n`, followed by every other slope of `2m` heads.
    /// Empty for `numHeads <= 0`.
    ///
    /// ```swift
    /// AlibiBias.standardSlopes(numHeads: 4)   // [0.25, 0.0625, 0.015625, 0.00390625]
    /// ```
    ///
    /// Computed in `Double` (for 12 heads, say, the last four are `2^-0.5, 2^-1.5, …`, which float32 rounds).
    public static func standardSlopes(numHeads: Int) -> [Double] {
        guard numHeads > 0 else { return [] }
        func powerOfTwo(_ n: Int) -> [Double] {
            (1...n).map { Foundation.pow(2, -8 * Double($0) / Double(n)) }
        }
        var closest = 1
        while closest <= numHeads / 2 { closest *= 2 }
        var slopes = powerOfTwo(closest)
        if closest < numHeads {
            let doubled = powerOfTwo(2 * closest)
            slopes += stride(from: 0, to: 2 * (numHeads - closest), by: 2).map { doubled[$0] }
        }
        return slopes
    }

    /// `[H, L, S]`: the materialized form is a float32 mask, `-inf` outside the causal mask.
    public var materializedShape: [Int] { [slopes.count, seqLenQ, seqLenKV] }

    /// Checks one slope per query head, `seqLenQ == L` and `seqLenKV == S`.
    public func validate(for shape: AttentionShape) throws {
        try _validateParameters()
        if slopes.count != shape.queryHeads {
            throw SDPAError.biasMismatch(
                bias: "AlibiBias", parameter: "slopes.count", expected: shape.queryHeads, actual: slopes.count,
                inputs: "one slope per query head; \(shape)")
        }
        try shape._check(bias: "AlibiBias", seqLenQ: seqLenQ, seqLenKV: seqLenKV)
    }
}

extension AlibiBias: _ParameterChecked {
    func _validateParameters() throws {
        try _checkNonNegative(seqLenQ, "AlibiBias", "seqLenQ")
        try _checkNonNegative(seqLenKV, "AlibiBias", "seqLenKV")
        // Finite in float32 too: the float32 and half-precision kernels compute with them rounded.
        if let bad = slopes.firstIndex(where: { !Float($0).isFinite }) {
            throw SDPAError.invalidArgument(argument: "AlibiBias.slopes[\(bad)]", value: "\(slopes[bad])",
                                            reason: "slopes must be finite, and within float32's range (±3.4e38)")
        }
    }
}

extension AlibiBias {
    /// `i + offset` is the key aligned with query `i`.
    @inlinable
    var diagonalOffset: Int { (causal ?? .lowerRight).diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV) }

    /// `score - slopes[head] * |query + offset - key|`.
    @inlinable
    public func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        score - T(slopes[head]) * T((query + diagonalOffset - key).magnitude)
    }

    /// Everything without a causal variant; `key <= query + offset` with one.
    @inlinable
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool {
        causal == nil || key <= query + diagonalOffset
    }

    /// Full without a causal variant; the causal classification with one.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        guard causal != nil else { return queries.isEmpty || keys.isEmpty ? .empty : .full }
        return .causal(queries: queries, keys: keys, diagonalOffset: diagonalOffset)
    }

    /// The bias on the kernel layer's vectors (``modifyScore(_:batch:head:query:key:)``'s bits), `-inf` past the
    /// diagonal with a causal variant.
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride stride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        guard let first = queries.first else { return }
        _alibiTile(scores, rowStride: stride, rows: queries.count, columns: keys.count, slope: Float(slopes[head]),
                   first: first + diagonalOffset - keys.lowerBound, causal: causal != nil)
    }
}
