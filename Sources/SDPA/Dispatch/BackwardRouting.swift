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

extension SDPBackend {
    /// Why this backend cannot run a backward pass, or `nil` when it can.
    var _backwardRejection: String? {
        switch self {
        case .fused: "there is no fused backward pass yet (the math backend computes gradients, in Double)"
        case .math: nil
        }
    }

    /// The first allowed backend, fastest first, that runs the backward pass.
    ///
    /// - Throws: ``SDPAError/noBackend(allowed:reasons:)`` saying why each allowed one cannot.
    static func _selectBackward() throws -> SDPBackend {
        let allowed = allCases.filter { _allowedBits & $0._bit != 0 }
        if let backend = allowed.first(where: { $0._backwardRejection == nil }) { return backend }
        throw SDPAError.noBackend(
            allowed: allowed,
            reasons: allCases.map { "\($0): " + ($0._backwardRejection ?? "not allowed by withSDPBackends") }.sorted())
    }
}

/// The backward routing, on the forward's route (``_route(_:isCausal:)``): no bias or `isCausal` runs
/// the plain or causal pass; a ``TensorBias`` runs on its mask (and a float one gets its gradient); a
/// ``FusedAttnBias`` is differentiated through its own element-wise form (and its trainable parts get
/// theirs); any other bias is materialized, as the forward's route does for one that needs it, and a
/// bias with its own `dispatch` must compute what its mask stands for.
@usableFromInline
func _routedBackward<Bias: AttnBias>(
    _ tensors: _BackwardTensors, bias: Bias?, isCausal: Bool = false, options: AttentionOptions
) throws -> AttentionGradients {
    let shape = try tensors.checkedShape(options: options)
    let route = try _route(bias, isCausal: isCausal)
    try bias?.validate(for: shape)
    _ = try SDPBackend._selectBackward()
    switch route {
    case .unmasked:
        return try _backward(tensors, shape: shape, modifier: _AdditiveScores(modifier: _NoScoreModifier()), options: options).inputGradients
    case .causalUpperLeft:
        let causal = _FusedBiasKernel(bias: causalUpperLeft(shape.queryLength, shape.keyLength))
        return try _backward(tensors, shape: shape, modifier: causal, options: options).inputGradients
    case .materialized(let tensorBias as TensorBias):
        return try _denseBackward(tensors, shape: shape, mask: tensorBias.mask, options: options, maskGradient: true)
    case .materialized(let bias), .customDispatch(let bias):
        return try _denseBackward(tensors, shape: shape, mask: bias.materialize(device: .cpu), options: options, maskGradient: false)
    case .fused(let bias):
        func run<Fused: FusedAttnBias>(_ fused: Fused) throws -> AttentionGradients {
            let plan = _BiasParameterPlan(fused)
            let result = try _backward(tensors, shape: shape, modifier: _FusedBiasKernel(bias: fused), options: options, plan: plan)
            var gradients = result.inputGradients
            if let plan, let parameters = result.parameters { gradients.biasParameters = plan.results(parameters) }
            return gradients
        }
        return try run(_fusedBias(bias))
    }
}

/// The backward pass with a dense mask read through broadcast strides; with `maskGradient`, a float
/// mask's gradient too.
private func _denseBackward(
    _ tensors: _BackwardTensors, shape: AttentionShape, mask: Tensor, options: AttentionOptions, maskGradient: Bool
) throws -> AttentionGradients {
    struct Run: _DenseMaskConsumer {
        let tensors: _BackwardTensors, shape: AttentionShape, options: AttentionOptions, keepScores: Bool
        func callAsFunction<Modifier: _ScoreModifier>(_ modifier: Modifier, query: Tensor, key: Tensor, value: Tensor) throws -> _MathGradients {
            try _backward(tensors, shape: shape, modifier: _AdditiveScores(modifier: modifier), options: options, keepingScoreGradients: keepScores)
        }
    }
    let wantsGradient = maskGradient && mask.dtype.isFloatingPoint
    let run = Run(tensors: tensors, shape: shape, options: options, keepScores: wantsGradient)
    let result = try _withDenseMask(mask, shape: shape, query: tensors.query, key: tensors.key, value: tensors.value, run)
    var gradients = result.inputGradients
    if wantsGradient, let scores = result.scores { gradients.attnMask = try _reduced(scores, shape: shape, to: mask) }
    return gradients
}

/// The backend's backward pass (the math one: the only one there is yet).
private func _backward<Modifier: _DifferentiableScoreModifier>(
    _ tensors: _BackwardTensors, shape: AttentionShape, modifier: Modifier, options: AttentionOptions,
    plan: _BiasParameterPlan? = nil, keepingScoreGradients: Bool = false
) throws -> _MathGradients {
    try _mathAttentionBackward(
        gradOutput: tensors.gradOutput, query: tensors.query, key: tensors.key, value: tensors.value, shape: shape,
        modifier: modifier, options: options, parameters: plan, keepingScoreGradients: keepingScoreGradients)
}

extension _MathGradients {
    /// The input gradients, without the bias's.
    var inputGradients: AttentionGradients { AttentionGradients(query: query, key: key, value: value) }
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
