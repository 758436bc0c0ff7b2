/// One sequence's queries in a batched attention call over a ``PagedKVCache``.
public struct PagedAttentionQuery: Sendable {
    /// The sequence whose keys and values the queries attend to.
    public var sequence: PagedKVCache.SequenceID
    /// `[H, L, E]` (or `[1, H, L, E]`) in the cache's dtype: `L = 1` to decode a token, more for a
    /// prefill chunk; `H` a multiple of the cache's `Hkv` (grouped-query attention).
    public var query: Tensor

    /// Queries `query` against `sequence`.
    public init(sequence: PagedKVCache.SequenceID, query: Tensor) {
        self.sequence = sequence
        self.query = query
    }
}

/// What one sequence's attention is, for building its bias: the sizes, in the sequence's own coordinates.
public struct PagedAttentionSequence: Sendable, Hashable {
    /// The entry's index in the call's list of queries.
    public var index: Int
    /// The sequence.
    public var sequence: PagedKVCache.SequenceID
    /// `L`, the entry's query rows: the last `L` positions of the sequence under the causal mask.
    public var queryLength: Int
    /// `S`, the sequence's length in the cache.
    public var keyLength: Int
}

extension PagedKVCache {
    /// Attention for a batch of sequences of any lengths (continuous batching): each entry's queries
    /// against its sequence's keys and values, causal lower-right within the sequence (the queries are
    /// its last `L` positions; `causal: false` lets them see every key), with grouped-query attention.
    ///
    /// ```swift
    /// let outputs = try cache.attention(running.map { PagedAttentionQuery(sequence: $0.id, query: $0.nextQuery) })
    /// ```
    ///
    /// Each result, `[H, L, Ev]` (or `[1, H, L, Ev]`, as the query) in the cache's dtype, is bit for bit
    /// ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
    /// on the same sequence as contiguous tensors with `attnMask: causalLowerRight(L, S)`.
    ///
    /// The fused kernel reads the keys and values in place, through the block table: no copy of any
    /// sequence's history, whatever its length. (When the backend chosen is `.math`, in
    /// ``withSDPBackends(_:_:)``, the sequences are gathered into contiguous tensors for it.) `sinks`, one
    /// logit per query head as in ``AttentionOptions/sinks``, join every row's softmax.
    /// - Throws: ``SDPAError`` naming `queries[n]` when a query does not fit the cache, or its sequence is
    ///   not live; any error of the attention call.
    public func attention(
        _ queries: [PagedAttentionQuery], scale: Double? = nil, causal: Bool = true, sinks: Tensor? = nil
    ) throws -> [Tensor] {
        try pagedAttention(queries, scale: scale, causal: causal, sinks: sinks, logSumExp: false, bias: Self.noBias)
            .map(\.output)
    }

    /// ``attention(_:scale:causal:)`` with a bias per sequence composed in: `bias` builds it from the
    /// entry's sizes (in the sequence's coordinates: query `i` is row `i` of the entry's queries, key
    /// `j` position `j` of the sequence, batch 0), and it is combined with the causal mask as
    /// `causalLowerRight(L, S).combined(with: bias(entry))` (the bias alone with `causal: false`). A ``TensorBias``
    /// (a mask per sequence) runs as a fused part here, as inside any composition, even alone: bit for bit the
    /// contiguous call with it composed (`scaledDotProductAttention` takes a lone one by the dense route).
    ///
    /// ```swift
    /// let outputs = try cache.attention(batch) { s in
    ///     AlibiBias(numHeads: 32, seqLenQ: s.queryLength, seqLenKV: s.keyLength)
    ///         .combined(with: SlidingWindowBias(seqLenQ: s.queryLength, seqLenKV: s.keyLength, left: 4096))
    /// }
    /// ```
    /// `bias` runs with the cache unlocked (its blocks pinned), so it may read the cache.
    /// - Throws: as ``attention(_:scale:causal:)``, and whatever `bias` throws or its validation says.
    public func attention<Bias: FusedAttnBias>(
        _ queries: [PagedAttentionQuery], scale: Double? = nil, causal: Bool = true, sinks: Tensor? = nil,
        bias: (PagedAttentionSequence) throws -> Bias
    ) throws -> [Tensor] {
        try withoutActuallyEscaping(bias) { bias in
            try pagedAttention(queries, scale: scale, causal: causal, sinks: sinks, logSumExp: false, bias: bias).map(\.output)
        }
    }

    /// ``attention(_:scale:causal:)`` that also returns each entry's log-sum-exp, `[H, L]` (or `[1, H, L]`)
    /// float32, as ``scaledDotProductAttentionWithLogSumExp(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``.
    public func attentionWithLogSumExp(
        _ queries: [PagedAttentionQuery], scale: Double? = nil, causal: Bool = true, sinks: Tensor? = nil
    ) throws -> [(output: Tensor, logSumExp: Tensor)] {
        try pagedAttention(queries, scale: scale, causal: causal, sinks: sinks, logSumExp: true, bias: Self.noBias)
            .map { ($0.output, $0.logSumExp!) }
    }

    /// ``attention(_:scale:causal:bias:)`` that also returns each entry's log-sum-exp.
    public func attentionWithLogSumExp<Bias: FusedAttnBias>(
        _ queries: [PagedAttentionQuery], scale: Double? = nil, causal: Bool = true, sinks: Tensor? = nil,
        bias: (PagedAttentionSequence) throws -> Bias
    ) throws -> [(output: Tensor, logSumExp: Tensor)] {
        try withoutActuallyEscaping(bias) { bias in
            try pagedAttention(queries, scale: scale, causal: causal, sinks: sinks, logSumExp: true, bias: bias)
                .map { ($0.output, $0.logSumExp!) }
        }
    }

    /// No bias of the entries' own: the causal mask alone, or none.
    private static var noBias: ((PagedAttentionSequence) throws -> CausalBias)? { nil }

    /// Every entry's queries against its sequence, each the call `scaledDotProductAttention` would make
    /// on the sequence as contiguous tensors (same shape, bias, options and backend), the fused kernel
    /// reading the sequence's blocks in place: the entries on the fused backend run as one parallel job.
    private func pagedAttention<Bias: FusedAttnBias>(
        _ queries: [PagedAttentionQuery], scale: Double?, causal: Bool, sinks: Tensor?, logSumExp: Bool,
        bias: ((PagedAttentionSequence) throws -> Bias)?
    ) throws -> [(output: Tensor, logSumExp: Tensor?)] {
        let options = AttentionOptions(scale: scale, enableGQA: true, sinks: sinks)
        try options.validate()  // the scale, also for an empty batch
        for (n, entry) in queries.enumerated() { try check(entry.query, argument: "queries[\(n)].query") }
        return try withViews(of: queries.map(\.sequence), naming: { "queries[\($0)].sequence" }) { views in
            var shapes = [AttentionShape]()
            for (entry, view) in zip(queries, views) {
                let q = entry.query
                let shape = AttentionShape(
                    batch: 1, queryHeads: q.shape[q.rank - 3], keyValueHeads: keyValueHeads, queryLength: q.shape[q.rank - 2],
                    keyLength: view.length, headDim: headDim, valueHeadDim: valueHeadDim, rank: q.rank)
                try options.validate(for: shape)
                shapes.append(shape)
            }
            func run<B: FusedAttnBias>(_ masks: [B]) throws -> [_AttentionResult] {
                for (mask, shape) in zip(masks, shapes) { try mask.validate(for: shape) }
                return try Self.attention(queries, views, shapes, masks.map { _FusedBiasKernel(bias: $0) }, options, .structured, logSumExp)
            }
            let sizes = shapes.indices.map { n in
                PagedAttentionSequence(index: n, sequence: queries[n].sequence, queryLength: shapes[n].queryLength, keyLength: shapes[n].keyLength)
            }
            let results: [_AttentionResult]
            if let bias {
                let own = try sizes.map(bias)
                results = causal ? try run(zip(sizes, own).map { causalLowerRight($0.queryLength, $0.keyLength).combined(with: $1) }) : try run(own)
            } else if causal {
                results = try run(sizes.map { causalLowerRight($0.queryLength, $0.keyLength) })
            } else {
                results = try Self.attention(queries, views, shapes, shapes.map { _ in _NoScoreModifier() }, options, .none, logSumExp)
            }
            return results.map { ($0.output, logSumExp ? $0.logSumExp : nil) }
        }
    }

    /// The entries on the backend each one's request selects: those on the fused kernel as one job
    /// reading their views' blocks in place (writing the log-sum-exp when `logSumExp` asks for it), those
    /// on the math backend (forced) gathered into contiguous tensors for it, one by one.
    private static func attention<Modifier: _ScoreModifier>(
        _ queries: [PagedAttentionQuery], _ views: [PagedSequenceView], _ shapes: [AttentionShape], _ modifiers: [Modifier],
        _ options: AttentionOptions, _ mask: _KernelRequest.Mask, _ logSumExp: Bool
    ) throws -> [_AttentionResult] {
        var results = [_AttentionResult?](repeating: nil, count: queries.count)
        var fused = [(index: Int, call: _FusedCall<Modifier, _PagedKeyValues>)]()
        for n in queries.indices {
            let (q, view, shape) = (queries[n].query, views[n], shapes[n])
            switch try _KernelRequest(shape: shape, dtype: q.dtype, options: options, mask: mask).selectBackend() {
            case .fused:
                fused.append((n, try _FusedCall(query: q, keysAndValues: _PagedKeyValues(view), shape: shape, modifier: modifiers[n],
                                                options: options, dropout: _Dropout(options, shape: shape), logSumExp: logSumExp)))
            case .math:
                var (k, v) = (try view.contiguousKeys(), try view.contiguousValues())
                if q.rank == 4 { (k, v) = (k._unsqueezed(at: 0), v._unsqueezed(at: 0)) }
                results[n] = try _mathAttention(query: q, key: k, value: v, shape: shape, modifier: modifiers[n], options: options)
            }
        }
        try _runFusedCalls(fused.map { $0.call })
        for (n, call) in fused { results[n] = call.writer.result }
        return results.map { $0! }
    }

    /// Throws unless `query` is `[H, L, E]` or `[1, H, L, E]` in the cache's dtype with `H` a positive
    /// multiple of `Hkv`.
    private func check(_ query: Tensor, argument: String) throws {
        let layout = "[H, L, E] or [1, H, L, E] with E = \(headDim) and H a multiple of Hkv = \(keyValueHeads)"
        guard query.rank == 3 || (query.rank == 4 && query.shape[0] == 1) else {
            throw SDPAError.rank(argument: argument, shape: query.shape, expected: layout)
        }
        guard query.dtype == dtype else {
            throw SDPAError.unsupportedDType(argument: argument, dtype: query.dtype, reason: "the cache stores \(dtype); queries must match it")
        }
        let (heads, width) = (query.shape[query.rank - 3], query.shape[query.rank - 1])
        guard width == headDim, heads > 0, heads % keyValueHeads == 0 else {
            throw SDPAError.invalidShape(argument: argument, shape: query.shape, reason: "expected " + layout)
        }
    }
}
