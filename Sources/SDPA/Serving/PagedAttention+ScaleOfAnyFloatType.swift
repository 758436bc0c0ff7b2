// The paged attention calls with a scale of another floating-point type than `Double` (a `Float`, the
// scale's type before it became a `Double`), converted to `Double` and passed on; disfavoured and generic,
// as the free entry points' (Dispatch/ScaleOfAnyFloatType.swift).

extension PagedKVCache {
    /// ``attention(_:scale:causal:sinks:)`` with a scale of another floating-point type (e.g. a `Float`),
    /// converted to `Double`.
    @_disfavoredOverload @_documentation(visibility: internal)
    public func attention<Scale: BinaryFloatingPoint>(
        _ queries: [PagedAttentionQuery], scale: Scale?, causal: Bool = true, sinks: Tensor? = nil
    ) throws -> [Tensor] {
        try attention(queries, scale: _widenedScale(scale), causal: causal, sinks: sinks)
    }

    /// ``attention(_:scale:causal:sinks:bias:)`` with a scale of another floating-point type (e.g. a
    /// `Float`), converted to `Double`.
    @_disfavoredOverload @_documentation(visibility: internal)
    public func attention<Bias: FusedAttnBias, Scale: BinaryFloatingPoint>(
        _ queries: [PagedAttentionQuery], scale: Scale?, causal: Bool = true, sinks: Tensor? = nil,
        bias: (PagedAttentionSequence) throws -> Bias
    ) throws -> [Tensor] {
        try attention(queries, scale: _widenedScale(scale), causal: causal, sinks: sinks, bias: bias)
    }

    /// ``attentionWithLogSumExp(_:scale:causal:sinks:)`` with a scale of another floating-point type (e.g. a
    /// `Float`), converted to `Double`.
    @_disfavoredOverload @_documentation(visibility: internal)
    public func attentionWithLogSumExp<Scale: BinaryFloatingPoint>(
        _ queries: [PagedAttentionQuery], scale: Scale?, causal: Bool = true, sinks: Tensor? = nil
    ) throws -> [(output: Tensor, logSumExp: Tensor)] {
        try attentionWithLogSumExp(queries, scale: _widenedScale(scale), causal: causal, sinks: sinks)
    }

    /// ``attentionWithLogSumExp(_:scale:causal:sinks:bias:)`` with a scale of another floating-point type
    /// (e.g. a `Float`), converted to `Double`.
    @_disfavoredOverload @_documentation(visibility: internal)
    public func attentionWithLogSumExp<Bias: FusedAttnBias, Scale: BinaryFloatingPoint>(
        _ queries: [PagedAttentionQuery], scale: Scale?, causal: Bool = true, sinks: Tensor? = nil,
        bias: (PagedAttentionSequence) throws -> Bias
    ) throws -> [(output: Tensor, logSumExp: Tensor)] {
        try attentionWithLogSumExp(queries, scale: _widenedScale(scale), causal: causal, sinks: sinks, bias: bias)
    }
}
