/// The tensors of one backward call: the forward's inputs and results and the output's gradient.
@usableFromInline
struct _BackwardTensors {
    @usableFromInline var gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor

    @usableFromInline
    init(gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor) {
        (self.gradOutput, self.query, self.key, self.value) = (gradOutput, query, key, value)
        (self.output, self.logSumExp) = (output, logSumExp)
    }

    /// The problem's shape, once query, key, value, the forward's results, the output's gradient
    /// and the options are checked against each other.
    ///
    /// - Throws: ``SDPAError`` naming the argument and the shapes or values that do not fit.
    func checkedShape(options: AttentionOptions) throws -> AttentionShape {
        try options.validate()
        let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: options.enableGQA)
        let lseShape = Array(shape.outputShape.dropLast())
        if output.shape != shape.outputShape {
            throw SDPAError.shapeMismatch(
                argument: "output", shape: output.shape, other: "query", otherShape: query.shape,
                reason: "the forward's output for these inputs has shape \(shape.outputShape) ([B, H, L, Ev]; \(shape))")
        }
        if gradOutput.shape != output.shape {
            throw SDPAError.shapeMismatch(
                argument: "gradOutput", shape: gradOutput.shape, other: "output", otherShape: output.shape,
                reason: "the gradient of the output must have the output's shape")
        }
        if logSumExp.shape != lseShape {
            throw SDPAError.shapeMismatch(
                argument: "logSumExp", shape: logSumExp.shape, other: "query", otherShape: query.shape,
                reason: "the forward's log-sum-exp for these inputs has shape \(lseShape) ([B, H, L])")
        }
        for (name, tensor) in [("output", output), ("gradOutput", gradOutput)] where tensor.dtype != query.dtype {
            throw SDPAError.unsupportedDType(
                argument: name, dtype: tensor.dtype, reason: "it must have the query's dtype, \(query.dtype), as the forward's output does")
        }
        guard logSumExp.dtype.isFloatingPoint else {
            throw SDPAError.unsupportedDType(argument: "logSumExp", dtype: logSumExp.dtype, reason: "the forward's log-sum-exp is float32")
        }
        if options.dropoutP > 0, options.dropoutSeed == nil {
            throw SDPAError.invalidArgument(
                argument: "dropoutSeed", value: "nil",
                reason: "with dropoutP = \(options.dropoutP) the backward pass needs the seed the forward pass used, to drop the same weights")
        }
        return shape
    }
}

/// The backend that runs the backward pass of a problem: the first allowed one that would run its
/// forward pass with `mask` (the fused backward pass takes whatever the fused forward kernel takes).
///
/// - Throws: ``SDPAError/noBackend(allowed:reasons:)`` saying why each allowed one cannot.
private func _backwardBackend(
    _ tensors: _BackwardTensors, shape: AttentionShape, options: AttentionOptions, mask: _KernelRequest.Mask
) throws -> SDPBackend {
    try _KernelRequest(shape: shape, dtype: tensors.query.dtype, options: options, mask: mask).selectBackend()
}

/// The backward pass with no bias, or `isCausal`'s upper-left causal mask.
func _unmaskedBackward(_ tensors: _BackwardTensors, isCausal: Bool, options: AttentionOptions) throws -> AttentionGradients {
    let shape = try tensors.checkedShape(options: options)
    let backend = try _backwardBackend(tensors, shape: shape, options: options, mask: isCausal ? .structured : .none)
    if isCausal {
        let causal = _FusedBiasKernel(bias: causalUpperLeft(shape.queryLength, shape.keyLength))
        return try _backward(tensors, shape: shape, modifier: causal, options: options, backend: backend)
    }
    return try _backward(tensors, shape: shape, modifier: _AdditiveScores(modifier: _NoScoreModifier()), options: options, backend: backend)
}

/// The backward routing of a bias, mirroring the forward's: a ``TensorBias`` runs on its mask (and a
/// float one gets its gradient); a ``FusedAttnBias`` is differentiated through its own element-wise
/// form (and its trainable parts get theirs); any other bias is materialized, as the forward's route
/// does (a bias with its own `dispatch` must compute what its mask stands for).
@usableFromInline
func _routedBackward<Bias: AttnBias>(_ tensors: _BackwardTensors, bias: Bias, options: AttentionOptions) throws -> AttentionGradients {
    let shape = try tensors.checkedShape(options: options)
    try bias.validate(for: shape)
    if let tensorBias = bias as? TensorBias {
        let backend = try _backwardBackend(tensors, shape: shape, options: options, mask: .dense(dtype: tensorBias.mask.dtype))
        return try _denseBackward(tensors, shape: shape, mask: tensorBias.mask, options: options, backend: backend, maskGradient: true)
    }
    if !bias.needsMaterialization, let fused = bias as? any FusedAttnBias {
        let backend = try _backwardBackend(tensors, shape: shape, options: options, mask: .structured)
        func run<Fused: FusedAttnBias>(_ fused: Fused) throws -> AttentionGradients {
            try _backward(tensors, shape: shape, modifier: _FusedBiasKernel(bias: fused), options: options, backend: backend,
                          plan: _BiasParameterPlan(fused))
        }
        return try run(fused)
    }
    let mask = try bias.materialize(device: .cpu)
    let backend = try _backwardBackend(tensors, shape: shape, options: options, mask: .dense(dtype: mask.dtype))
    return try _denseBackward(tensors, shape: shape, mask: mask, options: options, backend: backend, maskGradient: false)
}

/// The backward pass with a dense mask read through broadcast strides; with `maskGradient`, a float
/// mask's gradient too.
private func _denseBackward(
    _ tensors: _BackwardTensors, shape: AttentionShape, mask: Tensor, options: AttentionOptions, backend: SDPBackend, maskGradient: Bool
) throws -> AttentionGradients {
    struct Run: _DenseMaskConsumer {
        let tensors: _BackwardTensors, shape: AttentionShape, options: AttentionOptions, backend: SDPBackend, gradientOf: Tensor?
        func callAsFunction<Modifier: _ScoreModifier>(_ modifier: Modifier, query: Tensor, key: Tensor, value: Tensor) throws -> AttentionGradients {
            try _backward(tensors, shape: shape, modifier: _AdditiveScores(modifier: modifier), options: options, backend: backend,
                          maskForGradient: gradientOf)
        }
    }
    let gradientOf = maskGradient && mask.dtype.isFloatingPoint ? mask : nil
    let run = Run(tensors: tensors, shape: shape, options: options, backend: backend, gradientOf: gradientOf)
    return try _withDenseMask(mask, shape: shape, query: tensors.query, key: tensors.key, value: tensors.value, run)
}

/// The backward pass on `backend`: the gradients of the inputs, of `maskForGradient` (a float mask
/// the scores were biased with) and of the plan's trainable parts.
private func _backward<Modifier: _DifferentiableScoreModifier>(
    _ tensors: _BackwardTensors, shape: AttentionShape, modifier: Modifier, options: AttentionOptions, backend: SDPBackend,
    plan: _BiasParameterPlan? = nil, maskForGradient: Tensor? = nil
) throws -> AttentionGradients {
    var gradients: AttentionGradients, parameters: _BiasParameterGradients?
    switch backend {
    case .fused:
        let result = try _fusedAttentionBackward(tensors, shape: shape, modifier: modifier, options: options, plan: plan, maskForGradient: maskForGradient)
        gradients = AttentionGradients(query: result.query, key: result.key, value: result.value, attnMask: result.mask)
        parameters = result.parameters
    case .math:
        let result = try _mathAttentionBackward(
            gradOutput: tensors.gradOutput, query: tensors.query, key: tensors.key, value: tensors.value, shape: shape,
            modifier: modifier, options: options, parameters: plan, keepingScoreGradients: maskForGradient != nil)
        gradients = AttentionGradients(query: result.query, key: result.key, value: result.value)
        if let mask = maskForGradient, let scores = result.scores { gradients.attnMask = try _reduced(scores, shape: shape, to: mask) }
        parameters = result.parameters
    }
    if let plan, let parameters { gradients.biasParameters = plan.results(parameters) }
    return gradients
}

/// The gradient of a float mask: the scores' gradient (`[B, H, L, S]`) summed over the dimensions
/// the mask was broadcast along, in the mask's shape and dtype. Summed in row-major order of the
/// scores: the same order at any thread count.
private func _reduced(_ scores: [Double], shape: AttentionShape, to mask: Tensor) throws -> Tensor {
    let sizes = [shape.batch, shape.queryHeads, shape.queryLength, shape.keyLength]
    // The mask's contiguous strides, aligned from the right with the scores' dimensions; 0 where broadcast.
    let maskStrides = Tensor.contiguousStrides(for: mask.shape)
    var strides = [0, 0, 0, 0]
    for n in 0..<Swift.min(mask.rank, 4) where mask.shape[mask.rank - 1 - n] != 1 {
        strides[3 - n] = maskStrides[mask.rank - 1 - n]
    }
    var sums = [Double](repeating: 0, count: mask.count)
    var index = 0
    for b in 0..<sizes[0] {
        for h in 0..<sizes[1] {
            for i in 0..<sizes[2] {
                let row = b * strides[0] + h * strides[1] + i * strides[2]
                for j in 0..<sizes[3] {
                    sums[row + j * strides[3]] += scores[index]
                    index += 1
                }
            }
        }
    }
    let gradient = try Tensor(_zeros: mask.shape, dtype: mask.dtype, argument: "grads.attnMask")
    sums.withUnsafeBufferPointer { gradient._storeContiguous(from: $0) }
    return gradient
}
