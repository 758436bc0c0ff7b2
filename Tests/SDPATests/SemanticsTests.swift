import Foundation
import SDPA
import SDPATestSupport
import Testing

// MARK: - tolerances

/// float32 results against the Double reference: torch.testing.assert_close's float32 defaults.
private let referenceTolerance = Tolerance(atol: 1e-5, rtol: 1.3e-6)
/// float64 inputs against the Double reference (the kernel computes in Double too).
private let float64Tolerance = Tolerance(atol: 1e-12, rtol: 1e-12)
/// Mean over `dropoutSeeds` dropout draws against the undropped output: the standard error of
/// one element is about 0.3 / sqrt(400) = 0.015 for these shapes, so 0.1 is > 6 sigma (and the
/// seeds are fixed, so the test is deterministic anyway).
private let dropoutMeanAtol = 0.1
private let dropoutSeeds = 400

// MARK: - helpers (private: the test module is shared with other files)

/// An additive bias at `(b, h, i, j)`; `-inf` masks the position.
private typealias Bias = (_ b: Int, _ h: Int, _ i: Int, _ j: Int) -> Double

/// The naive reference: dense loops in Double. Query head `h` uses key/value head `h / (H / Hkv)`.
/// 3-D inputs are treated as B = 1. Rows with every position masked give 0. `modify` takes each biased score (a soft-cap).
private func reference(
    _ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Double? = nil, bias: Bias? = nil, modify: ((Double) -> Double)? = nil
) -> [Double] {
    let qs = q.rank == 3 ? [1] + q.shape : q.shape
    let ks = k.rank == 3 ? [1] + k.shape : k.shape
    let vs = v.rank == 3 ? [1] + v.shape : v.shape
    let (B, H, L, E) = (qs[0], qs[1], qs[2], qs[3])
    let (Hkv, S, Ev) = (ks[1], ks[2], vs[3])
    let (qx, kx, vx) = (q.doubleScalars, k.doubleScalars, v.doubleScalars)
    let sc = scale ?? 1 / Double(E).squareRoot()
    var out = [Double](repeating: 0, count: B * H * L * Ev)
    for b in 0..<B {
        for h in 0..<H {
            let kvh = h / (H / Hkv)
            for i in 0..<L {
                var scores = [Double](repeating: 0, count: S)
                for j in 0..<S {
                    var dot = 0.0
                    for e in 0..<E {
                        dot += qx[((b * H + h) * L + i) * E + e] * kx[((b * Hkv + kvh) * S + j) * E + e]
                    }
                    scores[j] = dot * sc + (bias?(b, h, i, j) ?? 0)
                    if let modify { scores[j] = modify(scores[j]) }
                }
                let m = scores.max() ?? -.infinity
                if m == -.infinity { continue }
                let w = scores.map { Foundation.exp($0 - m) }
                let total = w.reduce(0, +)
                for j in 0..<S where w[j] != 0 {
                    for d in 0..<Ev {
                        out[((b * H + h) * L + i) * Ev + d] += w[j] / total * vx[((b * Hkv + kvh) * S + j) * Ev + d]
                    }
                }
            }
        }
    }
    return out
}

/// The bias a mask tensor stands for, read through its broadcast to the scores' shape.
private func maskBias(_ mask: Tensor, scores: [Int]) throws -> Bias {
    let shape4 = scores.count == 3 ? [1] + scores : scores
    let values = try mask.broadcast(to: shape4).doubleScalars
    let (H, L, S) = (shape4[1], shape4[2], shape4[3])
    let isBool = mask.dtype == .bool
    return { b, h, i, j in
        let x = values[((b * H + h) * L + i) * S + j]
        return isBool ? (x != 0 ? 0 : -.infinity) : x
    }
}

/// `tril(ones(L, S), diagonal)` as a bool mask.
private func trilMask(_ L: Int, _ S: Int, diagonal: Int = 0) throws -> Tensor {
    try Tensor(shape: [L, S], bools: (0..<L * S).map { $0 % S <= $0 / S + diagonal })
}

/// The deprecated raw-tensor overload, called from a deprecated function so it does not warn.
@available(*, deprecated)
private func rawMaskAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor, scale: Float? = nil) throws -> Tensor {
    try scaledDotProductAttention(query: q, key: k, value: v, attnMask: mask, scale: scale)
}

// MARK: - scale and masks

@Suite("Semantics: scale and masks")
struct ScaleAndMaskSemanticsTests {
    @Test func defaultScaleIsOneOverSqrtE() throws {
        let (q, k, v) = try randomAttentionInputs(2, 3, 4, 5, 7, ev: 6)
        let out = try scaledDotProductAttention(query: q, key: k, value: v)
        #expect(out.shape == [2, 3, 4, 6])
        #expect(out.dtype == .float32)
        expectClose(out, reference(q, k, v), referenceTolerance)
        expectClose(out, reference(q, k, v, scale: 1 / 7.0.squareRoot()), referenceTolerance, "explicit 1/sqrt(E)")
        // Differs from scale 1 (sanity: the reference is sensitive to the scale).
        let unscaled = reference(q, k, v, scale: 1)
        #expect(zip(out.doubleScalars, unscaled).contains { abs($0 - $1) > 1e-3 })
    }

    @Test(arguments: [Float(0.3), 1, 2.5, -1])
    func customScale(scale: Float) throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 3, 6, 4, seed: 3)
        let out = try scaledDotProductAttention(query: q, key: k, value: v, scale: scale)
        expectClose(out, reference(q, k, v, scale: Double(scale)), referenceTolerance, "scale \(scale)")
    }

    /// The scale is a `Double`, as PyTorch's: float64 inputs take it as given, forward and backward. Rounded
    /// to `Float` first, as when the scale was a `Float`, it moves their outputs by ≈ 1e-8.
    @Test func float64InputsTakeTheScaleAsGiven() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 3, 6, 4, ev: 5, seed: 9, dtype: .float64)
        let scale = 0.3
        let exact = reference(q, k, v, scale: scale), rounded = reference(q, k, v, scale: Double(Float(scale)))
        #expect(zip(exact, rounded).contains { abs($0 - $1) > 1e-10 }, "the reference is sensitive to the scale's rounding")
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, scale: scale)
        expectClose(out, exact, float64Tolerance)
        // The gradients: those of the scale as given, not of the scale rounded to Float.
        let gradOutput = try randn([1, 2, 3, 5], seed: 19, dtype: .float64)
        let grads = try scaledDotProductAttentionBackward(
            gradOutput: gradOutput, query: q, key: k, value: v, output: out, logSumExp: lse, scale: scale)
        let roundedGrads = try scaledDotProductAttentionBackward(
            gradOutput: gradOutput, query: q, key: k, value: v, output: out, logSumExp: lse, scale: Float(scale))
        #expect(grads.query.doubleScalars != roundedGrads.query.doubleScalars)
        let queryPlusStep = try Tensor(shape: q.shape, scalars: q.doubleScalars.enumerated().map { $0 == 4 ? $1 + 1e-6 : $1 })
        let queryMinusStep = try Tensor(shape: q.shape, scalars: q.doubleScalars.enumerated().map { $0 == 4 ? $1 - 1e-6 : $1 })
        let loss = { (query: Tensor) in
            zip(try scaledDotProductAttention(query: query, key: k, value: v, scale: scale).doubleScalars, gradOutput.doubleScalars)
                .reduce(0) { $0 + $1.0 * $1.1 }
        }
        let centralDifference = (try loss(queryPlusStep) - loss(queryMinusStep)) / 2e-6
        #expect(abs(grads.query.doubleScalars[4] - centralDifference) < 1e-8, "dQ against a central difference")
    }

    /// ALiBi's slopes are `Double`s: float64 inputs take them as given (12 heads: the last four standard slopes,
    /// `2^-0.5, 2^-1.5, …`, are not float32 values), against the same bias written as a float64 mask; rounded to
    /// `Float`, as when the slopes were `[Float]`, they move the outputs by ≈ 1e-8. `[Float]` slopes still build one.
    @Test func float64InputsTakeAlibiSlopesAsGiven() throws {
        let (H, L, S) = (12, 40, 300)
        let (q, k, v) = try randomAttentionInputs(1, H, L, S, 8, seed: 31, dtype: .float64)
        let slopes = AlibiBias.standardSlopes(numHeads: H)
        #expect(slopes.contains { Double(Float($0)) != $0 })
        func mask(_ slopes: [Double]) throws -> Tensor {
            var values = [Double]()
            for h in 0..<H { for i in 0..<L { for j in 0..<S { values.append(-slopes[h] * Double(abs(i + S - L - j))) } } }
            return try Tensor(shape: [H, L, S], scalars: values)
        }
        let exact = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(try mask(slopes)))
        let rounded = try scaledDotProductAttention(query: q, key: k, value: v,
                                                    attnMask: TensorBias(try mask(slopes.map { Double(Float($0)) })))
        #expect(zip(exact.doubleScalars, rounded.doubleScalars).contains { abs($0 - $1) > 1e-10 }, "sensitive to the slopes' rounding")
        let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S))
        expectClose(out, exact.doubleScalars, float64Tolerance)
        let fromFloats = AlibiBias(slopes: slopes.map { Float($0) }, seqLenQ: L, seqLenKV: S)
        expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: fromFloats), rounded.doubleScalars, float64Tolerance)
    }

    /// A soft-cap is a `Double`: float64 inputs are capped with it as given (7.6 is no float32 value; rounded to `Float`,
    /// as when the cap was one, it moves the outputs by ≈ 1e-9), and a `Float` cap still builds one, widened exactly.
    @Test func float64InputsTakeTheSoftCapAsGiven() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 5, 9, 8, seed: 41, dtype: .float64)
        let q8 = try Tensor(shape: q.shape, scalars: q.doubleScalars.map { $0 * 8 })
        let cap = 7.6
        let exact = reference(q8, k, v, modify: { cap * Foundation.tanh($0 / cap) })
        let rounded = reference(q8, k, v, modify: { Double(Float(cap)) * Foundation.tanh($0 / Double(Float(cap))) })
        #expect(zip(exact, rounded).contains { abs($0 - $1) > 1e-10 }, "the reference is sensitive to the cap's rounding")
        expectClose(try scaledDotProductAttention(query: q8, key: k, value: v, attnMask: SoftCapBias(cap: cap)), exact, float64Tolerance)
        let fromFloat = SoftCapBias(cap: Float(cap))
        #expect(fromFloat.cap == Double(Float(cap)))
        expectClose(try scaledDotProductAttention(query: q8, key: k, value: v, attnMask: fromFloat), rounded, float64Tolerance)
        // The gradients are those of the cap as given: dQ against a central difference of the loss.
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q8, key: k, value: v, attnMask: SoftCapBias(cap: cap))
        let gradOutput = try randn([1, 2, 5, 8], seed: 43, dtype: .float64)
        let grads = try scaledDotProductAttentionBackward(
            gradOutput: gradOutput, query: q8, key: k, value: v, output: out, logSumExp: lse, attnMask: SoftCapBias(cap: cap))
        let loss = { (n: Int, step: Double) in
            let query = try Tensor(shape: q8.shape, scalars: q8.doubleScalars.enumerated().map { $0 == n ? $1 + step : $1 })
            return zip(try scaledDotProductAttention(query: query, key: k, value: v, attnMask: SoftCapBias(cap: cap)).doubleScalars,
                       gradOutput.doubleScalars).reduce(0) { $0 + $1.0 * $1.1 }
        }
        for n in [3, 17, 50] {
            let centralDifference = (try loss(n, 1e-6) - loss(n, -1e-6)) / 2e-6
            #expect(abs(grads.query.doubleScalars[n] - centralDifference) < 1e-7, "dQ[\(n)] against a central difference")
        }
        // The fused kernels cap in float32: a cap beyond its range is refused by name.
        #expect(throws: SDPAError.self) { try scaledDotProductAttention(query: q8, key: k, value: v, attnMask: SoftCapBias(cap: 1e300)) }
    }

    /// Code written for a `Float` scale (the scale's type before it became a `Double`) compiles unchanged and
    /// gets the scale widened to `Double`: a `Float`, an optional `Float` or `nil` through every entry point.
    @Test func floatScalesAreWidened() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 3, 6, 4, seed: 8)
        let f: Float = 0.3, optional: Float? = 0.3, absent: Float? = nil
        let expected = try scaledDotProductAttention(query: q, key: k, value: v, scale: Double(f))
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, scale: f), expected, "Float")
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, scale: optional), expected, "Float?")
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, scale: absent),
                        try scaledDotProductAttention(query: q, key: k, value: v), "nil Float?")
        // The fused kernels take the scale rounded to Float once: a literal and its Float give the same bits.
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, scale: 0.3), expected, "literal")
        let causal = causalLowerRight(3, 6)
        let expectedCausal = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: causal, scale: Double(f))
        let generic = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: causal, scale: f)
        let existential = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: causal as any AttnBias, scale: f)
        for (label, result) in [("generic", generic), ("existential", existential)] {
            expectIdentical(result.output, expectedCausal.output, label)
            expectIdentical(result.logSumExp, expectedCausal.logSumExp, label)
        }
        let gradOutput = try randn([1, 2, 3, 4], seed: 18)
        let expectedGrads = try scaledDotProductAttentionBackward(
            gradOutput: gradOutput, query: q, key: k, value: v, output: expectedCausal.output, logSumExp: expectedCausal.logSumExp,
            attnMask: causal, scale: Double(f))
        let grads = try scaledDotProductAttentionBackward(
            gradOutput: gradOutput, query: q, key: k, value: v, output: expectedCausal.output, logSumExp: expectedCausal.logSumExp,
            attnMask: causal as any AttnBias, scale: optional)
        expectIdentical(grads.query, expectedGrads.query, "backward")
        #expect(AttentionOptions(scale: f).scale == Double(f))
        #expect(try explainSDPA(query: q, key: k, value: v, scale: f).description
                    == explainSDPA(query: q, key: k, value: v, scale: Double(f)).description)
    }

    @Test func scaleZeroAveragesTheValues() throws {
        let (q, k, v) = try randomAttentionInputs(1, 1, 2, 4, 3, ev: 2, seed: 4)
        let out = try scaledDotProductAttention(query: q, key: k, value: v, scale: 0)
        let vx = v.doubleScalars
        var mean = [Double](repeating: 0, count: 2)
        for d in 0..<2 {
            for j in 0..<4 { mean[d] += vx[j * 2 + d] / 4 }
        }
        expectClose(out, mean + mean, referenceTolerance)
    }

    /// Mask shapes broadcast to scores [B=2, H=3, L=4, S=5].
    static let maskShapes: [[Int]] = [[4, 5], [1, 5], [4, 1], [5], [3, 4, 5], [2, 1, 4, 5], [1, 3, 1, 5], [2, 1, 1, 5], [2, 3, 4, 5], [1, 1, 4, 5]]

    @Test(arguments: maskShapes)
    func boolMaskTrueMeansAttend(shape: [Int]) throws {
        let (q, k, v) = try randomAttentionInputs(2, 3, 4, 5, 6, ev: 3, seed: 5)
        let mask = try Tensor.randomBools(shape: shape, probability: 0.6, seed: 6)
        let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
        let expected = reference(q, k, v, bias: try maskBias(mask, scores: [2, 3, 4, 5]))
        expectClose(out, expected, referenceTolerance, "mask \(shape)")
        // Inverting the mask changes the result: true really means "attend".
        let inverted = try Tensor(shape: shape, bools: mask.bools.map { !$0 })
        let other = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(inverted))
        expectClose(other, reference(q, k, v, bias: try maskBias(inverted, scores: [2, 3, 4, 5])), referenceTolerance, "inverted \(shape)")
    }

    @Test func allTrueMaskEqualsNoMask() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 3, 4, 5, seed: 7)
        let ones = try Tensor(shape: [3, 4], bools: [Bool](repeating: true, count: 12))
        let zeros = try Tensor(zeros: [1, 2, 3, 4])
        let plain = try scaledDotProductAttention(query: q, key: k, value: v)
        expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(ones)), plain, referenceTolerance)
        expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(zeros)), plain, referenceTolerance)
    }

    @Test(arguments: maskShapes)
    func floatMaskIsAdded(shape: [Int]) throws {
        let (q, k, v) = try randomAttentionInputs(2, 3, 4, 5, 6, ev: 3, seed: 8)
        var values = try randn(shape, seed: 9).scalars
        values[0] = -.infinity   // a masked position too
        let mask = try Tensor(shape: shape, scalars: values)
        let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
        expectClose(out, reference(q, k, v, bias: try maskBias(mask, scores: [2, 3, 4, 5])), referenceTolerance, "mask \(shape)")
    }

    @Test func floatMaskOfOtherFloatDTypes() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 3, 4, 5, seed: 10)
        let mask32 = try randn([3, 4], seed: 11)
        for dtype in [DType.float16, .bfloat16, .float64] {
            let mask = try mask32.converted(to: dtype)
            let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
            #expect(out.dtype == .float32, "the output has the query's dtype")
            expectClose(out, reference(q, k, v, bias: try maskBias(mask, scores: [1, 2, 3, 4])), referenceTolerance, "\(dtype) mask")
        }
    }

    @Test func largeNegativeFiniteMaskIsNotAFullMask() throws {
        // -1e9 everywhere in a row: the softmax is shift invariant, so the row equals the unmasked row.
        // float64 inputs: in float32, -1e9 + score rounds the score away (its ulp is 64), in PyTorch too.
        let (q, k, v) = try randomAttentionInputs(1, 1, 2, 3, 4, seed: 12, dtype: .float64)
        let mask = try Tensor(shape: [2, 3], scalars: [-1e9, -1e9, -1e9, 0, 0, 0] as [Double])
        let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
        let plain = try scaledDotProductAttention(query: q, key: k, value: v)
        expectClose(out, plain, Tolerance(atol: 1e-6, rtol: 1e-6), "a finite mask shifts the row, it does not zero it")
        #expect(out.scalars.allSatisfy { $0.isFinite })
    }
}

// MARK: - causal variants

@Suite("Semantics: causal")
struct CausalSemanticsTests {
    @Test(arguments: [(4, 4), (3, 6), (6, 3), (1, 5), (5, 1)])
    func isCausalEqualsUpperLeftEqualsTrilMask(L: Int, S: Int) throws {
        let (q, k, v) = try randomAttentionInputs(2, 2, L, S, 4, ev: 3, seed: 20)
        let isCausal = try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true)
        let upperLeft = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalUpperLeft(L, S))
        let tril = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(try trilMask(L, S)))
        expectIdentical(isCausal, upperLeft, "isCausal vs causalUpperLeft L=\(L) S=\(S)")
        expectClose(tril, isCausal, referenceTolerance, "TensorBias(tril) vs isCausal L=\(L) S=\(S)")
        expectClose(isCausal, reference(q, k, v, bias: try maskBias(try trilMask(L, S), scores: [2, 2, L, S])), referenceTolerance)
        #expect(try causalUpperLeft(L, S).materialize(device: .cpu).bools == trilMask(L, S).bools)
        #expect(try causalUpperLeft(L, S).materialize(device: .cpu).shape == [L, S])
    }

    @Test(arguments: [(4, 4), (3, 6), (6, 3), (1, 5)])
    func lowerRightEqualsShiftedTril(L: Int, S: Int) throws {
        let (q, k, v) = try randomAttentionInputs(1, 3, L, S, 5, seed: 21)
        let mask = try trilMask(L, S, diagonal: S - L)
        let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(L, S))
        expectClose(out, try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask)), referenceTolerance)
        expectClose(out, reference(q, k, v, bias: try maskBias(mask, scores: [1, 3, L, S])), referenceTolerance)
        #expect(try causalLowerRight(L, S).materialize(device: .cpu).bools == mask.bools)
        // The last query sees every key.
        if L <= S {
            let lastRowAllKeys = try scaledDotProductAttention(query: q, key: k, value: v)
            let Ev = 5
            for h in 0..<3 {
                let row = ((h * L) + L - 1) * Ev
                expectClose(Array(out.doubleScalars[row..<(row + Ev)]), Array(lastRowAllKeys.doubleScalars[row..<(row + Ev)]), referenceTolerance, "last row, head \(h)")
            }
        }
    }

    @Test func equalLengthsVariantsAgree() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 5, 5, 4, seed: 22)
        expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(5, 5)),
                    try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalUpperLeft(5, 5)), referenceTolerance)
    }

    @Test(arguments: SemanticsBackendScope.allCases)
    func lowerRightWithMoreQueriesThanKeysGivesExactZeroRows(scope: SemanticsBackendScope) throws {
        try scope.run {
            let (L, S, Ev) = (6, 3, 4)
            let (q, k, v) = try randomAttentionInputs(2, 2, L, S, 5, ev: Ev, seed: 23)
            let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(L, S))
            let x = out.scalars
            for bh in 0..<4 {
                for i in 0..<L {
                    let row = Array(x[((bh * L) + i) * Ev..<((bh * L) + i + 1) * Ev])
                    if i < L - S {
                        #expect(row.map(\.bitPattern) == [UInt32](repeating: 0, count: Ev), "row \(i) sees no key: exactly +0")
                    } else {
                        #expect(row.allSatisfy { $0.isFinite && $0 != 0 }, "row \(i) sees \(i - (L - S) + 1) keys")
                    }
                }
            }
            expectClose(out, reference(q, k, v, bias: try maskBias(try trilMask(L, S, diagonal: S - L), scores: [2, 2, L, S])), referenceTolerance)
        }
    }
}

// MARK: - masked rows and NaN

@Suite("Semantics: fully masked rows and NaN")
struct MaskedRowAndNaNSemanticsTests {
    @Test(arguments: SemanticsBackendScope.allCases)
    func fullyMaskedBoolRowsAreZeroNotNaN(scope: SemanticsBackendScope) throws {
        try scope.run {
            let (q, k, v) = try randomAttentionInputs(2, 2, 3, 4, 5, seed: 30)
            var mask = try Tensor.randomBools(shape: [2, 1, 3, 4], probability: 1, seed: 1)
            for j in 0..<4 { mask[0, 0, 1, j] = 0 }   // batch 0, query 1: nothing visible
            let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
            let x = out.scalars
            #expect(x.allSatisfy { !$0.isNaN })
            for h in 0..<2 {
                let row = (h * 3 + 1) * 5
                #expect(x[row..<(row + 5)].allSatisfy { $0 == 0 }, "head \(h) row 1 is 0")
            }
            expectClose(out, reference(q, k, v, bias: try maskBias(mask, scores: [2, 2, 3, 4])), referenceTolerance)
        }
    }

    @Test(arguments: SemanticsBackendScope.allCases)
    func fullyMaskedFloatRowsAreZeroNotNaN(scope: SemanticsBackendScope) throws {
        try scope.run {
            let (q, k, v) = try randomAttentionInputs(1, 2, 3, 4, 5, seed: 31)
            var mask = try randn([3, 4], seed: 32)
            for j in 0..<4 { mask[2, j] = -.infinity }
            let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
            let x = out.scalars
            #expect(x.allSatisfy { !$0.isNaN })
            for h in 0..<2 {
                let row = (h * 3 + 2) * 5
                #expect(x[row..<(row + 5)].allSatisfy { $0 == 0 })
            }
            expectClose(out, reference(q, k, v, bias: try maskBias(mask, scores: [1, 2, 3, 4])), referenceTolerance)
        }
    }

    @Test(arguments: SemanticsBackendScope.allCases)
    func paddedBatchWithNoKeysIsZero(scope: SemanticsBackendScope) throws {
        try scope.run {
            let (q, k, v) = try randomAttentionInputs(2, 3, 4, 5, 6, seed: 33)
            let mask = try Tensor(shape: [2, 1, 1, 5], bools: [true, true, true, false, false, false, false, false, false, false])
            let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
            let x = out.scalars
            #expect(x[(3 * 4 * 6)...].allSatisfy { $0 == 0 }, "batch 1 sees no key")
            #expect(x[..<(3 * 4 * 6)].allSatisfy { $0.isFinite && $0 != 0 })
        }
    }

    /// Which output elements are NaN, and whether all others are bit-identical to `baseline`.
    private func nanPattern(_ out: Tensor, _ baseline: Tensor) -> (nan: [Bool], restIdentical: Bool) {
        let (o, b) = (out.scalars, baseline.scalars)
        let nan = o.map(\.isNaN)
        let rest = zip(o, b).allSatisfy { $0.isNaN || $0.bitPattern == $1.bitPattern }
        return (nan, rest)
    }

    @Test(arguments: SemanticsBackendScope.allCases)
    func nanInAQueryPoisonsExactlyItsRow(scope: SemanticsBackendScope) throws {
        let (B, H, L, S, E, Ev) = (2, 3, 4, 5, 6, 2)
        let (q0, k, v) = try randomAttentionInputs(B, H, L, S, E, ev: Ev, seed: 34)
        var q = q0
        q[1, 2, 1, 3] = .nan
        let (baseline, out) = try scope.run {
            (try scaledDotProductAttention(query: q0, key: k, value: v), try scaledDotProductAttention(query: q, key: k, value: v))
        }
        let (nan, rest) = nanPattern(out, baseline)
        #expect(nan == (0..<(B * H * L * Ev)).map { $0 / Ev == (1 * H + 2) * L + 1 })
        #expect(rest)
    }

    @Test(arguments: SemanticsBackendScope.allCases)
    func nanInAKeyPoisonsTheRowsThatSeeIt(scope: SemanticsBackendScope) throws {
        // GQA: H = 4 query heads share Hkv = 2 key heads, causal upper-left, L = S = 4.
        let (B, H, Hkv, L, S, Ev) = (2, 4, 2, 4, 4, 3)
        let (q, k0, v) = try randomAttentionInputs(B, H, L, S, 5, ev: Ev, hkv: Hkv, seed: 35)
        var k = k0
        k[0, 1, 2, 4] = .nan   // batch 0, kv head 1 (query heads 2, 3), key 2
        let (baseline, out) = try scope.run {
            (try scaledDotProductAttention(query: q, key: k0, value: v, isCausal: true, enableGQA: true),
             try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true, enableGQA: true))
        }
        let (nan, rest) = nanPattern(out, baseline)
        let expected = (0..<(B * H * L * Ev)).map { n -> Bool in
            let row = n / Ev, i = row % L, h = row / L % H, b = row / L / H
            return b == 0 && (h == 2 || h == 3) && i >= 2
        }
        #expect(nan == expected, "only rows of query heads 2 and 3 in batch 0 that see key 2")
        #expect(rest)
    }

    @Test(arguments: SemanticsBackendScope.allCases)
    func nanInAValuePoisonsOneColumnOfTheRowsThatSeeIt(scope: SemanticsBackendScope) throws {
        let (B, H, L, S, Ev) = (1, 2, 4, 4, 3)
        let (q, k, v0) = try randomAttentionInputs(B, H, L, S, 5, ev: Ev, seed: 36)
        var v = v0
        v[0, 0, 3, 1] = .nan   // head 0, key 3, column 1: only query 3 sees key 3
        let (baseline, out) = try scope.run {
            (try scaledDotProductAttention(query: q, key: k, value: v0, attnMask: causalUpperLeft(L, S)),
             try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalUpperLeft(L, S)))
        }
        let (nan, rest) = nanPattern(out, baseline)
        let expected = (0..<(B * H * L * Ev)).map { n -> Bool in
            let d = n % Ev, i = n / Ev % L, h = n / Ev / L
            return h == 0 && i == 3 && d == 1
        }
        #expect(nan == expected)
        #expect(rest)
    }

    @Test(arguments: SemanticsBackendScope.allCases)
    func nanInAValueAtAMaskedKeyDoesNotMatter(scope: SemanticsBackendScope) throws {
        let (q, k, v0) = try randomAttentionInputs(1, 2, 3, 4, 5, seed: 37)
        let mask = try Tensor(shape: [4], bools: [true, true, false, true])   // key 2 masked for every query
        var v = v0
        v[0, 1, 2, 3] = .nan
        var v3 = v0
        v3[0, 0, 3, 0] = .nan   // key 3 is never visible with upper-left causal and L = 3
        try scope.run {
            let outputs = [
                ("bool mask", try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask)),
                 try scaledDotProductAttention(query: q, key: k, value: v0, attnMask: TensorBias(mask))),
                ("causalUpperLeft", try scaledDotProductAttention(query: q, key: k, value: v3, attnMask: causalUpperLeft(3, 4)),
                 try scaledDotProductAttention(query: q, key: k, value: v0, attnMask: causalUpperLeft(3, 4))),
                ("isCausal", try scaledDotProductAttention(query: q, key: k, value: v3, isCausal: true),
                 try scaledDotProductAttention(query: q, key: k, value: v0, isCausal: true)),
            ]
            for (name, out, _) in outputs {
                #expect(!out.scalars.contains { $0.isNaN }, "\(name): NaN behind a masked key must not leak")
            }
            for (name, out, baseline) in outputs {
                #expect(zip(out.scalars, baseline.scalars).allSatisfy { $0.isNaN || $0.bitPattern == $1.bitPattern }, "\(name)")
            }
        }
    }

    @Test(arguments: SemanticsBackendScope.allCases)
    func nanInAKeyAtAMaskedKeyDoesNotMatter(scope: SemanticsBackendScope) throws {
        let (q, k0, v) = try randomAttentionInputs(1, 2, 3, 4, 5, seed: 38)
        let mask = try Tensor(shape: [4], bools: [true, true, false, true])
        var k = k0
        k[0, 0, 2, 0] = .nan
        var k3 = k0
        k3[0, 1, 3, 2] = .nan
        try scope.run {
            expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask)),
                            try scaledDotProductAttention(query: q, key: k0, value: v, attnMask: TensorBias(mask)), "bool mask")
            expectIdentical(try scaledDotProductAttention(query: q, key: k3, value: v, attnMask: causalUpperLeft(3, 4)),
                            try scaledDotProductAttention(query: q, key: k0, value: v, attnMask: causalUpperLeft(3, 4)), "causal")
            expectIdentical(try scaledDotProductAttention(query: q, key: k3, value: v, isCausal: true),
                            try scaledDotProductAttention(query: q, key: k0, value: v, isCausal: true), "isCausal")
        }
    }
}

/// The backends a test runs under: the math reference only, or the default choice (fused first).
enum SemanticsBackendScope: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case mathOnly
    case allBackends

    var backends: Set<SDPBackend> { self == .mathOnly ? [.math] : Set(SDPBackend.allCases) }
    var testDescription: String { rawValue }

    func run<R>(_ body: () throws -> R) rethrows -> R { try withSDPBackends(backends, body) }
}

// MARK: - empty and degenerate sizes

@Suite("Semantics: zero sizes")
struct ZeroSizeSemanticsTests {
    @Test func zeroQueryLength() throws {
        let (q, k, v) = try randomAttentionInputs(2, 3, 0, 5, 4, ev: 6)
        #expect(try scaledDotProductAttention(query: q, key: k, value: v).shape == [2, 3, 0, 6])
        #expect(try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true).shape == [2, 3, 0, 6])
        #expect(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(0, 5)).shape == [2, 3, 0, 6])
        let mask = try Tensor(zeros: [0, 5], dtype: .bool)
        let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
        #expect(out.shape == [2, 3, 0, 6])
        #expect(out.count == 0)
        #expect(out.dtype == .float32)
    }

    @Test(arguments: SemanticsBackendScope.allCases)
    func zeroKeyLengthGivesZeros(scope: SemanticsBackendScope) throws {
        try scope.run {
            let (q, k, v) = try randomAttentionInputs(2, 3, 4, 0, 5, ev: 6)
            for out in [
                try scaledDotProductAttention(query: q, key: k, value: v),
                try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true),
                try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(4, 0)),
                try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(try Tensor(zeros: [4, 0]))),
            ] {
                #expect(out.shape == [2, 3, 4, 6])
                #expect(out.scalars == [Float](repeating: 0, count: 2 * 3 * 4 * 6))
            }
        }
    }

    @Test func zeroValueHeadDim() throws {
        let (q, k, v) = try randomAttentionInputs(2, 3, 4, 5, 6, ev: 0)
        #expect(try scaledDotProductAttention(query: q, key: k, value: v).shape == [2, 3, 4, 0])
        #expect(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalUpperLeft(4, 5)).shape == [2, 3, 4, 0])
    }

    @Test func zeroBatch() throws {
        let (q, k, v) = try randomAttentionInputs(0, 3, 4, 5, 6, ev: 2)
        #expect(try scaledDotProductAttention(query: q, key: k, value: v).shape == [0, 3, 4, 2])
        #expect(try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true).shape == [0, 3, 4, 2])
        #expect(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(try Tensor(zeros: [4, 5]))).shape == [0, 3, 4, 2])
    }

    @Test func zeroHeads() throws {
        let (q, k, v) = try randomAttentionInputs(2, 0, 4, 5, 6)
        #expect(try scaledDotProductAttention(query: q, key: k, value: v).shape == [2, 0, 4, 6])
        #expect(try scaledDotProductAttention(query: q, key: k, value: v, enableGQA: true).shape == [2, 0, 4, 6])
    }

    /// Empty inputs whose last dimension is strided (a transposed or sliced view of an empty tensor) run as the same
    /// shapes made contiguous do, forward and backward: an empty tensor is read nowhere (it once recursed until the
    /// stack overflowed: its contiguous copy is itself).
    @Test(arguments: [[0, 2, 8, 4], [1, 0, 8, 4], [1, 2, 0, 4]])
    func emptyStridedViews(sizes: [Int]) throws {
        let (B, H, S, E) = (sizes[0], sizes[1], sizes[2], sizes[3])
        let q = try randn([B, H, 5, E], seed: 1)
        let view = try Tensor(zeros: [B, H, E, S]).transposed(2, 3)  // [B, H, S, E], last stride S
        #expect(view.strides.last != 1 || S <= 1)
        let fresh = try Tensor(zeros: [B, H, S, E])
        let mask = TensorBias(try Tensor(zeros: [5, S]))
        for (key, value) in [(view, view), (view, fresh), (fresh, view)] {
            expectIdentical(try scaledDotProductAttention(query: q, key: key, value: value),
                            try scaledDotProductAttention(query: q, key: fresh, value: fresh), "\(sizes)")
            expectIdentical(try scaledDotProductAttention(query: q, key: key, value: value, attnMask: mask),
                            try scaledDotProductAttention(query: q, key: fresh, value: fresh, attnMask: mask), "\(sizes), mask")
            let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: key, value: value)
            let grads = try scaledDotProductAttentionBackward(gradOutput: out, query: q, key: key, value: value, output: out, logSumExp: lse)
            #expect(grads.key.shape == key.shape && grads.value.shape == value.shape && grads.query.shape == q.shape)
            #expect(grads.query.doubleScalars.allSatisfy { $0 == 0 })
        }
        let emptyQuery = try Tensor(zeros: [B, H, E, 0]).transposed(2, 3)
        #expect(try scaledDotProductAttention(query: emptyQuery, key: view, value: view).shape == [B, H, 0, E])
    }

    @Test func singleElementProblem() throws {
        let (q, k, v) = try randomAttentionInputs(1, 1, 1, 1, 1)
        #expect(try scaledDotProductAttention(query: q, key: k, value: v).scalars == v.scalars, "one key: weight exactly 1")
    }
}

// MARK: - layouts, GQA and overloads

@Suite("Semantics: layouts, GQA and overloads")
struct LayoutSemanticsTests {
    @Test(arguments: [(6, 2), (4, 1), (3, 3), (8, 4)])
    func gqaEqualsRepeatedKeyValueHeads(H: Int, Hkv: Int) throws {
        let (q, k, v) = try randomAttentionInputs(2, H, 3, 5, 4, ev: 6, hkv: Hkv, seed: 40)
        let g = H / Hkv
        let (kr, vr) = (try repeatHeads(k, g), try repeatHeads(v, g))
        let gqa = try scaledDotProductAttention(query: q, key: k, value: v, enableGQA: true)
        let repeated = try scaledDotProductAttention(query: q, key: kr, value: vr)
        #expect(gqa.shape == [2, H, 3, 6])
        expectClose(gqa, repeated, referenceTolerance, "H=\(H) Hkv=\(Hkv)")
        expectClose(gqa, reference(q, k, v), referenceTolerance)
        // With a causal bias and a mask too.
        expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(3, 5), enableGQA: true),
                    try scaledDotProductAttention(query: q, key: kr, value: vr, attnMask: causalLowerRight(3, 5)), referenceTolerance)
        let mask = try Tensor.randomBools(shape: [1, H, 3, 5], probability: 0.7, seed: 41)
        expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask), enableGQA: true),
                    try scaledDotProductAttention(query: q, key: kr, value: vr, attnMask: TensorBias(mask)), referenceTolerance)
    }

    @Test func gqaGroupsAreContiguousNotInterleaved() throws {
        // h uses kv head h / (H / Hkv), not h % Hkv: the two layouts give different results.
        let (q, k, v) = try randomAttentionInputs(1, 4, 2, 3, 4, hkv: 2, seed: 42)
        let gqa = try scaledDotProductAttention(query: q, key: k, value: v, enableGQA: true)
        let kx = k.scalars, vx = v.scalars
        let block = 3 * 4
        let interleave: ([Float]) -> [Float] = { x in (0..<4).flatMap { h in x[(h % 2) * block..<((h % 2) + 1) * block] } }
        let ki = try Tensor(shape: [1, 4, 3, 4], scalars: interleave(kx)), vi = try Tensor(shape: [1, 4, 3, 4], scalars: interleave(vx))
        let interleaved = try scaledDotProductAttention(query: q, key: ki, value: vi)
        #expect(zip(gqa.scalars, interleaved.scalars).contains { abs($0 - $1) > 1e-3 })
        expectClose(gqa, try scaledDotProductAttention(query: q, key: repeatHeads(k, 2), value: repeatHeads(v, 2)), referenceTolerance)
    }

    @Test func valueHeadDimDiffersFromQueryHeadDim() throws {
        for (E, Ev) in [(5, 3), (3, 8), (1, 2)] {
            let (q, k, v) = try randomAttentionInputs(2, 2, 3, 4, E, ev: Ev, seed: 43)
            let out = try scaledDotProductAttention(query: q, key: k, value: v)
            #expect(out.shape == [2, 2, 3, Ev])
            expectClose(out, reference(q, k, v), referenceTolerance, "E=\(E) Ev=\(Ev)")
            expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalUpperLeft(3, 4)),
                        reference(q, k, v, bias: try maskBias(try trilMask(3, 4), scores: [2, 2, 3, 4])), referenceTolerance, "causal E=\(E) Ev=\(Ev)")
        }
    }

    @Test func threeDimensionalInputsEqualBatchOfOne() throws {
        let (q, k, v) = try randomAttentionInputs(1, 3, 4, 5, 6, ev: 2, seed: 44)
        let (q3, k3, v3) = (try q.reshaped([3, 4, 6]), try k.reshaped([3, 5, 6]), try v.reshaped([3, 5, 2]))
        let out3 = try scaledDotProductAttention(query: q3, key: k3, value: v3)
        let out4 = try scaledDotProductAttention(query: q, key: k, value: v)
        #expect(out3.shape == [3, 4, 2])
        expectClose(try out3.reshaped([1, 3, 4, 2]), out4, referenceTolerance)
        expectClose(out3, reference(q3, k3, v3), referenceTolerance)

        expectClose(try scaledDotProductAttention(query: q3, key: k3, value: v3, isCausal: true).reshaped([1, 3, 4, 2]),
                    try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true), referenceTolerance)
        let mask = try Tensor.randomBools(shape: [3, 4, 5], probability: 0.7, seed: 45)
        expectClose(try scaledDotProductAttention(query: q3, key: k3, value: v3, attnMask: TensorBias(mask)).reshaped([1, 3, 4, 2]),
                    try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask)), referenceTolerance)
        let mask2 = try Tensor.randomBools(shape: [4, 5], probability: 0.7, seed: 46)
        expectClose(try scaledDotProductAttention(query: q3, key: k3, value: v3, attnMask: TensorBias(mask2)),
                    reference(q3, k3, v3, bias: try maskBias(mask2, scores: [3, 4, 5])), referenceTolerance)
        // GQA in 3-D.
        let kg = try randn([1, 5, 6], seed: 47), vg = try randn([1, 5, 2], seed: 48)
        expectClose(try scaledDotProductAttention(query: q3, key: kg, value: vg, enableGQA: true),
                    reference(q3, kg, vg), referenceTolerance)
    }

    @Test(arguments: SemanticsBackendScope.allCases)
    func transposedBLHEInputsEqualContiguous(scope: SemanticsBackendScope) throws {
        try scope.run {
            let (B, L, S, H, Hkv, E, Ev) = (2, 4, 5, 6, 2, 3, 7)
            let qb = try randn([B, L, H, E], seed: 50), kb = try randn([B, S, Hkv, E], seed: 51), vb = try randn([B, S, Hkv, Ev], seed: 52)
            let (q, k, v) = (try qb.transposed(1, 2), try kb.transposed(1, 2), try vb.transposed(1, 2))
            #expect(!q.isContiguous && !k.isContiguous && !v.isContiguous)
            #expect(q.shape == [B, H, L, E])
            let (qc, kc, vc) = try (q.contiguous(), k.contiguous(), v.contiguous())
            let out = try scaledDotProductAttention(query: q, key: k, value: v, enableGQA: true)
            expectClose(out, try scaledDotProductAttention(query: qc, key: kc, value: vc, enableGQA: true), referenceTolerance)
            expectClose(out, reference(qc, kc, vc), referenceTolerance)
            expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(L, S), enableGQA: true),
                        try scaledDotProductAttention(query: qc, key: kc, value: vc, attnMask: causalLowerRight(L, S), enableGQA: true), referenceTolerance)
            // A transposed mask too.
            let maskSL = try Tensor.randomBools(shape: [S, L], probability: 0.7, seed: 53)
            let maskLS = try maskSL.transposed(0, 1)
            expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(maskLS), enableGQA: true),
                        try scaledDotProductAttention(query: qc, key: kc, value: vc, attnMask: TensorBias(maskLS.contiguous()), enableGQA: true), referenceTolerance)
        }
    }

    @Test func broadcastInputsAreRead() throws {
        // A key/value shared by the batch through a stride-0 view.
        let (q, _, _) = try randomAttentionInputs(3, 2, 4, 5, 6, seed: 54)
        let k1 = try randn([1, 2, 5, 6], seed: 55), v1 = try randn([1, 2, 5, 6], seed: 56)
        let (k, v) = (try k1.broadcast(to: [3, 2, 5, 6]), try v1.broadcast(to: [3, 2, 5, 6]))
        expectClose(try scaledDotProductAttention(query: q, key: k, value: v), try reference(q, k.contiguous(), v.contiguous()), referenceTolerance)
    }

    @Test func existentialBiasEqualsGenericCall() throws {
        let (q, k, v) = try randomAttentionInputs(2, 4, 3, 5, 6, seed: 60)
        let biases: [any AttnBias] = [
            TensorBias(try Tensor.randomBools(shape: [2, 1, 3, 5], probability: 0.7, seed: 61)),
            TensorBias(try randn([3, 5], seed: 62)),
            causalUpperLeft(3, 5),
            causalLowerRight(3, 5),
            AlibiBias(numHeads: 4, seqLenQ: 3, seqLenKV: 5),
            AlibiBias(numHeads: 4, seqLenQ: 3, seqLenKV: 5, causal: .upperLeft),
        ]
        func generic<Bias: AttnBias>(_ bias: Bias) throws -> Tensor {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: 0.4)
        }
        for bias in biases {
            let viaExistential = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: 0.4)
            expectIdentical(viaExistential, try generic(bias), "\(type(of: bias))")
        }
        // And with the concrete static types spelled out.
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(3, 5)),
                        try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(3, 5) as any AttnBias))
    }

    @available(*, deprecated)
    @Test func deprecatedRawTensorOverloadEqualsTensorBias() throws {
        let (q, k, v) = try randomAttentionInputs(2, 2, 3, 4, 5, seed: 63)
        for mask in [try Tensor.randomBools(shape: [3, 4], probability: 0.6, seed: 64), try randn([2, 1, 3, 4], seed: 65)] {
            expectIdentical(try rawMaskAttention(q, k, v, mask: mask, scale: 0.7),
                            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask), scale: 0.7))
        }
    }

    @Test(arguments: [CausalVariant?.none, .upperLeft, .lowerRight])
    func alibiMatchesItsDefinition(causal: CausalVariant?) throws {
        for (L, S) in [(3, 5), (5, 3)] {
            let H = 3
            let (q, k, v) = try randomAttentionInputs(2, H, L, S, 4, seed: 66)
            let bias = AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S, causal: causal)
            let slopes = AlibiBias.standardSlopes(numHeads: H)
            let offset = causal == .upperLeft ? 0 : S - L
            let definition: Bias = { _, h, i, j in
                let distance = i + offset - j
                if causal != nil && distance < 0 { return -.infinity }
                return -Double(slopes[h]) * Double(abs(distance))
            }
            let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
            expectClose(out, reference(q, k, v, bias: definition), referenceTolerance, "causal \(String(describing: causal)) L=\(L) S=\(S)")
            let materialized = try bias.materialize(device: .cpu)
            #expect(materialized.shape == [H, L, S])
            expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(materialized)), out, referenceTolerance)
        }
    }

    @Test func standardSlopes() {
        #expect(AlibiBias.standardSlopes(numHeads: 4) == [0.25, 0.0625, 0.015625, 0.00390625])
        #expect(AlibiBias.standardSlopes(numHeads: 0) == [])
        #expect(AlibiBias.standardSlopes(numHeads: 1) == [0.00390625])
        let six = AlibiBias.standardSlopes(numHeads: 6)
        #expect(six.count == 6)
        #expect(Array(six.prefix(4)) == AlibiBias.standardSlopes(numHeads: 4))
        // The paper's get_slopes(6): get_slopes_power_of_2(4) + get_slopes_power_of_2(8)[0::2][:2].
        #expect(Array(six.suffix(2)) == [0.5, 0.125])
    }

    @Test func float64InputsStayFloat64() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 3, 4, 5, seed: 67, dtype: .float64)
        let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(3, 4))
        #expect(out.dtype == .float64)
        expectClose(out, reference(q, k, v, bias: try maskBias(try trilMask(3, 4, diagonal: 1), scores: [1, 2, 3, 4])), float64Tolerance)
    }
}

// MARK: - dropout

@Suite("Semantics: dropout")
struct DropoutSemanticsTests {
    private let inputs = Result { try randomAttentionInputs(1, 2, 3, 5, 4, seed: 70) }

    @Test func sameSeedSameOutputDifferentSeedDifferentOutput() throws {
        let (q, k, v) = try inputs.get()
        let a = try scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0.5, dropoutSeed: 1)
        let b = try scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0.5, dropoutSeed: 1)
        let c = try scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0.5, dropoutSeed: 2)
        expectIdentical(a, b)
        #expect(a.scalars != c.scalars)
        // The same seed is reproducible with a bias too.
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(3, 5), dropoutP: 0.3, dropoutSeed: 9),
                        try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(3, 5), dropoutP: 0.3, dropoutSeed: 9))
    }

    @Test func noSeedDrawsAFreshOne() throws {
        let (q, k, v) = try inputs.get()
        let a = try scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0.5)
        let b = try scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0.5)
        #expect(a.scalars != b.scalars)
    }

    @Test func zeroProbabilityEqualsNoDropout() throws {
        let (q, k, v) = try inputs.get()
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0, dropoutSeed: 3),
                        try scaledDotProductAttention(query: q, key: k, value: v))
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true, dropoutP: 0),
                        try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true))
    }

    @Test func probabilityOneGivesZeros() throws {
        let (q, k, v) = try inputs.get()
        for seed: UInt64 in [1, 2, 3] {
            let out = try scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 1, dropoutSeed: seed)
            #expect(out.scalars == [Float](repeating: 0, count: out.count))
        }
        let causal = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalUpperLeft(3, 5), dropoutP: 1)
        #expect(causal.scalars.allSatisfy { $0 == 0 })
    }

    @Test func droppedWeightsAreZeroAndKeptOnesRescaled() throws {
        // With value = identity rows (S = Ev), output row i is the dropped, rescaled weight vector.
        let (q, k, _) = try randomAttentionInputs(1, 1, 3, 4, 5, seed: 71)
        let eye = try Tensor(shape: [1, 1, 4, 4], scalars: (0..<16).map { $0 % 5 == 0 ? 1 : 0 } as [Float])
        let weights = try scaledDotProductAttention(query: q, key: k, value: eye).doubleScalars
        let p: Float = 0.25
        let dropped = try scaledDotProductAttention(query: q, key: k, value: eye, dropoutP: p, dropoutSeed: 5).doubleScalars
        // Each weight is dropped (exactly 0) or kept and scaled by 1 / (1 - p); both happen.
        let kept = dropped.indices.map { dropped[$0] == 0 ? 0 : weights[$0] / 0.75 }
        expectClose(dropped, kept, referenceTolerance, "kept weights are scaled by 1 / (1 - p)")
        #expect(dropped.contains(0) && dropped.contains { $0 != 0 })
    }

    @Test func meanOverSeedsApproachesTheUndroppedOutput() throws {
        let (q, k, v) = try inputs.get()
        let plain = try scaledDotProductAttention(query: q, key: k, value: v).doubleScalars
        var sum = [Double](repeating: 0, count: plain.count)
        for seed in 0..<UInt64(dropoutSeeds) {
            let out = try scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0.3, dropoutSeed: seed).doubleScalars
            for n in sum.indices { sum[n] += out[n] }
        }
        let mean = sum.map { $0 / Double(dropoutSeeds) }
        expectClose(mean, plain, Tolerance(atol: dropoutMeanAtol, rtol: 0), "mean of \(dropoutSeeds) dropout draws")
    }

    @Test func sameDropsInsideMathOnlyScope() throws {
        let (q, k, v) = try inputs.get()
        // Dropout runs on the fused kernel outside: the same weights dropped, the rest within float32 rounding.
        let outside = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(3, 5), dropoutP: 0.4, dropoutSeed: 11)
        let inside = try withSDPBackends([.math]) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(3, 5), dropoutP: 0.4, dropoutSeed: 11)
        }
        expectClose(outside, inside, .float32)
        let plainInside = try withSDPBackends([.math]) { try scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0.4, dropoutSeed: 12) }
        expectClose(try scaledDotProductAttention(query: q, key: k, value: v, dropoutP: 0.4, dropoutSeed: 12), plainInside, .float32)
    }
}

// MARK: - reduced precision

@Suite("Semantics: float16 and bfloat16")
struct ReducedPrecisionSemanticsTests {
    /// The half-precision output is the float32 computation on the same (rounded) inputs, rounded
    /// once: within `Tolerance.float32.roundedOnce(to:)` of it (the float32 tolerance allows the
    /// routes to differ in the order of their float32 operations).
    @Test(arguments: [DType.float16, .bfloat16])
    func reducedPrecisionIsCloseToFloat32(dtype: DType) throws {
        let (q32, k32, v32) = try randomAttentionInputs(2, 2, 4, 6, 8, ev: 5, seed: 80)
        let (q, k, v) = try (q32.converted(to: dtype), k32.converted(to: dtype), v32.converted(to: dtype))
        // The float32 reference runs on the same (already rounded) input values.
        let (qf, kf, vf) = try (q.converted(to: .float32), k.converted(to: .float32), v.converted(to: .float32))
        let mask = try randn([4, 6], seed: 81)
        let cases: [(String, Tensor, Tensor)] = [
            ("no mask", try scaledDotProductAttention(query: q, key: k, value: v),
             try scaledDotProductAttention(query: qf, key: kf, value: vf)),
            ("isCausal", try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true),
             try scaledDotProductAttention(query: qf, key: kf, value: vf, isCausal: true)),
            ("lowerRight", try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(4, 6)),
             try scaledDotProductAttention(query: qf, key: kf, value: vf, attnMask: causalLowerRight(4, 6))),
            ("float mask", try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask), scale: 0.5),
             try scaledDotProductAttention(query: qf, key: kf, value: vf, attnMask: TensorBias(mask), scale: 0.5)),
            ("alibi", try scaledDotProductAttention(query: q, key: k, value: v, attnMask: AlibiBias(numHeads: 2, seqLenQ: 4, seqLenKV: 6)),
             try scaledDotProductAttention(query: qf, key: kf, value: vf, attnMask: AlibiBias(numHeads: 2, seqLenQ: 4, seqLenKV: 6))),
        ]
        for (name, low, full) in cases {
            #expect(low.shape == [2, 2, 4, 5])
            expectClose(low, try full.converted(to: .float64), Tolerance.float32.roundedOnce(to: dtype), "\(dtype) \(name)", dtype: dtype)
        }
    }

    @Test(arguments: [DType.float16, .bfloat16])
    func reducedPrecisionOutputIsTheRoundedFloat32Output(dtype: DType) throws {
        let (q32, k32, v32) = try randomAttentionInputs(1, 2, 3, 4, 8, seed: 82)
        let (q, k, v) = try (q32.converted(to: dtype), k32.converted(to: dtype), v32.converted(to: dtype))
        let low = try scaledDotProductAttention(query: q, key: k, value: v)
        let full = try scaledDotProductAttention(query: q.converted(to: .float32), key: k.converted(to: .float32), value: v.converted(to: .float32))
        // Within one rounding of the target dtype (2^-11 relative for float16, 2^-8 for bfloat16).
        let roundedOnce = Tolerance(atol: 1e-6, rtol: Tolerance.unitRoundoff(dtype))
        expectClose(low, full, roundedOnce, "\(dtype) is float32 rounded once", dtype: dtype)
    }
}
