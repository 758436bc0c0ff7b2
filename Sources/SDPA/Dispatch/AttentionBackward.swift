/// The backward pass of ``scaledDotProductAttention(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``:
/// the gradients of a loss with respect to query, key and value, given the gradient of its output.
///
/// Pass the forward's arguments as they were, its output and log-sum-exp (from
/// ``scaledDotProductAttentionWithLogSumExp(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``)
/// and `dL/doutput`:
///
/// ```swift
/// let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true)
/// let grads = try scaledDotProductAttentionBackward(
///     gradOutput: dOut, query: q, key: k, value: v, output: out, logSumExp: lse, isCausal: true)
/// grads.query, grads.key, grads.value   // shaped and typed like q, k, v
/// ```
///
/// With learned sinks (gpt-oss), pass the same `sinks` to both and read their gradient:
///
/// ```swift
/// let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true, sinks: sinks)
/// let grads = try scaledDotProductAttentionBackward(
///     gradOutput: dOut, query: q, key: k, value: v, output: out, logSumExp: lse, isCausal: true, sinks: sinks)
/// grads.sinks   // dL/dsinks: [H], the sinks' dtype
/// ```
///
/// | argument | shape |
/// |---|---|
/// | gradOutput, output | the forward's output shape (`[B, H, L, Ev]`, `[H, L, Ev]`, ...), the query's dtype |
/// | logSumExp | the output's shape without its last dimension (`[B, H, L]`, `[H, L]`, ...) |
/// | query, key, value | as in the forward pass |
/// | sinks | `[H]`, any float dtype, as in the forward pass |
///
/// Inputs of rank 5 and more (`[N, ..., H, L, E]`) take `output`, `gradOutput` and `logSumExp` with the same
/// batch dimensions, and give gradients with them; a float mask's gradient comes in the mask's shape. Inputs that
/// broadcast (any rank from 2, batch dimensions and heads of size 1) take the forward's results in their broadcast
/// shape and give each gradient in its input's shape, summed over what was broadcast.
///
/// Gradients come in the inputs' dtypes. With grouped-query attention (or one key/value head without
/// `enableGQA`), dK and dV are summed over each group's query heads. A fully masked row gives zero gradients, never NaN. The result is
/// bit-identical at any thread count.
///
/// The backend is chosen as for the forward pass. The fused one (``SDPBackend/fused``: float32,
/// float16 and bfloat16 inputs) is FlashAttention-2's backward pass: it recomputes the weights tile by
/// tile from `logSumExp` and takes `rowsum(dO ∘ output)` from `output` (float16 and bfloat16: from the
/// output recomputed in float32 by one more forward pass, rescaled to `logSumExp`, since the rounded output
/// loses the gradients of rows one key dominates), accumulates in float32, skips the tiles the bias
/// empties, and needs O(L·E) extra memory. bfloat16 on kernels with a bfloat16 dot product
/// (``FusedKernelInstructionSet/multipliesBFloat16Pairs``) multiplies in bfloat16 pairs, with the weights and
/// their gradients rounded to bfloat16 for dQ, dK and dV as PyTorch's CPU kernel and FlashAttention-2 round them.
/// The math one (``SDPBackend/math``,
/// float64 inputs or under `withSDPBackends([.math])`) recomputes scores and softmax from query and key
/// in `Double` and rounds once: the exact gradient, whatever rounding `output` and `logSumExp` carry.
///
/// - Parameters:
///   - dropoutP, dropoutSeed: the forward's; with `dropoutP > 0` the seed must be given, so that the
///     same weights are dropped (every backend draws the same ones for that seed).
///   - sinks: the forward's attention sinks (``AttentionOptions/sinks``, `[H]`), if it had them: their
///     gradient comes in ``AttentionGradients/sinks``, `dL/dsinks[h] = −Σ_{b,i} exp(sinks[h] − lse[b,h,i]) ·
///     rowsum(dO ∘ O)[b,h,i]` (the sink's weight times `D`; it feeds no output). Leaving them out of a call whose
///     forward had them gives no sink gradient, and the math backend's query, key and value gradients then
///     miss the sink's share of each row (it recomputes the softmax; the fused one reads it from `logSumExp`).
/// - Throws: ``SDPAError`` naming the argument and shapes that do not fit: those of the forward pass,
///   `output`, `gradOutput` or `logSumExp` of other shapes or dtypes, dropout without a seed, sinks that
///   are not one finite (or `-infinity`) logit per query head.
///
/// See also: ``scaledDotProductAttentionBackward(gradOutput:query:key:value:output:logSumExp:attnMask:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``.
public func scaledDotProductAttentionBackward(
    gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> AttentionGradients {
    try _routedBackward(
        _BackwardTensors(gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp),
        bias: nil as _AbsentBias?, isCausal: isCausal,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks))
}

/// The backward pass of ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``:
/// the gradients of query, key and value, of a float mask, and of the bias's own parameters.
///
/// ```swift
/// let alibi = AlibiBias(numHeads: 8, seqLenQ: L, seqLenKV: S, causal: .lowerRight)
/// let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: alibi)
/// let grads = try scaledDotProductAttentionBackward(
///     gradOutput: dOut, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: alibi)
/// grads.alibiSlopes   // dL/dslopes, one per head
/// ```
///
/// Every bias is differentiated as the forward applies it: a ``TensorBias`` through its mask (a float
/// mask gets ``AttentionGradients/attnMask``, in its own shape); a ``FusedAttnBias`` through its
/// ``FusedAttnBias/modifyScoreDerivative(_:batch:head:query:key:)`` (soft-capping included), each part
/// that is a ``TrainableAttnBias`` receiving its score gradients (``AttentionGradients/biasParameters``)
/// and each float ``TensorBias`` part the gradient that reaches it (``AttentionGradients/attnMaskParts``);
/// any other bias through its materialized mask. Everything else is as in
/// ``scaledDotProductAttentionBackward(gradOutput:query:key:value:output:logSumExp:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``.
///
/// - Throws: as the pass without a bias, and whatever the bias's `validate(for:)` or `materialize(device:)` throws.
@inlinable
public func scaledDotProductAttentionBackward<Bias: AttnBias>(
    gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor,
    attnMask: Bias, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> AttentionGradients {
    try _routedBackward(
        _BackwardTensors(gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp),
        bias: attnMask,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks))
}

/// ``scaledDotProductAttentionBackward(gradOutput:query:key:value:output:logSumExp:attnMask:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// for a bias whose type is known only at run time; the existential is opened once, here.
@_disfavoredOverload
public func scaledDotProductAttentionBackward(
    gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor,
    attnMask: any AttnBias, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> AttentionGradients {
    try _routedBackward(
        _BackwardTensors(gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp),
        bias: attnMask,
        options: AttentionOptions(scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks))
}

/// A raw mask tensor, as before the RFC: deprecated, behaves exactly like `attnMask: TensorBias(mask)`
/// (its gradient included). Prints a one-time warning on standard error.
@available(*, deprecated, message: "wrap the mask in TensorBias: attnMask: TensorBias(mask)")
public func scaledDotProductAttentionBackward(
    gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor,
    attnMask: Tensor, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> AttentionGradients {
    _RawMaskBackwardDeprecation.warnOnce()
    return try scaledDotProductAttentionBackward(
        gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp,
        attnMask: TensorBias(attnMask), scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// The raw-mask backward overload's one-time runtime warning.
enum _RawMaskBackwardDeprecation {
    private static let warning: Void = {
        _printToStandardError(
            "warning: scaledDotProductAttentionBackward(attnMask: Tensor) is deprecated; pass attnMask: TensorBias(mask) instead\n")
    }()

    static func warnOnce() { _ = warning }
}
