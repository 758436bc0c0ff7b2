import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

// The attention weights against the attention call itself: weights · V in Double is the math backend's output on
// float64 inputs (1e-12), for every route (no bias, causal, fused biases, materialized masks, a bias known only as
// a materialized mask), with sinks, GQA, rank 3 and broadcast batch dimensions.

/// `Σ_j weights[b, h, i, j] · v[b, h / group, j, :]` in Double, `[B·H·L·Ev]`.
private func weighted(_ weights: Tensor, _ value: Tensor, heads H: Int, group: Int) -> [Double] {
    let w = weights.doubleScalars, v = value.doubleScalars
    let (S, Ev) = (value.shape[value.rank - 2], value.shape[value.rank - 1])
    let rows = w.count / Swift.max(1, S)
    var out = [Double](repeating: 0, count: rows * Ev)
    let L = weights.shape[weights.rank - 2]
    for r in 0..<rows {
        let (bh, kvHeads) = (r / L, H / group)
        let kv = (bh / H) * kvHeads + (bh % H) / group
        for j in 0..<S where w[r * S + j] != 0 {
            for e in 0..<Ev { out[r * Ev + e] += w[r * S + j] * v[(kv * S + j) * Ev + e] }
        }
    }
    return out
}

/// A bias that has only a materialized form (the RFC's default route).
private struct EveryOtherKey: AttnBias {
    let seqLenQ: Int, seqLenKV: Int
    var needsMaterialization: Bool { true }
    func materialize(device: Device) throws -> Tensor {
        try Tensor(shape: [seqLenQ, seqLenKV], bools: (0..<(seqLenQ * seqLenKV)).map { $0 % seqLenKV % 2 == 0 })
    }
}

@Suite("Attention weights")
struct AttentionWeightsTests {
    static let tolerance = Tolerance(atol: 1e-12, rtol: 1e-11)

    @Test func weightsTimesValuesAreTheOutput() throws {
        let (B, H, Hkv, L, S, E) = (2, 4, 2, 5, 9, 6)
        let (q, k, v) = try randomAttentionInputs(B, H, L, S, E, ev: 3, hkv: Hkv, seed: 11, dtype: .float64)
        let sinks = try Tensor(shape: [H], scalars: [0.5, -.infinity, -1, 2] as [Double])
        let mask = try randn([1, H, L, S], seed: 12, dtype: .float64)
        let cases: [(String, any AttnBias)] = [
            ("ALiBi + causal", AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S, causal: .lowerRight)),
            ("window + soft-cap", SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 2, right: 1).combined(with: SoftCapBias(cap: 3))),
            ("key padding", KeyPaddingBias(validKeyLengths: [9, 4], seqLenKV: S)),
            ("float mask", TensorBias(mask)),
            ("materialized only", EveryOtherKey(seqLenQ: L, seqLenKV: S)),
        ]
        try withSDPBackends([.math]) {
            for (withSinks, sinks) in [(false, nil), (true, sinks)] as [(Bool, Tensor?)] {
                for (label, bias) in cases {
                    let weights = try scaledDotProductAttentionWeights(query: q, key: k, attnMask: bias, enableGQA: true, sinks: sinks)
                    #expect(weights.shape == [B, H, L, S] && weights.dtype == .float64)
                    let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: true, sinks: sinks)
                    expectClose(weighted(weights, v, heads: H, group: H / Hkv), out.doubleScalars, Self.tolerance, "\(label), sinks \(withSinks)")
                }
                for isCausal in [false, true] {
                    let weights = try scaledDotProductAttentionWeights(query: q, key: k, isCausal: isCausal, scale: 0.3, enableGQA: true, sinks: sinks)
                    let out = try scaledDotProductAttention(query: q, key: k, value: v, isCausal: isCausal, scale: 0.3, enableGQA: true, sinks: sinks)
                    expectClose(weighted(weights, v, heads: H, group: H / Hkv), out.doubleScalars, Self.tolerance, "causal \(isCausal)")
                }
            }
        }
    }

    /// Rows sum to 1 (less the sink's share), masked positions weigh exactly 0, a row that sees no key is all 0.
    @Test func rowsAndMaskedPositions() throws {
        let (q, k, _) = try randomAttentionInputs(1, 2, 6, 4, 5, seed: 13)
        let weights = try scaledDotProductAttentionWeights(query: q, key: k, attnMask: causalLowerRight(6, 4)).doubleScalars
        for row in 0..<12 {
            let (i, values) = (row % 6, Array(weights[(row * 4)..<(row * 4 + 4)]))
            let visible = Swift.max(0, i - 2 + 1)  // lower-right: query i sees keys 0...i − 2
            #expect(values[visible...].allSatisfy { $0 == 0 }, "row \(row)")
            #expect(visible == 0 ? values.allSatisfy { $0 == 0 } : abs(values.reduce(0, +) - 1) < 1e-6, "row \(row)")
        }
    }

    /// A NaN or +infinity score makes its whole row NaN, masked positions included (PyTorch's softmax); the other rows
    /// are untouched.
    @Test func nonFiniteScoresMakeTheirRowNaN() throws {
        let (q, k, _) = try randomAttentionInputs(1, 1, 3, 4, 2, seed: 25)
        for bad in [Double.infinity, .nan] {
            var mask = [Double](repeating: 0, count: 12)
            (mask[4 + 1], mask[4 + 3]) = (bad, -.infinity)  // row 1: key 1 non-finite, key 3 masked
            let weights = try scaledDotProductAttentionWeights(query: q, key: k, attnMask: TensorBias(try Tensor(shape: [3, 4], scalars: mask)))
                .doubleScalars
            #expect(weights[4..<8].allSatisfy { $0.isNaN }, "\(bad)")
            #expect(weights[0..<4].allSatisfy { $0.isFinite } && weights[8..<12].allSatisfy { $0.isFinite }, "\(bad)")
        }
    }

    /// Rank 3, rank 2 and broadcast batch dimensions come back in the query's rank, as the attention output does.
    @Test func ranksAndBroadcastBatches() throws {
        let q = try randn([3, 2, 5, 4], seed: 14, dtype: .float64), k = try randn([2, 7, 4], seed: 15, dtype: .float64)
        let v = try randn([2, 7, 3], seed: 16, dtype: .float64)
        let five = try randn([2, 3, 2, 5, 4], seed: 17, dtype: .float64)
        for (query, label) in [(q, "broadcast key"), (try q.sliced(0..<1, along: 0).reshaped([2, 5, 4]), "rank 3"), (five, "rank 5")] {
            let weights = try scaledDotProductAttentionWeights(query: query, key: k, isCausal: true)
            #expect(weights.shape == Array(query.shape.dropLast()) + [7], "\(label)")
            let out = try withSDPBackends([.math]) { try scaledDotProductAttention(query: query, key: k, value: v, isCausal: true) }
            // The values as each batch entry reads them (broadcast over the query's batch dimensions).
            let values = try v.broadcast(to: Array(query.shape.dropLast(3)) + v.shape).contiguous()
            expectClose(weighted(weights, values, heads: 2, group: 1), out.doubleScalars, Self.tolerance, label)
        }
    }

    @Test func badInputsAreTheAttentionCallsErrors() throws {
        let (q, k, _) = try randomAttentionInputs(1, 2, 4, 5, 3, seed: 18)
        #expect(throws: SDPAError.self) { try scaledDotProductAttentionWeights(query: q, key: try randn([1, 2, 5, 4], seed: 19)) }
        #expect(throws: SDPAError.self) { try scaledDotProductAttentionWeights(query: q, key: k, scale: .nan) }
        #expect(throws: SDPAError.self) { try scaledDotProductAttentionWeights(query: q, key: k, attnMask: causalLowerRight(4, 6)) }
        #expect(throws: SDPAError.self) { try scaledDotProductAttentionWeights(query: q, key: k, sinks: try randn([3], seed: 20)) }
        #expect(throws: SDPAError.self) { try scaledDotProductAttentionWeights(query: q, key: k, attnMask: TensorBias(try randn([4, 4], seed: 21))) }
        #expect(throws: SDPAError.self) { try scaledDotProductAttentionWeights(query: q, key: try k.converted(to: .float64)) }
        let bools = try Tensor.randomBools(shape: [1, 2, 4, 3], seed: 22)
        #expect(throws: SDPAError.self) { try scaledDotProductAttentionWeights(query: bools, key: bools) }
    }

    /// A block's weights, multiplied by its value heads and projected, are its output; averaged, the mean of the heads'.
    @Test(arguments: [false, true])
    func blockWeightsGiveTheBlocksOutput(unbatched: Bool) throws {
        let (B, L, S, D, H, Hkv) = (2, 5, 7, 24, 4, 2)
        let E = D / H
        let block = try MultiHeadAttention.random(embedDim: D, heads: H, keyValueHeads: Hkv, seed: 22)
        var x = try Tensor.randomNormal(shape: [B, L, D], seed: 23), memory = try Tensor.randomNormal(shape: [B, S, D], seed: 24)
        if unbatched { (x, memory) = (try x.sliced(0..<1, along: 0).reshaped([L, D]), try memory.sliced(0..<1, along: 0).reshaped([S, D])) }
        let batches = unbatched ? 1 : B
        let bias = KeyPaddingBias(validKeyLengths: unbatched ? [5] : [7, 5], seqLenKV: S)
        let perHead = try block.attentionWeights(query: x, key: memory, attnMask: bias, averaged: false)
        #expect(perHead.shape == (unbatched ? [H, L, S] : [B, H, L, S]))
        // The value heads: the value rows of the fused projection on the memory.
        let projected = try block.inputProjection(memory).doubleScalars  // [.., S, (H + 2·Hkv)·E]
        let width = (H + 2 * Hkv) * E, w = perHead.doubleScalars
        var heads = [Double](repeating: 0, count: batches * L * H * E)
        for b in 0..<batches {
            for h in 0..<H {
                for i in 0..<L {
                    for j in 0..<S {
                        let p = w[((b * H + h) * L + i) * S + j]
                        for e in 0..<E { heads[((b * L + i) * H + h) * E + e] += p * projected[(b * S + j) * width + (H + Hkv) * E + (h / 2) * E + e] }
                    }
                }
            }
        }
        let headsTensor = try Tensor(shape: unbatched ? [L, H * E] : [B, L, H * E], scalars: heads.map { Float($0) })
        let expected = try block.outputProjection(headsTensor)
        expectClose(try block(query: x, key: memory, value: memory, attnMask: bias), expected, Tolerance(atol: 1e-5, rtol: 1e-4), "output")
        let averaged = try block.attentionWeights(query: x, key: memory, attnMask: bias).doubleScalars
        for n in 0..<(batches * L * S) {
            let (b, rest) = (n / (L * S), n % (L * S))
            let mean = (0..<H).map { w[(b * H + $0) * L * S + rest] }.reduce(0, +) / Double(H)
            #expect(abs(averaged[n] - mean) < 1e-6, "element \(n)")
        }
        let causal = try block.attentionWeights(query: x, key: x, isCausal: true, averaged: false)
        #expect(causal.shape == (unbatched ? [H, L, L] : [B, H, L, L]))
        #expect(causal.doubleScalars.enumerated().allSatisfy { n, p in (n % L) <= ((n / L) % L) || p == 0 }, "upper-left causal")
    }
}
