// Calls whose inputs are not one rank-3 or rank-4 problem as given (``_BroadcastInputs/isNeeded(_:_:_:enableGQA:)``:
// PyTorch's `matmul` broadcasting, ranks from 2, batch dimensions of rank 5 and more) run on the inputs
// ``_BroadcastInputs`` expands them to, their batch dimensions flattened: the same routing, forward and backward.

/// A forward call on inputs that broadcast or have several batch dimensions: run on their expansion (the
/// same route), its results in the inputs' rank.
@usableFromInline
func _attentionOverBroadcastInputs<Bias: AttnBias, Product: _AttentionProduct>(
    query: Tensor, key: Tensor, value: Tensor, bias: Bias?, isCausal: Bool, options: AttentionOptions, returning: Product.Type
) throws -> Product {
    let inputs = try _BroadcastInputs(query: query.shape, key: key.shape, value: value.shape, enableGQA: options.enableGQA)
    let (q, k, v) = try inputs.expanded(query: query, key: key, value: value)
    let product = q.rank > 4
        ? try _attentionOverBatchDimensions(query: q, key: k, value: v, bias: bias, isCausal: isCausal, options: options, returning: Product.self)
        : try _attention(query: q, key: k, value: v, bias: bias, isCausal: isCausal, options: options, returning: Product.self)
    return try product.mapTensors { try inputs.inInputsRank($0, argument: $1) }
}

/// The backward pass of a call on inputs that broadcast or have several batch dimensions: run on their
/// expansion as the forward was, each input's gradient summed back into its shape.
func _backwardOverBroadcastInputs<Bias: AttnBias>(
    _ tensors: _BackwardTensors, bias: Bias?, isCausal: Bool, options: AttentionOptions
) throws -> AttentionGradients {
    let inputs = try _BroadcastInputs(query: tensors.query.shape, key: tensors.key.shape, value: tensors.value.shape,
                                      enableGQA: options.enableGQA)
    let (q, k, v) = try inputs.expanded(query: tensors.query, key: tensors.key, value: tensors.value)
    let run = _BackwardTensors(
        gradOutput: try inputs.inRunRank(tensors.gradOutput, argument: "gradOutput"), query: q, key: k, value: v,
        output: try inputs.inRunRank(tensors.output, argument: "output"),
        logSumExp: try inputs.inRunRank(tensors.logSumExp, argument: "logSumExp", isLogSumExp: true))
    var gradients = q.rank > 4 ? try _backwardOverBatchDimensions(run, bias: bias, isCausal: isCausal, options: options)
                               : try _routedBackward(run, bias: bias, isCausal: isCausal, options: options)
    gradients.query = try inputs.gradient(gradients.query, given: inputs.givenQuery, repeats: 1, argument: "query gradient")
    gradients.key = try inputs.gradient(gradients.key, given: inputs.givenKey, repeats: inputs.keyRepeats, argument: "key gradient")
    gradients.value = try inputs.gradient(gradients.value, given: inputs.givenValue, repeats: inputs.valueRepeats,
                                          argument: "value gradient")
    return gradients
}
