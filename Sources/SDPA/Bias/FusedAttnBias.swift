/// A bias that runs inside the fused kernel: describe it element by element, and get the tiled,
/// tile-skipping kernel specialised for it without writing any SIMD code.
///
/// This is FlexAttention's `score_mod` / `mask_mod` / block mask, made static by generics:
/// ``modifyScore(_:batch:head:query:key:)`` changes a visible score, ``isVisible(batch:head:query:key:)``
/// is the mask, and ``tileVisibility(batch:head:queries:keys:)`` lets the kernel skip tiles the mask
/// empties. Everything has a default, so a mask needs only `isVisible` and `materializedShape`:
///
/// ```swift
/// /// Prefix-LM: every query sees the first `prefix` keys (the prompt, bidirectional), and is causal after that.
/// struct PrefixLM: FusedAttnBias {
///     var prefix: Int
///     var seqLen: Int
///
///     static var modifiesScores: Bool { false }
///     var materializedShape: [Int] { [seqLen, seqLen] }
///
///     func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { key < prefix || key <= query }
///
///     func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
///         if keys.upperBound <= prefix { return .full }
///         let causal = TileVisibility.causal(queries: queries, keys: keys, diagonalOffset: 0)
///         // Past the prefix it is plain causal; a tile straddling the prefix is never empty.
///         return keys.lowerBound >= prefix || causal == .full ? causal : .partial
///     }
/// }
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: PrefixLM(prefix: 16, seqLen: L))
/// ```
///
/// Conforming types get `needsMaterialization == false`, a `materialize(device:)` that evaluates the
/// bias on a grid of ``materializedShape`` (`.bool` for pure masks, float32 otherwise), and a `dispatch`
/// that runs the fused kernel (or the math backend, for float64 inputs, a scale float32 cannot hold, or when
/// `withSDPBackends` asks for it), and an ``AttnBias/validate(for:)`` that checks ``materializedShape`` against the inputs.
///
/// Rules: ``tileVisibility(batch:head:queries:keys:)`` may answer `.partial` whenever unsure, but
/// `.empty` and `.full` must be exact; a masked score (`-infinity`) must stay `-infinity` through
/// ``modifyScore(_:batch:head:query:key:)`` and ``apply(toScores:rowStride:batch:head:queries:keys:)``.
///
/// See also: ``FusedAttnBias/combined(with:)``, ``CausalBias``, ``SlidingWindowBias``.
public protocol FusedAttnBias: AttnBias {
    /// The score at `(batch, head, query, key)` of a visible position after the bias; the default
    /// returns it unchanged. Generic so that the `Double` reference path stays exact.
    func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T

    /// Whether `query` may attend to `key`; the default is `true` everywhere.
    func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool

    /// How the tile `queries x keys` looks; the default, `.partial`, is always correct.
    func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility

    /// The derivative of ``modifyScore(_:batch:head:query:key:)`` with respect to the score, at a visible
    /// position: what the backward pass multiplies a score's gradient by. The default is exact for an
    /// additive bias (1) and a central difference in `Double` otherwise (relative error about 1e-10 for
    /// a smooth modifier); a non-additive bias implements it for exactness and speed, as
    /// ``SoftCapBias`` does.
    func modifyScoreDerivative<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T

    /// Whether ``modifyScore(_:batch:head:query:key:)`` changes scores; `false` for pure masks, which then
    /// cost nothing on fully visible tiles. The default is `true`.
    static var modifiesScores: Bool { get }

    /// Whether ``modifyScore(_:batch:head:query:key:)`` only adds a value that depends on the position
    /// (`modifyScore(s) == s + modifyScore(0)`). Additive biases have a materialized float mask; a
    /// non-additive one (soft-capping) has none, and its `materialize(device:)` throws. The default is `true`.
    static var isAdditive: Bool { get }

    /// The shape of the materialized form, broadcastable to `[B, H, L, S]`: `[L, S]` for a bias that is
    /// the same for every batch and head, `[H, L, S]` or `[B, H, L, S]` otherwise.
    var materializedShape: [Int] { get }

    /// Not API, keep the default (`nil`): the packed sequences that cut the problem, which the fused
    /// kernel runs as calls of their own. ``BlockDiagonalBias`` answers itself and ``BiasComposition`` its
    /// first part that answers (a composition masks every position any of its parts masks, so its visible
    /// positions lie inside that part's blocks too). A requirement rather than a cast, so that every fused
    /// call learns it without a conformance lookup.
    var _packedSequences: BlockDiagonalBias? { get }

    /// Applies the bias to a tile of float32 scores in place: `scores[r * rowStride + c]` is query
    /// `queries.lowerBound + r` and key `keys.lowerBound + c`. The default calls ``isVisible(batch:head:query:key:)``
    /// and ``modifyScore(_:batch:head:query:key:)`` per element; override it only to hoist per-row work.
    func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>)

    /// Not API, keep the default: the backward pass's chain rule on a tile. `scores` holds the bias's input
    /// (laid out as in ``apply(toScores:rowStride:batch:head:queries:keys:)``); `gradients` (the same layout) is
    /// multiplied by ``modifyScoreDerivative(_:batch:head:query:key:)`` there (the default skips gradients of 0, a
    /// vectorized override need not), and with `needsOutput` (a part after it reads its output) `scores` is
    /// advanced to the bias's output. The default does it element by element for a non-additive bias, then
    /// ``apply(toScores:rowStride:batch:head:queries:keys:)``; ``BiasComposition`` runs its parts in order, so
    /// each part's tile code does its share (``SoftCapBias`` vectorized, a ``TensorBias`` reading its rows once).
    func _multiplyByScoreDerivative(
        _ gradients: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>, needsOutput: Bool)
}

extension FusedAttnBias {
    /// Element by element for a non-additive bias (its derivative at the input, in `Double`), then, when asked, the
    /// tile advanced by ``apply(toScores:rowStride:batch:head:queries:keys:)``.
    @inlinable
    public func _multiplyByScoreDerivative(
        _ gradients: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>, needsOutput: Bool
    ) {
        if Self.modifiesScores && !Self.isAdditive {
            for (r, i) in queries.enumerated() {
                let (g, s) = (gradients + r * rowStride, scores + r * rowStride)
                for (c, j) in keys.enumerated() where g[c] != 0 {
                    g[c] *= Float(modifyScoreDerivative(Double(s[c]), batch: batch, head: head, query: i, key: j))
                }
            }
        }
        if needsOutput { apply(toScores: scores, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys) }
    }

    /// None: only the library's packed sequences and compositions hold any.
    @inlinable
    public var _packedSequences: BlockDiagonalBias? { nil }

    /// The score unchanged: a pure mask.
    @inlinable
    public func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T { score }

    /// 1 for an additive bias (or a pure mask); otherwise a central difference of
    /// ``modifyScore(_:batch:head:query:key:)`` in `Double`, over a step of about `2⁻¹⁷·max(1, |score|)`.
    @inlinable
    public func modifyScoreDerivative<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        if Self.isAdditive || !Self.modifiesScores { return 1 }
        let s = Double(score), step = 0x1p-17 * Swift.max(1, s.magnitude)
        let (above, below) = (s + step, s - step)
        let rise = modifyScore(above, batch: batch, head: head, query: query, key: key)
            - modifyScore(below, batch: batch, head: head, query: query, key: key)
        return T(rise / (above - below))
    }

    /// Everything visible: a pure score modifier.
    @inlinable
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { true }

    /// `.partial`: always correct, never skips.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility { .partial }

    /// `true`: a type that only masks should say `false`.
    @inlinable
    public static var modifiesScores: Bool { true }

    /// `true`: most score modifiers add a position-dependent value.
    @inlinable
    public static var isAdditive: Bool { true }

    /// `isVisible` and `modifyScore` element by element.
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        for (r, i) in queries.enumerated() {
            let row = scores + r * rowStride
            for (c, j) in keys.enumerated() {
                if !isVisible(batch: batch, head: head, query: i, key: j) {
                    row[c] = -.infinity
                } else if Self.modifiesScores {
                    row[c] = modifyScore(row[c], batch: batch, head: head, query: i, key: j)
                }
            }
        }
    }

    /// `false`: the fused kernel computes the bias.
    public var needsMaterialization: Bool { false }

    /// Checks that ``materializedShape`` broadcasts to the scores of `shape`, as the materialized mask would be
    /// checked: a bias built for other lengths is an error on every route, not only where it is materialized.
    /// A type with parameters of its own overrides this (the built-in biases name the parameter that differs).
    ///
    /// - Throws: ``SDPAError/maskNotBroadcastable(mask:target:)``, or ``SDPAError/rank(argument:shape:expected:)``
    ///   for a shape of more than four dimensions.
    public func validate(for shape: AttentionShape) throws {
        try _checkBroadcastable(materializedShape, to: shape)
    }

    /// The bias evaluated on a grid of ``materializedShape``: `.bool` (visible) for a pure mask,
    /// float32 (the modified zero score, `-inf` where masked) otherwise.
    ///
    /// - Throws: ``SDPAError/invalidArgument(argument:value:reason:)`` for a non-additive bias (``isAdditive``); ``SDPAError/invalidShape(argument:shape:reason:)`` for a shape of rank other than 2–4 or with a
    ///   negative dimension, and whatever ``AttnBias/validate(for:)`` would say of the bias's own parameters.
    public func materialize(device: Device) throws -> Tensor {
        try _validateParameters()
        let shape = materializedShape
        guard (2...4).contains(shape.count) else {
            throw SDPAError.invalidShape(argument: "\(Self.self).materializedShape", shape: shape, reason: "expected [L, S], [H, L, S] or [B, H, L, S]")
        }
        let dtype: DType = Self.modifiesScores ? .float32 : .bool
        try Tensor.validate(shape: shape, argument: "\(Self.self).materializedShape", dtype: dtype)
        guard Self.isAdditive else {
            throw SDPAError.invalidArgument(
                argument: "attnMask", value: "\(Self.self)",
                reason: "this bias changes scores non-additively (e.g. soft-capping), so no mask can stand for it; check it against withSDPBackends([.math]) instead")
        }
        // Each row is the bias's own tile code applied to a row of zero scores, written straight
        // into the tensor's storage: the mask is the only O(L·S) allocation.
        let dims = [Int](repeating: 1, count: 4 - shape.count) + shape
        let (rows, width) = (dims[0] * dims[1] * dims[2], dims[3])
        let result = try Tensor(_zeros: shape, dtype: dtype, argument: "\(Self.self).materialize")
        if rows == 0 { return result }
        try _checkAllocation(byteCount: 4 * width, for: "\(Self.self).materialize (one row of scores)")
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, width))
        defer { scratch.deallocate() }
        for n in 0..<rows {
            let (b, h, i) = (n / (dims[1] * dims[2]), n / dims[2] % dims[1], n % dims[2])
            let row = Self.modifiesScores ? result._storage.bytes.assumingMemoryBound(to: Float.self) + n * width : scratch
            row.update(repeating: 0, count: width)
            apply(toScores: row, rowStride: width, batch: b, head: h, queries: i..<(i + 1), keys: 0..<width)
            if !Self.modifiesScores {
                let bools = result._storage.bytes.assumingMemoryBound(to: UInt8.self) + n * width
                for j in 0..<width { bools[j] = row[j] == -.infinity ? 0 : 1 }
            }
        }
        return result
    }

    /// Checks the bias's own parameters (lengths, windows, …) where it has a check for them.
    func _validateParameters() throws {
        if let checked = self as? any _ParameterChecked { try checked._validateParameters() }
    }

    /// Validates the bias against the inputs and runs the fused kernel specialised for it.
    ///
    /// (Not routed through ``dispatchWithLogSumExp(query:key:value:attnBias:options:)``: on a tiny call,
    /// building and dropping the pair is a measurable share of the dispatch cost.)
    @inlinable
    public static func dispatch(
        query: Tensor, key: Tensor, value: Tensor, attnBias: Self, options: AttentionOptions
    ) throws -> Tensor {
        let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: options.enableGQA)
        try attnBias.validate(for: shape)
        return try _structuredAttention(
            query: query, key: key, value: value, shape: shape, modifier: _FusedBiasKernel(bias: attnBias), options: options,
            logSumExp: false
        ).output
    }

    /// Validates the bias against the inputs and runs the fused kernel specialised for it,
    /// also returning the log-sum-exp.
    @inlinable
    public static func dispatchWithLogSumExp(
        query: Tensor, key: Tensor, value: Tensor, attnBias: Self, options: AttentionOptions
    ) throws -> (output: Tensor, logSumExp: Tensor) {
        let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: options.enableGQA)
        try attnBias.validate(for: shape)
        return try _structuredAttention(
            query: query, key: key, value: value, shape: shape, modifier: _FusedBiasKernel(bias: attnBias), options: options
        ).pair
    }
}
