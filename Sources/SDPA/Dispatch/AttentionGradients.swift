/// The gradients of a loss with respect to the inputs of attention (and of the bias's own
/// parameters), as ``scaledDotProductAttentionBackward(gradOutput:query:key:value:output:logSumExp:attnMask:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// returns them.
///
/// ```swift
/// let grads = try scaledDotProductAttentionBackward(
///     gradOutput: dOut, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: TensorBias(mask))
/// grads.query.shape == q.shape   // true; so are key and value
/// grads.attnMask                 // dL/dmask, in the mask's own shape and dtype
///
/// // A learned float bias inside a composition gets its gradient too:
/// let composed = TensorBias(relativeBias).combined(with: causalLowerRight(L, S))
/// // ... forward with attnMask: composed, then the backward pass:
/// grads.attnMaskParts[0]          // dL/drelativeBias (part 0 of the composition)
/// ```
public struct AttentionGradients: Sendable {
    /// `dL/dquery`: the query's shape and dtype.
    public var query: Tensor
    /// `dL/dkey`: the key's shape and dtype; with grouped-query attention, summed over the query
    /// heads of each group.
    public var key: Tensor
    /// `dL/dvalue`: the value's shape and dtype (summed over each group's query heads, as `key`).
    public var value: Tensor
    /// `dL/dmask` for a floating-point ``TensorBias`` (or the deprecated raw mask), in the mask's own shape and
    /// dtype, summed over the dimensions it was broadcast along; 0 where the mask is `-inf`. Alone or as a part
    /// of a ``BiasComposition`` (the first floating-point one among the parts; ``attnMaskParts`` has each). In a
    /// composition it is the gradient that reaches the mask's part: through the parts after it (soft-capping's
    /// derivative), as PyTorch's autograd gives for the same expression. `nil` for every other bias (a bool
    /// mask has no gradient; a mask with ``TensorBias/requiresGradient`` `false` is a constant; a mask inside a
    /// user's own ``FusedAttnBias`` type, not a ``BiasComposition`` part, is that type's business).
    public var attnMask: Tensor?
    /// The gradient of every floating-point ``TensorBias`` among the bias's parts, by the part's position in the
    /// order the parts apply (as ``BiasParameterGradient/part``; 0 for a mask alone). Empty without one.
    public var attnMaskParts: [Int: Tensor] = [:]
    /// The gradients of the bias's learnable parameters: one per part of the bias that conforms to
    /// ``TrainableAttnBias``, in the order the parts apply (``AlibiBias`` is one). Empty otherwise.
    public var biasParameters: [BiasParameterGradient]
    /// `dL/dsinks` when the backward pass was given the forward's attention sinks: `[H]`, the sinks'
    /// dtype, summed over batch and query rows; 0 for a head whose sink is `-infinity`. `nil` without sinks.
    public var sinks: Tensor?

    /// The gradients as given; the backward pass builds them.
    public init(
        query: Tensor, key: Tensor, value: Tensor, attnMask: Tensor? = nil, biasParameters: [BiasParameterGradient] = [],
        sinks: Tensor? = nil, attnMaskParts: [Int: Tensor] = [:]
    ) {
        (self.query, self.key, self.value, self.attnMask, self.biasParameters) = (query, key, value, attnMask, biasParameters)
        (self.sinks, self.attnMaskParts) = (sinks, attnMaskParts)
    }

    /// The gradient of the first part of type `Bias` among ``biasParameters``, or `nil` when the bias has
    /// no such part.
    public func parameterGradient<Bias: TrainableAttnBias>(of type: Bias.Type) -> Bias.ParameterGradient? {
        biasParameters.lazy.compactMap { $0.biasType == type ? $0.value as? Bias.ParameterGradient : nil }.first
    }

    /// `dL/dslopes` of the bias's ``AlibiBias`` part, one value per head, or `nil` without one.
    public var alibiSlopes: [Double]? { parameterGradient(of: AlibiBias.self) }
}

/// The gradient of one trainable part of a bias: see ``AttentionGradients/biasParameters``.
public struct BiasParameterGradient: Sendable {
    /// The part's position among the bias's parts in the order they apply (a ``BiasComposition``'s
    /// `first` before its `second`, nested ones flattened); 0 for a bias that is not a composition.
    public var part: Int
    /// The part's type.
    public var biasType: any TrainableAttnBias.Type
    /// Its ``TrainableAttnBias/ParameterGradient``.
    public var value: any Sendable

    /// A part's gradient.
    public init(part: Int, biasType: any TrainableAttnBias.Type, value: any Sendable) {
        (self.part, self.biasType, self.value) = (part, biasType, value)
    }
}
