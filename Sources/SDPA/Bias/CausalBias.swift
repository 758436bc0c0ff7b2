/// A causal mask, upper-left or lower-right aligned, that is never materialized on the fused path.
///
/// With `L = 3` queries and `S = 4` keys (1 = attend):
///
/// ```
/// causalUpperLeft(3, 4)     causalLowerRight(3, 4)
/// [[1, 0, 0, 0],            [[1, 1, 0, 0],
///  [1, 1, 0, 0],             [1, 1, 1, 0],
///  [1, 1, 1, 0]]             [1, 1, 1, 1]]
/// ```
///
/// ```swift
/// // Decode 4 new tokens against a cache of 128 keys.
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(4, 128))
/// ```
///
/// See also: ``CausalVariant``, ``causalUpperLeft(_:_:)``, ``causalLowerRight(_:_:)``.
public struct CausalBias: AttnBias, Hashable {
    /// Which diagonal the mask is aligned to.
    public var variant: CausalVariant
    /// The query sequence length `L` the bias was built for.
    public var seqLenQ: Int
    /// The key/value sequence length `S` the bias was built for.
    public var seqLenKV: Int

    /// A causal bias for `seqLenQ` queries and `seqLenKV` keys. Lower-right with `L > S` is allowed:
    /// its first `L - S` rows are fully masked and give 0.
    public init(variant: CausalVariant, seqLenQ: Int, seqLenKV: Int) {
        self.variant = variant
        self.seqLenQ = seqLenQ
        self.seqLenKV = seqLenKV
    }

    /// Always `false`: the kernels evaluate the mask from indices.
    public var needsMaterialization: Bool { false }

    /// The boolean mask `[L, S]`.
    ///
    /// - Throws: ``SDPAError/invalidArgument(argument:value:reason:)`` for a negative length.
    public func materialize(device: Device) throws -> Tensor {
        try _validateLengths()
        return _materializeBoolMask(seqLenQ: seqLenQ, seqLenKV: seqLenKV)
    }

    /// Checks `seqLenQ == L` and `seqLenKV == S`.
    public func validate(for shape: AttentionShape) throws {
        try _validateLengths()
        try shape._check(bias: "CausalBias", seqLenQ: seqLenQ, seqLenKV: seqLenKV)
    }

    func _validateLengths() throws {
        for (name, n) in [("seqLenQ", seqLenQ), ("seqLenKV", seqLenKV)] where n < 0 {
            throw SDPAError.invalidArgument(argument: "CausalBias.\(name)", value: "\(n)", reason: "a sequence length cannot be negative")
        }
    }

    /// Runs the causal kernel without materializing the mask.
    public static func dispatch(
        query: Tensor, key: Tensor, value: Tensor, attnBias: CausalBias, options: AttentionOptions
    ) throws -> Tensor {
        try dispatchWithLogSumExp(query: query, key: key, value: value, attnBias: attnBias, options: options).output
    }

    /// Runs the fused kernel specialised for this bias, also returning the log-sum-exp.
    public static func dispatchWithLogSumExp(
        query: Tensor, key: Tensor, value: Tensor, attnBias: CausalBias, options: AttentionOptions
    ) throws -> (output: Tensor, logSumExp: Tensor) {
        let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: options.enableGQA)
        try attnBias.validate(for: shape)
        return try _structuredAttention(
            query: query, key: key, value: value, shape: shape, modifier: attnBias, options: options
        ).pair
    }
}

extension CausalBias: _ScoreModifier {
    @inlinable
    func modify<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        key <= query + variant.diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV) ? score : -.infinity
    }

    @inlinable static var changesScores: Bool { false }

    @inlinable
    func classify(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _TileVisibility {
        Self._causalVisibility(queries: queries, keys: keys, offset: variant.diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV))
    }

    @inlinable
    func apply(
        to scores: UnsafeMutablePointer<Float>, stride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        let offset = variant.diagonalOffset(seqLenQ: seqLenQ, seqLenKV: seqLenKV)
        for (r, i) in queries.enumerated() {
            // Keys after i + offset are masked: one contiguous run at the end of the row.
            let firstMasked = Swift.max(0, Swift.min(keys.count, i + offset + 1 - keys.lowerBound))
            (scores + r * stride + firstMasked).update(repeating: -.infinity, count: keys.count - firstMasked)
        }
    }
}

/// An upper-left causal bias, `tril(ones(L, S))`: the same as `isCausal: true`.
///
/// See also: ``CausalBias``.
public func causalUpperLeft(_ seqLenQ: Int, _ seqLenKV: Int) -> CausalBias {
    CausalBias(variant: .upperLeft, seqLenQ: seqLenQ, seqLenKV: seqLenKV)
}

/// A lower-right causal bias, `tril(ones(L, S), diagonal: S - L)`: the last query sees every key.
///
/// See also: ``CausalBias``.
public func causalLowerRight(_ seqLenQ: Int, _ seqLenKV: Int) -> CausalBias {
    CausalBias(variant: .lowerRight, seqLenQ: seqLenQ, seqLenKV: seqLenKV)
}
