/// Which route and backend a call would take, and why every other backend was passed over:
/// the answer to "why is this slow?" without a profiler.
///
/// ```swift
/// print(try explainSDPA(query: q, key: k, value: v, attnMask: causalLowerRight(L, S)))
/// // route: CausalBias.dispatch (bias computed in the kernel)
/// // backend: math
/// ```
public struct SDPAExplanation: Sendable, CustomStringConvertible {
    /// How the bias reaches a kernel: no mask, a materialized mask, or the bias type's own dispatch.
    public var route: String
    /// The backend that runs, or `nil` when a custom `dispatch` chooses for itself or none can run.
    public var backend: SDPBackend?
    /// For each backend that does not run, why.
    public var rejected: [SDPBackend: String]

    public var description: String {
        var lines = ["route: \(route)", "backend: \(backend.map(\.rawValue) ?? "none")"]
        for b in SDPBackend.allCases { if let why = rejected[b] { lines.append("  \(b) rejected: \(why)") } }
        return lines.joined(separator: "\n")
    }
}

/// Explains how ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:)``
/// would run these inputs, in the current ``withSDPBackends(_:_:)`` scope, without running it.
///
/// A bias that needs materialization is materialized to learn its shape.
/// - Throws: the errors the call itself would throw for inputs that do not fit.
public func explainSDPA(
    query: Tensor, key: Tensor, value: Tensor, attnMask: (any AttnBias)? = nil,
    isCausal: Bool = false, scale: Float? = nil, dropoutP: Float = 0, enableGQA: Bool = false
) throws -> SDPAExplanation {
    let options = AttentionOptions(scale: scale, dropoutP: dropoutP, enableGQA: enableGQA)
    try options.validate()
    let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: enableGQA)
    return try _explain(shape: shape, dtype: query.dtype, attnMask: attnMask, isCausal: isCausal, options: options)
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
/// - Throws: what the call would throw for such inputs: sizes that are negative, that do not fit
///   together, or whose element or byte counts overflow `Int`, and the bias's own errors. A bias that
///   needs materialization is materialized, as in the tensor form.
public func explainSDPA(
    shape: AttentionShape, dtype: DType = .float32, attnMask: (any AttnBias)? = nil,
    isCausal: Bool = false, scale: Float? = nil, dropoutP: Float = 0, enableGQA: Bool = false
) throws -> SDPAExplanation {
    let options = AttentionOptions(scale: scale, dropoutP: dropoutP, enableGQA: enableGQA)
    try options.validate()
    try shape.validate(dtype: dtype, enableGQA: enableGQA)
    return try _explain(shape: shape, dtype: dtype, attnMask: attnMask, isCausal: isCausal, options: options)
}

/// The explanation for checked inputs of `shape` and `dtype`: what both forms of `explainSDPA` answer.
private func _explain(
    shape: AttentionShape, dtype: DType, attnMask: (any AttnBias)?, isCausal: Bool, options: AttentionOptions
) throws -> SDPAExplanation {
    let route: String
    let mask: _KernelRequest.Mask
    if let attnMask {
        let name = String(describing: type(of: attnMask))
        if isCausal { throw SDPAError.causalWithBias(bias: name) }
        try attnMask.validate(for: shape)
        if attnMask.needsMaterialization {
            let dense = try attnMask.materialize(device: .cpu)
            try _checkBroadcastable(dense.shape, to: shape)
            route = "\(name) materialized to a \(dense.dtype) mask of shape \(dense.shape), read through broadcast strides"
            mask = .dense(dtype: dense.dtype)
        } else if attnMask is any FusedAttnBias {
            route = "\(name).dispatch (bias computed in the kernel, never materialized)"
            mask = .structured
        } else {
            return SDPAExplanation(
                route: "\(name).dispatch, a custom dispatch that chooses its own kernel", backend: nil, rejected: [:])
        }
    } else {
        route = isCausal ? "isCausal (upper-left causal mask computed in the kernel)" : "no mask"
        mask = isCausal ? .structured : .none
    }
    let (backend, rejected) = _KernelRequest(shape: shape, dtype: dtype, options: options, mask: mask).explain()
    return SDPAExplanation(route: route, backend: backend, rejected: rejected)
}
