/// Scaled dot-product attention with no mask, or PyTorch's `is_causal` (upper-left) mask.
///
/// `softmax(Q Kᵀ · scale + bias) V`, row by row over the key axis, with `scale = 1 / sqrt(E)` unless given.
///
/// | argument | shape |
/// |---|---|
/// | query | `[B, H, L, E]` or `[H, L, E]` |
/// | key | `[B, Hkv, S, E]` or `[Hkv, S, E]` |
/// | value | `[B, Hkv, S, Ev]` or `[Hkv, S, Ev]` |
/// | result | `[B, H, L, Ev]` or `[H, L, Ev]`, the query's dtype |
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
///   - scale: multiplies `Q Kᵀ`; `nil` means `1 / sqrt(E)`.
///   - dropoutP: probability of dropping each attention weight, `0...1`.
///   - dropoutSeed: seed of the counter-based dropout generator; `nil` draws one.
///   - enableGQA: allow `H` to be a multiple of `Hkv` (grouped-query attention).
/// - Throws: ``SDPAError`` naming the argument and shapes that do not fit.
///
/// See also: ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:)``.
public func scaledDotProductAttention(
    query: Tensor, key: Tensor, value: Tensor,
    isCausal: Bool = false, scale: Float? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false
) throws -> Tensor {
    try _unmaskedAttention(
        query: query, key: key, value: value, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA)
    ).output
}

/// ``scaledDotProductAttention(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:)`` that also
/// returns the per-row log-sum-exp of the scaled scores.
///
/// `logSumExp` is `[B, H, L]` (or `[H, L]`) float32: `log(sum_j exp(score_ij))` over the visible keys,
/// `-inf` for a fully masked row, computed before dropout. Two partial results over disjoint key
/// ranges merge exactly: `lse = logaddexp(lse1, lse2)`, `out = exp(lse1 - lse) * out1 + exp(lse2 - lse) * out2`.
///
/// See also: ``scaledDotProductAttentionWithLogSumExp(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:)``.
public func scaledDotProductAttentionWithLogSumExp(
    query: Tensor, key: Tensor, value: Tensor,
    isCausal: Bool = false, scale: Float? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false
) throws -> (output: Tensor, logSumExp: Tensor) {
    try _unmaskedAttention(
        query: query, key: key, value: value, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA)
    ).pair
}

private func _unmaskedAttention(
    query: Tensor, key: Tensor, value: Tensor, isCausal: Bool, options: AttentionOptions
) throws -> _AttentionResult {
    let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: options.enableGQA)
    if isCausal {
        return try _structuredAttention(
            query: query, key: key, value: value, shape: shape,
            modifier: _FusedBiasKernel(bias: causalUpperLeft(shape.queryLength, shape.keyLength)), options: options)
    }
    return try _structuredAttention(
        query: query, key: key, value: value, shape: shape, modifier: _NoScoreModifier(), options: options, mask: .none)
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
/// - Throws: ``SDPAError/causalWithBias(bias:)`` when `isCausal` is set, and any error of the inputs or the bias.
@inlinable
public func scaledDotProductAttention<Bias: AttnBias>(
    query: Tensor, key: Tensor, value: Tensor, attnMask: Bias,
    isCausal: Bool = false, scale: Float? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false
) throws -> Tensor {
    try _routedAttention(
        query: query, key: key, value: value, bias: attnMask, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA))
}

/// The RFC's routing: materialize and run the masked path, or hand over to the bias type's `dispatch`.
@inlinable
func _routedAttention<Bias: AttnBias>(
    query: Tensor, key: Tensor, value: Tensor, bias: Bias, isCausal: Bool, options: AttentionOptions
) throws -> Tensor {
    if isCausal { throw SDPAError.causalWithBias(bias: String(describing: Bias.self)) }
    if bias.needsMaterialization {
        return try _materializedAttention(query: query, key: key, value: value, bias: bias, options: options).output
    }
    return try Bias.dispatch(query: query, key: key, value: value, attnBias: bias, options: options)
}

/// ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:)`` that also
/// returns the per-row log-sum-exp, routed the same way through ``AttnBias/dispatchWithLogSumExp(query:key:value:attnBias:options:)``.
///
/// See also: ``scaledDotProductAttentionWithLogSumExp(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:)``
/// for the meaning of `logSumExp` and how to merge partial results.
@inlinable
public func scaledDotProductAttentionWithLogSumExp<Bias: AttnBias>(
    query: Tensor, key: Tensor, value: Tensor, attnMask: Bias,
    isCausal: Bool = false, scale: Float? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false
) throws -> (output: Tensor, logSumExp: Tensor) {
    try _routedAttentionWithLogSumExp(
        query: query, key: key, value: value, bias: attnMask, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA))
}

/// ``_routedAttention(query:key:value:bias:isCausal:options:)`` through `dispatchWithLogSumExp`.
@inlinable
func _routedAttentionWithLogSumExp<Bias: AttnBias>(
    query: Tensor, key: Tensor, value: Tensor, bias: Bias, isCausal: Bool, options: AttentionOptions
) throws -> (output: Tensor, logSumExp: Tensor) {
    if isCausal { throw SDPAError.causalWithBias(bias: String(describing: Bias.self)) }
    if bias.needsMaterialization {
        return try _materializedAttention(query: query, key: key, value: value, bias: bias, options: options).pair
    }
    return try Bias.dispatchWithLogSumExp(query: query, key: key, value: value, attnBias: bias, options: options)
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
@_disfavoredOverload
public func scaledDotProductAttention(
    query: Tensor, key: Tensor, value: Tensor, attnMask: any AttnBias,
    isCausal: Bool = false, scale: Float? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false
) throws -> Tensor {
    try _routedAttention(
        query: query, key: key, value: value, bias: attnMask, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA))
}

/// ``scaledDotProductAttentionWithLogSumExp(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:)``
/// for a bias whose type is known only at run time; the existential is opened once.
@_disfavoredOverload
public func scaledDotProductAttentionWithLogSumExp(
    query: Tensor, key: Tensor, value: Tensor, attnMask: any AttnBias,
    isCausal: Bool = false, scale: Float? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false
) throws -> (output: Tensor, logSumExp: Tensor) {
    try _routedAttentionWithLogSumExp(
        query: query, key: key, value: value, bias: attnMask, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA))
}

/// A raw mask tensor, as before the RFC: deprecated, behaves exactly like `attnMask: TensorBias(mask)`.
///
/// Prints a one-time warning on standard error as well as the compile-time deprecation warning.
@available(*, deprecated, message: "wrap the mask in TensorBias: attnMask: TensorBias(mask)")
public func scaledDotProductAttention(
    query: Tensor, key: Tensor, value: Tensor, attnMask: Tensor,
    isCausal: Bool = false, scale: Float? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false
) throws -> Tensor {
    _RawMaskDeprecation.warnOnce()
    return try scaledDotProductAttention(
        query: query, key: key, value: value, attnMask: TensorBias(attnMask), isCausal: isCausal,
        scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA)
}

/// The RFC's materialization route: validate the bias, materialize it, run the masked path.
@inlinable
func _materializedAttention<Bias: AttnBias>(
    query: Tensor, key: Tensor, value: Tensor, bias: Bias, options: AttentionOptions
) throws -> _AttentionResult {
    let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: options.enableGQA)
    try bias.validate(for: shape)
    let mask = try bias.materialize(device: .cpu)
    return try _maskedAttention(query: query, key: key, value: value, shape: shape, mask: mask, options: options)
}

/// The masked path: a dense mask read in the kernel through broadcast strides.
@usableFromInline
func _maskedAttention(
    query: Tensor, key: Tensor, value: Tensor, shape: AttentionShape, mask: Tensor, options: AttentionOptions
) throws -> _AttentionResult {
    try options.validate(for: shape)
    struct Run: _DenseMaskConsumer {
        let request: _KernelRequest
        func callAsFunction<Modifier: _ScoreModifier>(
            _ modifier: Modifier, query: Tensor, key: Tensor, value: Tensor
        ) throws -> _AttentionResult {
            try _run(request, query: query, key: key, value: value, modifier: modifier)
        }
    }
    let request = _KernelRequest(shape: shape, dtype: query.dtype, options: options, mask: .dense(dtype: mask.dtype))
    return try _withDenseMask(mask, shape: shape, query: query, key: key, value: value, Run(request: request))
}

/// The structured path: a bias computed inside the kernel from indices (`mask: .none` for no bias).
@inlinable
func _structuredAttention<Modifier: _ScoreModifier>(
    query: Tensor, key: Tensor, value: Tensor, shape: AttentionShape, modifier: Modifier, options: AttentionOptions,
    mask: _KernelRequest.Mask = .structured
) throws -> _AttentionResult {
    try options.validate(for: shape)
    let request = _KernelRequest(shape: shape, dtype: query.dtype, options: options, mask: mask)
    return try _run(request, query: query, key: key, value: value, modifier: modifier)
}

@inlinable
func _run<Modifier: _ScoreModifier>(
    _ request: _KernelRequest, query: Tensor, key: Tensor, value: Tensor, modifier: Modifier
) throws -> _AttentionResult {
    switch try request.selectBackend() {
    case .fused:
        return try _fusedAttention(query: query, key: key, value: value, shape: request.shape, modifier: modifier, options: request.options)
    case .math:
        return try _mathAttention(query: query, key: key, value: value, shape: request.shape, modifier: modifier, options: request.options)
    }
}

/// The raw-mask overload's one-time runtime warning.
enum _RawMaskDeprecation {
    private static let warning: Void = {
        _printToStandardError(
            "warning: scaledDotProductAttention(attnMask: Tensor) is deprecated; pass attnMask: TensorBias(mask) instead\n")
    }()

    static func warnOnce() { _ = warning }
}
