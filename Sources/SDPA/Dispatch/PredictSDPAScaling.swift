/// Predicts how the fused kernel scales on this problem: for each thread count, the work items the
/// driver would make at that count (the same plan, so the same items), their tiles classified by the
/// bias's own tile visibility as the kernel classifies them, and a simulated run of the worker pool
/// taking them in the queue's order. Nothing proportional to the shape is allocated beyond one cost per
/// item, and no attention is computed, so a two-core machine answers for a 128-core one.
///
/// ```swift
/// let shape = AttentionShape(batch: 1, queryHeads: 8, keyValueHeads: 8, queryLength: 8192, keyLength: 8192,
///                            headDim: 64, valueHeadDim: 64)
/// for p in try predictSDPAScaling(shape: shape, attnMask: causalUpperLeft(8192, 8192), threads: [2, 64, 128]) {
///     print(p)   // 128 threads: … speedup 110.4x (86.3 %)
/// }
/// ```
///
/// - Parameters:
///   - dtype: the inputs' element type (a decoding step's cost is the bytes it reads).
///   - attnMask: the bias; a bias that needs materialization is materialized, and its dense mask classifies
///     the tiles as in the kernel.
///   - threads: thread counts, each at least 1 (counts past 256 run on 256).
/// - Throws: ``SDPAError`` for sizes that do not fit together or overflow, a bias that does not fit them,
///   `isCausal` with a bias, a thread count below 1, and a bias with a dispatch of its own (its kernel is
///   not the fused one).
public func predictSDPAScaling(
    shape: AttentionShape, dtype: DType = .float32, attnMask: (any AttnBias)? = nil, isCausal: Bool = false,
    enableGQA: Bool = false, threads: [Int]
) throws -> [SDPAScalingPrediction] {
    if let bad = threads.first(where: { $0 < 1 }) {
        throw SDPAError.invalidArgument(argument: "threads", value: "\(bad)", reason: "a thread count is at least 1")
    }
    try shape.validate(dtype: dtype, enableGQA: enableGQA)
    func predict<Modifier: _ScoreModifier>(_ modifier: Modifier) -> [SDPAScalingPrediction] {
        _predictScaling(shape: shape, dtype: dtype, modifier: modifier, threads: threads)
    }
    func routed<Bias: AttnBias>(_ bias: Bias?) throws -> [SDPAScalingPrediction] {
        switch try _route(bias, isCausal: isCausal) {
        case .unmasked:
            return predict(_NoScoreModifier())
        case .causalUpperLeft:
            return predict(_FusedBiasKernel(bias: causalUpperLeft(shape.queryLength, shape.keyLength)))
        case .materialized(let bias):
            try bias.validate(for: shape)
            let mask = try bias.materialize(device: .cpu)
            // The consumer only needs the modifier: the mask stands in for the inputs it passes through.
            return try _withDenseMask(mask, shape: shape, query: mask, key: mask, value: mask, _PredictScaling(shape: shape, dtype: dtype, threads: threads))
        case .fused(let bias):
            try bias.validate(for: shape)
            func open<Fused: FusedAttnBias>(_ fused: Fused) -> [SDPAScalingPrediction] { predict(_FusedBiasKernel(bias: fused)) }
            return open(_fusedBias(bias))
        case .customDispatch(let bias):
            throw SDPAError.invalidArgument(
                argument: "attnMask", value: String(describing: type(of: bias)),
                reason: "this bias has a dispatch of its own, so its kernel is not the fused one the scaling model describes")
        }
    }
    guard let attnMask else { return try routed(nil as _AbsentBias?) }
    func open<Bias: AttnBias>(_ bias: Bias) throws -> [SDPAScalingPrediction] { try routed(bias) }
    return try open(attnMask)
}

/// The scaling model's predictions for the modifier a dense mask becomes.
private struct _PredictScaling: _DenseMaskConsumer {
    let shape: AttentionShape, dtype: DType, threads: [Int]

    func callAsFunction<Modifier: _ScoreModifier>(_ modifier: Modifier, query: Tensor, key: Tensor, value: Tensor) -> [SDPAScalingPrediction] {
        _predictScaling(shape: shape, dtype: dtype, modifier: modifier, threads: threads)
    }
}
