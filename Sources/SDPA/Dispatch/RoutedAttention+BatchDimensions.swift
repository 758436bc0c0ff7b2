// Calls on inputs of rank 5 and more (expanded by ``_attentionOverBroadcastInputs``, which checks their shapes
// as given) run as the rank-4 call their batch dimensions flatten into (``_BatchDimensions``): the same routing,
// forward and backward.

/// A forward call on inputs of rank 5 or more: flattened to `[B, H, L, E]`, run as any other (the same
/// route), its results given the batch dimensions back.
@usableFromInline
func _attentionOverBatchDimensions<Bias: AttnBias, Product: _AttentionProduct>(
    query: Tensor, key: Tensor, value: Tensor, bias: Bias?, isCausal: Bool, options: AttentionOptions, returning: Product.Type
) throws -> Product {
    let dimensions = try _BatchDimensions(query: query.shape, key: key.shape, value: value.shape)
    let (q, k, v) = (try dimensions.flattened(query, argument: "query"), try dimensions.flattened(key, argument: "key"),
                     try dimensions.flattened(value, argument: "value"))
    if let tensorBias = bias as? TensorBias {
        let flat = TensorBias(try dimensions.flattenedMask(tensorBias.mask))
        return try _attention(query: q, key: k, value: v, bias: flat, isCausal: isCausal, options: options, returning: Product.self)
            .mapTensors { try dimensions.restored($0, argument: $1) }
    }
    return try _attention(query: q, key: k, value: v, bias: bias, isCausal: isCausal, options: options, returning: Product.self)
        .mapTensors { try dimensions.restored($0, argument: $1) }
}

/// The backward pass of a call on inputs of rank 5 or more: every tensor flattened as the forward's were,
/// the gradients given the batch dimensions back (a mask's in its own shape).
func _backwardOverBatchDimensions<Bias: AttnBias>(
    _ tensors: _BackwardTensors, bias: Bias?, isCausal: Bool, options: AttentionOptions
) throws -> AttentionGradients {
    let dimensions = try _BatchDimensions(query: tensors.query.shape, key: tensors.key.shape, value: tensors.value.shape)
    let flat = _BackwardTensors(
        gradOutput: try dimensions.flattened(tensors.gradOutput, argument: "gradOutput"),
        query: try dimensions.flattened(tensors.query, argument: "query"), key: try dimensions.flattened(tensors.key, argument: "key"),
        value: try dimensions.flattened(tensors.value, argument: "value"),
        output: try dimensions.flattened(tensors.output, argument: "output"),
        logSumExp: try dimensions.flattened(tensors.logSumExp, argument: "logSumExp"))
    var gradients: AttentionGradients
    if let tensorBias = bias as? TensorBias {
        gradients = try _routedBackward(flat, bias: TensorBias(try dimensions.flattenedMask(tensorBias.mask)), isCausal: isCausal,
                                        options: options)
        gradients.attnMask = try gradients.attnMask.map { try dimensions.restoredMaskGradient($0, of: tensorBias.mask) }
    } else {
        gradients = try _routedBackward(flat, bias: bias, isCausal: isCausal, options: options)
    }
    gradients.query = try dimensions.restored(gradients.query, argument: "query gradient")
    gradients.key = try dimensions.restored(gradients.key, argument: "key gradient")
    gradients.value = try dimensions.restored(gradients.value, argument: "value gradient")
    return gradients
}
