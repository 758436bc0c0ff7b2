import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// Attention in `Double` from scores given as float32 values (what a float32 kernel can at best hold):
/// `[H, L, ≤S]` scores (row `i` over keys `0..<scores[h][i].count`), `[H, S, Ev]` values; the softmax shifted
/// by each row's maximum, so any finite score is exact.
private func shiftedSoftmaxReference(scores: [[[Float]]], values: [Double], S: Int, Ev: Int) -> [Double] {
    var output = [Double]()
    for (h, rows) in scores.enumerated() {
        for row in rows {
            let m = Double(row.max()!)
            let weights = row.map { Foundation.exp(Double($0) - m) }
            let total = weights.reduce(0, +)
            for d in 0..<Ev {
                output.append(weights.indices.reduce(0.0) { $0 + weights[$1] * values[(h * S + $1) * Ev + d] } / total)
            }
        }
    }
    return output
}

/// Issue 15, item 4: the online softmax is right for any finite scores, on both backends and every family:
/// no `inf − inf`, no finite row flushed to "fully masked".
@Suite("Large finite logits")
struct LargeLogitTests {
    static let cases: [(SDPBackend, KernelFamily?)] = [(.math, nil)] + KernelFamily.available.map { (.fused, $0) }

    /// Runs `body` on `backend` (with `family`, on one thread, for the fused kernel).
    static func run<R>(_ backend: SDPBackend, _ family: KernelFamily?, _ body: () throws -> R) throws -> R {
        guard let family else { return try withSDPBackends([backend], body) }
        return try family.run { try withSDPAThreads(1) { try withSDPBackends([backend], body) } }
    }

    @Test("scale 1e9 on ordinary inputs: the float64 softmax of the float32-rounded scores", arguments: cases)
    func hugeScale(_ backend: SDPBackend, _ family: KernelFamily?) throws {
        let (H, L, S, E) = (2, 5, 150, 8)
        let (q, k, v) = try randomAttentionInputs(1, H, L, S, E, seed: 23)
        let scale: Float = 1e9
        for mask in [false, true] {
            let out = try Self.run(backend, family) {
                try scaledDotProductAttention(query: q, key: k, value: v, isCausal: mask, scale: scale)
            }
            let (qs, ks) = (q.doubleScalars, k.doubleScalars)
            let scores: [[[Float]]] = (0..<H).map { h in
                (0..<L).map { i in
                    (0..<(mask ? i + 1 : S)).map { j in
                        Float((0..<E).reduce(0.0) { $0 + qs[(h * L + i) * E + $1] * ks[(h * S + j) * E + $1] } * Double(scale))
                    }
                }
            }
            let expected = shiftedSoftmaxReference(scores: scores, values: v.doubleScalars, S: S, Ev: E)
            let label = "\(backend) \(family?.name ?? "") causal=\(mask)"
            #expect(!out.scalars.contains { !$0.isFinite }, "\(label): non-finite output")
            expectClose(out, expected, .float32, label)
        }
    }

    @Test("inputs of ±1e19 (scores near -1.4e38, all equal): the values' average, not a masked row", arguments: cases)
    func scoresNearTheFloatLimit(_ backend: SDPBackend, _ family: KernelFamily?) throws {
        let (H, L, S, E) = (2, 3, 70, 2)
        let q = try Tensor(shape: [1, H, L, E], scalars: [Float](repeating: 1e19, count: H * L * E))
        let k = try Tensor(shape: [1, H, S, E], scalars: [Float](repeating: -1e19, count: H * S * E))
        let v = try randn([1, H, S, 4], seed: 29)
        let (out, lse) = try Self.run(backend, family) {
            try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v)
        }
        let score = Float(-2e38 / 2.0.squareRoot())
        let scores = [[[Float]]](repeating: [[Float]](repeating: [Float](repeating: score, count: S), count: L), count: H)
        let label = "\(backend) \(family?.name ?? "")"
        expectClose(out, shiftedSoftmaxReference(scores: scores, values: v.doubleScalars, S: S, Ev: 4), .float32, label)
        // log-sum-exp = score + log S, finite.
        expectClose(lse, [Double](repeating: Double(score) + Foundation.log(Double(S)), count: H * L), .logSumExp, "\(label) log-sum-exp")
    }
}
