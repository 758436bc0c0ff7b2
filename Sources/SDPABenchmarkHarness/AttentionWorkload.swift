import SDPA

/// One attention problem a benchmark runs: sizes, element type and bias, by name.
///
/// The JSON form is shared with `Benchmarks/pytorch_bench.py`, which runs PyTorch on the
/// workloads a Swift benchmark lists, so results of the two are matched by workload.
public struct AttentionWorkload: Codable, Sendable, Hashable, CustomStringConvertible {
    /// `B`.
    public var batch: Int
    /// `H`.
    public var heads: Int
    /// `Hkv`.
    public var keyValueHeads: Int
    /// `L`.
    public var queryLength: Int
    /// `S`.
    public var keyLength: Int
    /// `E`.
    public var headDim: Int
    /// `Ev`.
    public var valueHeadDim: Int
    /// The inputs' ``DType``, by raw value (`float32`, `float16`, `bfloat16`, `float64`).
    public var dtype: String
    /// The ``BiasKind/spelling`` of the bias.
    public var bias: String

    /// A workload with `Hkv = H` and `Ev = E`.
    public init(batch: Int, heads: Int, queryLength: Int, keyLength: Int, headDim: Int,
                dtype: DType = .float32, bias: BiasKind) {
        self.batch = batch
        self.heads = heads
        self.keyValueHeads = heads
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.headDim = headDim
        self.valueHeadDim = headDim
        self.dtype = dtype.rawValue
        self.bias = bias.spelling
    }

    /// The bias kind, or `nil` for a spelling this build does not know.
    public var biasKind: BiasKind? { BiasKind.named(bias) }

    /// The element type, or `nil` for an unknown name.
    public var elementType: DType? { DType(rawValue: dtype) }

    /// `B=1 H=8 L=2048 S=2048 E=64` (with `Hkv` and `Ev` only where they differ).
    public var shapeDescription: String {
        var parts = ["B=\(batch)", "H=\(heads)"]
        if keyValueHeads != heads { parts.append("Hkv=\(keyValueHeads)") }
        parts += ["L=\(queryLength)", "S=\(keyLength)", "E=\(headDim)"]
        if valueHeadDim != headDim { parts.append("Ev=\(valueHeadDim)") }
        return parts.joined(separator: " ")
    }

    /// `alibi B=1 H=8 L=2048 S=2048 E=64 float32`.
    public var description: String { "\(bias) \(shapeDescription) \(dtype)" }

    /// FLOPs of the full score matrix, the convention of FlashAttention's papers: `4 * B * H * L * S * E`
    /// (two matrix products of `2 * L * S * E` each).
    public var flops: Double { 4 * Double(batch) * Double(heads) * Double(queryLength) * Double(keyLength) * Double(headDim) }

    /// FLOPs of the visible score positions only (`4 * B * H * visible * E`): the work a kernel
    /// that skips masked tiles has to do. Equal to ``flops`` for biases that mask nothing.
    /// Visible positions are counted exactly on the built bias (see ``BiasKind/visiblePositions(_:)``).
    public var effectiveFlops: Double {
        let parameters = BiasParameters(batch: batch, heads: heads, queryLength: queryLength, keyLength: keyLength)
        let visible = biasKind?.visiblePositions(parameters) ?? batch * heads * queryLength * keyLength
        return 4 * Double(visible) * Double(headDim)
    }

    /// The bias for this workload (`nil` for `none`).
    ///
    /// - Throws: ``SDPAError/invalidArgument(argument:value:reason:)`` for an unknown bias spelling.
    public func makeBias(alibiSlopes: [Double]? = nil) throws -> (any AttnBias)? {
        let kind: BiasKind
        do { kind = try BiasKind.parse(bias) } catch let error as BiasSpellingError {
            throw SDPAError.invalidArgument(argument: "bias", value: bias, reason: error.message)
        }
        return try kind.makeBias(BiasParameters(
            batch: batch, heads: heads, queryLength: queryLength, keyLength: keyLength, alibiSlopes: alibiSlopes))
    }

    /// Seeded standard-normal query, key and value tensors `[B, H, L, E]`, `[B, Hkv, S, E]`, `[B, Hkv, S, Ev]`.
    ///
    /// - Throws: ``SDPAError`` for an unknown dtype or a negative size.
    public func makeInputs(seed: UInt64 = 1) throws -> (query: Tensor, key: Tensor, value: Tensor) {
        guard let type = elementType else {
            throw SDPAError.invalidArgument(argument: "dtype", value: dtype, reason: "not a known dtype")
        }
        return (
            try Tensor.randomNormal(shape: [batch, heads, queryLength, headDim], seed: seed, dtype: type),
            try Tensor.randomNormal(shape: [batch, keyValueHeads, keyLength, headDim], seed: seed &+ 1, dtype: type),
            try Tensor.randomNormal(shape: [batch, keyValueHeads, keyLength, valueHeadDim], seed: seed &+ 2, dtype: type)
        )
    }
}

/// Attention with an optional bias: the no-mask entry point for `nil`, the bias entry point
/// (specialised for the bias's dynamic type) otherwise.
///
/// The benchmarks, `sdpa run` and the demo all call attention through this one function.
public func attention(
    query: Tensor, key: Tensor, value: Tensor, bias: (any AttnBias)?,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> Tensor {
    guard let bias else {
        return try scaledDotProductAttention(
            query: query, key: key, value: value, isCausal: isCausal, scale: scale,
            dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
    }
    return try scaledDotProductAttention(
        query: query, key: key, value: value, attnMask: bias, isCausal: isCausal, scale: scale,
        dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// ``attention(query:key:value:bias:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)`` that also returns
/// the per-row log-sum-exp (`[B, H, L]` float32).
public func attentionWithLogSumExp(
    query: Tensor, key: Tensor, value: Tensor, bias: (any AttnBias)?,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil,
    enableGQA: Bool = false, sinks: Tensor? = nil
) throws -> (output: Tensor, logSumExp: Tensor) {
    guard let bias else {
        return try scaledDotProductAttentionWithLogSumExp(
            query: query, key: key, value: value, isCausal: isCausal, scale: scale,
            dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
    }
    // Opens the existential so that the bias type's own dispatch runs.
    func call<Bias: AttnBias>(_ bias: Bias) throws -> (output: Tensor, logSumExp: Tensor) {
        try scaledDotProductAttentionWithLogSumExp(
            query: query, key: key, value: value, attnMask: bias, isCausal: isCausal, scale: scale,
            dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
    }
    return try call(bias)
}

/// The backward pass of ``attention(query:key:value:bias:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with an optional bias: `output` and `logSumExp` are the forward's (``attentionWithLogSumExp(query:key:value:bias:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``),
/// `gradOutput` the gradient of its output.
public func attentionGradients(
    gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor, bias: (any AttnBias)?,
    isCausal: Bool = false, scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false,
    sinks: Tensor? = nil
) throws -> AttentionGradients {
    guard let bias else {
        return try scaledDotProductAttentionBackward(
            gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp,
            isCausal: isCausal, scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
    }
    if isCausal { throw SDPAError.causalWithBias(bias: String(describing: type(of: bias))) }
    return try scaledDotProductAttentionBackward(
        gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp,
        attnMask: bias, scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
}

/// The largest `|a - b|` over the elements of two tensors of one shape, compared in `Double`:
/// equal values (also infinities) and NaN against NaN count as 0, NaN against a number as NaN.
public func maximumAbsoluteDifference(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.shape == b.shape, "maximumAbsoluteDifference needs one shape, got \(a.shape) and \(b.shape)")
    var largest = 0.0
    for (x, y) in zip(a.doubleScalars, b.doubleScalars) where x != y && !(x.isNaN && y.isNaN) {
        let d = abs(x - y)
        if d.isNaN { return .nan }
        largest = max(largest, d)
    }
    return largest
}
