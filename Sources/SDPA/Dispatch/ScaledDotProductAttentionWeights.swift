/// The attention weights of ``scaledDotProductAttention(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// without a bias, or with PyTorch's upper-left causal mask: for each query row, the softmax that weighs the values,
///
/// ```
/// weights[b, h, i, j] = exp(scale · q_i · k_j) / (exp(sinks[h]) + Σ_j' exp(scale · q_i · k_j'))
/// ```
///
/// what `nn.MultiheadAttention(…, need_weights=True, average_attn_weights=False)` returns per head (before dropout).
/// Shapes: query `[B, H, L, E]` (or `[H, L, E]`, or PyTorch's broadcast ranks, as the attention call takes them), key
/// `[B, Hkv, S, E]`; the result `[B, H, L, S]` in the query's dtype. Computed in `Double` from the scores, as the
/// math backend computes them (`L × S` per head: for inspecting or returning weights, not for attention itself). A
/// masked position weighs 0 and a row that sees no key is all 0, as the attention output's row is.
///
/// - Throws: ``SDPAError`` for the inputs and options the attention call would refuse (value aside).
public func scaledDotProductAttentionWeights(
    query: Tensor, key: Tensor, isCausal: Bool = false, scale: Double? = nil, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    try _weights(query: query, key: key, bias: nil as _AbsentBias?, isCausal: isCausal,
                 options: AttentionOptions(scale: scale, enableGQA: enableGQA, sinks: sinks))
}

/// ``scaledDotProductAttentionWeights(query:key:isCausal:scale:enableGQA:sinks:)`` under `attnMask`: each score
/// biased as the attention call biases it (a ``FusedAttnBias`` by its own element-wise form, any other bias through
/// its materialized mask), `0` where the bias masks a position.
///
/// - Throws: ``SDPAError`` for the inputs, the options or the bias, as the attention call would.
public func scaledDotProductAttentionWeights<Bias: AttnBias>(
    query: Tensor, key: Tensor, attnMask: Bias, scale: Double? = nil, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    try _weights(query: query, key: key, bias: attnMask, isCausal: false,
                 options: AttentionOptions(scale: scale, enableGQA: enableGQA, sinks: sinks))
}

/// The weights of a call, on the attention call's route (``_route(_:isCausal:)``); the key stands in for the value,
/// whose shape the weights do not depend on.
func _weights<Bias: AttnBias>(query: Tensor, key: Tensor, bias: Bias?, isCausal: Bool, options: AttentionOptions) throws -> Tensor {
    try options.validate()
    if _BroadcastInputs.isNeeded(query, key, key, enableGQA: options.enableGQA) {
        return try _weightsOverBroadcastInputs(query: query, key: key, bias: bias, isCausal: isCausal, options: options)
    }
    let shape = try AttentionShape(query: query, key: key, value: key, enableGQA: options.enableGQA)
    try options.validate(for: shape)
    func weights<Modifier: _ScoreModifier>(_ modifier: Modifier) throws -> Tensor {
        try _attentionWeights(query: query, key: key, shape: shape, modifier: modifier, options: options)
    }
    switch try _route(bias, isCausal: isCausal) {
    case .unmasked:
        return try weights(_NoScoreModifier())
    case .causalUpperLeft:
        return try weights(_FusedBiasKernel(bias: causalUpperLeft(shape.queryLength, shape.keyLength)))
    case .materialized(let bias), .customDispatch(let bias):
        try bias.validate(for: shape)
        return try _withDenseMask(try bias.materialize(device: .cpu), shape: shape, query: query, key: key, value: key,
                                  _WeightsOfDenseMask(shape: shape, options: options))
    case .fused(let bias):
        try bias.validate(for: shape)
        func run<Fused: FusedAttnBias>(_ fused: Fused) throws -> Tensor { try weights(_FusedBiasKernel(bias: fused)) }
        return try run(_fusedBias(bias))
    }
}

/// The weights under a materialized mask, read as its dtype's elements.
private struct _WeightsOfDenseMask: _DenseMaskConsumer {
    let shape: AttentionShape, options: AttentionOptions
    func callAsFunction<Modifier: _ScoreModifier>(_ modifier: Modifier, query: Tensor, key: Tensor, value: Tensor) throws -> Tensor {
        try _attentionWeights(query: query, key: key, shape: shape, modifier: modifier, options: options)
    }
}
