import Foundation
import SDPA
import SDPATestSupport
import Testing

// PyTorch's SDPA broadcasts query, key and value as `matmul` does: any rank from 2, batch dimensions and
// heads of size 1 repeated (and with enableGQA key's and value's heads repeated to the query's first).
// A call on such inputs must match PyTorch (Fixtures/make_broadcast_fixtures.py: float64 output and
// autograd gradients) and be, bit for bit, the call on the inputs expanded by hand.

/// One case of `Fixtures/broadcast_manifest.json`.
struct BroadcastFixtureCase: Sendable, CustomTestStringConvertible {
    let name: String
    let query: String, key: String, value: String, mask: String?
    let enableGQA: Bool, isCausal: Bool
    let gradOutput: String, output: String
    let gradQuery: String, gradKey: String, gradValue: String, gradMask: String?

    var testDescription: String { name }

    static let expectedCount = 14

    static let all: [BroadcastFixtureCase] = FixtureManifest("broadcast_manifest.json", in: FixtureCase.directory).cases.map { c in
        BroadcastFixtureCase(
            name: c["name"] as! String, query: c["query"] as! String, key: c["key"] as! String, value: c["value"] as! String,
            mask: c["mask"] as? String, enableGQA: c["enableGQA"] as! Bool, isCausal: c["isCausal"] as! Bool,
            gradOutput: c["gradOutput"] as! String, output: c["output"] as! String,
            gradQuery: c["gradQuery"] as! String, gradKey: c["gradKey"] as! String, gradValue: c["gradValue"] as! String,
            gradMask: c["gradMask"] as? String)
    }

    func load(_ file: String) throws -> Tensor { try Tensor(contentsOf: FixtureCase.directory.appendingPathComponent(file)) }

    /// The forward and backward pass of the case on inputs converted to `dtype`.
    func run(_ dtype: DType) throws -> (output: Tensor, gradients: AttentionGradients) {
        let (q, k, v, dO) = (try load(query).converted(to: dtype), try load(key).converted(to: dtype),
                             try load(value).converted(to: dtype), try load(gradOutput).converted(to: dtype))
        if let mask {
            let bias = TensorBias(try load(mask))
            let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, enableGQA: enableGQA)
            return (out, try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                               attnMask: bias, enableGQA: enableGQA))
        }
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: isCausal, enableGQA: enableGQA)
        return (out, try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                           isCausal: isCausal, enableGQA: enableGQA))
    }
}

@Suite("Inputs that broadcast: any rank from 2, batch dimensions and heads of size 1")
struct BroadcastInputTests {
    /// float32 on the fused backend, float64 on the math one: output, and every gradient in its input's shape.
    @Test("matches PyTorch's float64 output and autograd gradients", arguments: BroadcastFixtureCase.all)
    func matchesPyTorch(_ fixture: BroadcastFixtureCase) throws {
        for dtype in [DType.float32, .float64] {
            let label = "\(fixture.name) \(dtype)"
            let (output, gradients) = try fixture.run(dtype)
            let (forward, backward) = dtype == .float32
                ? (Tolerance.float32, Tolerance(atol: 4e-6, rtol: 4e-6)) : (Tolerance(atol: 1e-12, rtol: 1e-11), Tolerance(atol: 1e-12, rtol: 1e-11))
            expectClose(output, try fixture.load(fixture.output), forward, "\(label) output", dtype: dtype)
            expectClose(gradients.query, try fixture.load(fixture.gradQuery), backward, "\(label) dQ", dtype: dtype)
            expectClose(gradients.key, try fixture.load(fixture.gradKey), backward, "\(label) dK", dtype: dtype)
            expectClose(gradients.value, try fixture.load(fixture.gradValue), backward, "\(label) dV", dtype: dtype)
            if let file = fixture.gradMask {
                // In the mask's dtype, float32; a rank-5 mask broadcast over some batch dimensions is summed from the
                // flattened batch's float32 gradients, a few roundings.
                let maskTolerance = dtype == .float32 ? backward : Tolerance(atol: 1e-6, rtol: 4 * Tolerance.unitRoundoff(.float32))
                expectClose(try #require(gradients.attnMask, "\(label): a float mask has a gradient"), try fixture.load(file), maskTolerance,
                            "\(label) dMask", dtype: .float32)
            }
        }
    }

    /// Each broadcast call is the call on its inputs expanded by hand (`Tensor.broadcast(to:)`, heads repeated
    /// for GQA), bit for bit, output and log-sum-exp; in float32, float16 and bfloat16, causal or with a bias.
    @Test(arguments: [DType.float32, .float16, .bfloat16])
    func forwardIsTheExpandedCall(dtype: DType) throws {
        // (query, key, value, enableGQA, the shapes expanded by hand, key and value heads repeated by)
        let cases: [([Int], [Int], [Int], Bool, [Int], [Int], [Int], Int, Int)] = [
            ([2, 3, 70, 16], [1, 3, 130, 16], [1, 3, 130, 8], false, [2, 3, 70, 16], [2, 3, 130, 16], [2, 3, 130, 8], 1, 1),
            ([1, 4, 9, 16], [3, 4, 20, 16], [3, 4, 20, 8], false, [3, 4, 9, 16], [3, 4, 20, 16], [3, 4, 20, 8], 1, 1),
            ([2, 1, 9, 16], [2, 4, 20, 16], [2, 1, 20, 8], false, [2, 4, 9, 16], [2, 4, 20, 16], [2, 4, 20, 8], 1, 1),
            ([9, 16], [20, 16], [20, 8], false, [1, 9, 16], [1, 20, 16], [1, 20, 8], 1, 1),
            ([9, 16], [2, 3, 20, 16], [3, 20, 8], false, [2, 3, 9, 16], [2, 3, 20, 16], [2, 3, 20, 8], 1, 1),
            ([2, 12, 9, 16], [2, 4, 20, 16], [1, 6, 20, 8], true, [2, 12, 9, 16], [2, 12, 20, 16], [2, 12, 20, 8], 3, 2),
            ([2, 8, 9, 16], [2, 1, 20, 16], [2, 2, 20, 8], true, [2, 8, 9, 16], [2, 2, 20, 16], [2, 2, 20, 8], 1, 1),
            ([3, 1, 2, 9, 16], [1, 2, 2, 20, 16], [3, 2, 2, 20, 8], false, [3, 2, 2, 9, 16], [3, 2, 2, 20, 16], [3, 2, 2, 20, 8], 1, 1),
        ]
        for (n, c) in cases.enumerated() {
            let (q, k, v) = (try randn(c.0, seed: UInt64(3 * n + 1), dtype: dtype), try randn(c.1, seed: UInt64(3 * n + 2), dtype: dtype),
                             try randn(c.2, seed: UInt64(3 * n + 3), dtype: dtype))
            // The GQA cases repeat key and value heads to the least common count (what the call runs), not to the query's.
            let (qx, kx, vx) = (try q.broadcast(to: c.4).contiguous(), try repeated(k, c.7).broadcast(to: c.5).contiguous(),
                                try repeated(v, c.8).broadcast(to: c.6).contiguous())
            let label = "case \(n) \(c.0) \(c.1) \(c.2) \(dtype)"
            let L = c.0[c.0.count - 2], S = c.1[c.1.count - 2]
            let outputShape = Array(c.4.dropLast()) + [8]
            for isCausal in [false, true] {
                let got = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: isCausal, enableGQA: c.3)
                let want = try scaledDotProductAttentionWithLogSumExp(query: qx, key: kx, value: vx, isCausal: isCausal, enableGQA: c.3)
                let wanted = c.0.count == 2 && c.1.count == 2 ? [L, 8] : outputShape
                #expect(got.output.shape == wanted, "\(label)")
                expectIdentical(got.output, try want.output.reshaped(wanted), "\(label) isCausal \(isCausal)")
                expectIdentical(got.logSumExp, try want.logSumExp.reshaped(Array(wanted.dropLast())), "\(label) isCausal \(isCausal) log-sum-exp")
            }
            let alibi = AlibiBias(numHeads: c.4[c.4.count - 3], seqLenQ: L, seqLenKV: S, causal: .lowerRight)
            expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: alibi, enableGQA: c.3).reshaped(outputShape),
                            try scaledDotProductAttention(query: qx, key: kx, value: vx, attnMask: alibi, enableGQA: c.3), "\(label) ALiBi")
        }
    }

    /// `t`'s heads (dimension -3) each repeated `count` times side by side, as PyTorch's `repeat_interleave`.
    private func repeated(_ t: Tensor, _ count: Int) throws -> Tensor {
        guard count > 1 else { return t }
        let lead = Array(t.shape.dropLast(3))
        let flat = try t.reshaped([lead.reduce(1, *)] + t.shape.suffix(3))
        return try repeatHeads(flat, count).reshaped(lead + [t.shape[t.rank - 3] * count] + t.shape.suffix(2))
    }

    /// A bias with per-batch parameters indexes the broadcast batch; a `TensorBias` mask broadcasts against the
    /// expanded scores; `explainSDPA` and `AttentionShape(flatteningBatchDimensionsOf:)` read the call's shape.
    @Test func biasesAndExplanations() throws {
        let q = try randn([3, 2, 5, 8], seed: 1), k = try randn([1, 2, 7, 8], seed: 2), v = try randn([1, 2, 7, 4], seed: 3)
        let (kx, vx) = (try k.broadcast(to: [3, 2, 7, 8]).contiguous(), try v.broadcast(to: [3, 2, 7, 4]).contiguous())
        let padding = KeyPaddingBias(validKeyLengths: [7, 3, 1], seqLenKV: 7)
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: padding),
                        try scaledDotProductAttention(query: q, key: kx, value: vx, attnMask: padding), "key padding per broadcast batch")
        #expect(throws: SDPAError.self) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: KeyPaddingBias(validKeyLengths: [7], seqLenKV: 7))
        }
        let mask = try Tensor.randomBools(shape: [3, 1, 5, 7], probability: 0.7, seed: 4)
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask)),
                        try scaledDotProductAttention(query: q, key: kx, value: vx, attnMask: TensorBias(mask)), "mask")
        let shape = try AttentionShape(flatteningBatchDimensionsOf: q, key: k, value: v, enableGQA: false)
        #expect(shape == AttentionShape(batch: 3, queryHeads: 2, keyValueHeads: 2, queryLength: 5, keyLength: 7, headDim: 8, valueHeadDim: 4))
        let explained = try explainSDPA(query: q, key: k, value: v, attnMask: TensorBias(mask))
        #expect(explained.backend == .fused && explained.route.contains("[3, 1, 5, 7]"), "\(explained)")
        // Rank-2 inputs run as rank 3.
        let (q2, k2, v2) = (try randn([5, 8], seed: 5), try randn([7, 8], seed: 6), try randn([7, 4], seed: 7))
        #expect(try AttentionShape(flatteningBatchDimensionsOf: q2, key: k2, value: v2, enableGQA: false)
                == AttentionShape(batch: 1, queryHeads: 1, keyValueHeads: 1, queryLength: 5, keyLength: 7, headDim: 8, valueHeadDim: 4, rank: 3))
        #expect(try explainSDPA(query: q2, key: k2, value: v2, isCausal: true).backend == .fused)
        // Rank 5 with a batch of 1 in the key and a mask of the inputs' rank: flattened as the call flattens it.
        let q5 = try randn([2, 3, 2, 5, 8], seed: 8), k5 = try randn([1, 3, 2, 7, 8], seed: 9), v5 = try randn([2, 1, 2, 7, 4], seed: 10)
        let mask5 = try Tensor.randomBools(shape: [2, 1, 1, 5, 7], probability: 0.7, seed: 11)
        let explained5 = try explainSDPA(query: q5, key: k5, value: v5, attnMask: TensorBias(mask5))
        #expect(explained5.route.contains("[6, 1, 5, 7]"), "\(explained5)")
        let out5 = try scaledDotProductAttention(query: q5, key: k5, value: v5, attnMask: TensorBias(mask5))
        expectIdentical(out5, try scaledDotProductAttention(
            query: q5, key: try k5.broadcast(to: [2, 3, 2, 7, 8]).contiguous(), value: try v5.broadcast(to: [2, 3, 2, 7, 4]).contiguous(),
            attnMask: TensorBias(mask5)), "rank 5")
    }

    /// The fused backward pass on broadcast inputs against the expanded call's, its dK and dV summed over the
    /// broadcast batch by hand: the same to float32 rounding (the package sums before rounding once).
    @Test func gradientsAreSummedOverTheBroadcast() throws {
        let q = try randn([3, 2, 70, 16], seed: 1), k = try randn([2, 130, 16], seed: 2), v = try randn([1, 2, 130, 8], seed: 3)
        let (kx, vx) = (try k.broadcast(to: [3, 2, 130, 16]).contiguous(), try v.broadcast(to: [3, 2, 130, 8]).contiguous())
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true)
        let dO = try randn(out.shape, seed: 4)
        let got = try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, isCausal: true)
        let want = try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: kx, value: vx, output: out, logSumExp: lse, isCausal: true)
        #expect(got.query.shape == q.shape && got.key.shape == k.shape && got.value.shape == v.shape)
        expectIdentical(got.query, want.query, "dQ")
        func summedOverBatch(_ t: Tensor) -> [Double] {
            let x = t.doubleScalars, part = x.count / t.shape[0]
            return (0..<part).map { i in (0..<t.shape[0]).reduce(0.0) { $0 + x[$1 * part + i] } }
        }
        expectClose(got.key, summedOverBatch(want.key), Tolerance(atol: 1e-6, rtol: 1e-6), "dK")
        expectClose(got.value, summedOverBatch(want.value), Tolerance(atol: 1e-6, rtol: 1e-6), "dV")
        // Rank 2: output, log-sum-exp and the output's gradient in the inputs' rank.
        let (q2, k2, v2) = (try randn([5, 8], seed: 5), try randn([7, 8], seed: 6), try randn([7, 4], seed: 7))
        let (out2, lse2) = try scaledDotProductAttentionWithLogSumExp(query: q2, key: k2, value: v2)
        #expect(out2.shape == [5, 4] && lse2.shape == [5])
        let grads2 = try scaledDotProductAttentionBackward(gradOutput: try randn([5, 4], seed: 8), query: q2, key: k2, value: v2,
                                                           output: out2, logSumExp: lse2)
        #expect(grads2.query.shape == [5, 8] && grads2.key.shape == [7, 8] && grads2.value.shape == [7, 4])
        // An output of another shape is named.
        #expect(throws: SDPAError.self) {
            try scaledDotProductAttentionBackward(gradOutput: try randn([5, 3], seed: 8), query: q2, key: k2, value: v2,
                                                  output: try randn([5, 3], seed: 8), logSumExp: lse2)
        }
    }

    /// A half-precision input's gradient over a broadcast is its float32 parts summed, rounded to its dtype once
    /// (not each part rounded first): the float32 call on the same values expanded by hand, its parts summed and
    /// rounded, bit for bit. The math backend (both half precisions: it computes in `Double` either way) and the
    /// fused one for float16 (widened to float32 as loaded, so its tiles are the float32 call's).
    @Test(arguments: [(SDPBackend.math, DType.float16), (.math, .bfloat16), (.fused, .float16)])
    func halfPrecisionGradientsAreRoundedOnce(backend: SDPBackend, dtype: DType) throws {
        // Key over the batch and value over batch and heads; the query over nothing: its gradient is the
        // float32 run's rounded.
        let q = try randn([4, 2, 33, 16], seed: 21, dtype: dtype), k = try randn([1, 2, 70, 16], seed: 22, dtype: dtype)
        let v = try randn([1, 70, 8], seed: 23, dtype: dtype)
        let (kx, vx) = (try k.broadcast(to: [4, 2, 70, 16]).contiguous(), try v.broadcast(to: [4, 2, 70, 8]).contiguous())
        let label = "\(backend) \(dtype)"
        try withSDPBackends([backend]) {
            let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true)
            let dO = try randn(out.shape, seed: 24, dtype: dtype)
            let got = try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                            isCausal: true)
            // The float32 call's own output: what the half-precision backward pass recomputes for `D`.
            let (q32, kx32, vx32) = (try q.converted(to: .float32), try kx.converted(to: .float32), try vx.converted(to: .float32))
            let (out32, lse32) = try scaledDotProductAttentionWithLogSumExp(query: q32, key: kx32, value: vx32, isCausal: true)
            let wide = try scaledDotProductAttentionBackward(
                gradOutput: try dO.converted(to: .float32), query: q32, key: kx32, value: vx32, output: out32, logSumExp: lse32, isCausal: true)
            expectIdentical(got.query, try wide.query.converted(to: dtype), "\(label) dQ")
            func summed(_ t: Tensor, into shape: [Int]) throws -> Tensor {
                let x = t.doubleScalars, part = shape.reduce(1, *), copies = x.count / part
                return try Tensor(shape: shape, scalars: (0..<part).map { i in (0..<copies).reduce(0.0) { $0 + x[$1 * part + i] } },
                                  dtype: dtype)
            }
            expectIdentical(got.key, try summed(wide.key, into: k.shape), "\(label) dK")
            expectIdentical(got.value, try summed(wide.value, into: v.shape), "\(label) dV")
        }
    }

    /// Zero heads broadcast as PyTorch's do; errors name the argument at fault and the shapes as given (rank 5
    /// included), forward and backward.
    @Test func zeroHeadsAndErrors() throws {
        let empty = try scaledDotProductAttention(query: try randn([2, 1, 4, 8], seed: 1), key: try randn([2, 0, 5, 8], seed: 2),
                                                  value: try randn([2, 0, 5, 6], seed: 3))
        #expect(empty.shape == [2, 0, 4, 6])
        let emptyGQA = try scaledDotProductAttention(query: try randn([0, 4, 8], seed: 1), key: try randn([1, 0, 5, 8], seed: 2),
                                                     value: try randn([1, 0, 5, 6], seed: 3), enableGQA: true)
        #expect(emptyGQA.shape == [1, 0, 4, 6])
        // One query head: the value's 3 heads conflict with the key's 4, and the error says so.
        let (q1, k4, v3) = (try randn([2, 1, 9, 16], seed: 4), try randn([2, 4, 20, 16], seed: 5), try randn([2, 3, 20, 8], seed: 6))
        #expect(throws: SDPAError.shapeMismatch(argument: "value", shape: v3.shape, other: "key", otherShape: k4.shape,
                                                reason: "the heads do not broadcast: 3 against 4 (each must be 1 or equal)")) {
            try scaledDotProductAttention(query: q1, key: k4, value: v3)
        }
        // GQA: the value's heads must divide the query's.
        #expect(throws: SDPAError.shapeMismatch(argument: "value", shape: v3.shape, other: "query", otherShape: [2, 8, 9, 16],
                                                reason: "with enableGQA the value's 3 heads must divide the query's 8, as the key's 4 do")) {
            try scaledDotProductAttention(query: try randn([2, 8, 9, 16], seed: 7), key: k4, value: v3, enableGQA: true)
        }
        // A rank-5 mask that does not broadcast is named with the inputs' batch dimensions, not the flattened B.
        let (q5, k5, v5) = (try randn([2, 3, 4, 5, 8], seed: 8), try randn([2, 3, 4, 7, 8], seed: 9), try randn([2, 3, 4, 7, 6], seed: 10))
        let badMask = try Tensor.randomBools(shape: [3, 3, 5, 7], probability: 0.5, seed: 11)
        #expect(throws: SDPAError.maskNotBroadcastable(mask: [3, 3, 5, 7], target: [2, 3, 4, 5, 7])) {
            try scaledDotProductAttention(query: q5, key: k5, value: v5, attnMask: TensorBias(badMask))
        }
        // Backward: forward results of another shape are named as given.
        let (q2, k2, v2) = (try randn([5, 8], seed: 12), try randn([7, 8], seed: 13), try randn([7, 4], seed: 14))
        let (out2, lse2) = try scaledDotProductAttentionWithLogSumExp(query: q2, key: k2, value: v2)
        let wrong = try randn([5, 3], seed: 15)
        #expect(throws: SDPAError.shapeMismatch(argument: "output", shape: [5, 3], other: "query", otherShape: [5, 8],
                                                reason: "the forward's output for these inputs has shape [5, 4] (key [7, 8], value [7, 4])")) {
            try scaledDotProductAttentionBackward(gradOutput: out2, query: q2, key: k2, value: v2, output: wrong, logSumExp: lse2)
        }
        #expect(throws: SDPAError.shapeMismatch(argument: "logSumExp", shape: [1, 5], other: "query", otherShape: [5, 8],
                                                reason: "the forward's log-sum-exp for these inputs has shape [5] (key [7, 8], value [7, 4])")) {
            try scaledDotProductAttentionBackward(gradOutput: out2, query: q2, key: k2, value: v2, output: out2,
                                                  logSumExp: try lse2.reshaped([1, 5]))
        }
    }
}
