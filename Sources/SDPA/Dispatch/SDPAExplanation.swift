/// Which route and backend a call would take, and why every other backend was passed over:
/// the answer to "why is this slow?" without a profiler.
///
/// ```swift
/// print(try explainSDPA(query: q, key: k, value: v, attnMask: causalLowerRight(L, S)))
/// // route: CausalBias.dispatch (bias computed in the kernel, never materialized)
/// // backend: fused
/// // kernels: avx512
/// ```
public struct SDPAExplanation: Sendable, CustomStringConvertible {
    /// How the bias reaches a kernel: no mask, a materialized mask, or the bias type's own dispatch.
    public var route: String
    /// The backend that runs, or `nil` when a custom `dispatch` chooses for itself or none can run.
    public var backend: SDPBackend?
    /// For each backend that does not run, why.
    public var rejected: [SDPBackend: String]
    /// The instruction-set family the fused kernel runs on this thread (``FusedKernelInstructionSet/current``,
    /// e.g. `avx512`), with how it multiplies bfloat16 inputs; `nil` unless the backend is fused.
    public var kernels: String? = nil
    /// How many calls the fused kernel runs the problem as when its bias cuts it into independent
    /// segments (packed sequences: a ``BlockDiagonalBias``, alone or in a ``BiasComposition``), and why; `nil`
    /// when it runs as one call.
    public var segments: String? = nil

    /// The route, the backend, the kernel family, the segments and why each backend was rejected, one per line.
    public var description: String {
        var lines = ["route: \(route)", "backend: \(backend.map(\.rawValue) ?? "none")"]
        if let kernels { lines.append("kernels: \(kernels)") }
        if let segments { lines.append("segments: \(segments)") }
        for b in SDPBackend.allCases { if let why = rejected[b] { lines.append("  \(b) rejected: \(why)") } }
        return lines.joined(separator: "\n")
    }
}

/// Explains how ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// would run these inputs, in the current ``withSDPBackends(_:_:)`` scope, without running it.
///
/// A bias that needs materialization is materialized to learn its shape.
/// - Parameter sinks: the call's learned attention sinks, `[H]`, one logit per query head, any float
///   dtype (see ``AttentionOptions/sinks``), checked against the inputs as the call checks them.
/// - Throws: the errors the call itself would throw for inputs that do not fit.
public func explainSDPA(
    query: Tensor, key: Tensor, value: Tensor, attnMask: (any AttnBias)? = nil,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> SDPAExplanation {
    let options = AttentionOptions(scale: scale, dropoutP: dropoutP, enableGQA: enableGQA, sinks: sinks)
    try options.validate()
    // Inputs that broadcast or have rank 5 and more as the call runs them: the shape they expand and flatten
    // into (no tensor copied), a mask flattened as the call flattens it.
    let (shape, batch) = try AttentionShape._ofCall(query: query, key: key, value: value, enableGQA: enableGQA)
    var mask = attnMask
    if let batch, var tensorBias = attnMask as? TensorBias {
        tensorBias.mask = try batch.flattenedMask(tensorBias.mask)
        mask = tensorBias
    }
    return try _explain(shape: shape, dtype: query.dtype, attnMask: mask, isCausal: isCausal, options: options)
}

/// Explains how inputs of `shape` and `dtype` would run, without any tensor: nothing proportional to the
/// shape is allocated, so it answers for sizes this machine could not hold
/// (`sdpa explain --shape 1,64,1048576,1048576,128`).
///
/// ```swift
/// let shape = AttentionShape(batch: 1, queryHeads: 32, keyValueHeads: 8, queryLength: 1, keyLength: 131_072,
///                            headDim: 128, valueHeadDim: 128)
/// print(try explainSDPA(shape: shape, dtype: .bfloat16, attnMask: causalLowerRight(1, 131_072), enableGQA: true))
/// ```
/// - Parameters:
///   - sinks: the call's sinks (`[H]`, one logit per query head), or `nil`.
/// - Throws: what the call would throw for such inputs: sizes that are negative, that do not fit
///   together, or whose element or byte counts overflow `Int`, sinks of another shape, and the bias's
///   own errors. A bias that needs materialization is materialized, as in the tensor form.
public func explainSDPA(
    shape: AttentionShape, dtype: DType = .float32, attnMask: (any AttnBias)? = nil,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> SDPAExplanation {
    let options = AttentionOptions(scale: scale, dropoutP: dropoutP, enableGQA: enableGQA, sinks: sinks)
    try options.validate()
    try shape.validate(dtype: dtype, enableGQA: enableGQA)
    return try _explain(shape: shape, dtype: dtype, attnMask: attnMask, isCausal: isCausal, options: options)
}

/// The explanation for checked inputs of `shape` and `dtype`: what both forms of `explainSDPA` answer,
/// on the route the call would take (``_route(_:isCausal:)``).
private func _explain(
    shape: AttentionShape, dtype: DType, attnMask: (any AttnBias)?, isCausal: Bool, options: AttentionOptions
) throws -> SDPAExplanation {
    func explain<Bias: AttnBias>(_ bias: Bias?) throws -> SDPAExplanation {
        let route = try _route(bias, isCausal: isCausal)
        let name = String(describing: Bias.self)
        let description: String
        let mask: _KernelRequest.Mask
        switch route {
        // The checks in the order the call makes them, so that both throw the same error.
        case .unmasked:
            try options.validate(for: shape)
            (description, mask) = ("no mask", .none)
        case .causalUpperLeft:
            try options.validate(for: shape)
            (description, mask) = ("isCausal (upper-left causal mask computed in the kernel)", .structured)
        case .materialized(let bias):
            try bias.validate(for: shape)
            let dense = try bias.materialize(device: .cpu)
            try options.validate(for: shape)
            try _checkBroadcastable(dense.shape, to: shape)
            description = "\(name) materialized to a \(dense.dtype) mask of shape \(dense.shape), read through broadcast strides"
            mask = .dense(dtype: dense.dtype)
        case .fused(let bias):
            try bias.validate(for: shape)
            try options.validate(for: shape)
            (description, mask) = ("\(name).dispatch (bias computed in the kernel, never materialized)", .structured)
        case .customDispatch(let bias):
            try bias.validate(for: shape)
            return SDPAExplanation(
                route: "\(name).dispatch, a custom dispatch that chooses its own kernel", backend: nil, rejected: [:])
        }
        let (backend, rejected) = _KernelRequest(shape: shape, dtype: dtype, options: options, mask: mask).explain()
        var explanation = SDPAExplanation(route: description, backend: backend, rejected: rejected)
        if backend == .fused {
            let family = FusedKernelInstructionSet.current
            let bfloat16 = FusedKernelInstructionSet.multipliesBFloat16Pairs
                ? "bfloat16 multiplied as pairs, float32 sums" : "bfloat16 widened to float32"
            explanation.kernels = dtype == .bfloat16 ? "\(family) (\(bfloat16))" : family
            if case .fused(let bias) = route, let fused = bias as? any FusedAttnBias {
                explanation.segments = _segmentsExplained(fused, shape: shape, options: options)
            }
        }
        return explanation
    }
    guard let attnMask else { return try explain(nil as _AbsentBias?) }
    return try explain(attnMask)
}

/// What ``SDPAExplanation/segments`` says for `bias` on `shape`: the calls the fused kernel runs, or `nil`
/// for one call.
private func _segmentsExplained<Bias: FusedAttnBias>(_ bias: Bias, shape: AttentionShape, options: AttentionOptions) -> String? {
    guard let segmentation = _Segmentation(shape: shape, modifier: _FusedBiasKernel(bias: bias), options: options) else { return nil }
    let calls = segmentation.segments.filter { !$0.queries.isEmpty }.count
    let share = Int((100 * segmentation.visitedShare).rounded())
    return "\(calls) calls in one job, one per group of packed sequences (their tiles visit \(share) % of the score positions one call's tiles would)"
}
