// Calls whose inputs are not one rank-3 or rank-4 problem as given (``_BroadcastInputs/isNeeded(_:_:_:enableGQA:)``:
// PyTorch's `matmul` broadcasting, ranks from 2, batch dimensions of rank 5 and more) run on the inputs
// ``_BroadcastInputs`` expands them to, their batch dimensions flattened: the same routing, forward and backward.

/// A forward call on inputs that broadcast or have several batch dimensions: run on their expansion (the
/// same route; a ``TensorBias`` mask flattened with the batch), its results in the inputs' shapes.
@usableFromInline
func _attentionOverBroadcastInputs<Bias: AttnBias, Product: _AttentionProduct>(
    query: Tensor, key: Tensor, value: Tensor, bias: Bias?, isCausal: Bool, options: AttentionOptions, returning: Product.Type
) throws -> Product {
    let inputs = try _BroadcastInputs(query: query.shape, key: key.shape, value: value.shape, enableGQA: options.enableGQA)
    try options.validate(for: inputs.runShape)
    try _checkNoComposedMask(bias, batch: inputs.batch)
    let (q, k, v) = try inputs.expanded(query: query, key: key, value: value)
    func run<RunBias: AttnBias>(_ bias: RunBias?) throws -> Product {
        try _attention(query: q, key: k, value: v, bias: bias, isCausal: isCausal, options: options, returning: Product.self)
            .mapTensors { try inputs.inInputsRank($0, argument: $1) }
    }
    if let batch = inputs.batch, var tensorBias = bias as? TensorBias {
        tensorBias.mask = try batch.flattenedMask(tensorBias.mask)
        return try run(tensorBias)
    }
    return try run(bias)
}

/// The backward pass of a call on inputs that broadcast or have several batch dimensions: run on their
/// expansion as the forward was, each input's gradient summed back into its shape (a mask's in its own).
func _backwardOverBroadcastInputs<Bias: AttnBias>(
    _ tensors: _BackwardTensors, bias: Bias?, isCausal: Bool, options: AttentionOptions
) throws -> AttentionGradients {
    let inputs = try _BroadcastInputs(query: tensors.query.shape, key: tensors.key.shape, value: tensors.value.shape,
                                      enableGQA: options.enableGQA)
    try options.validate(for: inputs.runShape)
    try _checkNoComposedMask(bias, batch: inputs.batch)
    let (q, k, v) = try inputs.expanded(query: tensors.query, key: tensors.key, value: tensors.value)
    var run = _BackwardTensors(
        gradOutput: try inputs.inRunRank(tensors.gradOutput, argument: "gradOutput"), query: q, key: k, value: v,
        output: try inputs.inRunRank(tensors.output, argument: "output"),
        logSumExp: try inputs.inRunRank(tensors.logSumExp, argument: "logSumExp", isLogSumExp: true))
    let dtype = tensors.query.dtype
    run.gradientDType = inputs.runGradientDType(for: dtype)
    var gradients: AttentionGradients
    if let batch = inputs.batch, let tensorBias = bias as? TensorBias {
        var flattened = tensorBias
        flattened.mask = try batch.flattenedMask(tensorBias.mask)
        gradients = try _routedBackward(run, bias: flattened, isCausal: isCausal, options: options)
        gradients.attnMask = try gradients.attnMask.map { try batch.restoredMaskGradient($0, of: tensorBias.mask) }
        gradients.attnMaskParts = gradients.attnMask.map { [0: $0] } ?? [:]
    } else {
        gradients = try _routedBackward(run, bias: bias, isCausal: isCausal, options: options)
    }
    gradients.query = try inputs.gradient(gradients.query, given: inputs.givenQuery, dtype: dtype, repeats: 1, argument: "query gradient")
    gradients.key = try inputs.gradient(gradients.key, given: inputs.givenKey, dtype: dtype, repeats: inputs.keyRepeats,
                                        argument: "key gradient")
    gradients.value = try inputs.gradient(gradients.value, given: inputs.givenValue, dtype: dtype, repeats: inputs.valueRepeats,
                                          argument: "value gradient")
    return gradients
}

/// The attention weights of a call on inputs that broadcast or have several batch dimensions: computed on their
/// expansion, in the query's rank and batch dimensions (`[..., H, L, S]`).
func _weightsOverBroadcastInputs<Bias: AttnBias>(
    query: Tensor, key: Tensor, bias: Bias?, isCausal: Bool, options: AttentionOptions
) throws -> Tensor {
    let inputs = try _BroadcastInputs(query: query.shape, key: key.shape, value: key.shape, enableGQA: options.enableGQA)
    try options.validate(for: inputs.runShape)
    try _checkNoComposedMask(bias, batch: inputs.batch)
    let (q, k, _) = try inputs.expanded(query: query, key: key, value: key)
    if let batch = inputs.batch, var tensorBias = bias as? TensorBias {
        tensorBias.mask = try batch.flattenedMask(tensorBias.mask)
        return try inputs.inInputsRank(_weights(query: q, key: k, bias: tensorBias, isCausal: isCausal, options: options),
                                       argument: "attention weights")
    }
    return try inputs.inInputsRank(_weights(query: q, key: k, bias: bias, isCausal: isCausal, options: options), argument: "attention weights")
}

/// Throws for a ``TensorBias`` inside a composition when the inputs' batch dimensions (rank 5 and more) are
/// flattened: only a lone mask is flattened with them, and a composed one would be read against the flattened batch.
private func _checkNoComposedMask<Bias: AttnBias>(_ bias: Bias?, batch: _BatchDimensions?) throws {
    guard batch != nil, !(bias is TensorBias), let fused = bias as? any FusedAttnBias,
          _parts(of: fused).contains(where: { $0 is TensorBias }) else { return }
    throw SDPAError.invalidArgument(
        argument: "attnMask", value: "\(Bias.self)",
        reason: "a TensorBias inside a composition takes inputs of rank 4 at most (its mask is not flattened with batch dimensions); "
            + "pass the mask alone, or the inputs as [B, H, L, E]")
}
