import Dispatch
import Foundation

/// An attention result with the per-row log-sum-exp of the (scaled, biased) scores.
@usableFromInline
struct _AttentionResult {
    /// `[B, H, L, Ev]` (or `[H, L, Ev]`) in the query's dtype.
    @usableFromInline var output: Tensor
    /// `[B, H, L]` (or `[H, L]`) float32; `-inf` for fully masked rows.
    @usableFromInline var logSumExp: Tensor

    @usableFromInline init(output: Tensor, logSumExp: Tensor) {
        self.output = output
        self.logSumExp = logSumExp
    }

    @inlinable var pair: (output: Tensor, logSumExp: Tensor) { (output, logSumExp) }
}

/// The reference kernel: scores, bias and softmax element by element, in `Double`.
///
/// It is the definition every faster kernel is tested against, so it is written for
/// clarity: one row at a time, masked positions (a modified score of `-inf`) excluded
/// before the softmax, fully masked rows giving 0 and a log-sum-exp of `-inf`, and NaN
/// in an unmasked score propagating to its row; a sink logit (``AttentionOptions/sinks``) adds its
/// `exp` to the denominator. Parallel over `B x H`; each row's
/// arithmetic is sequential, so the result does not depend on the thread count.
@usableFromInline
func _mathAttention<Modifier: _ScoreModifier>(
    query: Tensor, key: Tensor, value: Tensor, shape: AttentionShape, modifier: Modifier, options: AttentionOptions
) -> _AttentionResult {
    let (B, H, L, S, E, Ev) = (shape.batch, shape.queryHeads, shape.queryLength, shape.keyLength, shape.headDim, shape.valueHeadDim)
    let Hkv = shape.keyValueHeads
    let q = query._elements(as: Double.self), k = key._elements(as: Double.self), v = value._elements(as: Double.self)
    let scale = options.resolvedScale(headDim: E)
    let dropout = Double(options.dropoutP)
    let random = _CounterRandom(seed: options.dropoutSeed ?? UInt64.random(in: .min ... .max))
    let group = shape.groupSize
    // Validated `[H]`: each head's sink logit joins its rows' denominators (-inf: none).
    let sinks = options.sinks?.doubleScalars

    var out = [Double](repeating: 0, count: B * H * L * Ev)
    var lse = [Float](repeating: -.infinity, count: B * H * L)
    out.withUnsafeMutableBufferPointer { outBuffer in
        lse.withUnsafeMutableBufferPointer { lseBuffer in
            let outBase = _SendablePointer(outBuffer.baseAddress), lseBase = _SendablePointer(lseBuffer.baseAddress)
            DispatchQueue.concurrentPerform(iterations: B * H) { bh in
                let (b, h) = (bh / H, bh % H)
                let kvHead = b * Hkv + h / group
                let sink = sinks?[h] ?? -.infinity
                var scores = [Double](repeating: 0, count: S)
                for i in 0..<L {
                    let qRow = (bh * L + i) * E
                    var rowMax = -Double.infinity
                    var sawNaN = false
                    for j in 0..<S {
                        let kRow = (kvHead * S + j) * E
                        var dot = 0.0
                        for e in 0..<E { dot += q[qRow + e] * k[kRow + e] }
                        let s = modifier.modify(dot * scale, batch: b, head: h, query: i, key: j)
                        scores[j] = s
                        if s.isNaN { sawNaN = true } else { rowMax = Swift.max(rowMax, s) }
                    }
                    let outRow = outBase.pointer! + (bh * L + i) * Ev
                    // Every position masked: the output row stays 0 and its log-sum-exp is the sink's (-inf without).
                    if rowMax == -.infinity && !sawNaN {
                        lseBase.pointer![bh * L + i] = Float(sink)
                        continue
                    }
                    let top = Swift.max(rowMax, sink)
                    let shift = top.isFinite ? top : 0
                    var sum = sink == -.infinity ? 0 : Foundation.exp(sink - shift)
                    for j in 0..<S where scores[j] != -.infinity {
                        scores[j] = Foundation.exp(scores[j] - shift)
                        sum += scores[j]
                    }
                    lseBase.pointer![bh * L + i] = Float(shift + Foundation.log(sum))
                    for j in 0..<S where scores[j] != -.infinity {
                        var p = scores[j] / sum
                        if dropout > 0 {
                            let counter = UInt64(((bh * L) + i) * S + j)
                            p = random.unit(counter) < dropout ? 0 : p / (1 - dropout)
                        }
                        if p == 0 { continue }
                        let vRow = (kvHead * S + j) * Ev
                        for d in 0..<Ev { outRow[d] += p * v[vRow + d] }
                    }
                }
            }
        }
    }
    let output = Tensor(_zeros: shape.outputShape, dtype: query.dtype)
    out.withUnsafeBufferPointer { output._storeContiguous(from: $0) }
    let lseShape = Array(shape.outputShape.dropLast())
    let logSumExp = Tensor(_zeros: lseShape, dtype: .float32)
    lse.withUnsafeBufferPointer { logSumExp._storeContiguous(from: $0) }
    return _AttentionResult(output: output, logSumExp: logSumExp)
}

/// A pointer handed to concurrent workers that write disjoint parts of one buffer.
@usableFromInline
struct _SendablePointer<T>: @unchecked Sendable {
    @usableFromInline let pointer: UnsafeMutablePointer<T>?
    @inlinable init(_ pointer: UnsafeMutablePointer<T>?) { self.pointer = pointer }
}
