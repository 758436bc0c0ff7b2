/// A multi-head attention block: input projections, ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with any ``AttnBias``, and the output projection; `[B, L, D]` in and out (or unbatched `[L, D]`, as PyTorch's).
///
/// The query, key and value projections run as one fused matrix product (`[D, (H + 2·Hkv)·E]`, built
/// once from separate weights if they come separately); the heads are strided views of its output, which
/// the fused kernel reads in place. `keyValueHeads < heads` is grouped-query attention. In training mode
/// the attention weights are dropped with probability ``dropoutP`` (inside the fused kernel, as the math
/// backend would drop them); otherwise, as in PyTorch's `eval()`, nothing is dropped.
///
/// ```swift
/// let attention = try MultiHeadAttention.random(embedDim: 64, heads: 8, keyValueHeads: 2, seed: 1)
/// let x = try Tensor.randomNormal(shape: [2, 10, 64], seed: 2)                          // [B, L, D]
/// let padding = KeyPaddingBias(validKeyLengths: [10, 7], seqLenKV: 10)
/// let y = try attention(x, attnMask: padding)                                           // [2, 10, 64]
/// ```
public struct MultiHeadAttention: Sendable {
    /// `D`: the input's last dimension.
    public let embedDim: Int
    /// `H`, the query heads.
    public let heads: Int
    /// `Hkv`, the key/value heads (`H` unless grouped-query attention).
    public let keyValueHeads: Int
    /// `E`, the size of each head.
    public let headDim: Int
    /// The probability of dropping an attention weight in training mode.
    public var dropoutP: Float
    /// `D -> (H + 2·Hkv)·E`: queries, then keys, then values.
    public let inputProjection: Linear
    /// `H·E -> D'`.
    public let outputProjection: Linear

    /// A block from a fused input projection (PyTorch's `in_proj_weight`, `[(H + 2·Hkv)·E, D]`: query rows,
    /// then key rows, then value rows) and an output projection (`[D', H·E]`), with optional biases.
    ///
    /// - Throws: ``SDPAError`` when the weights' shapes do not fit `heads` and `keyValueHeads`, or `dropoutP` is outside `0...1`.
    public init(
        inputWeight: Tensor, inputBias: Tensor? = nil, outputWeight: Tensor, outputBias: Tensor? = nil,
        heads: Int, keyValueHeads: Int? = nil, dropoutP: Float = 0
    ) throws {
        let kvHeads = keyValueHeads ?? heads
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
            throw SDPAError.invalidArgument(argument: "keyValueHeads", value: "\(kvHeads) (heads \(heads))",
                                            reason: "both must be positive and heads a multiple of keyValueHeads")
        }
        try AttentionOptions(dropoutP: dropoutP).validate()
        let projection = try Linear(weight: inputWeight, bias: inputBias)
        let slots = heads + 2 * kvHeads
        guard projection.outputFeatures % slots == 0, projection.outputFeatures > 0 else {
            throw SDPAError.invalidShape(argument: "inputWeight", shape: inputWeight.shape,
                                         reason: "its \(projection.outputFeatures) rows must be (heads + 2·keyValueHeads)·headDim = \(slots)·headDim")
        }
        let output = try Linear(weight: outputWeight, bias: outputBias)
        let headDim = projection.outputFeatures / slots
        guard output.inputFeatures == heads * headDim else {
            throw SDPAError.shapeMismatch(argument: "outputWeight", shape: outputWeight.shape, other: "inputWeight", otherShape: inputWeight.shape,
                                          reason: "the output projection takes heads·headDim = \(heads * headDim) features")
        }
        (embedDim, self.heads, self.keyValueHeads, self.headDim, self.dropoutP) = (projection.inputFeatures, heads, kvHeads, headDim, dropoutP)
        (inputProjection, outputProjection) = (projection, output)
    }

    /// A block from separate query (`[H·E, D]`), key and value (`[Hkv·E, D]` each) projections, as BERT
    /// and Llama store them; a missing bias among present ones counts as zeros.
    ///
    /// - Throws: ``SDPAError`` as ``init(inputWeight:inputBias:outputWeight:outputBias:heads:keyValueHeads:dropoutP:)``,
    ///   or when the three weights do not share `D` and a dtype.
    public init(
        queryWeight: Tensor, keyWeight: Tensor, valueWeight: Tensor,
        queryBias: Tensor? = nil, keyBias: Tensor? = nil, valueBias: Tensor? = nil,
        outputWeight: Tensor, outputBias: Tensor? = nil, heads: Int, keyValueHeads: Int? = nil, dropoutP: Float = 0
    ) throws {
        let weights = [queryWeight, keyWeight, valueWeight]
        for (name, w) in zip(["queryWeight", "keyWeight", "valueWeight"], weights) where w.rank != 2 {
            throw SDPAError.rank(argument: name, shape: w.shape, expected: "rank 2 [out, in] (PyTorch's Linear.weight)")
        }
        let fusedWeight = try Tensor.concatenated(weights.map { try $0.converted(to: .float32) }, along: 0)
        var fusedBias: Tensor?
        if queryBias != nil || keyBias != nil || valueBias != nil {
            let parts = try zip([queryBias, keyBias, valueBias], weights).map { bias, w in
                try (bias ?? Tensor(zeros: [w.shape[0]])).converted(to: .float32)
            }
            for (name, (part, w)) in zip(["queryBias", "keyBias", "valueBias"], zip(parts, weights)) where part.shape != [w.shape[0]] {
                throw SDPAError.shapeMismatch(argument: name, shape: part.shape, other: "its weight", otherShape: w.shape,
                                              reason: "one bias element per output feature")
            }
            fusedBias = try Tensor.concatenated(parts, along: 0)
        }
        try self.init(inputWeight: fusedWeight, inputBias: fusedBias, outputWeight: outputWeight, outputBias: outputBias,
                      heads: heads, keyValueHeads: keyValueHeads, dropoutP: dropoutP)
    }

    /// A randomly initialised block (PyTorch's `Linear` initialisation), the same for the same seed,
    /// with `headDim = embedDim / heads`.
    ///
    /// - Throws: ``SDPAError`` when `embedDim` is not a positive multiple of `heads`.
    public static func random(
        embedDim: Int, heads: Int, keyValueHeads: Int? = nil, bias: Bool = true, dropoutP: Float = 0, seed: UInt64
    ) throws -> MultiHeadAttention {
        guard heads > 0, embedDim > 0, embedDim % heads == 0 else {
            throw SDPAError.invalidArgument(argument: "embedDim", value: "\(embedDim) (heads \(heads))", reason: "must be a positive multiple of heads")
        }
        let headDim = embedDim / heads, kvHeads = keyValueHeads ?? heads
        let input = try Linear.random(inputFeatures: embedDim, outputFeatures: (heads + 2 * kvHeads) * headDim, bias: bias, seed: seed)
        let output = try Linear.random(inputFeatures: heads * headDim, outputFeatures: embedDim, bias: bias, seed: seed &+ 2)
        return try MultiHeadAttention(inputWeight: input.weight, inputBias: input.bias, outputWeight: output.weight, outputBias: output.bias,
                                      heads: heads, keyValueHeads: kvHeads, dropoutP: dropoutP)
    }

    /// Attention of `x` (`[B, L, D]`, or unbatched `[L, D]`) to itself under `attnMask`, projected back: `[B, L, D']`
    /// (`[L, D']`) float32.
    ///
    /// - Parameters:
    ///   - attnMask: any bias for the `[B, H, L, L]` scores (key padding, causal, ALiBi, block-diagonal for
    ///     packed sequences, a ``TensorBias``, your own).
    ///   - training: drop attention weights with probability ``dropoutP`` (PyTorch's `train()` mode).
    ///   - dropoutSeed: the dropout generator's seed; `nil` draws one.
    /// - Throws: ``SDPAError`` when `x` is not `[B, L, D]` or `[L, D]`, or the bias does not fit the scores.
    public func callAsFunction<Bias: AttnBias>(
        _ x: Tensor, attnMask: Bias, training: Bool = false, dropoutSeed: UInt64? = nil
    ) throws -> Tensor {
        try project(attend(x) { q, k, v, dropout in
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: attnMask, dropoutP: training ? dropout : 0,
                                          dropoutSeed: dropoutSeed, enableGQA: heads != keyValueHeads)
        })
    }

    /// ``callAsFunction(_:attnMask:training:dropoutSeed:)`` for a bias whose type is known only at run time.
    @_disfavoredOverload
    public func callAsFunction(
        _ x: Tensor, attnMask: any AttnBias, training: Bool = false, dropoutSeed: UInt64? = nil
    ) throws -> Tensor {
        func open<Bias: AttnBias>(_ bias: Bias) throws -> Tensor {
            try callAsFunction(x, attnMask: bias, training: training, dropoutSeed: dropoutSeed)
        }
        return try open(attnMask)
    }

    /// Attention of `x` (`[B, L, D]`, or unbatched `[L, D]`) to itself with no bias, or PyTorch's upper-left causal mask.
    ///
    /// - Throws: ``SDPAError`` when `x` is not `[B, L, D]` or `[L, D]`.
    public func callAsFunction(_ x: Tensor, isCausal: Bool = false, training: Bool = false, dropoutSeed: UInt64? = nil) throws -> Tensor {
        try project(attend(x) { q, k, v, dropout in
            try scaledDotProductAttention(query: q, key: k, value: v, isCausal: isCausal, dropoutP: training ? dropout : 0,
                                          dropoutSeed: dropoutSeed, enableGQA: heads != keyValueHeads)
        })
    }

    /// The output projection of the heads' outputs.
    func project(_ heads: Tensor) throws -> Tensor {
        let output = try Tensor._floatMatrix(Array(heads.shape.dropLast()) + [outputProjection.outputFeatures])
        outputProjection._apply(rows: heads.count / Swift.max(1, heads.shape.last!), heads._floats, output._floats,
                                activation: .identity, residual: nil, normalization: nil)
        return output
    }

    /// The input projection, attention through `sdpa`, and the heads laid side by side again:
    /// `[B, L, H·E]` (`[L, H·E]` for unbatched `[L, D]`) float32, contiguous, before the output projection.
    @usableFromInline
    func attend(_ x: Tensor, _ sdpa: (Tensor, Tensor, Tensor, Float) throws -> Tensor) throws -> Tensor {
        guard x.rank == 3 || x.rank == 2, x.shape[x.rank - 1] == embedDim else {
            throw SDPAError.shapeMismatch(argument: "x", shape: x.shape, other: "MultiHeadAttention.inputProjection.weight",
                                          otherShape: [inputProjection.outputFeatures, embedDim],
                                          reason: "x must be [B, L, \(embedDim)] or, unbatched, [L, \(embedDim)]")
        }
        // Unbatched input, as PyTorch's nn.MultiheadAttention takes it: a batch of one, given back without it.
        guard x.rank == 3 else {
            return try attend(x._unsqueezed(at: 0), sdpa)._squeezed(at: 0)
        }
        let (B, L, H, Hkv, E) = (x.shape[0], x.shape[1], heads, keyValueHeads, headDim)
        let width = (H + 2 * Hkv) * E
        let qkv = try Tensor._floatMatrix([B, L, width])
        inputProjection._apply(rows: B * L, try x._contiguousFloat32()._floats, qkv._floats, activation: .identity, residual: nil, normalization: nil)
        // [B, L, heads, E] slices of the fused output seen as [B, heads, L, E]: no copy.
        func headsView(_ count: Int, at column: Int) -> Tensor {
            Tensor(_storage: qkv._storage, dtype: .float32, shape: [B, count, L, E], strides: [L * width, E, width, 1], offset: column)
        }
        let out = try sdpa(headsView(H, at: 0), headsView(Hkv, at: H * E), headsView(Hkv, at: (H + Hkv) * E), dropoutP)
        return try _interleavedHeads(try out._contiguousFloat32())
    }
}

/// `[B, H, L, E]` to `[B, L, H·E]`: each head's row copied next to the others of its position.
@usableFromInline
func _interleavedHeads(_ x: Tensor) throws -> Tensor {
    let (B, H, L, E) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let result = try Tensor._floatMatrix([B, L, H * E])
    let (src, dst) = (x._floats, result._floats)
    for b in 0..<B {
        for h in 0..<H {
            for l in 0..<L {
                (dst + ((b * L + l) * H + h) * E).update(from: src + ((b * H + h) * L + l) * E, count: E)
            }
        }
    }
    return result
}
