/// A dense mask as one part of a fused bias: `TensorBias(mask).combined(with: causalLowerRight(L, S))`, or any
/// ``BiasComposition`` with a ``TensorBias`` in it, runs in the fused kernel, the mask read in place through its
/// broadcast strides tile by tile (a bool mask's empty tiles skipped, as alone), the other parts computed.
///
/// ```swift
/// // A model's padding mask (from its tokenizer) with ALiBi and a causal diagonal, in one fused call:
/// let bias = TensorBias(paddingMask)   // [B, 1, 1, S] bool
///     .combined(with: AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S, causal: .lowerRight))
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
/// ```
///
/// Alone, a ``TensorBias`` keeps its own route (``AttnBias/needsMaterialization`` is `true`: the dense-mask
/// kernels, and a float mask's gradient in ``AttentionGradients/attnMask``). Inside a composition a float mask gets
/// its gradient too (``AttentionGradients/attnMaskParts``, by part; ``AttentionGradients/attnMask``, the first):
/// the gradient that reaches its part, summed over the dimensions it is broadcast along, as alone (the backward
/// pass then runs packed sequences as one call, not as segments). ``FusedAttnBias/modifiesScores`` is a
/// property of the type, so a bool mask is applied on full tiles too (adding 0), and inputs with batch dimensions
/// of rank 5 and more take a composed mask only alone (it is not flattened with them: an error says so).
extension TensorBias: FusedAttnBias {
    /// The mask's own shape.
    public var materializedShape: [Int] { mask.shape }

    /// Visible where a bool mask is `true` and a float mask is not `-inf`.
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool {
        // In Double: a float64 mask's value below float32's range is a number, not a mask.
        _layout.bias(batch: batch, head: head, query: query, key: key) != -.infinity
    }

    /// The score plus the mask's value there (a bool mask adds 0).
    public func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        let bias = _layout.bias(batch: batch, head: head, query: query, key: key)
        return bias == -.infinity ? -.infinity : score + T(bias)
    }

    /// Read from the mask: empty where every entry masks, full where a bool mask masks none.
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        _reading(mask, _MaskTileVisibility(batch: batch, head: head, queries: queries, keys: keys))
    }

    /// The dense-mask kernels' tile code: the mask's rows added (`-inf` replacing the score where it masks).
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        _reading(mask, _MaskApplication(scores: scores, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys))
    }
}

/// A tile's visibility under the mask.
private struct _MaskTileVisibility: _DenseMaskReading {
    let batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    func callAsFunction<Element: _DenseMaskElement>(_ mask: _DenseMask<Element>) -> TileVisibility {
        mask.tileVisibility(batch: batch, head: head, queries: queries, keys: keys)
    }
}

/// The mask applied to a tile of scores.
private struct _MaskApplication: _DenseMaskReading {
    let scores: UnsafeMutablePointer<Float>, rowStride: Int, batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    func callAsFunction<Element: _DenseMaskElement>(_ mask: _DenseMask<Element>) {
        mask.apply(toScores: scores, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
    }
}
