// The entry points with a scale of another floating-point type than `Double`: a `Float` (the scale's
// type before it became a `Double`, as PyTorch's is) or a `Float16`, converted to `Double` (exactly)
// and passed on. Disfavoured and generic, so that a literal, `nil` or a `Double` takes the `Double`
// overload and code written for a `Float` scale keeps compiling unchanged.

/// ``scaledDotProductAttention(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)`` with a
/// scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @inlinable @_documentation(visibility: internal)
public func scaledDotProductAttention<Scale: BinaryFloatingPoint>(
    query: Tensor, key: Tensor, value: Tensor,
    isCausal: Bool = false, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    try scaledDotProductAttention(
        query: query, key: key, value: value, isCausal: isCausal, scale: _widenedScale(scale), dropoutP: dropoutP,
        dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// ``scaledDotProductAttentionWithLogSumExp(query:key:value:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with a scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @inlinable @_documentation(visibility: internal)
public func scaledDotProductAttentionWithLogSumExp<Scale: BinaryFloatingPoint>(
    query: Tensor, key: Tensor, value: Tensor,
    isCausal: Bool = false, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> (output: Tensor, logSumExp: Tensor) {
    try scaledDotProductAttentionWithLogSumExp(
        query: query, key: key, value: value, isCausal: isCausal, scale: _widenedScale(scale), dropoutP: dropoutP,
        dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with a scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @inlinable @_documentation(visibility: internal)
public func scaledDotProductAttention<Bias: AttnBias, Scale: BinaryFloatingPoint>(
    query: Tensor, key: Tensor, value: Tensor, attnMask: Bias,
    isCausal: Bool = false, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    try scaledDotProductAttention(
        query: query, key: key, value: value, attnMask: attnMask, isCausal: isCausal, scale: _widenedScale(scale),
        dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// ``scaledDotProductAttentionWithLogSumExp(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with a scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @inlinable @_documentation(visibility: internal)
public func scaledDotProductAttentionWithLogSumExp<Bias: AttnBias, Scale: BinaryFloatingPoint>(
    query: Tensor, key: Tensor, value: Tensor, attnMask: Bias,
    isCausal: Bool = false, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> (output: Tensor, logSumExp: Tensor) {
    try scaledDotProductAttentionWithLogSumExp(
        query: query, key: key, value: value, attnMask: attnMask, isCausal: isCausal, scale: _widenedScale(scale),
        dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// The existential-bias ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with a scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @_documentation(visibility: internal)
public func scaledDotProductAttention<Scale: BinaryFloatingPoint>(
    query: Tensor, key: Tensor, value: Tensor, attnMask: any AttnBias,
    isCausal: Bool = false, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    try scaledDotProductAttention(
        query: query, key: key, value: value, attnMask: attnMask, isCausal: isCausal, scale: _widenedScale(scale),
        dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// The existential-bias ``scaledDotProductAttentionWithLogSumExp(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with a scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @_documentation(visibility: internal)
public func scaledDotProductAttentionWithLogSumExp<Scale: BinaryFloatingPoint>(
    query: Tensor, key: Tensor, value: Tensor, attnMask: any AttnBias,
    isCausal: Bool = false, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> (output: Tensor, logSumExp: Tensor) {
    try scaledDotProductAttentionWithLogSumExp(
        query: query, key: key, value: value, attnMask: attnMask, isCausal: isCausal, scale: _widenedScale(scale),
        dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// The deprecated raw-mask ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with a scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@available(*, deprecated, message: "wrap the mask in TensorBias: attnMask: TensorBias(mask)")
@_disfavoredOverload @_documentation(visibility: internal)
public func scaledDotProductAttention<Scale: BinaryFloatingPoint>(
    query: Tensor, key: Tensor, value: Tensor, attnMask: Tensor,
    isCausal: Bool = false, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    try scaledDotProductAttention(
        query: query, key: key, value: value, attnMask: attnMask, isCausal: isCausal, scale: _widenedScale(scale),
        dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// ``scaledDotProductAttentionBackward(gradOutput:query:key:value:output:logSumExp:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with a scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @_documentation(visibility: internal)
public func scaledDotProductAttentionBackward<Scale: BinaryFloatingPoint>(
    gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor,
    isCausal: Bool = false, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> AttentionGradients {
    try scaledDotProductAttentionBackward(
        gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp,
        isCausal: isCausal, scale: _widenedScale(scale), dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// ``scaledDotProductAttentionBackward(gradOutput:query:key:value:output:logSumExp:attnMask:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with a scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @inlinable @_documentation(visibility: internal)
public func scaledDotProductAttentionBackward<Bias: AttnBias, Scale: BinaryFloatingPoint>(
    gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor,
    attnMask: Bias, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> AttentionGradients {
    try scaledDotProductAttentionBackward(
        gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp,
        attnMask: attnMask, scale: _widenedScale(scale), dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// The existential-bias ``scaledDotProductAttentionBackward(gradOutput:query:key:value:output:logSumExp:attnMask:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with a scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @_documentation(visibility: internal)
public func scaledDotProductAttentionBackward<Scale: BinaryFloatingPoint>(
    gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor,
    attnMask: any AttnBias, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> AttentionGradients {
    try scaledDotProductAttentionBackward(
        gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp,
        attnMask: attnMask, scale: _widenedScale(scale), dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// The deprecated raw-mask ``scaledDotProductAttentionBackward(gradOutput:query:key:value:output:logSumExp:attnMask:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with a scale of another floating-point type (e.g. a `Float`), converted to `Double`.
@available(*, deprecated, message: "wrap the mask in TensorBias: attnMask: TensorBias(mask)")
@_disfavoredOverload @_documentation(visibility: internal)
public func scaledDotProductAttentionBackward<Scale: BinaryFloatingPoint>(
    gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor,
    attnMask: Tensor, scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> AttentionGradients {
    try scaledDotProductAttentionBackward(
        gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp,
        attnMask: attnMask, scale: _widenedScale(scale), dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// ``explainSDPA(query:key:value:attnMask:isCausal:scale:dropoutP:enableGQA:sinks:)`` with a scale of another
/// floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @_documentation(visibility: internal)
public func explainSDPA<Scale: BinaryFloatingPoint>(
    query: Tensor, key: Tensor, value: Tensor, attnMask: (any AttnBias)? = nil,
    isCausal: Bool = false, scale: Scale?, dropoutP: Float = 0, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> SDPAExplanation {
    try explainSDPA(
        query: query, key: key, value: value, attnMask: attnMask, isCausal: isCausal, scale: _widenedScale(scale),
        dropoutP: dropoutP, enableGQA: enableGQA, sinks: sinks)
}

/// ``explainSDPA(shape:dtype:attnMask:isCausal:scale:dropoutP:enableGQA:sinks:)`` with a scale of another
/// floating-point type (e.g. a `Float`), converted to `Double`.
@_disfavoredOverload @_documentation(visibility: internal)
public func explainSDPA<Scale: BinaryFloatingPoint>(
    shape: AttentionShape, dtype: DType = .float32, attnMask: (any AttnBias)? = nil,
    isCausal: Bool = false, scale: Scale?, dropoutP: Float = 0, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> SDPAExplanation {
    try explainSDPA(
        shape: shape, dtype: dtype, attnMask: attnMask, isCausal: isCausal, scale: _widenedScale(scale),
        dropoutP: dropoutP, enableGQA: enableGQA, sinks: sinks)
}
