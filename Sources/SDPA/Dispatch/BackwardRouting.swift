/// The backend that runs the backward pass of a problem: the first allowed one that would run its
/// forward pass with `mask` (the fused backward pass takes whatever the fused forward kernel takes).
///
/// - Throws: ``SDPAError/noBackend(allowed:reasons:)`` saying why each allowed one cannot.
private func _backwardBackend(
    _ tensors: _BackwardTensors, shape: AttentionShape, options: AttentionOptions, mask: _KernelRequest.Mask
) throws -> SDPBackend {
    try _KernelRequest(shape: shape, dtype: tensors.query.dtype, options: options, mask: mask).selectBackend()
}

/// The backward routing, on the forward's route (``_route(_:isCausal:)``): no bias or `isCausal` runs
/// the plain or causal pass; a ``TensorBias`` runs on its mask (and a float one gets its gradient); a
/// ``FusedAttnBias`` is differentiated through its own tile code (and its trainable parts and float masks get theirs);
/// any other bias is materialized, as the forward's route does for one that needs it, and a bias with
/// its own `dispatch` must compute what its mask stands for. The backend is chosen as the forward
/// pass's would be for the same mask kind.
@usableFromInline
func _routedBackward<Bias: AttnBias>(
    _ tensors: _BackwardTensors, bias: Bias?, isCausal: Bool = false, options: AttentionOptions
) throws -> AttentionGradients {
    if _BroadcastInputs.isNeeded(tensors.query, tensors.key, tensors.value, enableGQA: options.enableGQA) {
        return try _backwardOverBroadcastInputs(tensors, bias: bias, isCausal: isCausal, options: options)
    }
    let shape = try tensors.checkedShape(options: options)
    let route = try _route(bias, isCausal: isCausal)
    try bias?.validate(for: shape)
    func backend(_ mask: _KernelRequest.Mask) throws -> SDPBackend {
        try _backwardBackend(tensors, shape: shape, options: options, mask: mask)
    }
    switch route {
    case .unmasked:
        return try _backward(tensors, shape: shape, modifier: _AdditiveScores(modifier: _NoScoreModifier()), options: options,
                             backend: backend(.none))
    case .causalUpperLeft:
        let causal = _FusedBiasKernel(bias: causalUpperLeft(shape.queryLength, shape.keyLength))
        return try _backward(tensors, shape: shape, modifier: causal, options: options, backend: backend(.structured))
    case .materialized(let tensorBias as TensorBias):
        // A float mask that requires its gradient is the one part of its own plan, taking the final scores' gradient.
        return try _denseBackward(tensors, shape: shape, mask: tensorBias.mask, options: options,
                                  backend: backend(.dense(dtype: tensorBias.mask.dtype)), plan: _BiasParameterPlan(tensorBias))
    case .materialized(let bias), .customDispatch(let bias):
        let mask = try bias.materialize(device: .cpu)
        return try _denseBackward(tensors, shape: shape, mask: mask, options: options, backend: backend(.dense(dtype: mask.dtype)),
                                  plan: nil)
    case .fused(let bias):
        let chosen = try backend(.structured)
        func run<Fused: FusedAttnBias>(_ fused: Fused) throws -> AttentionGradients {
            try _backward(tensors, shape: shape, modifier: _FusedBiasKernel(bias: fused), options: options, backend: chosen,
                          plan: _BiasParameterPlan(fused))
        }
        return try run(_fusedBias(bias))
    }
}

/// The backward pass with a dense mask read through broadcast strides; with `plan` (the mask's own, when its
/// gradient is taken), the mask's gradient too.
private func _denseBackward(
    _ tensors: _BackwardTensors, shape: AttentionShape, mask: Tensor, options: AttentionOptions, backend: SDPBackend,
    plan: _BiasParameterPlan?
) throws -> AttentionGradients {
    struct Run: _DenseMaskConsumer {
        let tensors: _BackwardTensors, shape: AttentionShape, options: AttentionOptions, backend: SDPBackend, plan: _BiasParameterPlan?
        func callAsFunction<Modifier: _ScoreModifier>(_ modifier: Modifier, query: Tensor, key: Tensor, value: Tensor) throws -> AttentionGradients {
            try _backward(tensors, shape: shape, modifier: _AdditiveScores(modifier: modifier), options: options, backend: backend,
                          plan: plan)
        }
    }
    let run = Run(tensors: tensors, shape: shape, options: options, backend: backend, plan: plan)
    return try _withDenseMask(mask, shape: shape, query: tensors.query, key: tensors.key, value: tensors.value, run)
}

/// The backward pass on `backend`: the gradients of the inputs and of the plan's trainable parts and float masks.
private func _backward<Modifier: _DifferentiableScoreModifier>(
    _ tensors: _BackwardTensors, shape: AttentionShape, modifier: Modifier, options: AttentionOptions, backend: SDPBackend,
    plan: _BiasParameterPlan? = nil
) throws -> AttentionGradients {
    var gradients: AttentionGradients, parameters: _BiasParameterGradients?, maskParts: [Tensor]
    switch backend {
    case .fused:
        // Packed sequences the forward ran as segments, unless a mask's gradient is taken (segments take none).
        if plan?.masks.isEmpty ?? true,
           let segmentation = _Segmentation(shape: shape, modifier: modifier, options: options) {
            let result = try segmentation.backward(tensors, options: options, plan: plan)
            gradients = AttentionGradients(query: result.query, key: result.key, value: result.value, sinks: result.sinks)
            (parameters, maskParts) = (result.parameters, [])
        } else {
            let result = try _fusedAttentionBackward(tensors, shape: shape, modifier: modifier, options: options, plan: plan)
            gradients = AttentionGradients(query: result.query, key: result.key, value: result.value, sinks: result.sinks)
            (parameters, maskParts) = (result.parameters, result.maskParts)
        }
    case .math:
        let result = try _mathAttentionBackward(
            gradOutput: tensors.gradOutput, query: tensors.query, key: tensors.key, value: tensors.value,
            gradientDType: tensors.gradientDType, shape: shape,
            modifier: modifier, options: options, parameters: plan)
        gradients = AttentionGradients(query: result.query, key: result.key, value: result.value, sinks: result.sinks)
        (parameters, maskParts) = (result.parameters, result.maskParts)
    }
    if let plan, let parameters { gradients.biasParameters = plan.results(parameters) }
    if let plan, !maskParts.isEmpty {
        gradients.attnMaskParts = Dictionary(uniqueKeysWithValues: zip(plan.masks, maskParts))
        gradients.attnMask = maskParts[0]
    }
    return gradients
}
