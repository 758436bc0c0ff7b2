import Dispatch

/// The attention weights `softmax(scale · Q Kᵀ + bias)` of every query row, `[B, H, L, S]` (`[H, L, S]` for rank-3
/// inputs) in the query's dtype, computed as the reference kernel computes the weights it multiplies `V` by (in
/// `Double`, a sink's term in each denominator): a masked position weighs 0, a row that sees no key is all 0, and a
/// NaN or +infinity score makes its whole row NaN (as PyTorch's softmax). No dropout: the weights before it, as
/// PyTorch's `need_weights` returns them in evaluation mode.
func _attentionWeights<Modifier: _ScoreModifier>(
    query: Tensor, key: Tensor, shape: AttentionShape, modifier: Modifier, options: AttentionOptions
) throws -> Tensor {
    let (B, H, L, S, E) = (shape.batch, shape.queryHeads, shape.queryLength, shape.keyLength, shape.headDim)
    let weightsShape = Array(shape.outputShape.dropLast()) + [S]
    let weights = try Tensor(_zeros: weightsShape, dtype: query.dtype, argument: "attention weights")
    // The weights, the inputs in Double and one row of scores per thread.
    try _checkDoubleWork([_checkedProduct(B, H, L, S), query.count, key.count, _checkedProduct(S, SDPAThreads.processorCount)],
                         for: "the attention weights in float64")
    let q = query._elements(as: Double.self), k = key._elements(as: Double.self)
    let scale = options.resolvedScale(headDim: E)
    let (group, Hkv) = (shape.groupSize, shape.keyValueHeads)
    let sinks = options.sinks?.doubleScalars
    var result = [Double](repeating: 0, count: B * H * L * S)
    result.withUnsafeMutableBufferPointer { buffer in
        let base = _SendablePointer(buffer.baseAddress)
        DispatchQueue.concurrentPerform(iterations: B * H) { bh in
            let (b, h) = (bh / H, bh % H)
            let sink = sinks?[h] ?? -.infinity
            var scores = [Double](repeating: 0, count: S)
            for i in 0..<L {
                let row = _MathRow(q: q, k: k, queryRow: (bh * L + i) * E, kvHead: b * Hkv + h / group, keyLength: S, headDim: E, scale: scale)
                guard let softmax = row.softmaxNumerators(&scores, modifier: modifier, batch: b, head: h, query: i, sink: sink) else { continue }
                let out = base.pointer! + (bh * L + i) * S
                // A NaN or +infinity score: NaN everywhere in the row, as PyTorch's softmax gives it (and the output).
                guard softmax.denominator.isFinite else {
                    out.update(repeating: .nan, count: S)
                    continue
                }
                for j in 0..<S where scores[j] != -.infinity { out[j] = scores[j] / softmax.denominator }
            }
        }
    }
    result.withUnsafeBufferPointer { weights._storeContiguous(from: $0) }
    return weights
}
