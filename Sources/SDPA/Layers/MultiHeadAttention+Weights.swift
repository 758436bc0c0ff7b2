extension MultiHeadAttention {
    /// The attention weights of ``callAsFunction(query:key:value:attnMask:training:dropoutSeed:)`` (evaluation mode):
    /// what `nn.MultiheadAttention(query, key, value, need_weights=True)` returns beside its output. `query` is
    /// `[B, L, D]` and `key` `[B, S, D]` (self-attention: `x` for both), or unbatched `[L, D]` and `[S, D]`; the
    /// weights are `[B, L, S]` averaged over the heads (`average_attn_weights=True`, the default) or `[B, H, L, S]`
    /// (unbatched: `[L, S]` or `[H, L, S]`), float32. See ``scaledDotProductAttentionWeights(query:key:attnMask:scale:enableGQA:sinks:)``.
    ///
    /// - Throws: ``SDPAError`` as the attention call does.
    public func attentionWeights<Bias: AttnBias>(query: Tensor, key: Tensor, attnMask: Bias, averaged: Bool = true) throws -> Tensor {
        try weights(query: query, key: key, averaged: averaged) { q, k in
            try scaledDotProductAttentionWeights(query: q, key: k, attnMask: attnMask, enableGQA: heads != keyValueHeads)
        }
    }

    /// ``attentionWeights(query:key:attnMask:averaged:)`` with no bias, or PyTorch's upper-left causal mask.
    ///
    /// - Throws: ``SDPAError`` as the attention call does.
    public func attentionWeights(query: Tensor, key: Tensor, isCausal: Bool = false, averaged: Bool = true) throws -> Tensor {
        try weights(query: query, key: key, averaged: averaged) { q, k in
            try scaledDotProductAttentionWeights(query: q, key: k, isCausal: isCausal, enableGQA: heads != keyValueHeads)
        }
    }

    /// The projections of `query` and `key`, `weigh` on their heads, and the heads' weights as PyTorch returns them.
    private func weights(query: Tensor, key: Tensor, averaged: Bool, _ weigh: (Tensor, Tensor) throws -> Tensor) throws -> Tensor {
        // The heads' weights laid side by side, as the heads' outputs are: `[B, L, H·S]` (`[L, H·S]` unbatched).
        let sideBySide = try attend(query: query, key: key, value: key) { q, k, _ in try weigh(q, k) }
        let S = key.shape[key.rank - 2], H = heads, rows = sideBySide.count / Swift.max(1, H * S)
        let perHead = try sideBySide.reshaped(Array(sideBySide.shape.dropLast()) + [H, S])  // [B, L, H, S]
        guard averaged else { return try perHead.transposed(perHead.rank - 3, perHead.rank - 2).contiguous() }
        var mean = [Float](repeating: 0, count: rows * S)
        let values = perHead.scalars
        for r in 0..<rows {
            for h in 0..<H {
                for s in 0..<S { mean[r * S + s] += values[(r * H + h) * S + s] }
            }
        }
        return try Tensor(shape: Array(sideBySide.shape.dropLast()) + [S], scalars: mean.map { $0 / Float(H) })
    }
}
