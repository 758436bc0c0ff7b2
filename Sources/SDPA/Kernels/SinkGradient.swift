import Foundation

/// `dL/dsinks` (``AttentionOptions/sinks``), `[H]` in the sinks' dtype, from each row's log-sum-exp (the sink's
/// share included) and `D = rowsum(dO ∘ O)`, both `[B·H·L]` rows.
///
/// The sink is one more score in row `i`'s softmax whose value row is zero: its weight `p = exp(sink_h − lse)`
/// and `dP = 0`, so `dS = p · (0 − D)`, and `dL/dsinks[h] = −Σ_{b,i} p · D` (dropout does not touch it: it
/// drops only what feeds the output). Summed in `Double` in row order, so the bits do not depend on the
/// threads. A `-infinity` sink gets 0; a row whose log-sum-exp is `-inf` (a forward without the sink, a row that saw no key) adds
/// nothing; NaN propagates. The fused backward pass passes its float32 rows, the math one its `Double` rows.
func _sinkGradient<Row: BinaryFloatingPoint>(
    _ sinks: Tensor, shape: AttentionShape, logSumExp: [Row], rowDeltas: [Row]
) throws -> Tensor {
    let (B, H, L) = (shape.batch, shape.queryHeads, shape.queryLength)
    precondition(logSumExp.count == B * H * L && rowDeltas.count == B * H * L, "one log-sum-exp and one D per row")
    let logits = sinks.doubleScalars
    var gradient = [Double](repeating: 0, count: H)
    for b in 0..<B {
        for h in 0..<H where logits[h] != -.infinity {
            let first = (b * H + h) * L
            for i in first..<(first + L) {
                let weight = Foundation.exp(logits[h] - Double(logSumExp[i]))
                if weight != .infinity { gradient[h] -= weight * Double(rowDeltas[i]) }
            }
        }
    }
    let result = try Tensor(_zeros: sinks.shape, dtype: sinks.dtype, argument: "grads.sinks")
    gradient.withUnsafeBufferPointer { result._storeContiguous(from: $0) }
    return result
}
