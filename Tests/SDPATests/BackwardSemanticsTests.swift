import Foundation
import SDPA
import SDPATestSupport
import Testing

// The backward pass's semantics beyond the PyTorch fixtures: finite differences, the rounding of
// half-precision gradients, GQA, strided views, masked rows and keys, the routes of every overload,
// dropout shared with the forward pass, thread counts, and every error.

/// The forward pass (with its log-sum-exp) and the backward pass of one call.
private func gradients(
    _ q: Tensor, _ k: Tensor, _ v: Tensor, _ dO: Tensor, bias: (any AttnBias)? = nil, isCausal: Bool = false,
    scale: Float? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false
) throws -> AttentionGradients {
    guard let bias else {
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(
            query: q, key: k, value: v, isCausal: isCausal, scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA)
        return try scaledDotProductAttentionBackward(
            gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, isCausal: isCausal,
            scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA)
    }
    let (out, lse) = try scaledDotProductAttentionWithLogSumExp(
        query: q, key: k, value: v, attnMask: bias, scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA)
    return try scaledDotProductAttentionBackward(
        gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: bias,
        scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA)
}

/// `Σ dO ∘ attention(q, k, v)` in `Double` on the math backend: the loss whose gradients the backward pass computes.
private func loss(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ dO: Tensor, bias: (any AttnBias)?, enableGQA: Bool = false) throws -> Double {
    let out = try withSDPBackends([.math]) {
        try attentionOutput(q, k, v, bias: bias, enableGQA: enableGQA)
    }
    return zip(out.doubleScalars, dO.doubleScalars).reduce(0) { $0 + $1.0 * $1.1 }
}

private func attentionOutput(_ q: Tensor, _ k: Tensor, _ v: Tensor, bias: (any AttnBias)?, enableGQA: Bool) throws -> Tensor {
    guard let bias else { return try scaledDotProductAttention(query: q, key: k, value: v, enableGQA: enableGQA) }
    return try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: enableGQA)
}

/// `t` with element `index` (row-major) moved by `delta`, in float64.
private func nudged(_ t: Tensor, _ index: Int, by delta: Double) throws -> Tensor {
    var values = t.doubleScalars
    values[index] += delta
    return try Tensor(shape: t.shape, scalars: values)
}

/// A central difference of `loss` in the element `index` of the input `which` (0: q, 1: k, 2: v).
private func centralDifference(
    _ inputs: [Tensor], _ dO: Tensor, which: Int, index: Int, bias: (any AttnBias)?, enableGQA: Bool = false
) throws -> Double {
    let h = 1e-6
    var up = inputs, down = inputs
    up[which] = try nudged(inputs[which], index, by: h)
    down[which] = try nudged(inputs[which], index, by: -h)
    return (try loss(up[0], up[1], up[2], dO, bias: bias, enableGQA: enableGQA)
        - loss(down[0], down[1], down[2], dO, bias: bias, enableGQA: enableGQA)) / (2 * h)
}

@Suite("Backward pass: semantics")
struct BackwardSemanticsTests {
    /// Biases whose gradients must match central differences: every kind of score modifier and mask.
    static let differencedBiases: [(String, (any AttnBias)?)] = {
        let capped: any AttnBias = SoftCapBias(cap: 2).combined(with: AlibiBias(slopes: [0.4, -0.2], seqLenQ: 4, seqLenKV: 6, causal: .lowerRight))
        let windowed: any AttnBias = SlidingWindowBias(seqLenQ: 4, seqLenKV: 6, left: 2, right: 1)
            .combined(with: KeyPaddingBias(validKeyLengths: [5], seqLenKV: 6))
        let values: [Float] = (0..<24).map { n in n == 7 ? -Float.infinity : Float(n % 5) * 0.3 }
        let mask: any AttnBias = TensorBias(try! Tensor(shape: [4, 6], scalars: values))
        return [("none", nil), ("soft-cap 2 then ALiBi, causal", capped), ("window + padding", windowed), ("float mask", mask)]
    }()

    @Test("dQ, dK and dV match central differences of the loss in float64 (GQA, Ev ≠ E)", arguments: differencedBiases)
    func finiteDifferences(_ label: String, _ bias: (any AttnBias)?) throws {
        let (q32, k32, v32) = try randomAttentionInputs(1, 2, 4, 6, 5, ev: 3, hkv: 1, seed: 200)
        let inputs = try [q32, k32, v32].map { try $0.converted(to: .float64) }
        let dO = try randn([1, 2, 4, 3], seed: 201, dtype: .float64)
        let grads = try gradients(inputs[0], inputs[1], inputs[2], dO, bias: bias, scale: nil, enableGQA: true)
        for (which, gradient) in [grads.query, grads.key, grads.value].enumerated() {
            let analytic = gradient.doubleScalars
            let numeric = try analytic.indices.map { try centralDifference(inputs, dO, which: which, index: $0, bias: bias, enableGQA: true) }
            // A central difference with h = 1e-6 is good to ~1e-9 here.
            expectClose(analytic, numeric, Tolerance(atol: 1e-8, rtol: 1e-7), "\(label): input \(which)")
        }
    }

    @Test("math backend: float16 and bfloat16 gradients are the Double gradients of the same values, rounded once",
          arguments: [DType.float16, .bfloat16])
    func reducedPrecisionRoundsOnce(_ dtype: DType) throws {
        try withSDPBackends([.math]) { try reducedPrecisionOnTheMathBackend(dtype) }
    }

    private func reducedPrecisionOnTheMathBackend(_ dtype: DType) throws {
        let (q32, k32, v32) = try randomAttentionInputs(2, 2, 5, 7, 8, ev: 6, seed: 210)
        let dO32 = try randn([2, 2, 5, 6], seed: 211)
        let mask = TensorBias(try randn([5, 7], seed: 212))
        let alibi = AlibiBias(slopes: [0.5, 0.25], seqLenQ: 5, seqLenKV: 7, causal: .lowerRight)
        let (q, k, v, dO) = (try q32.converted(to: dtype), try k32.converted(to: dtype), try v32.converted(to: dtype), try dO32.converted(to: dtype))
        let wide = { (t: Tensor) in try t.converted(to: .float64) }
        for (label, bias) in [("float mask", mask as any AttnBias), ("alibi", alibi)] {
            let low = try gradients(q, k, v, dO, bias: bias)
            let exact = try gradients(wide(q), wide(k), wide(v), wide(dO), bias: bias)
            expectIdentical(low.query, try exact.query.converted(to: dtype), "\(dtype) \(label) dQ")
            expectIdentical(low.key, try exact.key.converted(to: dtype), "\(dtype) \(label) dK")
            expectIdentical(low.value, try exact.value.converted(to: dtype), "\(dtype) \(label) dV")
            if let a = low.attnMask, let b = exact.attnMask { expectIdentical(a, b, "\(dtype) \(label) dMask") }
            #expect(low.alibiSlopes == exact.alibiSlopes, "\(dtype) \(label): the slopes' gradient is computed in Double from the same values")
        }
    }

    @Test("GQA: dQ as with repeated K/V heads, dK and dV summed over each group")
    func groupedQueryAttention() throws {
        let (q, k, v) = try randomAttentionInputs(2, 6, 5, 7, 4, ev: 3, hkv: 2, seed: 220, dtype: .float64)
        let dO = try randn([2, 6, 5, 3], seed: 221, dtype: .float64)
        let bias = AlibiBias(numHeads: 6, seqLenQ: 5, seqLenKV: 7, causal: .lowerRight)
        let gqa = try gradients(q, k, v, dO, bias: bias, enableGQA: true)
        let repeated = try gradients(q, try repeatHeads(k, 3), try repeatHeads(v, 3), dO, bias: bias)
        expectClose(gqa.query, repeated.query, Tolerance(atol: 1e-14, rtol: 1e-13), "dQ")
        for (got, perHead, label) in [(gqa.key, repeated.key, "dK"), (gqa.value, repeated.value, "dV")] {
            expectClose(got.doubleScalars, summedHeadGroups(perHead, 3), Tolerance(atol: 1e-13, rtol: 1e-12), label)
        }
        #expect(gqa.alibiSlopes != nil)
        expectClose(gqa.alibiSlopes!, repeated.alibiSlopes!, Tolerance(atol: 1e-12, rtol: 1e-12), "dSlopes")
    }

    @Test("strided views ([B, L, H, E] transposed) give the gradients of their contiguous copies, bit for bit")
    func stridedViews() throws {
        let q = try randn([2, 5, 3, 4], seed: 230).transposed(1, 2)
        let k = try randn([2, 6, 3, 4], seed: 231).transposed(1, 2), v = try randn([2, 6, 3, 2], seed: 232).transposed(1, 2)
        let dO = try randn([2, 5, 3, 2], seed: 233).transposed(1, 2)
        #expect(!q.isContiguous && !dO.isContiguous)
        let bias = causalLowerRight(5, 6)
        let strided = try gradients(q, k, v, dO, bias: bias)
        let copied = try gradients(q.contiguous(), k.contiguous(), v.contiguous(), dO.contiguous(), bias: bias)
        for (a, b) in [(strided.query, copied.query), (strided.key, copied.key), (strided.value, copied.value)] {
            expectIdentical(a, b)
            #expect(a.isContiguous && a.shape == b.shape)
        }
    }

    @Test("3-D inputs give the 4-D gradients without the batch dimension")
    func threeDimensionalInputs() throws {
        let (q, k, v) = try randomAttentionInputs(1, 3, 4, 5, 6, ev: 2, seed: 240)
        let dO = try randn([1, 3, 4, 2], seed: 241)
        let mask = TensorBias(try randn([3, 4, 5], seed: 242))
        let four = try gradients(q, k, v, dO, bias: mask)
        let drop = { (t: Tensor) in try t.reshaped(Array(t.shape.dropFirst())) }
        let three = try gradients(try drop(q), try drop(k), try drop(v), try drop(dO), bias: mask)
        expectIdentical(three.query, try drop(four.query))
        expectIdentical(three.key, try drop(four.key))
        expectIdentical(three.value, try drop(four.value))
        expectIdentical(try #require(three.attnMask), try #require(four.attnMask))
    }

    @Test("math backend: fully masked rows give zero gradients, never NaN; a NaN value at a masked key reaches nothing")
    func maskedRowsAndKeys() throws {
        try withSDPBackends([.math]) { try maskedRowsAndKeysOnTheMathBackend() }
    }

    private func maskedRowsAndKeysOnTheMathBackend() throws {
        let (q, k, v0) = try randomAttentionInputs(1, 2, 6, 4, 5, seed: 250)
        let dO = try randn([1, 2, 6, 5], seed: 251)
        // Lower-right causal with L > S: the first two rows see no key; key 3 is masked from every row
        // but the last, and key padding masks it everywhere.
        var v = v0
        for e in 0..<5 { v[0, 1, 3, e] = .nan }
        let bias = causalLowerRight(6, 4).combined(with: KeyPaddingBias(validKeyLengths: [3], seqLenKV: 4))
        let grads = try gradients(q, k, v, dO, bias: bias)
        for g in [grads.query, grads.key, grads.value] { #expect(!g.doubleScalars.contains { $0.isNaN }) }
        let dq = grads.query.doubleScalars
        for h in 0..<2 {
            for i in 0..<6 {
                let row = dq[((h * 6) + i) * 5..<((h * 6) + i + 1) * 5]
                // Row 2 sees key 0 alone: its weight is 1 whatever the scores, so its dQ is 0 as well.
                #expect(row.allSatisfy { $0 == 0 } == (i < 3), "head \(h) row \(i): \(row)")
            }
        }
        // The masked key's gradients are exactly 0 too.
        #expect((0..<5).allSatisfy { grads.key[0, 1, 3, $0] == 0 && grads.value[0, 1, 3, $0] == 0 })
        // Every key masked everywhere: all zero.
        let none = try gradients(q, k, v0, dO, bias: KeyPaddingBias(validKeyLengths: [0], seqLenKV: 4))
        for g in [none.query, none.key, none.value] { #expect(g.doubleScalars.allSatisfy { $0 == 0 }) }
    }

    @Test("zero-sized dimensions give gradients of the inputs' shapes: empty, or zero where no key exists",
          arguments: [(1, 0, 5), (1, 4, 0), (0, 4, 5)])
    func zeroSizedDimensions(_ batch: Int, _ l: Int, _ s: Int) throws {
        let (q, k, v) = try randomAttentionInputs(batch, 2, l, s, 3, ev: 4, seed: 255)
        let dO = try randn([batch, 2, l, 4], seed: 256)
        let mask = TensorBias(try randn([l, s], seed: 257))
        let grads = try gradients(q, k, v, dO, bias: mask)
        #expect(grads.query.shape == q.shape && grads.key.shape == k.shape && grads.value.shape == v.shape)
        #expect(grads.attnMask?.shape == [l, s])
        for g in [grads.query, grads.key, grads.value, try #require(grads.attnMask)] { #expect(g.doubleScalars.allSatisfy { $0 == 0 }) }
        #expect(grads.query.count == batch * 2 * l * 3, "no key: the query's gradient is 0, not missing")
    }

    @Test("a fused bias and its materialized mask give the same input gradients; ALiBi's slopes follow from the mask's")
    func fusedAgainstMaterialized() throws {
        let (q, k, v) = try randomAttentionInputs(2, 3, 5, 8, 4, seed: 260, dtype: .float64)
        let dO = try randn([2, 3, 5, 4], seed: 261, dtype: .float64)
        let alibi = AlibiBias(slopes: [0.5, -0.25, 0.125], seqLenQ: 5, seqLenKV: 8, causal: .upperLeft)
        let bias = alibi.combined(with: SlidingWindowBias(seqLenQ: 5, seqLenKV: 8, left: 3, right: 1))
        let fused = try gradients(q, k, v, dO, bias: bias)
        let mask = try bias.materialize(device: .cpu).converted(to: .float64)  // its gradient in float64 too
        let dense = try gradients(q, k, v, dO, bias: TensorBias(mask))
        let tolerance = Tolerance(atol: 1e-13, rtol: 1e-12)
        expectClose(fused.query, dense.query, tolerance, "dQ")
        expectClose(fused.key, dense.key, tolerance, "dK")
        expectClose(fused.value, dense.value, tolerance, "dV")
        #expect(fused.attnMask == nil && dense.alibiSlopes == nil)
        // dL/dslope_h = Σ dL/dmask[h, i, j] · (−|i − j|) over the visible positions (upper-left: offset 0).
        let dMask = try #require(dense.attnMask).doubleScalars  // [H, L, S]
        var fromMask = [Double](repeating: 0, count: 3)
        for h in 0..<3 {
            for i in 0..<5 {
                for j in 0..<8 { fromMask[h] -= dMask[(h * 5 + i) * 8 + j] * Double(abs(i - j)) }
            }
        }
        expectClose(try #require(fused.alibiSlopes), fromMask, tolerance, "dSlopes from dMask")
        #expect(fused.biasParameters.map(\.part) == [0], "ALiBi is the composition's first part")
    }

    @Test("every overload routes the same way: generic, existential, deprecated raw mask")
    func overloads() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 4, 5, 3, seed: 270)
        let dO = try randn([1, 2, 4, 3], seed: 271)
        let mask = try randn([1, 1, 4, 5], seed: 272)
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: TensorBias(mask))
        let generic = try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: TensorBias(mask))
        let existential = try scaledDotProductAttentionBackward(
            gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: TensorBias(mask) as any AttnBias)
        for other in [existential] {
            expectIdentical(other.query, generic.query)
            expectIdentical(other.key, generic.key)
            expectIdentical(other.value, generic.value)
            expectIdentical(try #require(other.attnMask), try #require(generic.attnMask))
        }
        #expect(generic.attnMask?.shape == [1, 1, 4, 5])
        // isCausal is the upper-left causal bias.
        let causal = try gradients(q, k, v, dO, isCausal: true)
        let bias = try gradients(q, k, v, dO, bias: causalUpperLeft(4, 5))
        expectIdentical(causal.query, bias.query)
        expectIdentical(causal.key, bias.key)
        // A bias with its own dispatch that needs no materialization is differentiated through its mask.
        let custom = try gradients(q, k, v, dO, bias: MaskOnlyDispatch(mask: mask))
        expectIdentical(custom.query, generic.query)
        #expect(custom.attnMask == nil, "only a TensorBias's mask gets a gradient")
    }

    @available(*, deprecated)
    @Test("the deprecated raw-mask overload is TensorBias, its gradient included")
    func deprecatedRawMask() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 4, 5, 3, seed: 275)
        let dO = try randn([1, 2, 4, 3], seed: 276)
        let mask = try randn([4, 5], seed: 277)
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: TensorBias(mask))
        let raw = try rawMaskBackward(dO, q, k, v, out, lse, mask)
        let wrapped = try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: TensorBias(mask))
        expectIdentical(raw.query, wrapped.query)
        expectIdentical(raw.value, wrapped.value)
        expectIdentical(try #require(raw.attnMask), try #require(wrapped.attnMask))
    }

    @Test("the result is bit-identical at any thread count")
    func threadCounts() throws {
        let (q, k, v) = try randomAttentionInputs(2, 4, 9, 11, 8, hkv: 2, seed: 280)
        let dO = try randn([2, 4, 9, 8], seed: 281)
        let bias = AlibiBias(numHeads: 4, seqLenQ: 9, seqLenKV: 11).combined(with: SoftCapBias(cap: 3))
        let one = try withSDPAThreads(1) { try gradients(q, k, v, dO, bias: bias, enableGQA: true) }
        let many = try withSDPAThreads(3) { try gradients(q, k, v, dO, bias: bias, enableGQA: true) }
        expectIdentical(one.query, many.query)
        expectIdentical(one.key, many.key)
        expectIdentical(one.value, many.value)
        #expect(one.alibiSlopes == many.alibiSlopes)
    }
}

@Suite("Backward pass: dropout")
struct BackwardDropoutTests {
    @Test("the backward pass drops what the forward pass dropped for the same seed")
    func sameMaskAsTheForwardPass() throws {
        // With V the identity (S = Ev), output row i holds row i's dropped, rescaled weights; with dO one
        // row's unit vector e_c, dV's column c holds the same row's weights as the backward pass used them.
        let (L, S) = (3, 6)
        let (q, k, _) = try randomAttentionInputs(1, 2, L, S, 4, seed: 290)
        let eye = try Tensor(shape: [1, 2, S, S], scalars: (0..<2 * S * S).map { $0 % S == $0 / S % S ? 1 : 0 } as [Float])
        let p: Float = 0.4, seed: UInt64 = 77
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: eye, dropoutP: p, dropoutSeed: seed)
        var sawDropped = false
        for (h, i, c) in [(0, 0, 2), (1, 2, 5), (0, 1, 0)] {
            let dO = try Tensor(shape: [1, 2, L, S], scalars: (0..<2 * L * S).map { $0 == (h * L + i) * S + c ? 1 : 0 } as [Float])
            let grads = try scaledDotProductAttentionBackward(
                gradOutput: dO, query: q, key: k, value: eye, output: out, logSumExp: lse, dropoutP: p, dropoutSeed: seed)
            for j in 0..<S {
                // The same weights dropped; the kept ones the same up to float32 rounding (the fused forward
                // divides by the row sum, the backward recomputes P from the log-sum-exp).
                let (backward, forward) = (grads.value[0, h, j, c], out[0, h, i, j])
                #expect((backward == 0) == (forward == 0), "head \(h) row \(i) key \(j)")
                #expect(Swift.abs(backward - forward) <= 1e-6 * Swift.abs(forward), "head \(h) row \(i) key \(j)")
                sawDropped = sawDropped || out[0, h, i, j] == 0
            }
        }
        #expect(sawDropped, "p = 0.4 drops some of 18 weights")
    }

    @Test("the gradients' mean over seeds approaches the gradients without dropout")
    func meanOverSeeds() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 3, 5, 4, seed: 300)
        let dO = try randn([1, 2, 3, 4], seed: 301)
        let plain = try gradients(q, k, v, dO)
        let seeds = 400
        var sums = [[Double]](repeating: [], count: 3)
        for seed in 0..<UInt64(seeds) {
            let g = try gradients(q, k, v, dO, dropoutP: 0.3, dropoutSeed: seed)
            for (n, t) in [g.query, g.key, g.value].enumerated() {
                let x = t.doubleScalars
                sums[n] = sums[n].isEmpty ? x : zip(sums[n], x).map(+)
            }
        }
        // The seeds are fixed: the largest deviation is 0.036 (gradients up to 0.95); kept weights not
        // scaled by 1 / (1 − p) would be off by 0.3·|g|, up to 0.29.
        for (n, t) in [plain.query, plain.key, plain.value].enumerated() {
            expectClose(sums[n].map { $0 / Double(seeds) }, t.doubleScalars, Tolerance(atol: 0.08, rtol: 0), "input \(n)")
        }
    }

    @Test("the forward pass drops a fraction p of the weights and scales the rest by 1 / (1 − p)",
          arguments: [SDPBackend.math, .fused], [Float(0.1), 0.5, 0.8])
    func dropRateAndScaling(_ backend: SDPBackend, _ p: Float) throws {
        let (L, S) = (16, 64)
        let (q, k, _) = try randomAttentionInputs(1, 4, L, S, 8, seed: 310)
        let eye = try Tensor(shape: [1, 4, S, S], scalars: (0..<4 * S * S).map { $0 % S == $0 / S % S ? 1 : 0 } as [Float])
        let weights = try withSDPBackends([.math]) { try scaledDotProductAttention(query: q, key: k, value: eye) }.doubleScalars
        let dropped = try withSDPBackends([backend]) {
            try scaledDotProductAttention(query: q, key: k, value: eye, dropoutP: p, dropoutSeed: 5).doubleScalars
        }
        let zeros = dropped.filter { $0 == 0 }.count, n = Double(dropped.count)
        let sd = (n * Double(p) * Double(1 - p)).squareRoot()
        #expect(abs(Double(zeros) - n * Double(p)) <= 6 * sd, "dropped \(zeros) of \(Int(n)) at p = \(p)")
        let kept = dropped.indices.filter { dropped[$0] != 0 }
        // float32 weights (the fused kernel's exp and sums) against Double ones: within a few ulp.
        expectClose(kept.map { dropped[$0] }, kept.map { weights[$0] / (1 - Double(p)) }, Tolerance(atol: 0, rtol: 4e-6), "kept weights")
    }
}

@Suite("Backward pass: errors")
struct BackwardErrorTests {
    private let inputs = Result { try randomAttentionInputs(2, 3, 4, 5, 6, ev: 7) }

    @Test func mismatchedTensorsAreNamed() throws {
        let (q, k, v) = try inputs.get()
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v)
        let dO = try randn([2, 3, 4, 7], seed: 9)
        func backward(_ dO: Tensor, _ out: Tensor, _ lse: Tensor) throws {
            _ = try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse)
        }
        #expect(throws: SDPAError.shapeMismatch(
            argument: "output", shape: [2, 3, 4, 6], other: "query", otherShape: [2, 3, 4, 6],
            reason: "the forward's output for these inputs has shape [2, 3, 4, 7] ([B, H, L, Ev]; B=2 H=3 Hkv=3 L=4 S=5 E=6 Ev=7)")) {
            try backward(dO, q, lse)
        }
        #expect(throws: SDPAError.shapeMismatch(
            argument: "gradOutput", shape: [2, 3, 7], other: "output", otherShape: [2, 3, 4, 7],
            reason: "the gradient of the output must have the output's shape")) {
            try backward(try randn([2, 3, 7], seed: 1), out, lse)
        }
        #expect(throws: SDPAError.shapeMismatch(
            argument: "logSumExp", shape: [2, 3, 4, 1], other: "query", otherShape: [2, 3, 4, 6],
            reason: "the forward's log-sum-exp for these inputs has shape [2, 3, 4] ([B, H, L])")) {
            try backward(dO, out, try randn([2, 3, 4, 1], seed: 1))
        }
        #expect(throws: SDPAError.unsupportedDType(
            argument: "gradOutput", dtype: .float16, reason: "it must have the query's dtype, float32, as the forward's output does")) {
            try backward(dO.converted(to: .float16), out, lse)
        }
        #expect(throws: SDPAError.unsupportedDType(argument: "logSumExp", dtype: .bool, reason: "the forward's log-sum-exp is float32")) {
            try backward(dO, out, lse.converted(to: .bool))
        }
        // The forward pass's own checks come first.
        #expect(throws: SDPAError.headCountMismatch(query: [2, 3, 4, 6], key: [2, 2, 5, 6], enableGQA: false)) {
            _ = try scaledDotProductAttentionBackward(
                gradOutput: dO, query: q, key: try randn([2, 2, 5, 6], seed: 2), value: try randn([2, 2, 5, 7], seed: 3), output: out, logSumExp: lse)
        }
        #expect(throws: SDPAError.biasMismatch(bias: "AlibiBias", parameter: "slopes.count", expected: 3, actual: 1,
                                               inputs: "one slope per query head; B=2 H=3 Hkv=3 L=4 S=5 E=6 Ev=7")) {
            _ = try scaledDotProductAttentionBackward(
                gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: AlibiBias(slopes: [1], seqLenQ: 4, seqLenKV: 5))
        }
        #expect(throws: SDPAError.maskNotBroadcastable(mask: [3, 5], target: [2, 3, 4, 5])) {
            _ = try scaledDotProductAttentionBackward(
                gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: TensorBias(try randn([3, 5], seed: 4)))
        }
    }

    @Test func dropoutNeedsTheForwardsSeed() throws {
        let (q, k, v) = try inputs.get()
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, dropoutP: 0.2, dropoutSeed: 1)
        let dO = try randn([2, 3, 4, 7], seed: 9)
        #expect(throws: SDPAError.invalidArgument(
            argument: "dropoutSeed", value: "nil",
            reason: "with dropoutP = 0.2 the backward pass needs the seed the forward pass used, to drop the same weights")) {
            _ = try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, dropoutP: 0.2)
        }
        #expect(throws: SDPAError.invalidArgument(argument: "dropoutP", value: "1.5", reason: "a dropout probability must be in 0...1")) {
            _ = try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, dropoutP: 1.5, dropoutSeed: 1)
        }
    }

    @Test func backendSelection() throws {
        let (q, k, v) = try inputs.get()
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v)
        let dO = try randn([2, 3, 4, 7], seed: 9)
        // The fused backward pass takes what the fused forward kernel takes: float64 runs on the math backend.
        let wide = { (t: Tensor) in try t.converted(to: .float64) }
        let expected = SDPAError.noBackend(
            allowed: [.fused],
            reasons: ["fused: float64 inputs run on the math backend (the fused kernel accumulates in float32)",
                      "math: not allowed by withSDPBackends"])
        #expect(throws: expected) {
            try withSDPBackends([.fused]) {
                _ = try scaledDotProductAttentionBackward(
                    gradOutput: wide(dO), query: wide(q), key: wide(k), value: wide(v), output: wide(out), logSumExp: lse,
                    attnMask: causalLowerRight(4, 5))
            }
        }
        let fused = try withSDPBackends([.fused]) {
            try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse)
        }
        let math = try withSDPBackends([.math]) {
            try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse)
        }
        // float32 inputs take the fused pass by default.
        expectIdentical(fused.query, try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse).query)
        expectClose(fused.query, math.query, Tolerance(atol: 1e-5, rtol: 1e-5), "dQ")
        expectClose(fused.value, math.value, Tolerance(atol: 1e-5, rtol: 1e-5), "dV")
    }
}

/// A bias with a `dispatch` of its own that needs no materialization: the backward pass differentiates
/// what its mask stands for.
private struct MaskOnlyDispatch: AttnBias {
    var mask: Tensor
    var needsMaterialization: Bool { false }
    func materialize(device: Device) throws -> Tensor { mask }
    static func dispatch(query: Tensor, key: Tensor, value: Tensor, attnBias: Self, options: AttentionOptions) throws -> Tensor {
        try scaledDotProductAttention(query: query, key: key, value: value, attnMask: TensorBias(attnBias.mask), scale: options.scale)
    }
}

/// The deprecated raw-tensor overload, called from a deprecated function so it does not warn.
@available(*, deprecated)
private func rawMaskBackward(_ dO: Tensor, _ q: Tensor, _ k: Tensor, _ v: Tensor, _ out: Tensor, _ lse: Tensor, _ mask: Tensor) throws -> AttentionGradients {
    try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: mask)
}
