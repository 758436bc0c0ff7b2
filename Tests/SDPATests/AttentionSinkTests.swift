import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// Attention with learned sinks (``AttentionOptions/sinks``), written out in `Double` from the
/// definition: row `i` of head `h` is `Σ_j exp(s_ij) v_j / (exp(sink_h) + Σ_j exp(s_ij))` over its visible
/// keys, and its log-sum-exp `log(exp(sink_h) + Σ_j exp(s_ij))`. Inputs `[B, H, L, E]`, `[B, Hkv, S, E]`.
private func sinkReference(
    _ q: Tensor, _ k: Tensor, _ v: Tensor, sinks: [Double], scale: Double, visible: (Int, Int, Int, Int) -> Bool
) -> (output: [Double], logSumExp: [Double]) {
    let (B, H, L, E) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
    let (Hkv, S, Ev) = (k.shape[1], k.shape[2], v.shape[3])
    let (qs, ks, vs) = (q.doubleScalars, k.doubleScalars, v.doubleScalars)
    var output = [Double](), logSumExp = [Double]()
    for b in 0..<B {
        for h in 0..<H {
            let kv = b * Hkv + h / (H / Hkv)
            for i in 0..<L {
                let scores: [(Int, Double)] = (0..<S).filter { visible(b, h, i, $0) }.map { j in
                    (j, (0..<E).reduce(0.0) { $0 + qs[((b * H + h) * L + i) * E + $1] * ks[(kv * S + j) * E + $1] } * scale)
                }
                let denominator = Foundation.exp(sinks[h]) + scores.reduce(0.0) { $0 + Foundation.exp($1.1) }
                logSumExp.append(Foundation.log(denominator))
                for d in 0..<Ev {
                    let numerator = scores.reduce(0.0) { $0 + Foundation.exp($1.1) * vs[(kv * S + $1.0) * Ev + d] }
                    output.append(scores.isEmpty ? 0 : numerator / denominator)
                }
            }
        }
    }
    return (output, logSumExp)
}

/// A window open on both sides: no mask, but a bias type whose dispatch takes the options.
private func noMask(_ L: Int, _ S: Int) -> SlidingWindowBias { SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: nil, right: nil) }

@Suite("Attention sinks")
struct AttentionSinkTests {
    @Test("no mask, GQA: output and log-sum-exp are the definition's, in Double")
    func matchesTheDefinition() throws {
        let (q, k, v) = try randomAttentionInputs(2, 4, 7, 19, 16, ev: 12, hkv: 2, seed: 3)
        let sinks = [0.5, -1.25, 2.0, -8.0]
        let options = AttentionOptions(enableGQA: true, sinks: try Tensor(shape: [4], scalars: sinks, dtype: .float32))
        let (out, lse) = try SlidingWindowBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: noMask(7, 19), options: options)
        let expected = sinkReference(q, k, v, sinks: sinks, scale: 1 / 4) { _, _, _, _ in true }
        #expect(out.shape == [2, 4, 7, 12] && lse.shape == [2, 4, 7])
        // The math backend computes in Double and rounds once to float32.
        expectClose(out, expected.output, Tolerance(atol: 1e-7, rtol: 1e-6), "output")
        expectClose(lse, expected.logSumExp, Tolerance(atol: 1e-6, rtol: 1e-6), "log-sum-exp")
        // The sink takes weight from every key: each row's weights sum to less than 1.
        let plain = try SlidingWindowBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: noMask(7, 19), options: AttentionOptions(enableGQA: true))
        for (a, b) in zip(lse.scalars, plain.logSumExp.scalars) { #expect(a > b) }
    }

    @Test("a causal bias with fully masked rows: output 0, log-sum-exp the sink")
    func fullyMaskedRows() throws {
        let (L, S) = (9, 5)
        let (q, k, v) = try randomAttentionInputs(1, 2, L, S, 8, seed: 7)
        let sinks = [1.5, -0.5]
        let options = AttentionOptions(sinks: try Tensor(shape: [2], scalars: sinks, dtype: .float32))
        let (out, lse) = try CausalBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: causalLowerRight(L, S), options: options)
        let expected = sinkReference(q, k, v, sinks: sinks, scale: 1 / 8.0.squareRoot()) { _, _, i, j in j <= i + S - L }
        expectClose(out, expected.output, Tolerance(atol: 1e-7, rtol: 1e-6), "output")
        expectClose(lse, expected.logSumExp, Tolerance(atol: 1e-6, rtol: 1e-6), "log-sum-exp")
        // Rows 0..<L-S of each head see no key: exactly 0, and exactly the sink (as float32).
        let (outs, lses) = (out.scalars, lse.scalars)
        for h in 0..<2 {
            for i in 0..<(L - S) {
                #expect(outs[((h * L) + i) * 8..<((h * L) + i + 1) * 8].allSatisfy { $0 == 0 })
                #expect(lses[h * L + i] == Float(sinks[h]))
            }
        }
    }

    @Test("-infinity sinks are no sinks, bit for bit, on every route")
    func negativeInfinityIsNoSink() throws {
        let (q, k, v) = try randomAttentionInputs(1, 3, 6, 11, 8, seed: 11)
        let none = try Tensor(shape: [3], scalars: [Float](repeating: -.infinity, count: 3))
        let bias = AlibiBias(numHeads: 3, seqLenQ: 6, seqLenKV: 11, causal: .upperLeft)
        let mask = TensorBias(try bias.materialize(device: .cpu))
        try withSDPBackends([.math]) {
            let plain = try AlibiBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: bias, options: AttentionOptions())
            let sunk = try AlibiBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: bias, options: AttentionOptions(sinks: none))
            expectIdentical(sunk.output, plain.output, "fused bias")
            expectIdentical(sunk.logSumExp, plain.logSumExp, "fused bias log-sum-exp")
            let materialized = try TensorBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: mask, options: AttentionOptions(sinks: none))
            let plainMaterialized = try TensorBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: mask, options: AttentionOptions())
            expectIdentical(materialized.output, plainMaterialized.output, "materialized")
        }
    }

    @Test("any float dtype: the sinks' own values, rounded as stored", arguments: [DType.float16, .bfloat16, .float64])
    func sinkDTypes(_ dtype: DType) throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 4, 9, 8, seed: 13)
        let sinks = try Tensor(shape: [2], scalars: [0.3, -1.7], dtype: dtype)
        let out = try CausalBias.dispatch(query: q, key: k, value: v, attnBias: causalUpperLeft(4, 9), options: AttentionOptions(sinks: sinks))
        let expected = sinkReference(q, k, v, sinks: sinks.doubleScalars, scale: 1 / 8.0.squareRoot()) { _, _, i, j in j <= i }
        expectClose(out, expected.output, Tolerance(atol: 1e-7, rtol: 1e-6), "\(dtype) sinks")
        #expect(sinks.doubleScalars != [0.3, -1.7] || dtype == .float64, "a 16-bit sink is its rounded value")
    }

    @Test("the fused kernel runs sinks on every family: whole and split items, decoding, GQA, half precisions",
          arguments: KernelFamily.available)
    func fusedSinks(_ family: KernelFamily) throws {
        // (L, S): a prefill of whole items, decoding whose keys split across items, a row that sees no key.
        for (L, S, causal) in [(37, 150, true), (1, 2100, false), (9, 5, true)] {
            for dtype in [DType.float32, .float16, .bfloat16] {
                let (q32, k32, v32) = try randomAttentionInputs(1, 4, L, S, 16, ev: 8, hkv: 2, seed: 17)
                let (q, k, v) = try (q32.converted(to: dtype), k32.converted(to: dtype), v32.converted(to: dtype))
                let sinks = try Tensor(shape: [4], scalars: [Float(0.25), -2, 3.5, -.infinity])
                let options = AttentionOptions(enableGQA: true, sinks: sinks)
                func run(_ backends: Set<SDPBackend>) throws -> (output: Tensor, logSumExp: Tensor) {
                    try withSDPBackends(backends) {
                        causal ? try CausalBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: causalLowerRight(L, S), options: options)
                               : try SlidingWindowBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: noMask(L, S), options: options)
                    }
                }
                let fused = try family.run { try withSDPAThreads(1) { try run([.fused]) } }
                let math = try run([.math])
                let label = "\(family.name) L=\(L) S=\(S) \(dtype)"
                var tolerance = dtype == .float32 ? Tolerance.float32 : Tolerance.float32.bothRounded(to: dtype)
                let pairs = try family.run { FusedKernelInstructionSet.multipliesBFloat16Pairs }
                if dtype == .bfloat16 && pairs {
                    tolerance = tolerance.withBFloat16Probabilities(maxAbsValue: v.doubleScalars.map(abs).max() ?? 0)
                }
                expectClose(fused.output, math.output, tolerance, "\(label) output", dtype: dtype)
                expectClose(fused.logSumExp, math.logSumExp, .logSumExp, "\(label) log-sum-exp")
                // Every thread count gives the bits of one (a family chosen for this thread alone holds only
                // on one thread, so the process's own family is the one compared).
                if family.name == FusedKernelInstructionSet.current {
                    expectIdentical(try run([.fused]).output, fused.output, "\(label): threads change the bits")
                }
            }
        }
        // -infinity sinks are no sinks, bit for bit, on the fused route too.
        let (q, k, v) = try randomAttentionInputs(1, 3, 6, 300, 8, seed: 11)
        let none = try Tensor(shape: [3], scalars: [Float](repeating: -.infinity, count: 3))
        let bias = AlibiBias(numHeads: 3, seqLenQ: 6, seqLenKV: 300, causal: .upperLeft)
        // One thread: a family chosen for this thread alone does not reach the workers.
        try family.run { try withSDPAThreads(1) {
            try withSDPBackends([.fused]) {
                let plain = try AlibiBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: bias, options: AttentionOptions())
                let sunk = try AlibiBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: bias, options: AttentionOptions(sinks: none))
                expectIdentical(sunk.output, plain.output, "\(family.name): -inf sinks")
                expectIdentical(sunk.logSumExp, plain.logSumExp, "\(family.name): -inf sinks' log-sum-exp")
            }
        } }
    }

    @Test("every public forward entry point takes sinks: each route's result is the definition's", arguments: [SDPBackend.fused, .math])
    func publicEntryPoints(_ backend: SDPBackend) throws {
        let (L, S) = (5, 13)
        let (q, k, v) = try randomAttentionInputs(1, 4, L, S, 8, ev: 6, hkv: 2, seed: 23)
        let values = [0.75, -1.5, 2.25, -.infinity]
        let sinks = try Tensor(shape: [4], scalars: values.map(Float.init))
        let scale = 1 / 8.0.squareRoot()
        let all = sinkReference(q, k, v, sinks: values, scale: scale) { _, _, _, _ in true }
        let upperLeft = sinkReference(q, k, v, sinks: values, scale: scale) { _, _, i, j in j <= i }
        let lowerRight = sinkReference(q, k, v, sinks: values, scale: scale) { _, _, i, j in j <= i + S - L }
        let bias = causalLowerRight(L, S)
        let mask = TensorBias(try bias.materialize(device: .cpu))
        let tolerance = backend == .math ? Tolerance(atol: 1e-7, rtol: 1e-6) : Tolerance.float32
        try withSDPBackends([backend]) {
            expectClose(try scaledDotProductAttention(query: q, key: k, value: v, enableGQA: true, sinks: sinks),
                        all.output, tolerance, "no mask")
            expectClose(try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true, enableGQA: true, sinks: sinks),
                        upperLeft.output, tolerance, "isCausal")
            let unmasked = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, enableGQA: true, sinks: sinks)
            expectClose(unmasked.output, all.output, tolerance, "no mask, with log-sum-exp")
            expectClose(unmasked.logSumExp, all.logSumExp, .logSumExp, "no mask: log-sum-exp")
            expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: true, sinks: sinks),
                        lowerRight.output, tolerance, "fused bias")
            let fused = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, enableGQA: true, sinks: sinks)
            expectClose(fused.output, lowerRight.output, tolerance, "fused bias, with log-sum-exp")
            expectClose(fused.logSumExp, lowerRight.logSumExp, .logSumExp, "fused bias: log-sum-exp")
            expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias as any AttnBias, enableGQA: true, sinks: sinks),
                        lowerRight.output, tolerance, "any AttnBias")
            let existential = try scaledDotProductAttentionWithLogSumExp(
                query: q, key: k, value: v, attnMask: bias as any AttnBias, enableGQA: true, sinks: sinks)
            expectClose(existential.logSumExp, lowerRight.logSumExp, .logSumExp, "any AttnBias: log-sum-exp")
            expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: mask, enableGQA: true, sinks: sinks),
                        lowerRight.output, tolerance, "materialized TensorBias")
            expectClose(try deprecatedRawMaskCall(q, k, v, mask: mask.mask, sinks: sinks), lowerRight.output, tolerance, "raw mask")
            // explainSDPA checks the sinks as the call does, and names the backend that runs them.
            #expect(try explainSDPA(query: q, key: k, value: v, attnMask: bias, enableGQA: true, sinks: sinks).backend == backend)
        }
        // Without sinks (the default), the sinks' columns are no part of any row.
        let plain = sinkReference(q, k, v, sinks: [-.infinity, -.infinity, -.infinity, -.infinity], scale: scale) { _, _, i, j in j <= i + S - L }
        try withSDPBackends([backend]) {
            expectClose(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: true), plain.output, tolerance, "no sinks")
        }
    }

    /// The fused backward pass of a forward with sinks, given its output and log-sum-exp but not the sinks (a
    /// caller that wants no sink gradient): the gradients of query, key and value through the sink-normalized
    /// weights. Half precisions recompute the output in float32 for `D` (without the sinks, not given here) and
    /// rescale each row to the given log-sum-exp: the float32 pass on the same values, which reads the given
    /// output, to the dtype's rounding.
    @Test("the fused backward pass of a forward with sinks: half precisions as float32", arguments: [DType.float16, .bfloat16])
    func backwardOfSinks(dtype: DType) throws {
        let (q32, k32, v32) = try randomAttentionInputs(2, 4, 9, 40, 16, ev: 8, hkv: 2, seed: 23)
        let (q, k, v) = try (q32.converted(to: dtype), k32.converted(to: dtype), v32.converted(to: dtype))
        let sinks = try Tensor(shape: [4], scalars: [Float(0.25), 2, 3.5, -.infinity])
        let dO = try randn([2, 4, 9, 8], seed: 24, dtype: dtype)
        func gradients(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ dO: Tensor) throws -> AttentionGradients {
            try withSDPBackends([.fused]) {
                let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true, enableGQA: true,
                                                                            sinks: sinks)
                return try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                             isCausal: true, enableGQA: true)
            }
        }
        let got = try gradients(q, k, v, dO)
        let want = try gradients(try q.converted(to: .float32), try k.converted(to: .float32), try v.converted(to: .float32),
                                 try dO.converted(to: .float32))
        for (name, a, b) in [("dQ", got.query, want.query), ("dK", got.key, want.key), ("dV", got.value, want.value)] {
            let largest = b.doubleScalars.map(Swift.abs).max() ?? 0
            expectClose(a, b.doubleScalars, fusedBackwardTolerance(dtype, inputs: dtype, largest: largest), "\(dtype) \(name)")
        }
    }

    /// `dL/dsinks` against central differences of the loss `Σ dO ∘ output` in float64 (math backend): the
    /// gradient the backward pass gives is the one the forward pass has, whatever formula computes it; the
    /// query's gradient too (a sink changes every weight of its row).
    @Test("the sinks' gradient is the forward's derivative: central differences in float64, every public backward entry point")
    func sinkGradientByDifferences() throws {
        let (q32, k32, v32) = try randomAttentionInputs(2, 4, 6, 11, 8, ev: 5, hkv: 2, seed: 41)
        let (q, k, v) = (try q32.converted(to: .float64), try k32.converted(to: .float64), try v32.converted(to: .float64))
        let dO = try randn([2, 4, 6, 5], seed: 42, dtype: .float64)
        let sinks = [0.75, -1.5, 2.25, -.infinity]
        let bias = causalLowerRight(6, 11)
        func loss(_ logits: [Double], query: Tensor = q) throws -> Double {
            let out = try scaledDotProductAttention(query: query, key: k, value: v, attnMask: bias, enableGQA: true,
                                                    sinks: try Tensor(shape: [4], scalars: logits, dtype: .float64))
            return zip(out.doubleScalars, dO.doubleScalars).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let given = try Tensor(shape: [4], scalars: sinks, dtype: .float64)
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, enableGQA: true, sinks: given)
        let calls: [(String, () throws -> AttentionGradients)] = [
            ("generic bias", { try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                                      attnMask: bias, enableGQA: true, sinks: given) }),
            ("existential bias", { try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                                          attnMask: bias as any AttnBias, enableGQA: true, sinks: given) }),
            ("Float scale", { try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                                     attnMask: bias, scale: Float(1 / 8.0.squareRoot()), enableGQA: true, sinks: given) }),
        ]
        let h = 1e-5
        var expected = [Double]()
        for head in 0..<4 {
            guard sinks[head] != -.infinity else { expected.append(0); continue }
            var (up, down) = (sinks, sinks)
            up[head] += h
            down[head] -= h
            expected.append((try loss(up) - loss(down)) / (2 * h))
        }
        // dQ[0, 0, 3, 0] by the same differences.
        let at = 3 * 8
        func shifted(_ by: Double) throws -> Tensor {
            var values = q.doubleScalars
            values[at] += by
            return try Tensor(shape: q.shape, scalars: values, dtype: .float64)
        }
        let dQ = (try loss(sinks, query: shifted(h)) - loss(sinks, query: shifted(-h))) / (2 * h)
        for (name, call) in calls {
            let grads = try call()
            let got = try #require(grads.sinks, "\(name): a sink gradient")
            #expect(got.dtype == .float64 && got.shape == [4], "\(name)")
            expectClose(got, expected, Tolerance(atol: 1e-8, rtol: 1e-7), "\(name) dSinks")
            #expect(got.doubleScalars[3] == 0, "\(name): a -infinity sink has no gradient")
            #expect(Swift.abs(grads.query.doubleScalars[at] - dQ) <= 1e-8, "\(name) dQ")
        }
        // The plain entry point (isCausal) and the deprecated raw mask take them too.
        let plain = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true, enableGQA: true, sinks: given)
        let grads = try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: plain.output,
                                                          logSumExp: plain.logSumExp, isCausal: true, enableGQA: true, sinks: given)
        let viaMask = try deprecatedRawMaskBackward(dO, q, k, v, output: plain.output, logSumExp: plain.logSumExp,
                                                    mask: try causalUpperLeft(6, 11).materialize(device: .cpu), sinks: given)
        expectClose(try #require(viaMask.sinks), try #require(grads.sinks), Tolerance(atol: 1e-14, rtol: 1e-12), "raw mask dSinks")
    }

    @Test("the sinks' gradient comes in the sinks' dtype; the backward pass checks the sinks as the forward does")
    func sinkGradientDTypeAndErrors() throws {
        let (q, k, v) = try randomAttentionInputs(1, 4, 3, 6, 8, hkv: 2, seed: 43)
        let dO = try randn([1, 4, 3, 8], seed: 44)
        for dtype in [DType.float16, .bfloat16, .float32, .float64] {
            let sinks = try Tensor(shape: [4], scalars: [0.5, 1, -1, 2], dtype: dtype)
            for backend in [SDPBackend.fused, .math] {
                let grads = try withSDPBackends([backend]) {
                    let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true, enableGQA: true, sinks: sinks)
                    return try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                                 isCausal: true, enableGQA: true, sinks: sinks)
                }
                #expect(grads.sinks?.dtype == dtype && grads.sinks?.shape == [4], "\(backend) \(dtype)")
            }
        }
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, enableGQA: true)
        let wrong = try Tensor(shape: [2], scalars: [Float(0), 0])
        #expect(throws: SDPAError.invalidShape(argument: "sinks", shape: [2],
                                               reason: "expected [H] = [4]: one logit per query head (B=1 H=4 Hkv=2 L=3 S=6 E=8 Ev=8)")) {
            try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, enableGQA: true, sinks: wrong)
        }
        #expect(throws: SDPAError.invalidArgument(argument: "sinks[1]", value: "nan", reason: "a sink logit must be finite, or -infinity for no sink")) {
            try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                  attnMask: causalLowerRight(3, 6), enableGQA: true,
                                                  sinks: try Tensor(shape: [4], scalars: [Float(0), .nan, 0, 0]))
        }
        let none = try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, enableGQA: true)
        #expect(none.sinks == nil)
    }

    @Test("a row that sees no key holds its whole weight on the sink: a NaN in its dO reaches dL/dsinks on both backends, as in PyTorch")
    func sinkGradientOfRowsThatSeeNoKey() throws {
        // L > S, lower-right: rows 0 and 1 see no key.
        let (q, k, v) = try randomAttentionInputs(1, 2, 5, 3, 4, seed: 45)
        var values = try randn([1, 2, 5, 4], seed: 46).doubleScalars
        let sinks = try Tensor(shape: [2], scalars: [Float(0.5), -1])
        func sinkGradient(_ backend: SDPBackend, _ dO: Tensor) throws -> [Double] {
            try withSDPBackends([backend]) {
                let bias = causalLowerRight(5, 3)
                let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, sinks: sinks)
                return try #require(try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out,
                                                                         logSumExp: lse, attnMask: bias, sinks: sinks).sinks).doubleScalars
            }
        }
        let finite = try Tensor(shape: [1, 2, 5, 4], scalars: values, dtype: .float32)
        expectClose(try sinkGradient(.fused, finite), try sinkGradient(.math, finite), Tolerance(atol: 1e-6, rtol: 1e-5), "finite dO")
        values[5 * 4 + 1] = .nan  // head 1, row 0: sees no key
        let withNaN = try Tensor(shape: [1, 2, 5, 4], scalars: values, dtype: .float32)
        for backend in [SDPBackend.fused, .math] {
            let got = try sinkGradient(backend, withNaN)
            #expect(got[0].isFinite && got[1].isNaN, "\(backend): \(got)")
        }
    }

    /// Inputs that broadcast (one key/value head for a batch of queries) run on their expansion; the sinks'
    /// gradient is that of the expanded call.
    @Test("inputs that broadcast: the sinks' gradient of the same call on the inputs expanded", arguments: [SDPBackend.fused, .math])
    func sinkGradientOverBroadcastInputs(_ backend: SDPBackend) throws {
        let q = try randn([3, 2, 5, 8], seed: 45)
        let (k, v) = (try randn([1, 1, 9, 8], seed: 46), try randn([9, 8], seed: 47))
        let dO = try randn([3, 2, 5, 8], seed: 48)
        let sinks = try Tensor(shape: [2], scalars: [Float(1.25), -0.5])
        func gradients(_ k: Tensor, _ v: Tensor) throws -> AttentionGradients {
            try withSDPBackends([backend]) {
                let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true, sinks: sinks)
                return try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                             isCausal: true, sinks: sinks)
            }
        }
        let broadcast = try gradients(k, v)
        let expanded = try gradients(try k.broadcast(to: [3, 2, 9, 8]).contiguous(), try v.broadcast(to: [3, 2, 9, 8]).contiguous())
        expectClose(try #require(broadcast.sinks), try #require(expanded.sinks), Tolerance(atol: 1e-6, rtol: 1e-5), "dSinks")
        #expect(broadcast.key.shape == [1, 1, 9, 8] && broadcast.value.shape == [9, 8])
    }

    @Test("wrong sinks through the public entry points and explainSDPA: the same typed error, before any work")
    func publicEntryPointErrors() throws {
        let (q, k, v) = try randomAttentionInputs(1, 4, 3, 6, 8, hkv: 2, seed: 29)
        let wrong = try Tensor(shape: [2], scalars: [Float(0), 0])
        let error = SDPAError.invalidShape(argument: "sinks", shape: [2],
                                           reason: "expected [H] = [4]: one logit per query head (B=1 H=4 Hkv=2 L=3 S=6 E=8 Ev=8)")
        #expect(throws: error) { try scaledDotProductAttention(query: q, key: k, value: v, enableGQA: true, sinks: wrong) }
        #expect(throws: error) { try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true, enableGQA: true, sinks: wrong) }
        #expect(throws: error) {
            try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: causalLowerRight(3, 6), enableGQA: true, sinks: wrong)
        }
        #expect(throws: error) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(try Tensor(zeros: [3, 6])), enableGQA: true, sinks: wrong)
        }
        #expect(throws: error) { try explainSDPA(query: q, key: k, value: v, enableGQA: true, sinks: wrong) }
        #expect(throws: error) {
            try explainSDPA(shape: AttentionShape(batch: 1, queryHeads: 4, keyValueHeads: 2, queryLength: 3, keyLength: 6, headDim: 8, valueHeadDim: 8),
                            attnMask: causalLowerRight(3, 6), enableGQA: true, sinks: wrong)
        }
    }

    @Test("bad sinks are typed errors naming sinks and its shape")
    func badSinks() throws {
        let (q, k, v) = try randomAttentionInputs(1, 4, 3, 6, 8, hkv: 2, seed: 19)
        let bias = causalLowerRight(3, 6)
        func call(_ sinks: Tensor) throws {
            _ = try CausalBias.dispatch(query: q, key: k, value: v, attnBias: bias, options: AttentionOptions(enableGQA: true, sinks: sinks))
        }
        #expect(throws: SDPAError.invalidShape(argument: "sinks", shape: [2],
                                               reason: "expected [H] = [4]: one logit per query head (B=1 H=4 Hkv=2 L=3 S=6 E=8 Ev=8)")) {
            try call(try Tensor(shape: [2], scalars: [Float(0), 0]))  // one per key/value head is not enough
        }
        #expect(throws: SDPAError.invalidShape(argument: "sinks", shape: [1, 4],
                                               reason: "expected [H] = [4]: one logit per query head (B=1 H=4 Hkv=2 L=3 S=6 E=8 Ev=8)")) {
            try call(try Tensor(zeros: [1, 4]))
        }
        #expect(throws: SDPAError.unsupportedDType(argument: "sinks", dtype: .bool, reason: "sinks are logits: float32, float16, bfloat16 or float64")) {
            try call(try Tensor(shape: [4], bools: [true, false, true, true]))
        }
        #expect(throws: SDPAError.invalidArgument(argument: "sinks[2]", value: "nan", reason: "a sink logit must be finite, or -infinity for no sink")) {
            try call(try Tensor(shape: [4], scalars: [Float(0), 1, .nan, 2]))
        }
        #expect(throws: SDPAError.invalidArgument(argument: "sinks[0]", value: "inf", reason: "a sink logit must be finite, or -infinity for no sink")) {
            try call(try Tensor(shape: [4], scalars: [Float.infinity, 1, 0, 2]))
        }
        // The materialized route checks them too, and nothing the caller passed changes.
        let sinks = try Tensor(shape: [4], scalars: [Float(0.5), 1, 2, 3])
        let before = sinks.scalars
        _ = try TensorBias.dispatch(query: q, key: k, value: v, attnBias: TensorBias(try bias.materialize(device: .cpu)),
                                    options: AttentionOptions(enableGQA: true, sinks: sinks))
        #expect(sinks.scalars == before)
        #expect(throws: SDPAError.self) {
            _ = try TensorBias.dispatch(query: q, key: k, value: v, attnBias: TensorBias(try bias.materialize(device: .cpu)),
                                        options: AttentionOptions(enableGQA: true, sinks: try Tensor(zeros: [3])))
        }
    }

    @Test("options with sinks compare by value")
    func optionsEquality() throws {
        let a = AttentionOptions(sinks: try Tensor(shape: [2], scalars: [Float(1), 2]))
        let b = AttentionOptions(sinks: try Tensor(shape: [2], scalars: [Float(1), 2]))
        let c = AttentionOptions(sinks: try Tensor(shape: [2], scalars: [Float(1), 3]))
        #expect(a == b && a.hashValue == b.hashValue)
        #expect(a != c && a != AttentionOptions())
        #expect(AttentionOptions() == AttentionOptions())
    }
}

/// The deprecated raw-mask backward overload with sinks.
@available(*, deprecated, message: "calls the deprecated raw-mask overload on purpose")
private func deprecatedRawMaskBackward(
    _ dO: Tensor, _ q: Tensor, _ k: Tensor, _ v: Tensor, output: Tensor, logSumExp: Tensor, mask: Tensor, sinks: Tensor
) throws -> AttentionGradients {
    try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: output, logSumExp: logSumExp,
                                          attnMask: mask, enableGQA: true, sinks: sinks)
}

/// The deprecated raw-mask overload, called as code written before the RFC does.
@available(*, deprecated, message: "calls the deprecated raw-mask overload on purpose")
private func deprecatedRawMaskCall(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor, sinks: Tensor) throws -> Tensor {
    try scaledDotProductAttention(query: q, key: k, value: v, attnMask: mask, enableGQA: true, sinks: sinks)
}
