import Dispatch
import Foundation

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
) throws -> _AttentionResult {
    let (B, H, L, S, E, Ev) = (shape.batch, shape.queryHeads, shape.queryLength, shape.keyLength, shape.headDim, shape.valueHeadDim)
    let Hkv = shape.keyValueHeads
    let output = try Tensor(_zeros: shape.outputShape, dtype: query.dtype, argument: "output")
    let logSumExp = try Tensor(_zeros: Array(shape.outputShape.dropLast()), dtype: .float32, argument: "logSumExp")
    // The inputs and the output in Double, the log-sum-exp, and one row of scores per thread: all sized
    // from the inputs (8 bytes per element, counted generously).
    try _checkDoubleWork([query.count, key.count, value.count, B * H * L * Ev, B * H * L, _checkedProduct(S, SDPAThreads.processorCount)],
                         for: "the math backend's float64 copies of the inputs and output")
    let q = query._elements(as: Double.self), k = key._elements(as: Double.self), v = value._elements(as: Double.self)
    let scale = options.resolvedScale(headDim: E)
    let dropout = _Dropout(options, shape: shape)
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
                    let row = _MathRow(q: q, k: k, queryRow: (bh * L + i) * E, kvHead: kvHead, keyLength: S, headDim: E, scale: scale)
                    let outRow = outBase.pointer! + (bh * L + i) * Ev
                    // Every position masked: the output row stays 0 and its log-sum-exp is the sink's (-inf without).
                    guard let softmax = row.softmaxNumerators(&scores, modifier: modifier, batch: b, head: h, query: i, sink: sink) else {
                        lseBase.pointer![bh * L + i] = Float(sink)
                        continue
                    }
                    lseBase.pointer![bh * L + i] = Float(softmax.logSumExp)
                    let sum = softmax.denominator
                    for j in 0..<S where scores[j] != -.infinity {
                        var p = scores[j] / sum
                        if let dropout { p = dropout.apply(p, at: dropout.counter(batch: b, head: h, query: i, key: j)) }
                        if p == 0 { continue }
                        let vRow = (kvHead * S + j) * Ev
                        for d in 0..<Ev { outRow[d] += p * v[vRow + d] }
                    }
                }
            }
        }
    }
    out.withUnsafeBufferPointer { output._storeContiguous(from: $0) }
    lse.withUnsafeBufferPointer { logSumExp._storeContiguous(from: $0) }
    return _AttentionResult(output: output, logSumExp: logSumExp)
}

/// Throws ``SDPAError/allocationFailed(argument:byteCount:reason:)`` for `purpose` when arrays of these many `Double`s
/// (`nil`: a count past `Int`) cannot be had together.
func _checkDoubleWork(_ elementCounts: [Int?], for purpose: String) throws {
    var workBytes = 0
    for elements in elementCounts {
        let (sum, overflow) = workBytes.addingReportingOverflow(elements.flatMap { _checkedProduct(8, $0) } ?? .max)
        workBytes = overflow ? .max : sum
    }
    try _checkAllocation(byteCount: workBytes, for: purpose)
}

/// One query row of the reference kernel: its biased scores and their softmax, in `Double` (what the output and
/// ``_attentionWeights(query:key:shape:modifier:options:)`` both read).
struct _MathRow {
    let q: [Double], k: [Double]
    let queryRow: Int, kvHead: Int, keyLength: Int, headDim: Int, scale: Double

    /// Fills `scores` with each key's `exp(score − shift)` (`-infinity` where the bias masks it) and returns the
    /// softmax's denominator (the sink's term included) and the row's log-sum-exp; `nil` when every position is
    /// masked. A NaN score makes the denominator NaN, so that it reaches the whole row.
    func softmaxNumerators<Modifier: _ScoreModifier>(
        _ scores: inout [Double], modifier: Modifier, batch b: Int, head h: Int, query i: Int, sink: Double
    ) -> (denominator: Double, logSumExp: Double)? {
        var rowMax = -Double.infinity
        var sawNaN = false
        for j in 0..<keyLength {
            let kRow = (kvHead * keyLength + j) * headDim
            var dot = 0.0
            for e in 0..<headDim { dot += q[queryRow + e] * k[kRow + e] }
            let s = modifier.biasedScore(dot * scale, batch: b, head: h, query: i, key: j)
            scores[j] = s
            if s.isNaN { sawNaN = true } else { rowMax = Swift.max(rowMax, s) }
        }
        if rowMax == -.infinity && !sawNaN { return nil }
        let top = Swift.max(rowMax, sink)
        let shift = top.isFinite ? top : 0
        var sum = sink == -.infinity ? 0 : Foundation.exp(sink - shift)
        for j in 0..<keyLength where scores[j] != -.infinity {
            scores[j] = Foundation.exp(scores[j] - shift)
            sum += scores[j]
        }
        return (sum, shift + Foundation.log(sum))
    }
}
