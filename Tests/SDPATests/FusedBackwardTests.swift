import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

// The fused backward pass (FlashAttention-2's, on the kernel layer's tiles) against the math backward
// pass (Double), for every bias of the forward sweeps, GQA, Ev ≠ E, decoding, tile boundaries and
// half precisions; bit-identity at any thread count; every kernel family; fused dropout; its memory.

/// The fused gradients against the math ones: float32 accumulation over up to ~500 keys or rows
/// against `Double` (gradients of magnitude up to ~10 here). Half precisions: both rounded once
/// (`D = rowsum(dO ∘ O)` comes from the output recomputed in float32, not from the output rounded to the
/// dtype, which moved each `dS_ij` by up to `P_ij·u·Σ|dO ∘ O|`: float16 is held to that). bfloat16: the
/// families that multiply bfloat16 pairs run all five products on the pairs (products exact, sums in float32), with
/// `P` and `dS` rounded to bfloat16 for `dV`, `dK` and `dQ`, and their forward rounds `P` to bfloat16 for `P·V`, as
/// FlashAttention and PyTorch's CPU kernel do, which moves a gradient by a few `u` of the largest one.
func fusedBackwardTolerance(_ dtype: DType, inputs: DType, largest: Double) -> Tolerance {
    let float32 = Tolerance(atol: 2e-5, rtol: 2e-5)
    var tolerance = dtype == .float32 ? float32 : float32.bothRounded(to: dtype)
    if inputs == .bfloat16 { tolerance.atol += 4 * Tolerance.unitRoundoff(inputs) * largest }
    return tolerance
}

/// The forward and backward pass of `c` on `backend`, with `dO` drawn for the case.
func caseGradients(_ c: FusedCase, on backend: SDPBackend, dropoutP: Float = 0, seed: UInt64? = nil) throws -> (output: Tensor, gradients: AttentionGradients) {
    let (q, k, v) = try c.inputs()
    let dO = try randn([c.batch, c.heads, c.L, c.Ev], seed: 77, dtype: c.dtype)
    return try withSDPBackends([backend]) {
        let (out, lse) = try c.run(q, k, v, dropoutP: dropoutP, dropoutSeed: seed)
        return (out, try c.backward(q, k, v, dO, output: out, logSumExp: lse, dropoutP: dropoutP, dropoutSeed: seed))
    }
}

/// Checks every gradient of `fused` against `math` (inputs of `dtype`): inputs, a float mask's, ALiBi's slopes.
func expectGradientsClose(_ fused: AttentionGradients, _ math: AttentionGradients, dtype: DType, _ label: String,
                          sourceLocation: SourceLocation = #_sourceLocation) {
    func check(_ a: Tensor, _ b: Tensor, _ name: String) {
        let largest = b.doubleScalars.map(Swift.abs).max() ?? 0
        expectClose(a, b, fusedBackwardTolerance(b.dtype, inputs: dtype, largest: largest), "\(label) \(name)", sourceLocation: sourceLocation)
    }
    check(fused.query, math.query, "dQ")
    check(fused.key, math.key, "dK")
    check(fused.value, math.value, "dV")
    #expect((fused.attnMask == nil) == (math.attnMask == nil), "\(label): a mask gradient on both or neither", sourceLocation: sourceLocation)
    if let a = fused.attnMask, let b = math.attnMask { check(a, b, "dMask") }
    #expect(fused.biasParameters.map(\.part) == math.biasParameters.map(\.part), "\(label)", sourceLocation: sourceLocation)
    if let a = fused.alibiSlopes, let b = math.alibiSlopes {
        // Σ dS · −|i − j| over a head's L × S scores: float32 rows, summed in Double; the inputs' rounding for half precisions.
        let rtol = dtype == .float32 ? 1e-4 : 4 * Tolerance.unitRoundoff(dtype)
        expectClose(a, b, Tolerance(atol: 1e-4, rtol: rtol), "\(label) dSlopes", sourceLocation: sourceLocation)
    }
    #expect((fused.sinks == nil) == (math.sinks == nil), "\(label): a sink gradient on both or neither", sourceLocation: sourceLocation)
    if let a = fused.sinks, let b = math.sinks {
        // −Σ p_sink · D over a head's B·L rows: float32 D, from the output recomputed in float32 for half precisions
        // (bfloat16's kernels round P for P·V: a few of its ulps of the largest, as for the other gradients).
        var tolerance = Tolerance(atol: 1e-5, rtol: 1e-4)
        if dtype == .bfloat16 { tolerance.atol += 4 * Tolerance.unitRoundoff(dtype) * (b.doubleScalars.map(Swift.abs).max() ?? 0) }
        expectClose(a, b, tolerance, "\(label) dSinks", sourceLocation: sourceLocation)
    }
    for g in [fused.query, fused.key, fused.value] {
        #expect(!g.doubleScalars.contains { $0.isNaN }, "\(label): no NaN", sourceLocation: sourceLocation)
    }
}

/// Standard normal values times `factor` (large scores: peaked softmax rows), drawn in float64 and rounded to `dtype` once.
func scaledRandn(_ shape: [Int], by factor: Double, seed: UInt64, dtype: DType) throws -> Tensor {
    let values = try randn(shape, seed: seed, dtype: .float64).doubleScalars
    return try Tensor(shape: shape, dtype: dtype) { factor * values[$0] }
}

@Suite("Fused backward pass")
struct FusedBackwardTests {
    /// Every bias of the forward sweeps; tile boundaries (96-row query tiles, 128-key tiles, chunked
    /// keys with partial dQ rows); GQA; Ev ≠ E either way and E past 64 (64-key tiles); decoding;
    /// float16 and bfloat16.
    static let cases: [FusedCase] = {
        var cases = allSweepBiases.map { FusedCase(batch: 2, heads: 2, L: 37, S: 45, E: 16, Ev: 8, bias: $0) }
        for bias in ["none", "causalLowerRight", "alibiUpperLeft", "floatMaskB1LS", "windowMultiTile", "softCapPaddingWindow"] {
            cases += [(1, 300), (63, 129), (129, 257), (200, 513)].map { FusedCase(L: $0.0, S: $0.1, bias: bias) }
        }
        cases += ["none", "isCausal", "alibiLowerRight", "floatMaskB1LS", "boolMaskLS", "halfMaskH1S", "blockDiagonalCausal"].map {
            FusedCase(batch: 2, heads: 6, group: 3, L: 19, S: 45, bias: $0)
        }
        cases += [FusedCase(L: 30, S: 70, E: 72, Ev: 40, bias: "alibiLowerRight"), FusedCase(L: 30, S: 70, E: 8, Ev: 130, bias: "softCap"),
                  FusedCase(L: 20, S: 40, E: 256, Ev: 200, bias: "causalLowerRight"),
                  FusedCase(L: 1, S: 1, bias: "none"), FusedCase(heads: 2, group: 2, L: 5, S: 200, bias: "causalLowerRight")]
        for dtype in [DType.float16, .bfloat16] {
            cases += ["none", "causalLowerRight", "alibiLowerRight", "floatMaskB1LS", "halfMaskH1S", "softCapPaddingWindow"].map {
                FusedCase(L: 33, S: 65, E: 24, Ev: 24, dtype: dtype, bias: $0)
            }
        }
        // Learned sinks (their gradient too): a sink that outweighs the keys, none (-inf), rows that see no key,
        // packed sequences as segments, tiles, decoding, half precisions.
        let sinks: [Float] = [2.5, -.infinity, -1, 0.5, 6, -3]
        cases += ["none", "isCausal", "causalLowerRight", "alibiLowerRight", "floatMaskB1LS", "softCapPaddingWindow", "blockDiagonalCausal",
                  "packedShortLowerRight"].map {
            FusedCase(batch: 2, heads: 6, group: 3, L: 19, S: 45, bias: $0, sinks: sinks)
        }
        cases += [FusedCase(L: 200, S: 513, bias: "causalLowerRight", sinks: [1, 3]), FusedCase(heads: 6, group: 3, L: 1, S: 300, bias: "windowCausal", sinks: sinks),
                  FusedCase(L: 33, S: 65, E: 24, Ev: 24, dtype: .float16, bias: "alibiLowerRight", sinks: [0.5, 4]),
                  FusedCase(L: 33, S: 65, E: 24, Ev: 24, dtype: .bfloat16, bias: "causalLowerRight", sinks: [0.5, 4])]
        return cases
    }()

    @Test("fused gradients equal the math backward pass's (Double)", arguments: cases)
    func matchesMath(_ c: FusedCase) throws {
        let fused = try caseGradients(c, on: .fused).gradients
        let math = try caseGradients(c, on: .math).gradients
        #expect(fused.query.dtype == c.dtype && fused.key.dtype == c.dtype && fused.value.dtype == c.dtype)
        #expect((fused.sinks != nil) == (c.sinks != nil) && (math.sinks != nil) == (c.sinks != nil), "a sink gradient exactly with sinks")
        expectGradientsClose(fused, math, dtype: c.dtype, c.testDescription)
    }

    @Test("the fused backward pass takes the math forward's results as well as its own")
    func mathForwardResults() throws {
        let c = FusedCase(batch: 2, heads: 2, L: 40, S: 70, bias: "alibiLowerRight")
        let (q, k, v) = try c.inputs()
        let dO = try randn([2, 2, 40, 16], seed: 77)
        let (out, lse) = try withSDPBackends([.math]) { try c.run(q, k, v) }
        let fused = try withSDPBackends([.fused]) { try c.backward(q, k, v, dO, output: out, logSumExp: lse) }
        let math = try withSDPBackends([.math]) { try c.backward(q, k, v, dO, output: out, logSumExp: lse) }
        expectGradientsClose(fused, math, dtype: .float32, "math forward")
    }

    /// Biases whose work is shared out differently: chunked keys (partial dQ rows), a float mask
    /// broadcast over batches and heads (rounds), ALiBi's slopes, a half mask broadcast over queries.
    static let threadCases = ["causalLowerRight", "alibiLowerRight", "floatMaskB1LS", "halfMaskH1S", "softCapPaddingWindow", "none"]
        .map { FusedCase(batch: 2, heads: 4, group: 2, L: 70, S: 600, bias: $0) }
        + [FusedCase(batch: 2, heads: 4, group: 2, L: 70, S: 600, bias: "causalLowerRight", sinks: [1, -2, 0.5, 3])]

    @Test("the fused gradients are bit-identical on 1, 2 and 7 threads", arguments: threadCases)
    func threadCounts(_ c: FusedCase) throws {
        let runs = try [1, 2, 7].map { n in try withSDPAThreads(n) { try caseGradients(c, on: .fused).gradients } }
        for (n, run) in zip([2, 7], runs.dropFirst()) {
            expectIdentical(run.query, runs[0].query, "\(n) threads dQ")
            expectIdentical(run.key, runs[0].key, "\(n) threads dK")
            expectIdentical(run.value, runs[0].value, "\(n) threads dV")
            if let a = run.attnMask, let b = runs[0].attnMask { expectIdentical(a, b, "\(n) threads dMask") }
            #expect(run.alibiSlopes == runs[0].alibiSlopes, "\(n) threads dSlopes")
            if c.sinks != nil { expectIdentical(try #require(run.sinks), try #require(runs[0].sinks), "\(n) threads dSinks") }
        }
    }

    @Test("every kernel family's fused gradients equal the math backward pass's",
          arguments: KernelFamily.all, [FusedCase(heads: 4, group: 2, L: 70, S: 150, bias: "causalLowerRight"),
                                        FusedCase(L: 33, S: 65, E: 24, Ev: 24, dtype: .bfloat16, bias: "alibiLowerRight"),
                                        // odd head dims (a pair's padding element) and 64-key tiles (E > 64) in pairs
                                        FusedCase(L: 37, S: 70, E: 33, Ev: 17, dtype: .bfloat16, bias: "causalLowerRight"),
                                        FusedCase(L: 40, S: 150, E: 96, Ev: 80, dtype: .bfloat16, bias: "none"),
                                        FusedCase(L: 20, S: 37, dtype: .float16, bias: "floatMaskB1LS"),
                                        // packed sequences as segments, one of a single row (decoded, its scores
                                        // recomputed by the direct reader) beside wider ones that size the scratch
                                        FusedCase(L: 116, S: 190, E: 64, Ev: 24, dtype: .bfloat16, bias: "packedShortLowerRight"),
                                        // decoding in pairs (the forward's direct reader) with GQA and sinks
                                        FusedCase(heads: 6, group: 3, L: 3, S: 300, E: 40, Ev: 24, dtype: .bfloat16, bias: "windowCausal",
                                                  sinks: [2.5, -.infinity, -1, 0.5, 6, -3]),
                                        FusedCase(heads: 4, group: 2, L: 70, S: 150, dtype: .float16, bias: "causalLowerRight",
                                                  sinks: [3, -1, -.infinity, 0.5])])
    func kernelFamilies(_ family: KernelFamily, _ c: FusedCase) throws {
        // A family chosen on this thread reaches no worker: one thread makes every kernel call here.
        let fused = try family.run { try withSDPAThreads(1) { try caseGradients(c, on: .fused).gradients } }
        let math = try caseGradients(c, on: .math).gradients
        #expect((fused.sinks != nil) == (c.sinks != nil), "a sink gradient exactly with sinks")
        expectGradientsClose(fused, math, dtype: c.dtype, "\(family.name) \(c.testDescription)")
    }

    /// Decoding (at most 4 query rows) reads the keys as stored in the forward pass, summing each score in
    /// another order than the packed product; the backward pass recomputes those scores with the forward's
    /// product, so `P = exp(S − lse)` gets the forward's bits of `S`. Large scores (|S| of hundreds) show it:
    /// with one key P must be exactly 1 and dV exactly dO, and with more keys dV stays at float32 rounding
    /// (recomputed in the other order, dV was off by ulps of |S|, 1e-4 of it).
    @Test("decoding at large scores: the backward pass recomputes the forward's scores to the bit",
          arguments: KernelFamily.all, [DType.float32, .bfloat16])
    func decodingAtLargeScores(_ family: KernelFamily, _ dtype: DType) throws {
        func scaled(_ shape: [Int], seed: UInt64) throws -> Tensor { try scaledRandn(shape, by: 16, seed: seed, dtype: dtype) }
        for (L, S) in [(1, 1), (2, 1), (1, 33), (2, 33), (4, 33)] {
            let c = FusedCase(heads: 4, group: 2, L: L, S: S, E: 64, Ev: 24, dtype: dtype)
            let (q, k, v) = (try scaled([1, 4, L, 64], seed: 1), try scaled([1, 2, S, 64], seed: 2), try randn([1, 2, S, 24], seed: 3, dtype: dtype))
            let dO = try randn([1, 4, L, 24], seed: 4, dtype: dtype)
            let fused = try family.run {
                try withSDPAThreads(1) {
                    try withSDPBackends([.fused]) {
                        let (out, lse) = try c.run(q, k, v)
                        return try c.backward(q, k, v, dO, output: out, logSumExp: lse)
                    }
                }
            }
            let label = "\(family.name) \(c.testDescription)"
            if S == 1 {
                // dV of each key/value head: the dO rows of its group's heads, summed (in float32, then rounded once)
                let want = try Tensor(shape: [1, 2, 1, 24], dtype: .float64) { i in
                    let (h, rest) = (i / 24, i % 24)
                    return (0..<L).reduce(0.0) { sum, r in
                        sum + dO.doubleScalars[(2 * h) * L * 24 + r * 24 + rest] + dO.doubleScalars[(2 * h + 1) * L * 24 + r * 24 + rest]
                    }
                }
                if L == 1 && dtype == .float32 {
                    expectIdentical(fused.value, try want.converted(to: .float32), "\(label) dV")
                } else {
                    // 2·L terms added in float32: a few roundings of the largest term, then the dtype's own
                    let largest = dO.doubleScalars.map(Swift.abs).max() ?? 0
                    let u = Tolerance.unitRoundoff(dtype)
                    expectClose(fused.value, want.doubleScalars, Tolerance(atol: Double(2 * L) * 1.2e-7 * largest, rtol: u), "\(label) dV")
                }
            } else if dtype == .float32 {
                let math = try withSDPBackends([.math]) { () throws -> AttentionGradients in
                    let (out, lse) = try c.run(q, k, v)
                    return try c.backward(q, k, v, dO, output: out, logSumExp: lse)
                }
                expectClose(fused.value, math.value, Tolerance(atol: 1e-6, rtol: 2e-6), "\(label) dV")
            }
        }
    }

    /// Rows whose softmax one key dominates (queries scaled by 24), in float16 and bfloat16: `dP − D` cancels in
    /// `dS = P ∘ (dP − D)`, and `D` from the output rounded to the dtype took bfloat16's dQ and dK off by 2–39 % of
    /// the largest gradient (of the wrong sign, some; PyTorch's CPU flash kernel has the same error, its math path
    /// — which it takes for E ≠ Ev — not). `D` from the output recomputed in float32: under 1 % here. Against the
    /// math backward pass on every kernel family, each gradient's largest error over `max(1, largest gradient)`.
    @Test("peaked rows keep half-precision gradients within the dtype's rounding", arguments: KernelFamily.all, [DType.float16, .bfloat16])
    func peakedRows(_ family: KernelFamily, _ dtype: DType) throws {
        let cases: [(L: Int, S: Int, E: Int, Ev: Int, bias: String)] = [
            (1, 300, 32, 128, "windowCausal"), (1, 300, 32, 128, "windowUpperLeft"), (2, 64, 32, 128, "windowCausal"),
            (1, 1000, 64, 64, "none"), (7, 64, 32, 32, "causalLowerRight"),
        ]
        // bfloat16: a few of its ulps of the largest gradient (P rounded to bfloat16 for the products); float16: one.
        let bound = dtype == .bfloat16 ? 0.02 : 2e-3
        for shape in cases {
            let c = FusedCase(batch: 2, heads: 2, L: shape.L, S: shape.S, E: shape.E, Ev: shape.Ev, dtype: dtype, bias: shape.bias)
            for seed in UInt64(40)..<44 {
                let q = try scaledRandn([2, 2, shape.L, shape.E], by: 24, seed: seed, dtype: dtype)
                let k = try randn([2, 2, shape.S, shape.E], seed: seed + 1, dtype: dtype)
                let v = try randn([2, 2, shape.S, shape.Ev], seed: seed + 2, dtype: dtype)
                let dO = try randn([2, 2, shape.L, shape.Ev], seed: seed + 3, dtype: dtype)
                func gradients(_ backend: SDPBackend) throws -> AttentionGradients {
                    try withSDPBackends([backend]) {
                        let (out, lse) = try c.run(q, k, v)
                        return try c.backward(q, k, v, dO, output: out, logSumExp: lse)
                    }
                }
                // One thread: the family is selected for the calling thread's kernel calls only.
                let (fused, math) = (try family.run { try withSDPAThreads(1) { try gradients(.fused) } }, try gradients(.math))
                for (name, got, want) in [("dQ", fused.query, math.query), ("dK", fused.key, math.key), ("dV", fused.value, math.value)] {
                    let reference = want.doubleScalars
                    let error = zip(got.doubleScalars, reference).map { Swift.abs($0 - $1) }.max() ?? 0
                    let relative = error / Swift.max(1, reference.map(Swift.abs).max() ?? 0)
                    #expect(relative <= bound, "\(family.name) \(c.testDescription) seed \(seed) \(name): \(relative) of the largest")
                }
            }
        }
    }

    @Test("fully masked rows: zero gradients on the fused route, never NaN, and NaN values at masked keys reach nothing")
    func fullyMaskedRows() throws {
        let (q, k, v0) = try randomAttentionInputs(2, 2, 9, 6, 5, seed: 250)
        var v = v0
        for e in 0..<5 { v[1, 1, 5, e] = .nan }
        let dO = try randn([2, 2, 9, 5], seed: 251)
        // Lower-right causal with L > S: rows 0–2 see no key; batch 1 has one valid key, batch 0 none.
        let bias = causalLowerRight(9, 6).combined(with: KeyPaddingBias(validKeyLengths: [0, 1], seqLenKV: 6))
        let grads = try withSDPBackends([.fused]) {
            let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias)
            return try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: bias)
        }
        for g in [grads.query, grads.key, grads.value] { #expect(!g.doubleScalars.contains { $0.isNaN }) }
        // Batch 0 sees nothing: every gradient 0; batch 1's rows 0–2 see nothing; key 5 is masked everywhere.
        for h in 0..<2 {
            for i in 0..<9 { #expect((0..<5).allSatisfy { grads.query[0, h, i, $0] == 0 }) }
            for i in 0..<3 { #expect((0..<5).allSatisfy { grads.query[1, h, i, $0] == 0 }, "row \(i)") }
            for j in 0..<6 { #expect((0..<5).allSatisfy { grads.key[0, h, j, $0] == 0 && grads.value[0, h, j, $0] == 0 }) }
            #expect((0..<5).allSatisfy { grads.key[1, h, 5, $0] == 0 && grads.value[1, h, 5, $0] == 0 })
        }
    }

    @Test("no L × S allocation: the fused backward pass's largest buffer is O(L·E) for every built-in bias",
          arguments: ["none", "isCausal", "causalLowerRight", "alibiLowerRight", "windowCausal", "blockDiagonalCausal", "keyPadding",
                      "softCap", "softCapPaddingWindow", "halfMaskH1S"])
    func memory(_ bias: String) throws {
        let n = 2048
        let c = FusedCase(batch: 1, heads: 1, L: n, S: n, E: 16, Ev: 16, bias: bias)
        let (q, k, v) = try c.inputs()
        let dO = try randn([1, 1, n, 16], seed: 5)
        let (out, lse) = try withSDPBackends([.fused]) { try c.run(q, k, v) }
        let (grads, largest) = try _largestAllocation {
            try withSDPBackends([.fused]) { try c.backward(q, k, v, dO, output: out, logSumExp: lse) }
        }
        #expect(grads.query.shape == q.shape)
        // L × S float32 scores would be 16 MiB; an input's gradient is 128 KiB, and the partial dQ rows
        // of the key chunks (8 at most) seven times that.
        let gradientBytes = 4 * n * 16
        #expect(largest > 0 && largest <= 8 * gradientBytes, "largest allocation \(largest) bytes at L = S = \(n)")
    }
}

@Suite("Fused dropout")
struct FusedDropoutTests {
    /// Query rows and keys: decoding rows (the direct-read path; with 2000 keys, items split over the
    /// keys and merged), full tiles, one key tile and several.
    static let shapes = [(3, 70), (40, 70), (100, 300), (2, 2000)]

    @Test("the fused forward pass drops exactly the math forward's weights for the same seed, scaled alike", arguments: shapes)
    func forwardMatchesMath(_ L: Int, _ S: Int) throws {
        let (q, k, _) = try randomAttentionInputs(1, 2, L, S, 8, seed: 320)
        // With V the identity, the output rows are the dropped, rescaled weights.
        let eye = try Tensor(shape: [1, 2, S, S], scalars: (0..<2 * S * S).map { $0 % S == $0 / S % S ? 1 : 0 } as [Float])
        let run = { (backend: SDPBackend) in
            try withSDPBackends([backend]) { try scaledDotProductAttention(query: q, key: k, value: eye, dropoutP: 0.3, dropoutSeed: 99) }
        }
        let (fused, math) = (try run(.fused).doubleScalars, try run(.math).doubleScalars)
        let dropped = fused.indices.filter { fused[$0] == 0 }
        #expect(dropped == math.indices.filter { math[$0] == 0 }, "the same weights dropped")
        #expect(!dropped.isEmpty)
        expectClose(fused, math, Tolerance(atol: 1e-6, rtol: 1e-5), "kept weights")
    }

    @Test("fused dropout's gradients equal the math backward pass's for the same seed",
          arguments: ["none", "causalLowerRight", "alibiLowerRight", "floatMaskB1LS", "packedShortUpperLeft", "packedShortComposed"],
          [(3, 70), (60, 200), (700, 650)])
    func backwardMatchesMath(_ bias: String, _ shape: (Int, Int)) throws {
        // GQA: the drop decision is per query head, in both passes. Packed sequences at L = 700 run as
        // segments, each dropping what the whole problem would.
        let c = FusedCase(batch: 2, heads: 4, group: 2, L: shape.0, S: shape.1, bias: bias)
        let fused = try caseGradients(c, on: .fused, dropoutP: 0.25, seed: 7)
        let math = try caseGradients(c, on: .math, dropoutP: 0.25, seed: 7)
        expectClose(fused.output, math.output, .float32, "\(c.testDescription) output")
        expectGradientsClose(fused.gradients, math.gradients, dtype: .float32, c.testDescription)
        let one = try withSDPAThreads(1) { try caseGradients(c, on: .fused, dropoutP: 0.25, seed: 7) }
        expectIdentical(one.output, fused.output, "1 thread output")
        expectIdentical(one.gradients.query, fused.gradients.query, "1 thread dQ")
        expectIdentical(one.gradients.key, fused.gradients.key, "1 thread dK")
    }
}
