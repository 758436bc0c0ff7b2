/// One attention call with every check and choice made up front, so that `run()` is only the kernel:
/// what the `DispatchOverhead` benchmark compares the entry point against.
///
/// Not API: the underscore and the SPI say so. The dense mask of a bias that needs materialization is
/// built here, once.
@_spi(Benchmarking)
public struct _PreparedAttention: Sendable {
    @usableFromInline let kernel: @Sendable () throws -> Tensor

    /// Checks shapes, validates the bias and selects the backend, as the entry point would, on the
    /// entry point's route (``_route(_:isCausal:)``).
    public init<Bias: AttnBias>(
        query: Tensor, key: Tensor, value: Tensor, attnMask: Bias?, isCausal: Bool = false, options: AttentionOptions
    ) throws {
        let shape = try _PreparedAttention.checkedShape(query, key, value, options)
        switch try _route(attnMask, isCausal: isCausal) {
        case .unmasked:
            kernel = try _PreparedAttention.prepare(query, key, value, shape, options, .none, _NoScoreModifier())
        case .causalUpperLeft:
            let causal = _FusedBiasKernel(bias: causalUpperLeft(shape.queryLength, shape.keyLength))
            kernel = try _PreparedAttention.prepare(query, key, value, shape, options, .structured, causal)
        case .materialized(let bias):
            try bias.validate(for: shape)
            kernel = try _PreparedAttention.prepareDense(query, key, value, shape, options, bias.materialize(device: .cpu))
        case .fused(let bias):
            func open<Fused: FusedAttnBias>(_ bias: Fused) throws -> @Sendable () throws -> Tensor {
                try _PreparedAttention.prepareFused(query, key, value, shape, options, bias)
            }
            kernel = try open(_fusedBias(bias))
        case .customDispatch(let bias):
            try bias.validate(for: shape)
            // A custom dispatch chooses its own kernel: nothing to prepare but the call, whose errors
            // are the caller's (never a stand-in result).
            kernel = { try Bias.dispatch(query: query, key: key, value: value, attnBias: bias, options: options) }
        }
    }

    /// ``init(query:key:value:attnMask:isCausal:options:)`` for a fused bias whose type the caller names:
    /// inlinable, so that the kernel it prepares is specialised in the caller's module, as the entry
    /// point's is when the caller names the bias's type (the generic init reaches the bias through an
    /// existential, whose kernel is the library's unspecialised one).
    @inlinable
    public init<Fused: FusedAttnBias>(query: Tensor, key: Tensor, value: Tensor, fusedBias: Fused, options: AttentionOptions) throws {
        let shape = try _PreparedAttention.checkedShape(query, key, value, options)
        kernel = try _PreparedAttention.prepareFused(query, key, value, shape, options, fusedBias)
    }

    /// The inputs' shape, with the options checked against it: what every prepared call checks first. A prepared
    /// call takes one rank-3 or rank-4 problem as given (no broadcasting, no batch dimensions to flatten).
    @usableFromInline
    static func checkedShape(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ options: AttentionOptions) throws -> AttentionShape {
        try options.validate()
        let shape = try AttentionShape(query: q, key: k, value: v, enableGQA: options.enableGQA)
        try options.validate(for: shape)
        return shape
    }

    /// A fused bias validated and its kernel prepared.
    @inlinable
    static func prepareFused<Fused: FusedAttnBias>(
        _ q: Tensor, _ k: Tensor, _ v: Tensor, _ shape: AttentionShape, _ options: AttentionOptions, _ bias: Fused
    ) throws -> @Sendable () throws -> Tensor {
        try bias.validate(for: shape)
        return try prepare(q, k, v, shape, options, .structured, _FusedBiasKernel(bias: bias))
    }

    /// Runs the selected kernel: no checks, no backend selection, no task-local reads.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the output or the
    ///   kernel's scratch cannot be allocated (and a custom dispatch's own errors).
    public func run() throws -> Tensor { try kernel() }

    @inlinable
    static func prepare<Modifier: _ScoreModifier>(
        _ q: Tensor, _ k: Tensor, _ v: Tensor, _ shape: AttentionShape, _ options: AttentionOptions,
        _ mask: _KernelRequest.Mask, _ modifier: Modifier
    ) throws -> @Sendable () throws -> Tensor {
        let request = _KernelRequest(shape: shape, dtype: q.dtype, options: options, mask: mask)
        switch try request.selectBackend() {
        case .fused:
            return {
                try _fusedAttention(query: q, key: k, value: v, shape: shape, modifier: modifier, options: options, logSumExp: false).output
            }
        case .math:
            return { try _mathAttention(query: q, key: k, value: v, shape: shape, modifier: modifier, options: options).output }
        }
    }

    private struct Prepare: _DenseMaskConsumer {
        let shape: AttentionShape, options: AttentionOptions, maskDType: DType
        func callAsFunction<Modifier: _ScoreModifier>(
            _ modifier: Modifier, query: Tensor, key: Tensor, value: Tensor
        ) throws -> @Sendable () throws -> Tensor {
            try _PreparedAttention.prepare(query, key, value, shape, options, .dense(dtype: maskDType), modifier)
        }
    }

    private static func prepareDense(
        _ q: Tensor, _ k: Tensor, _ v: Tensor, _ shape: AttentionShape, _ options: AttentionOptions, _ mask: Tensor
    ) throws -> @Sendable () throws -> Tensor {
        try _withDenseMask(mask, shape: shape, query: q, key: k, value: v, Prepare(shape: shape, options: options, maskDType: mask.dtype))
    }
}
