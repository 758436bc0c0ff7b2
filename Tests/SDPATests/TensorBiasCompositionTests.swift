import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// A ``TensorBias`` as one part of a ``BiasComposition``: the fused kernel reads the mask tile by tile beside the
/// other parts, and the result is the dense-mask route's on the composition's whole mask built independently (the
/// route the PyTorch fixtures check), forward and backward, on both backends.
@Suite("TensorBias inside a composition")
struct TensorBiasCompositionTests {
    static let (B, H, L, S, E) = (2, 4, 70, 150, 16)

    /// One composition and, for an additive one, its whole mask `[B, H, L, S]` in float64 built without the mask
    /// reader under test: the mask's values broadcast by plain loops, plus the other parts' own materialized forms.
    struct Composition {
        let name: String, bias: any FusedAttnBias, reference: Tensor?
        /// The ``TensorBias`` part's mask and its position among the parts.
        let mask: Tensor, maskPart: Int
    }

    /// The forward pass with the log-sum-exp and the backward pass of `bias` on `backends`.
    static func gradients(
        _ q: Tensor, _ k: Tensor, _ v: Tensor, _ dO: Tensor, _ bias: any AttnBias, on backends: Set<SDPBackend>, enableGQA: Bool = false
    ) throws -> AttentionGradients {
        try withSDPBackends(backends) {
            let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, enableGQA: enableGQA)
            return try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                         attnMask: bias, enableGQA: enableGQA)
        }
    }

    /// `tensor`'s values broadcast to `[B, H, L, S]` (a bool's `false` as `-inf`, `true` as 0).
    static func broadcastValues(_ tensor: Tensor) throws -> [Double] {
        try tensor.broadcast(to: [B, H, L, S]).doubleScalars.map { tensor.dtype == .bool ? ($0 == 0 ? -.infinity : 0) : $0 }
    }

    /// `mask` composed with `other` (additive, not a mask reader): the reference as a float64 tensor.
    static func composition(_ name: String, _ mask: Tensor, _ other: some FusedAttnBias, maskFirst: Bool = true) throws -> Composition {
        let sum = zip(try broadcastValues(mask), try broadcastValues(try other.materialize(device: .cpu))).map { $0 == -.infinity || $1 == -.infinity ? -.infinity : $0 + $1 }
        let bias: any FusedAttnBias = maskFirst ? TensorBias(mask).combined(with: other) : other.combined(with: TensorBias(mask))
        return Composition(name: name, bias: bias, reference: try Tensor(shape: [B, H, L, S], scalars: sum, dtype: .float64),
                           mask: mask, maskPart: maskFirst ? 0 : 1)
    }

    /// The compositions, each with its mask parts' shapes, dtypes and layouts varied: a key-padding bool mask, a float
    /// mask per head with `-inf` holes, a half-precision mask, a bfloat16 and a float64 mask, a transposed (strided)
    /// mask, a bool mask shaped like a causal diagonal (its tiles skipped by reading it), a mask between two score
    /// modifiers, a float mask before soft-capping (its gradient through the cap's derivative), and packed sequences.
    static func compositions() throws -> [Composition] {
        let (B, H, L, S) = (Self.B, Self.H, Self.L, Self.S)
        let padding = try Tensor(shape: [B, 1, 1, S], bools: (0..<(B * S)).map { $0 % S < [S - 20, 90][$0 / S] })
        var holes = try randn([H, L, S], seed: 5).doubleScalars
        for n in stride(from: 0, to: holes.count, by: 7) { holes[n] = -.infinity }
        let floatMask = try Tensor(shape: [H, L, S], scalars: holes, dtype: .float32)
        let halfMask = try Tensor.randomUniform(shape: [L, 1], in: -2...0, seed: 6, dtype: .float16)
        let bfloatMask = try Tensor.randomUniform(shape: [B, H, 1, S], in: -3...1, seed: 7, dtype: .bfloat16)
        let doubleMask = try Tensor(shape: [1, H, L, S], scalars: try randn([H * L * S], seed: 8, dtype: .float64).doubleScalars, dtype: .float64)
        let transposed = try randn([S, L], seed: 9).transposed(0, 1)
        let diagonal = try Tensor(shape: [L, S], bools: (0..<(L * S)).map { $0 % S <= $0 / S + S - L })
        return [
            try composition("padding + causal", padding, causalLowerRight(L, S)),
            try composition("ALiBi + float mask", floatMask, AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S), maskFirst: false),
            try composition("half mask + window", halfMask, SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 40, right: 0)),
            try composition("bfloat16 mask + ALiBi causal", bfloatMask, AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S, causal: .lowerRight)),
            try composition("float64 mask + window", doubleMask, SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 10, right: 10)),
            try composition("transposed mask + causal", transposed, causalUpperLeft(L, S)),
            try composition("causal-shaped bool mask", diagonal, KeyPaddingBias(validKeyLengths: [S, 100], seqLenKV: S)),
            Composition(name: "soft-cap, mask, ALiBi", bias: SoftCapBias(cap: 2).combined(with: TensorBias(floatMask))
                .combined(with: AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S)), reference: nil, mask: floatMask, maskPart: 1),
            Composition(name: "ALiBi, mask, soft-cap", bias: AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S)
                .combined(with: TensorBias(bfloatMask)).combined(with: SoftCapBias(cap: 3)), reference: nil, mask: bfloatMask, maskPart: 1),
            // Packed sequences run as segments, each reading its rows and keys of the mask.
            try composition("float mask + packed sequences", floatMask,
                            BlockDiagonalBias(queryLengths: [30, 0, 1, 39], keyLengths: [50, 60, 1, 39], causal: .lowerRight)),
        ]
    }

    /// float32: fused against math, math against the dense route; bfloat16 (whose kernels round P for `P·V` on
    /// either route): fused against the fused dense route.
    @Test("the forward pass: fused and math equal the dense-mask route on the composition materialized", arguments: [DType.float32, .bfloat16])
    func forward(_ dtype: DType) throws {
        let (q, k, v) = try randomAttentionInputs(Self.B, Self.H, Self.L, Self.S, Self.E, hkv: 2, seed: 7, dtype: dtype)
        for c in try Self.compositions() {
            let (name, bias) = (c.name, c.bias)
            func run(_ backends: Set<SDPBackend>, _ bias: any AttnBias) throws -> (output: Tensor, logSumExp: Tensor) {
                try withSDPBackends(backends) {
                    try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, enableGQA: true)
                }
            }
            let fused = try run([.fused], bias)
            let dense = c.reference.map(TensorBias.init)
            if let reference = c.reference {
                // The composition's own materialized form reads the mask too: it must be the reference.
                expectClose(try Self.broadcastValues(try bias.materialize(device: .cpu)), reference.doubleScalars, Tolerance(atol: 0, rtol: 1e-7),
                            "\(name): materialized")
            }
            if dtype == .float32 {
                let math = try run([.math], bias)
                expectClose(fused.output, math.output.doubleScalars, .float32, "\(name): fused against math")
                expectClose(fused.logSumExp, math.logSumExp.doubleScalars, .logSumExp, "\(name): log-sum-exp")
                if let dense {
                    expectClose(math.output, try run([.math], dense).output.doubleScalars, Tolerance(atol: 1e-6, rtol: 1e-6),
                                "\(name): against the dense route")
                }
            } else if let dense {
                let reference = try run([.fused], dense)
                expectClose(fused.output, reference.output.doubleScalars, Tolerance.float32.bothRounded(to: dtype), "\(name) \(dtype): against the dense route")
                expectClose(fused.logSumExp, reference.logSumExp.doubleScalars, .logSumExp, "\(name) \(dtype): log-sum-exp")
            }
        }
    }

    @Test("the backward pass: fused gradients equal math's and the dense route's; trainable parts and a float mask get theirs")
    func backward() throws {
        let (q, k, v) = try randomAttentionInputs(Self.B, Self.H, Self.L, Self.S, Self.E, hkv: 2, seed: 8)
        let dO = try randn([Self.B, Self.H, Self.L, Self.E], seed: 9)
        for c in try Self.compositions() {
            let (name, bias) = (c.name, c.bias)
            func gradients(_ backends: Set<SDPBackend>, _ bias: any AttnBias) throws -> AttentionGradients {
                try Self.gradients(q, k, v, dO, bias, on: backends, enableGQA: true)
            }
            let (fused, math) = (try gradients([.fused], bias), try gradients([.math], bias))
            expectGradientsClose(fused, math, dtype: .float32, name)
            let float = c.mask.dtype.isFloatingPoint
            for g in [fused, math] {
                #expect((g.attnMask != nil) == float && g.attnMask?.shape == (float ? c.mask.shape : nil) && g.attnMask?.dtype == (float ? c.mask.dtype : nil),
                        "\(name): a float mask's gradient, in its shape and dtype")
                #expect(g.attnMaskParts.keys.sorted() == (float ? [c.maskPart] : []) && g.attnMaskParts[c.maskPart]?.doubleScalars == g.attnMask?.doubleScalars,
                        "\(name): the gradient by part")
            }
            let hasAlibi = name.contains("ALiBi")
            #expect(fused.biasParameters.count == (hasAlibi ? 1 : 0) && (fused.alibiSlopes != nil) == hasAlibi, "\(name)")
            guard let reference = c.reference else { continue }
            let dense = try gradients([.math], TensorBias(reference))
            for (what, a, b) in [("dQ", math.query, dense.query), ("dK", math.key, dense.key), ("dV", math.value, dense.value)] {
                expectClose(a, b.doubleScalars, Tolerance(atol: 1e-6, rtol: 1e-6), "\(name) \(what) against the dense route")
            }
            // The whole mask's gradient is every score's: the part's is it summed over what the part is broadcast along.
            if let got = math.attnMask, let whole = dense.attnMask {
                expectClose(got, try Self.summed(whole, to: c.mask.shape), Tolerance(atol: 1e-6, rtol: 1e-6).roundedOnce(to: c.mask.dtype),
                            "\(name) dMask against the dense route")
            }
        }
    }

    /// `full` (`[B, H, L, S]`) summed over the dimensions a tensor of `shape` is broadcast along, by plain loops.
    static func summed(_ full: Tensor, to shape: [Int]) throws -> [Double] {
        let target = [Int](repeating: 1, count: 4 - shape.count) + shape
        var sums = [Double](repeating: 0, count: target.reduce(1, *))
        let values = full.doubleScalars
        for b in 0..<B { for h in 0..<H { for i in 0..<L { for j in 0..<S {
            let index = [b, h, i, j].enumerated().reduce(0) { $0 * target[$1.offset] + (target[$1.offset] == 1 ? 0 : $1.element) }
            sums[index] += values[((b * H + h) * L + i) * S + j]
        } } } }
        return sums
    }

    @Test("packed sequences the forward runs as segments: a float mask among the parts still gets its gradient (one backward call)")
    func packedSequencesMaskGradient() throws {
        let (H, L, E) = (2, 384, 16)
        let (q, k, v) = try randomAttentionInputs(1, H, L, L, E, seed: 11)
        let dO = try randn([1, H, L, E], seed: 12)
        let mask = try randn([H, 1, L], seed: 13)
        let bias = TensorBias(mask).combined(with: BlockDiagonalBias(queryLengths: [128, 128, 128], keyLengths: [128, 128, 128]))
        let explanation = try explainSDPA(query: q, key: k, value: v, attnMask: bias)
        #expect(explanation.segments != nil, "the forward runs as segments: \(explanation)")
        let (fused, math) = (try Self.gradients(q, k, v, dO, bias, on: [.fused]), try Self.gradients(q, k, v, dO, bias, on: [.math]))
        expectGradientsClose(fused, math, dtype: .float32, "packed sequences with a float mask")
        let got = try #require(fused.attnMask, "the mask's gradient")
        #expect(got.shape == [H, 1, L] && got.doubleScalars.contains { $0 != 0 })
    }

    @Test("a float mask's gradient in a composition is bit-identical on 1, 2 and 7 threads: masks the same for every head or batch, GQA")
    func maskGradientAtAnyThreadCount() throws {
        let (B, H, L, S, E) = (2, 4, 90, 300, 16)
        let (q, k, v) = try randomAttentionInputs(B, H, L, S, E, hkv: 2, seed: 21)
        let dO = try randn([B, H, L, E], seed: 22)
        let masks = [try randn([L, S], seed: 23), try randn([B, 1, 1, S], seed: 24), try randn([H, L, 1], seed: 25)]
        for mask in masks {
            let bias = TensorBias(mask).combined(with: AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S, causal: .lowerRight))
            let runs = try [1, 2, 7].map { n in
                try withSDPAThreads(n) { try Self.gradients(q, k, v, dO, bias, on: [.fused], enableGQA: true) }
            }
            for (n, run) in zip([1, 2, 7], runs) {
                expectIdentical(try #require(run.attnMask), try #require(runs[0].attnMask), "\(mask.shape) \(n) threads dMask")
                expectIdentical(run.query, runs[0].query, "\(mask.shape) \(n) threads dQ")
                expectIdentical(run.key, runs[0].key, "\(mask.shape) \(n) threads dK")
            }
        }
    }

    @Test("two float masks and ALiBi between soft-capping: each mask's gradient is the loss's derivative (float64 central differences)")
    func twoMasksByDifferences() throws {
        let (B, H, L, S, E) = (1, 2, 5, 7, 4)
        let (q, k, v) = try randomAttentionInputs(B, H, L, S, E, seed: 31, dtype: .float64)
        let dO = try randn([B, H, L, E], seed: 32, dtype: .float64)
        let first = try randn([H, 1, S], seed: 33, dtype: .float64), second = try randn([L, S], seed: 34, dtype: .float64)
        func bias(_ a: Tensor, _ b: Tensor) -> any FusedAttnBias {
            TensorBias(a).combined(with: SoftCapBias(cap: 2)).combined(with: AlibiBias(slopes: [0.5, -0.25], seqLenQ: L, seqLenKV: S))
                .combined(with: TensorBias(b)).combined(with: SoftCapBias(cap: 3))
        }
        func loss(_ a: Tensor, _ b: Tensor) throws -> Double {
            let out = try withSDPBackends([.math]) { try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias(a, b)) }
            return zip(out.doubleScalars, dO.doubleScalars).reduce(0) { $0 + $1.0 * $1.1 }
        }
        func gradients(_ backend: SDPBackend, _ dtype: DType) throws -> AttentionGradients {
            let (q, k, v, dO) = (try q.converted(to: dtype), try k.converted(to: dtype), try v.converted(to: dtype), try dO.converted(to: dtype))
            return try withSDPBackends([backend]) {
                let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias(first, second))
                return try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                             attnMask: bias(first, second))
            }
        }
        let math = try gradients(.math, .float64)
        #expect(math.attnMaskParts.keys.sorted() == [0, 3], "parts 0 and 3 are the masks")
        let (dFirst, dSecond) = (try #require(math.attnMaskParts[0]), try #require(math.attnMaskParts[3]))
        #expect(math.attnMask?.doubleScalars == dFirst.doubleScalars, "attnMask is the first mask's")
        let step = 1e-6
        for (which, mask, gradient) in [(0, first, dFirst), (1, second, dSecond)] {
            for n in stride(from: 0, to: mask.count, by: 3) {
                var up = mask.doubleScalars, down = up
                up[n] += step
                down[n] -= step
                let (u, d) = (try Tensor(shape: mask.shape, scalars: up, dtype: .float64), try Tensor(shape: mask.shape, scalars: down, dtype: .float64))
                let difference = which == 0 ? (try loss(u, second) - loss(d, second)) / (2 * step) : (try loss(first, u) - loss(first, d)) / (2 * step)
                #expect(Swift.abs(difference - gradient.doubleScalars[n]) < 1e-7, "mask \(which) element \(n): \(difference) against \(gradient.doubleScalars[n])")
            }
        }
        let fused = try gradients(.fused, .float32)
        expectClose(try #require(fused.attnMaskParts[0]), dFirst.doubleScalars, Tolerance(atol: 1e-5, rtol: 1e-4), "fused first mask")
        expectClose(try #require(fused.attnMaskParts[3]), dSecond.doubleScalars, Tolerance(atol: 1e-5, rtol: 1e-4), "fused second mask")
    }

    @Test("requiresGradient: false makes a float mask a constant, alone and composed: no gradient, the same input gradients")
    func maskWithoutGradient() throws {
        let (H, L, E) = (2, 384, 16)
        let (q, k, v) = try randomAttentionInputs(1, H, L, L, E, seed: 41)
        let dO = try randn([1, H, L, E], seed: 42)
        let mask = try randn([H, 1, L], seed: 43)
        let packed = BlockDiagonalBias(queryLengths: [128, 128, 128], keyLengths: [128, 128, 128])
        let pairs: [(String, any AttnBias, any AttnBias)] = [
            ("alone", TensorBias(mask), TensorBias(mask, requiresGradient: false)),
            ("composed", TensorBias(mask).combined(with: packed), TensorBias(mask, requiresGradient: false).combined(with: packed)),
        ]
        for (name, with, without) in pairs {
            for backend in [SDPBackend.fused, .math] {
                let (a, b) = (try Self.gradients(q, k, v, dO, with, on: [backend]), try Self.gradients(q, k, v, dO, without, on: [backend]))
                #expect(a.attnMask != nil && a.attnMaskParts.count == 1, "\(name) \(backend): the gradient by default")
                #expect(b.attnMask == nil && b.attnMaskParts.isEmpty, "\(name) \(backend): none when not required")
                expectClose(b.query, a.query.doubleScalars, .float32, "\(name) \(backend) dQ")
                expectClose(b.key, a.key.doubleScalars, .float32, "\(name) \(backend) dK")
                expectClose(b.value, a.value.doubleScalars, .float32, "\(name) \(backend) dV")
            }
        }
        #expect(TensorBias(mask).requiresGradient && !TensorBias(mask, requiresGradient: false).requiresGradient)
    }

    @Test("a bool mask's tiles are classified by reading it, as on its own route")
    func tileVisibility() throws {
        let diagonal = TensorBias(try Tensor(shape: [8, 8], bools: (0..<64).map { $0 % 8 <= $0 / 8 }))
        #expect(diagonal.tileVisibility(batch: 0, head: 0, queries: 0..<4, keys: 4..<8) == .empty)
        #expect(diagonal.tileVisibility(batch: 0, head: 0, queries: 4..<8, keys: 0..<4) == .full)
        #expect(diagonal.tileVisibility(batch: 0, head: 0, queries: 0..<8, keys: 0..<8) == .partial)
        let composed = diagonal.combined(with: causalUpperLeft(8, 8))
        #expect(composed.tileVisibility(batch: 0, head: 0, queries: 0..<4, keys: 4..<8) == .empty)
        #expect(diagonal.isVisible(batch: 1, head: 3, query: 5, key: 2) && !diagonal.isVisible(batch: 0, head: 0, query: 2, key: 5))
        #expect(diagonal.modifyScore(Float(1.5), batch: 0, head: 0, query: 5, key: 2) == 1.5)
        let float = TensorBias(try Tensor(shape: [1, 2], scalars: [Float(-0.5), -.infinity]))
        #expect(float.modifyScore(2.0, batch: 0, head: 0, query: 3, key: 0) == 1.5)
        #expect(!float.isVisible(batch: 0, head: 0, query: 3, key: 1))
    }

    @Test("alone, a TensorBias keeps the dense route; in a composition its mask is checked as alone")
    func routesAndErrors() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 9, 13, 8, seed: 10)
        let mask = try randn([9, 13], seed: 11)
        #expect(TensorBias(mask).needsMaterialization && !TensorBias(mask).combined(with: causalLowerRight(9, 13)).needsMaterialization)
        let route = try explainSDPA(query: q, key: k, value: v, attnMask: TensorBias(mask)).route
        #expect(route.hasPrefix("TensorBias materialized"), "\(route)")
        #expect(try explainSDPA(query: q, key: k, value: v, attnMask: TensorBias(mask).combined(with: causalLowerRight(9, 13))).route
            .hasPrefix("BiasComposition<TensorBias, CausalBias>.dispatch"))
        expectIdentical(try TensorBias.dispatch(query: q, key: k, value: v, attnBias: TensorBias(mask), options: AttentionOptions()),
                        try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask)), "TensorBias.dispatch")
        let wrong = TensorBias(try randn([3, 13], seed: 12)).combined(with: causalLowerRight(9, 13))
        #expect(throws: SDPAError.maskNotBroadcastable(mask: [3, 13], target: [1, 2, 9, 13])) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: wrong)
        }
        // A mask part of another shape than the rest: an error, not a read past its end.
        let mismatched = causalLowerRight(9, 13).combined(with: TensorBias(try randn([3, 13], seed: 13)))
        #expect(throws: SDPAError.maskNotBroadcastable(mask: [3, 13], target: [9, 13])) { try mismatched.materialize(device: .cpu) }
        // Batch dimensions of rank 5: a lone mask is flattened with them, a composed one is refused by name.
        let (q5, k5, v5) = (try randn([2, 3, 2, 9, 8], seed: 14), try randn([2, 3, 2, 13, 8], seed: 15), try randn([2, 3, 2, 13, 8], seed: 16))
        let mask5 = try randn([3, 1, 9, 13], seed: 17)
        _ = try scaledDotProductAttention(query: q5, key: k5, value: v5, attnMask: TensorBias(mask5))
        _ = expectSDPAError(mentions: ["attnMask", "a TensorBias inside a composition takes inputs of rank 4 at most"]) {
            try scaledDotProductAttention(query: q5, key: k5, value: v5, attnMask: TensorBias(mask5).combined(with: causalLowerRight(9, 13)))
        }
        // Materialized, the composition is the mask with the causal diagonal's -inf.
        let materialized = try TensorBias(mask).combined(with: causalLowerRight(9, 13)).materialize(device: .cpu).doubleScalars
        let values = mask.doubleScalars
        for i in 0..<9 {
            for j in 0..<13 { #expect(materialized[i * 13 + j] == (j <= i + 4 ? values[i * 13 + j] : -.infinity)) }
        }
    }
}
