/// A multi-head attention block: input projections, ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// with any ``AttnBias``, and the output projection; `[B, L, D]` in and out (or unbatched `[L, D]`, as PyTorch's).
///
/// The query, key and value projections run as one fused matrix product (`[D, (H + 2·Hkv)·E]`, built
/// once from separate weights if they come separately); the heads are strided views of its output, which
/// the fused kernel reads in place. Cross-attention (``callAsFunction(query:key:value:attnMask:training:dropoutSeed:)``)
/// runs each input through its own rows of that projection. `keyValueHeads < heads` is grouped-query attention. In training mode
/// the attention weights are dropped with probability ``dropoutP`` (inside the fused kernel, as the math
/// backend would drop them); otherwise, as in PyTorch's `eval()`, nothing is dropped.
///
/// Masks are ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``'s:
/// a bool ``TensorBias`` is `true` where a query may attend, the opposite of `nn.MultiheadAttention`'s bool `attn_mask`
/// and `key_padding_mask` (`True` masks out); a key padding mask is a ``KeyPaddingBias``, and a `[B·H, L, S]` mask is
/// passed reshaped to `[B, H, L, S]`. The output is float32 whatever the input's dtype.
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
    /// The input projection's rows for each input of cross-attention.
    let crossProjections: _CrossProjections

    /// A block from a fused input projection (PyTorch's `in_proj_weight`, `[(H + 2·Hkv)·E, D]`: query rows,
    /// then key rows, then value rows) and an output projection (`[D', H·E]`), with optional biases.
    ///
    /// - Throws: ``SDPAError`` when the weights' shapes do not fit `heads` and `keyValueHeads`, or `dropoutP` is outside `0...1`.
    public init(
        inputWeight: Tensor, inputBias: Tensor? = nil, outputWeight: Tensor, outputBias: Tensor? = nil,
        heads: Int, keyValueHeads: Int? = nil, dropoutP: Float = 0
    ) throws {
        let kvHeads = keyValueHeads ?? heads
        guard heads > 0 else {
            throw SDPAError.invalidArgument(argument: "heads", value: "\(heads)", reason: "a block has at least one head")
        }
        guard kvHeads > 0, heads % kvHeads == 0 else {
            throw SDPAError.invalidArgument(argument: "keyValueHeads", value: "\(kvHeads) (heads \(heads))",
                                            reason: "must be positive, and heads a multiple of it")
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
        crossProjections = try _CrossProjections(projection, queryRows: heads * headDim, keyValueRows: kvHeads * headDim)
    }

    /// A block from separate query (`[H·E, D]`), key and value (`[Hkv·E, D]` each) projections, as BERT
    /// and Llama store them; a missing bias among present ones counts as zeros.
    ///
    /// - Throws: ``SDPAError`` as ``init(inputWeight:inputBias:outputWeight:outputBias:heads:keyValueHeads:dropoutP:)``,
    ///   or when the three weights do not share `D` (their dtypes may differ: each is converted to float32).
    public init(
        queryWeight: Tensor, keyWeight: Tensor, valueWeight: Tensor,
        queryBias: Tensor? = nil, keyBias: Tensor? = nil, valueBias: Tensor? = nil,
        outputWeight: Tensor, outputBias: Tensor? = nil, heads: Int, keyValueHeads: Int? = nil, dropoutP: Float = 0
    ) throws {
        let weights = [queryWeight, keyWeight, valueWeight], names = ["queryWeight", "keyWeight", "valueWeight"]
        for (name, w) in zip(names, weights) where w.rank != 2 {
            throw SDPAError.rank(argument: name, shape: w.shape, expected: "rank 2 [out, in] (PyTorch's Linear.weight)")
        }
        for (name, w) in zip(["keyWeight", "valueWeight"], weights.dropFirst()) where w.shape[1] != queryWeight.shape[1] {
            throw SDPAError.shapeMismatch(argument: name, shape: w.shape, other: "queryWeight", otherShape: queryWeight.shape,
                                          reason: "the three projections read the same D = \(queryWeight.shape[1]) input features")
        }
        let fusedWeight = try Tensor.concatenated(zip(names, weights).map { try $1._contiguousFloat32($0) }, along: 0)
        var fusedBias: Tensor?
        if queryBias != nil || keyBias != nil || valueBias != nil {
            let biasNames = ["queryBias", "keyBias", "valueBias"]
            let parts = try zip(biasNames, zip([queryBias, keyBias, valueBias], weights)).map { name, given in
                try (given.0 ?? Tensor(zeros: [given.1.shape[0]]))._contiguousFloat32(name)
            }
            for (name, (part, w)) in zip(biasNames, zip(parts, weights)) where part.shape != [w.shape[0]] {
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
        try project(attend(x, attentionCall(attnMask, training: training, dropoutSeed: dropoutSeed)))
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
        try project(attend(x, attentionCall(isCausal: isCausal, training: training, dropoutSeed: dropoutSeed)))
    }

    /// Attention of `query` (`[B, L, D]`, or unbatched `[L, D]`) to `key` and `value` (`[B, S, D]`, or unbatched
    /// `[S, D]`), each through its own rows of the input projection, projected back: `[B, L, D']` (`[L, D']`) float32.
    /// PyTorch's `nn.MultiheadAttention(query, key, value)` (`batch_first`), with `kdim = vdim = D`: cross-attention
    /// to an encoder's output passes that output as both `key` and `value` (projected once, then).
    ///
    /// ```swift
    /// let memory = try Tensor.randomNormal(shape: [2, 12, 64], seed: 3)                     // [B, S, D]
    /// let z = try attention(query: x, key: memory, value: memory, attnMask: KeyPaddingBias(validKeyLengths: [12, 9], seqLenKV: 12))
    /// ```
    ///
    /// - Parameters:
    ///   - attnMask: any bias for the `[B, H, L, S]` scores.
    ///   - training: drop attention weights with probability ``dropoutP`` (PyTorch's `train()` mode).
    ///   - dropoutSeed: the dropout generator's seed; `nil` draws one.
    /// - Throws: ``SDPAError`` naming `query`, `key` or `value` when one is not `[B, *, D]` (all of rank 3, one batch)
    ///   or `[*, D]` (all of rank 2), or key and value hold different numbers of positions; when the bias does not fit the scores.
    public func callAsFunction<Bias: AttnBias>(
        query: Tensor, key: Tensor, value: Tensor, attnMask: Bias, training: Bool = false, dropoutSeed: UInt64? = nil
    ) throws -> Tensor {
        try project(attend(query: query, key: key, value: value, attentionCall(attnMask, training: training, dropoutSeed: dropoutSeed)))
    }

    /// ``callAsFunction(query:key:value:attnMask:training:dropoutSeed:)`` for a bias whose type is known only at run time.
    @_disfavoredOverload
    public func callAsFunction(
        query: Tensor, key: Tensor, value: Tensor, attnMask: any AttnBias, training: Bool = false, dropoutSeed: UInt64? = nil
    ) throws -> Tensor {
        func open<Bias: AttnBias>(_ bias: Bias) throws -> Tensor {
            try callAsFunction(query: query, key: key, value: value, attnMask: bias, training: training, dropoutSeed: dropoutSeed)
        }
        return try open(attnMask)
    }

    /// ``callAsFunction(query:key:value:attnMask:training:dropoutSeed:)`` with no bias, or PyTorch's upper-left causal mask.
    ///
    /// - Throws: ``SDPAError`` as that call does.
    public func callAsFunction(
        query: Tensor, key: Tensor, value: Tensor, isCausal: Bool = false, training: Bool = false, dropoutSeed: UInt64? = nil
    ) throws -> Tensor {
        try project(attend(query: query, key: key, value: value, attentionCall(isCausal: isCausal, training: training, dropoutSeed: dropoutSeed)))
    }

    /// The attention call of a forward pass under `attnMask`: the heads' query, key and value views in, their outputs out.
    func attentionCall<Bias: AttnBias>(
        _ attnMask: Bias, training: Bool, dropoutSeed: UInt64?
    ) -> (Tensor, Tensor, Tensor) throws -> Tensor {
        { q, k, v in
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: attnMask, dropoutP: training ? dropoutP : 0,
                                          dropoutSeed: dropoutSeed, enableGQA: heads != keyValueHeads)
        }
    }

    /// The attention call of a forward pass with no bias, or upper-left causal.
    func attentionCall(isCausal: Bool, training: Bool, dropoutSeed: UInt64?) -> (Tensor, Tensor, Tensor) throws -> Tensor {
        { q, k, v in
            try scaledDotProductAttention(query: q, key: k, value: v, isCausal: isCausal, dropoutP: training ? dropoutP : 0,
                                          dropoutSeed: dropoutSeed, enableGQA: heads != keyValueHeads)
        }
    }

    /// The output projection of the heads' outputs.
    func project(_ heads: Tensor) throws -> Tensor {
        let output = try Tensor._floatMatrix(Array(heads.shape.dropLast()) + [outputProjection.outputFeatures])
        outputProjection._apply(rows: heads.count / Swift.max(1, heads.shape.last!), heads, into: output,
                                activation: .identity, residual: nil, normalization: nil)
        return output
    }

    /// The input projection, attention through `sdpa`, and the heads laid side by side again:
    /// `[B, L, H·E]` (`[L, H·E]` for unbatched `[L, D]`) float32, contiguous, before the output projection.
    func attend(_ x: Tensor, _ sdpa: (Tensor, Tensor, Tensor) throws -> Tensor) throws -> Tensor {
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
        inputProjection._apply(rows: B * L, try x._contiguousFloat32("x"), into: qkv, activation: .identity, residual: nil, normalization: nil)
        let out = try sdpa(_heads(qkv, H, at: 0, headDim: E), _heads(qkv, Hkv, at: H * E, headDim: E),
                           _heads(qkv, Hkv, at: (H + Hkv) * E, headDim: E))
        return try _interleavedHeads(try out._contiguousFloat32("attention output"))
    }

    /// ``attend(_:_:)`` with queries from `query` and keys and values from `key` and `value`: each input through its
    /// own rows of the input projection (one product over key and value rows together when they are the same tensor).
    func attend(query: Tensor, key: Tensor, value: Tensor, _ sdpa: (Tensor, Tensor, Tensor) throws -> Tensor) throws -> Tensor {
        for (name, t) in [("query", query), ("key", key), ("value", value)] where t.rank != query.rank || !(2...3).contains(t.rank)
            || t.shape[t.rank - 1] != embedDim {
            throw SDPAError.shapeMismatch(
                argument: name, shape: t.shape, other: "MultiHeadAttention.inputProjection.weight",
                otherShape: [inputProjection.outputFeatures, embedDim],
                reason: "query, key and value must be [B, L, \(embedDim)], [B, S, \(embedDim)] and [B, S, \(embedDim)], or all unbatched, [L, \(embedDim)] and [S, \(embedDim)]")
        }
        guard query.rank == 3 else {
            return try attend(query: query._unsqueezed(at: 0), key: key._unsqueezed(at: 0), value: value._unsqueezed(at: 0), sdpa)
                ._squeezed(at: 0)
        }
        if key.shape[0] != query.shape[0] {
            throw SDPAError.shapeMismatch(argument: "key", shape: key.shape, other: "query", otherShape: query.shape, reason: "one batch size B")
        }
        if value.shape[0] != key.shape[0] || value.shape[1] != key.shape[1] {
            throw SDPAError.shapeMismatch(argument: "value", shape: value.shape, other: "key", otherShape: key.shape,
                                          reason: "key and value hold the same B sequences of S positions")
        }
        let (B, Hkv, E, layers) = (query.shape[0], keyValueHeads, headDim, crossProjections)
        /// `x` (the argument `name`) through `layer` (rows of the input projection): `[B, n, out]` float32.
        func projected(_ x: Tensor, _ name: String, _ layer: Linear) throws -> Tensor {
            let output = try Tensor._floatMatrix([B, x.shape[1], layer.outputFeatures])
            layer._apply(rows: B * x.shape[1], try x._contiguousFloat32(name), into: output, activation: .identity, residual: nil,
                         normalization: nil)
            return output
        }
        let (k, v): (Tensor, Tensor)
        if key._storage === value._storage && key._offset == value._offset && key.strides == value.strides && key.dtype == value.dtype {
            let kv = try projected(key, "key", layers.keyValue)
            (k, v) = (_heads(kv, Hkv, at: 0, headDim: E), _heads(kv, Hkv, at: Hkv * E, headDim: E))
        } else {
            (k, v) = (_heads(try projected(key, "key", layers.key), Hkv, at: 0, headDim: E),
                      _heads(try projected(value, "value", layers.value), Hkv, at: 0, headDim: E))
        }
        let out = try sdpa(_heads(try projected(query, "query", layers.query), heads, at: 0, headDim: E), k, v)
        return try _interleavedHeads(try out._contiguousFloat32("attention output"))
    }
}

/// `count` heads of `headDim` at `column` of a `[B, n, width]` product, seen as `[B, count, n, headDim]`: no copy.
func _heads(_ product: Tensor, _ count: Int, at column: Int, headDim: Int) -> Tensor {
    let (b, n, width) = (product.shape[0], product.shape[1], product.shape[2])
    return Tensor(_storage: product._storage, dtype: .float32, shape: [b, count, n, headDim], strides: [n * width, headDim, width, 1],
                  offset: column)
}

/// The rows of a fused `[(H + 2·Hkv)·E, D]` input projection that each input of cross-attention goes through, made once
/// with the block: views of its panels where the rows start on one (``_WeightPanels/columns(_:)``), copies otherwise.
struct _CrossProjections: Sendable {
    /// `D -> H·E`, `D -> Hkv·E` twice, and `D -> 2·Hkv·E` for key and value given as one tensor.
    let query: Linear, key: Linear, value: Linear, keyValue: Linear

    init(_ projection: Linear, queryRows: Int, keyValueRows: Int) throws {
        query = try projection._columns(0..<queryRows)
        // Key and value as parts of the key-value rows, which start on a panel of their own: at most that one
        // copy, and the value rows' if they do not start on a panel either.
        keyValue = try projection._columns(queryRows..<(queryRows + 2 * keyValueRows))
        key = try keyValue._columns(0..<keyValueRows)
        value = try keyValue._columns(keyValueRows..<(2 * keyValueRows))
    }
}

/// `[B, H, L, E]` to `[B, L, H·E]`: each head's row copied next to the others of its position.
@usableFromInline
func _interleavedHeads(_ x: Tensor) throws -> Tensor {
    let (B, H, L, E) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let result = try Tensor._floatMatrix([B, L, H * E])
    withExtendedLifetime((x, result)) {
        let (src, dst) = (x._floats, result._floats)
        for b in 0..<B {
            for h in 0..<H {
                for l in 0..<L {
                    (dst + ((b * L + l) * H + h) * E).update(from: src + ((b * H + h) * L + l) * E, count: E)
                }
            }
        }
    }
    return result
}
