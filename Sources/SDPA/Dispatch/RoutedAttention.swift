/// A forward call whose bias is optional (the broadcast inputs' path calls it): the form below without a bias, or
/// the one with it.
///
/// `Product` says what the entry point returns (``_Output`` or ``_OutputAndLogSumExp``); each public
/// overload names it, so the call is specialised for it and for the bias type, in the caller's module.
/// The entry points call the two forms below directly, so that a bias is not copied into an optional.
@inlinable
func _attention<Bias: AttnBias, Product: _AttentionProduct>(
    query: Tensor, key: Tensor, value: Tensor, bias: Bias?, isCausal: Bool, options: AttentionOptions,
    returning: Product.Type
) throws -> Product {
    guard let bias else {
        return try _attention(query: query, key: key, value: value, isCausal: isCausal, options: options, returning: Product.self)
    }
    return try _attention(query: query, key: key, value: value, bias: bias, isCausal: isCausal, options: options, returning: Product.self)
}

/// The forward call without a bias, behind every entry point that takes none: no mask, or `isCausal`.
@inlinable
func _attention<Product: _AttentionProduct>(
    query: Tensor, key: Tensor, value: Tensor, isCausal: Bool, options: AttentionOptions, returning: Product.Type
) throws -> Product {
    try options.validate()  // first, as explainSDPA checks them
    if _BroadcastInputs.isNeeded(query, key, value, enableGQA: options.enableGQA) {
        return try _attentionOverBroadcastInputs(
            query: query, key: key, value: value, bias: nil as _AbsentBias?, isCausal: isCausal, options: options,
            returning: Product.self)
    }
    let logSumExp = Product.includesLogSumExp
    let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: options.enableGQA)
    switch try _route(nil as _AbsentBias?, isCausal: isCausal) {
    case .unmasked:
        return Product(try _structuredAttention(
            query: query, key: key, value: value, shape: shape, modifier: _NoScoreModifier(), options: options, mask: .none,
            logSumExp: logSumExp))
    case .causalUpperLeft:
        return Product(try _structuredAttention(
            query: query, key: key, value: value, shape: shape,
            modifier: _FusedBiasKernel(bias: causalUpperLeft(shape.queryLength, shape.keyLength)), options: options,
            logSumExp: logSumExp))
    case .materialized, .fused, .customDispatch:
        preconditionFailure("unreachable: _route gives these routes only to a call with a bias")
    }
}

/// The forward call with a bias, behind every entry point that takes one (the `any AttnBias` and deprecated
/// raw-mask overloads included): the route (``_biasRoute(_:isCausal:)``), then the path that runs it.
@inlinable
func _attention<Bias: AttnBias, Product: _AttentionProduct>(
    query: Tensor, key: Tensor, value: Tensor, bias: Bias, isCausal: Bool, options: AttentionOptions,
    returning: Product.Type
) throws -> Product {
    // The options first, on every route (a bias's own dispatch gets them checked), as explainSDPA checks them.
    try options.validate()
    if _BroadcastInputs.isNeeded(query, key, value, enableGQA: options.enableGQA) {
        return try _attentionOverBroadcastInputs(
            query: query, key: key, value: value, bias: bias, isCausal: isCausal, options: options, returning: Product.self)
    }
    switch try _biasRoute(bias, isCausal: isCausal) {
    case .materialized:
        return Product(try _materializedAttention(query: query, key: key, value: value, bias: bias, options: options,
                                                  logSumExp: Product.includesLogSumExp))
    case .fused:
        // The type's dispatch: for a FusedAttnBias, the fused kernel specialised for it, reached without
        // a cast (and a conformer's own dispatch, if it has one).
        return try Product.dispatch(query: query, key: key, value: value, attnBias: bias, options: options)
    case .customDispatch:
        // The shapes are the dispatch's to judge (it may accept layouts the built-in kernels do not).
        return try Product.dispatch(query: query, key: key, value: value, attnBias: bias, options: options)
    }
}

/// What a forward entry point returns, built from a kernel's result or from a bias type's `dispatch`.
@usableFromInline
protocol _AttentionProduct {
    /// Whether the product holds the log-sum-exp (the kernels skip writing it otherwise).
    static var includesLogSumExp: Bool { get }

    init(_ result: _AttentionResult)

    /// The product with each tensor transformed (`argument` names it, for an error): how the results of a
    /// call run on reshaped inputs get the given inputs' dimensions back.
    func mapTensors(_ transform: (_ tensor: Tensor, _ argument: String) throws -> Tensor) rethrows -> Self

    /// `Bias.dispatch` or `Bias.dispatchWithLogSumExp`, as this product needs.
    static func dispatch<Bias: AttnBias>(
        query: Tensor, key: Tensor, value: Tensor, attnBias: Bias, options: AttentionOptions
    ) throws -> Self
}

/// The output alone: what `scaledDotProductAttention` returns.
@usableFromInline
struct _Output: _AttentionProduct {
    @usableFromInline var output: Tensor

    @inlinable static var includesLogSumExp: Bool { false }
    @inlinable init(_ result: _AttentionResult) { output = result.output }
    @inlinable init(output: Tensor) { self.output = output }

    @usableFromInline
    func mapTensors(_ transform: (_ tensor: Tensor, _ argument: String) throws -> Tensor) rethrows -> _Output {
        _Output(output: try transform(output, "output"))
    }

    @inlinable
    static func dispatch<Bias: AttnBias>(
        query: Tensor, key: Tensor, value: Tensor, attnBias: Bias, options: AttentionOptions
    ) throws -> _Output {
        _Output(output: try Bias.dispatch(query: query, key: key, value: value, attnBias: attnBias, options: options))
    }
}

/// The output and the per-row log-sum-exp: what `scaledDotProductAttentionWithLogSumExp` returns.
@usableFromInline
struct _OutputAndLogSumExp: _AttentionProduct {
    @usableFromInline var pair: (output: Tensor, logSumExp: Tensor)

    @inlinable static var includesLogSumExp: Bool { true }
    @inlinable init(_ result: _AttentionResult) { pair = result.pair }
    @inlinable init(pair: (output: Tensor, logSumExp: Tensor)) { self.pair = pair }

    @usableFromInline
    func mapTensors(_ transform: (_ tensor: Tensor, _ argument: String) throws -> Tensor) rethrows -> _OutputAndLogSumExp {
        _OutputAndLogSumExp(pair: (try transform(pair.output, "output"), try transform(pair.logSumExp, "logSumExp")))
    }

    @inlinable
    static func dispatch<Bias: AttnBias>(
        query: Tensor, key: Tensor, value: Tensor, attnBias: Bias, options: AttentionOptions
    ) throws -> _OutputAndLogSumExp {
        _OutputAndLogSumExp(pair: try Bias.dispatchWithLogSumExp(query: query, key: key, value: value, attnBias: attnBias, options: options))
    }
}

/// The RFC's materialization route: validate the bias, materialize it, run the masked path.
@inlinable
func _materializedAttention<Bias: AttnBias>(
    query: Tensor, key: Tensor, value: Tensor, bias: Bias, options: AttentionOptions, logSumExp: Bool = true
) throws -> _AttentionResult {
    let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: options.enableGQA)
    try bias.validate(for: shape)
    let mask = try bias.materialize(device: .cpu)
    return try _maskedAttention(query: query, key: key, value: value, shape: shape, mask: mask, options: options, logSumExp: logSumExp)
}

/// The masked path: a dense mask read in the kernel through broadcast strides.
@usableFromInline
func _maskedAttention(
    query: Tensor, key: Tensor, value: Tensor, shape: AttentionShape, mask: Tensor, options: AttentionOptions,
    logSumExp: Bool = true
) throws -> _AttentionResult {
    try options.validate(for: shape)
    struct Run: _DenseMaskConsumer {
        let request: _KernelRequest
        func callAsFunction<Modifier: _ScoreModifier>(
            _ modifier: Modifier, query: Tensor, key: Tensor, value: Tensor
        ) throws -> _AttentionResult {
            try _run(request, query: query, key: key, value: value, modifier: modifier)
        }
    }
    let request = _KernelRequest(shape: shape, dtype: query.dtype, options: options, mask: .dense(dtype: mask.dtype),
                                 logSumExp: logSumExp)
    return try _withDenseMask(mask, shape: shape, query: query, key: key, value: value, Run(request: request))
}

/// The structured path: a bias computed inside the kernel from indices (`mask: .none` for no bias).
@inlinable
func _structuredAttention<Modifier: _ScoreModifier>(
    query: Tensor, key: Tensor, value: Tensor, shape: AttentionShape, modifier: Modifier, options: AttentionOptions,
    mask: _KernelRequest.Mask = .structured, logSumExp: Bool = true
) throws -> _AttentionResult {
    try options.validate(for: shape)
    let request = _KernelRequest(shape: shape, dtype: query.dtype, options: options, mask: mask, logSumExp: logSumExp)
    return try _run(request, query: query, key: key, value: value, modifier: modifier)
}

/// The backend `request` selects, run.
@inlinable
func _run<Modifier: _ScoreModifier>(
    _ request: _KernelRequest, query: Tensor, key: Tensor, value: Tensor, modifier: Modifier
) throws -> _AttentionResult {
    switch try request.selectBackend() {
    case .fused:
        return try _fusedAttention(query: query, key: key, value: value, shape: request.shape, modifier: modifier, options: request.options,
                                   logSumExp: request.logSumExp)
    case .math:
        return try _mathAttention(query: query, key: key, value: value, shape: request.shape, modifier: modifier, options: request.options)
    }
}
