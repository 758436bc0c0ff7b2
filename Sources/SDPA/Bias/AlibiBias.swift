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
public struct AlibiBias: AttnBias, Hashable {
    /// One slope per query head.
    public var slopes: [Float]
    /// The query sequence length `L` the bias was built for.
    public var seqLenQ: Int
    /// The key/value sequence length `S` the bias was built for.
    public var seqLenKV: Int
    /// The causal mask combined with the bias, if any.
    public var causal: CausalVariant?

    /// A bias with explicit per-head slopes.
    public init(slopes: [Float], seqLenQ: Int, seqLenKV: Int, causal: CausalVariant? = nil) {
        self.slopes = slopes
        self.seqLenQ = seqLenQ
        self.seqLenKV = seqLenKV
        self.causal = causal
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
    public static func standardSlopes(numHeads: Int) -> [Float] {
        guard numHeads > 0 else { return [] }
        func powerOfTwo(_ n: Int) -> [Double] {
            (1...n).map { Foundation.pow(2, -8 * Double($0) / Double(n)) }
        }
        var closest = 1
        while closest * 2 <= numHeads { closest *= 2 }
        var slopes = powerOfTwo(closest)
        if closest < numHeads {
            slopes += Array(stride(from: 0, to: 2 * closest, by: 2).map { powerOfTwo(2 * closest)[$0] }.prefix(numHeads - closest))
        }
        return slopes.map { Float($0) }
    }

    /// Always `false`: the kernels compute the bias from the slopes.
    public var needsMaterialization: Bool { false }

    /// The additive float32 mask `[H, L, S]` (`-inf` outside the causal mask).
    ///
    /// - Throws: ``SDPAError/invalidArgument(argument:value:reason:)`` for a negative length or a non-finite slope.
    public func materialize(device: Device) throws -> Tensor {
        try _validateParameters()
        return _materializeAdditiveMask(heads: slopes.count, seqLenQ: seqLenQ, seqLenKV: seqLenKV)
    }

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

    func _validateParameters() throws {
        for (name, n) in [("seqLenQ", seqLenQ), ("seqLenKV", seqLenKV)] where n < 0 {
            throw SDPAError.invalidArgument(argument: "AlibiBias.\(name)", value: "\(n)", reason: "a sequence length cannot be negative")
        }
        if let bad = slopes.firstIndex(where: { !$0.isFinite }) {
            throw SDPAError.invalidArgument(argument: "AlibiBias.slopes[\(bad)]", value: "\(slopes[bad])", reason: "slopes must be finite")
        }
    }

    /// Runs the ALiBi kernel, computing the bias from the slopes.
    public static func dispatch(
        query: Tensor, key: Tensor, value: Tensor, attnBias: AlibiBias, options: AttentionOptions
    ) throws -> Tensor {
        try dispatchWithLogSumExp(query: query, key: key, value: value, attnBias: attnBias, options: options).output
    }

    /// Runs the fused kernel specialised for this bias, also returning the log-sum-exp.
    public static func dispatchWithLogSumExp(
        query: Tensor, key: Tensor, value: Tensor, attnBias: AlibiBias, options: AttentionOptions
    ) throws -> (output: Tensor, logSumExp: Tensor) {
        let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: options.enableGQA)
        try attnBias.validate(for: shape)
        return try _structuredAttention(
            query: query, key: key, value: value, shape: shape, modifier: attnBias, options: options
        ).pair
    }
}

extension AlibiBias: _ScoreModifier {
    @inlinable
    func modify<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        let offset = (causal ?? .lowerRight).diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV)
        let distance = query + offset - key
        if causal != nil && distance < 0 { return -.infinity }
        return score - T(slopes[head]) * T(distance.magnitude)
    }

    @inlinable
    func classify(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _TileVisibility {
        guard let causal else { return queries.isEmpty || keys.isEmpty ? .empty : .full }
        return Self._causalVisibility(queries: queries, keys: keys, offset: causal.diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV))
    }

    @inlinable
    func apply(
        to scores: UnsafeMutablePointer<Float>, stride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        let offset = (causal ?? .lowerRight).diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV)
        let slope = SIMD8<Float>(repeating: slopes[head])
        let masks = causal != nil
        let lanes = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
        let n = keys.count, vectorEnd = n / 8 * 8
        for (r, i) in queries.enumerated() {
            let row = scores + r * stride
            // distance(c) = i + offset - j = first - c; exact in Float for any realistic length.
            let first = Float(i + offset - keys.lowerBound)
            var c = 0
            while c < vectorEnd {
                let distance = SIMD8<Float>(repeating: first - Float(c)) - lanes
                let magnitude = distance.replacing(with: -distance, where: distance .< 0)
                var x = UnsafeRawPointer(row + c).loadUnaligned(as: SIMD8<Float>.self)
                x = x - slope * magnitude
                if masks { x.replace(with: -.infinity, where: distance .< 0) }
                UnsafeMutableRawPointer(row + c).storeBytes(of: x, as: SIMD8<Float>.self)
                c += 8
            }
            while c < n {
                let distance = first - Float(c)
                row[c] = masks && distance < 0 ? -.infinity : row[c] - slope[0] * Swift.abs(distance)
                c += 1
            }
        }
    }
}
