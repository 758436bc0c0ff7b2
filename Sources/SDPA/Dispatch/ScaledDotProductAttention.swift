/// Scaled dot-product attention with no mask, or PyTorch's `is_causal` (upper-left) mask.
///
/// `softmax(Q Kᵀ · scale + bias) V`, row by row over the key axis, with `scale = 1 / sqrt(E)` unless given.
///
/// | argument | shape |
/// |---|---|
/// | query | `[B, H, L, E]` or `[H, L, E]` |
/// | key | `[B, Hkv, S, E]` or `[Hkv, S, E]` |
/// | value | `[B, Hkv, S, Ev]` or `[Hkv, S, Ev]` |
/// | sinks | `[H]`, any float dtype |
/// | result | `[B, H, L, Ev]` or `[H, L, Ev]`, the query's dtype |
///
/// (And shapes that broadcast to these, below.) Inputs of rank 5 and more, `[N, ..., H, L, E]` (PyTorch's `(N, ..., Hq, L, E)`), have several batch
/// dimensions: the call runs with them flattened into `B` (in row-major order; a bias's per-batch
/// parameters index that `B`), a mask of up to their rank broadcasts over them, and the results have them back.
///
/// Query, key and value broadcast as PyTorch's do (`matmul`'s rules): any rank from 2, everything before the
/// last two dimensions aligned from the right, a 1 or a missing dimension repeated — a batch of 1, one head,
/// `[L, E]` against `[B, H, S, E]` — read in place (stride-0 views; copied only for key and value head counts
/// that differ, neither 1, and rank-5 batch dimensions that cannot share one stride); with `enableGQA` key's and value's head
/// counts may differ, each dividing `H`. The result has the broadcast shape, in the largest rank of the three.
///
/// ```swift
/// let q = try Tensor.randomNormal(shape: [1, 8, 128, 64], seed: 1)
/// let k = try Tensor.randomNormal(shape: [1, 2, 128, 64], seed: 2)
/// let v = try Tensor.randomNormal(shape: [1, 2, 128, 64], seed: 3)
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true, enableGQA: true)
/// ```
///
/// - Parameters:
///   - isCausal: apply `tril(ones(L, S))` (upper-left aligned; see ``CausalVariant``).
///   - scale: multiplies `Q Kᵀ`; `nil` means `1 / sqrt(E)`. A `Double`, as PyTorch's (a `Float` is taken too); see
///     ``AttentionOptions/scale``.
///   - dropoutP: probability of dropping each attention weight, `0...1`.
///   - dropoutSeed: seed of the counter-based dropout generator; `nil` draws one.
///   - enableGQA: allow `H` to be a multiple of `Hkv` (grouped-query attention; key and value head counts may
///     differ, each dividing `H`). Without it head counts broadcast as PyTorch's do: equal, or 1 (one key/value
///     head shared by every query head: multi-query attention).
///   - sinks: learned attention sinks (gpt-oss; MLX's `sinks`), shape `[H]`, one logit per query head,
///     any float dtype: row `i` of head `h` becomes `exp(s_ij) / (exp(sinks[h]) + Σ_j exp(s_ij))`, the
///     sink joining the denominator and adding to no output; `-infinity` means no sink for that head.
///     `nil`: none. See ``AttentionOptions/sinks``.
/// - Throws: ``SDPAError`` naming the argument and shapes that do not fit.
///
/// See also: ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``.
@inlinable
public func scaledDotProductAttention(
    query: Tensor, key: Tensor, value: Tensor,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    try _attention(
        query: query, key: key, value: value, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks),
        returning: _Output.self
    ).output
}

/// ``scaledDotProductAttention(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)`` that also
/// returns the per-row log-sum-exp of the scaled scores.
///
/// `logSumExp` is `[B, H, L]` (or `[H, L]`, `[N, ..., H, L]`, `[L]`: the output's shape without its last dimension) float32: `log(sum_j exp(score_ij))` over the visible keys
/// (plus `exp(sinks[h])` with sinks), `-inf` for a fully masked row without a sink, computed before
/// dropout. Two partial results over disjoint key ranges merge exactly: `lse = logaddexp(lse1, lse2)`,
/// `out = exp(lse1 - lse) * out1 + exp(lse2 - lse) * out2`.
///
/// - Parameter sinks: learned attention sinks, `[H]`, one logit per query head, any float dtype; see
///   ``scaledDotProductAttention(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``.
/// See also: ``scaledDotProductAttentionWithLogSumExp(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``.
@inlinable
public func scaledDotProductAttentionWithLogSumExp(
    query: Tensor, key: Tensor, value: Tensor,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> (output: Tensor, logSumExp: Tensor) {
    try _attention(
        query: query, key: key, value: value, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks),
        returning: _OutputAndLogSumExp.self
    ).pair
}

/// Scaled dot-product attention with an attention bias, routed as the RFC describes.
///
/// A bias whose ``AttnBias/needsMaterialization`` is `true` is materialized and runs the
/// masked path; any other goes to its type's ``AttnBias/dispatch(query:key:value:attnBias:options:)``,
/// which runs a kernel that computes the bias itself. A concrete bias type is resolved at
/// compile time; an `any AttnBias` is opened once, here.
///
/// ```swift
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(L, S))
/// let alibi = AlibiBias(numHeads: 8, seqLenQ: L, seqLenKV: S, causal: .lowerRight)
/// let out2 = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: alibi as any AttnBias)
/// ```
///
/// - Parameters:
///   - attnMask: the bias; see ``TensorBias``, ``CausalBias``, ``AlibiBias``.
///   - isCausal: must be `false`: a causal bias carries its own variant.
///   - sinks: learned attention sinks, `[H]`; see ``AttentionOptions/sinks``. They reach a bias type's
///     own `dispatch` in its `options`.
/// - Throws: ``SDPAError/causalWithBias(bias:)`` when `isCausal` is set, and any error of the inputs or the bias.
@inlinable
public func scaledDotProductAttention<Bias: AttnBias>(
    query: Tensor, key: Tensor, value: Tensor, attnMask: Bias,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    try _attention(
        query: query, key: key, value: value, bias: attnMask, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks),
        returning: _Output.self
    ).output
}

/// ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)`` that also
/// returns the per-row log-sum-exp, routed the same way through ``AttnBias/dispatchWithLogSumExp(query:key:value:attnBias:options:)``.
///
/// See also: ``scaledDotProductAttentionWithLogSumExp(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// for the meaning of `logSumExp` and how to merge partial results.
/// - Parameter sinks: learned attention sinks, `[H]`, one logit per query head, any float dtype; see
///   ``scaledDotProductAttention(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``.
@inlinable
public func scaledDotProductAttentionWithLogSumExp<Bias: AttnBias>(
    query: Tensor, key: Tensor, value: Tensor, attnMask: Bias,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> (output: Tensor, logSumExp: Tensor) {
    try _attention(
        query: query, key: key, value: value, bias: attnMask, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks),
        returning: _OutputAndLogSumExp.self
    ).pair
}

/// Scaled dot-product attention with a bias whose type is known only at run time.
///
/// The existential is opened once, here, and routed as in the generic call: the bias type's own
/// `dispatch` runs, specialised for it. (Swift does not open an argument written
/// `bias as any AttnBias` by itself, so this overload exists for such calls; it is disfavoured so
/// that a concrete bias type always takes the generic, statically resolved overload.)
///
/// ```swift
/// let biases: [any AttnBias] = [causalLowerRight(L, S), AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S)]
/// for bias in biases { _ = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias) }
/// ```
/// - Parameter sinks: learned attention sinks, `[H]`, one logit per query head, any float dtype; see
///   ``scaledDotProductAttention(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``.
@_disfavoredOverload
public func scaledDotProductAttention(
    query: Tensor, key: Tensor, value: Tensor, attnMask: any AttnBias,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    try _attention(
        query: query, key: key, value: value, bias: attnMask, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks),
        returning: _Output.self
    ).output
}

/// ``scaledDotProductAttentionWithLogSumExp(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// for a bias whose type is known only at run time; the existential is opened once.
/// - Parameter sinks: learned attention sinks, `[H]`, one logit per query head, any float dtype; see
///   ``scaledDotProductAttention(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``.
@_disfavoredOverload
public func scaledDotProductAttentionWithLogSumExp(
    query: Tensor, key: Tensor, value: Tensor, attnMask: any AttnBias,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> (output: Tensor, logSumExp: Tensor) {
    try _attention(
        query: query, key: key, value: value, bias: attnMask, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks),
        returning: _OutputAndLogSumExp.self
    ).pair
}

/// A raw mask tensor, as before the RFC: deprecated, behaves exactly like `attnMask: TensorBias(mask)`.
///
/// Prints a one-time warning on standard error as well as the compile-time deprecation warning.
/// - Parameter sinks: learned attention sinks, `[H]`, one logit per query head, any float dtype; see
///   ``scaledDotProductAttention(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``.
@available(*, deprecated, message: "wrap the mask in TensorBias: attnMask: TensorBias(mask)")
public func scaledDotProductAttention(
    query: Tensor, key: Tensor, value: Tensor, attnMask: Tensor,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    _RawMaskDeprecation.warnOnce()
    return try _attention(
        query: query, key: key, value: value, bias: TensorBias(attnMask), isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks),
        returning: _Output.self
    ).output
}

/// The raw-mask overload's one-time runtime warning.
enum _RawMaskDeprecation {
    private static let warning: Void = {
        _printToStandardError(
            "warning: scaledDotProductAttention(attnMask: Tensor) is deprecated; pass attnMask: TensorBias(mask) instead\n")
    }()

    static func warnOnce() { _ = warning }
}
