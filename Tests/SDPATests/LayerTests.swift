import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

// The layers against float64 references computed here, element by element. The matrix product
// accumulates in float32 over `k` terms: each element is within 1e-5 of the sum of the magnitudes of its
// terms (a few ulps of float32 per term would be ~1e-7 of it; 1e-5 fails on any wrong term).

/// `x Wᵀ + b` in Double for `x` `[m, k]`, `W` `[n, k]`, and the sum of the terms' magnitudes per element.
private func referenceLinear(_ x: [Double], _ w: [Double], _ b: [Double]?, m: Int, k: Int, n: Int) -> (value: [Double], magnitude: [Double]) {
    var value = [Double](repeating: 0, count: m * n), magnitude = value
    for i in 0..<m {
        for j in 0..<n {
            var s = b?[j] ?? 0, a = abs(b?[j] ?? 0)
            for t in 0..<k { s += x[i * k + t] * w[j * k + t]; a += abs(x[i * k + t] * w[j * k + t]) }
            (value[i * n + j], magnitude[i * n + j]) = (s, a)
        }
    }
    return (value, magnitude)
}

private func gelu(_ x: Double) -> Double { x * 0.5 * (1 + erf(x / 2.0.squareRoot())) }

@Suite struct LayerTests {
    /// Sizes around the product's blocks: a depth past its slices (128 or 256 deep), few rows (columns
    /// shared out instead), many rows (several row blocks), a B cut into column blocks, edges that are not
    /// multiples of the register tile or of the weight's panels, and the empty cases.
    static let sizes: [(rows: Int, inputs: Int, outputs: Int)] = [
        (1, 3, 5), (7, 300, 37), (100, 64, 200), (250, 520, 33), (13, 0, 4), (0, 8, 8), (1, 1, 1), (97, 17, 130),
        (100, 384, 1152),  // a B larger than L2: column blocks
        (50, 130, 1500),  // columns shared out in whole panels, the last block ending in a partial one
    ]

    @Test(arguments: sizes)
    func linearMatchesFloat64(size: (rows: Int, inputs: Int, outputs: Int)) throws {
        let (m, k, n) = size
        let x = try Tensor.randomNormal(shape: [m, k], seed: 1)
        for hasBias in [false, true] {
            let layer = try Linear.random(inputFeatures: k, outputFeatures: n, bias: hasBias, seed: 2)
            let y = try layer(x)
            #expect(y.shape == [m, n])
            let ref = referenceLinear(x.doubleScalars, layer.weight.doubleScalars, layer.bias?.doubleScalars, m: m, k: k, n: n)
            for (i, (got, want)) in zip(y.doubleScalars, ref.value).enumerated() {
                #expect(abs(got - want) <= 1e-5 * ref.magnitude[i] + 1e-7, "element \(i) of \(size), bias \(hasBias): \(got) vs \(want)")
            }
        }
    }

    /// The packed weight gives PyTorch's `[out, in]` weight back exactly, and its last, partial panel's
    /// padding never reaches the output.
    @Test func linearWeightRoundTrips() throws {
        for (out, input) in [(1, 1), (70, 300), (65, 3), (130, 17), (0, 5), (4, 0)] {
            let w = try Tensor.randomNormal(shape: [out, input], seed: 7)
            let layer = try Linear(weight: w)
            #expect(layer.weight.shape == [out, input])
            #expect(layer.weight.scalars.map(\.bitPattern) == w.scalars.map(\.bitPattern), "\(out) x \(input)")
        }
        // Any dtype and strides in: a float64 weight seen transposed.
        let strided = try Tensor.randomNormal(shape: [9, 20], seed: 8, dtype: .float64).transposed(0, 1)   // [20, 9]
        #expect(try Linear(weight: strided).weight.doubleScalars == strided.converted(to: .float32).doubleScalars)
    }

    /// A layer packs its weight in the panels of the family in use when it is made; called under another
    /// family (other panel and tile widths, other depth slices) it still computes the same product.
    @Test func linearUnderAnotherFamily() throws {
        let (m, k, n) = (37, 300, 130)
        let x = try Tensor.randomNormal(shape: [m, k], seed: 9)
        for (made, used) in [("portable", FusedKernelInstructionSet.available[0]), (FusedKernelInstructionSet.available[0], "portable")] {
            let layer = try #require(try FusedKernelInstructionSet.withFamily(made) {
                try Linear.random(inputFeatures: k, outputFeatures: n, seed: 10)
            })
            let y = try #require(try withSDPAThreads(1) { try FusedKernelInstructionSet.withFamily(used) { try layer(x) } })
            let ref = referenceLinear(x.doubleScalars, layer.weight.doubleScalars, layer.bias?.doubleScalars, m: m, k: k, n: n)
            for (i, (got, want)) in zip(y.doubleScalars, ref.value).enumerated() {
                #expect(abs(got - want) <= 1e-5 * ref.magnitude[i] + 1e-7, "element \(i), made with \(made), run with \(used)")
            }
        }
    }

    @Test func linearIsBitIdenticalAtAnyThreadCount() throws {
        let x = try Tensor.randomNormal(shape: [203, 300], seed: 3)
        let layer = try Linear.random(inputFeatures: 300, outputFeatures: 70, seed: 4)
        let one = try withSDPAThreads(1) { try layer(x, activation: .gelu) }
        for threads in [2, 3, 8] {
            let many = try withSDPAThreads(threads) { try layer(x, activation: .gelu) }
            #expect(many.scalars.map(\.bitPattern) == one.scalars.map(\.bitPattern), "\(threads) threads")
        }
    }

    /// `activation(x Wᵀ + b) + residual`, the order the layer documents, on a strided float64 input.
    @Test func linearActivationAndResidual() throws {
        let x = try Tensor.randomNormal(shape: [2, 5, 12], seed: 5, dtype: .float64).transposed(0, 1)   // [5, 2, 12], strided
        let residual = try Tensor.randomNormal(shape: [5, 2, 9], seed: 6)
        let layer = try Linear.random(inputFeatures: 12, outputFeatures: 9, seed: 7)
        for activation in Activation.allCases {
            let y = try layer(x, activation: activation, residual: residual)
            let ref = referenceLinear(x.doubleScalars, layer.weight.doubleScalars, layer.bias!.doubleScalars, m: 10, k: 12, n: 9)
            for (i, got) in y.doubleScalars.enumerated() {
                let pre = ref.value[i]
                let want = (activation == .gelu ? gelu(pre) : activation == .relu ? max(pre, 0) : pre) + residual.doubleScalars[i]
                #expect(abs(got - want) <= 1e-5 * (ref.magnitude[i] + abs(want)) + 1e-6, "\(activation) element \(i)")
            }
        }
        #expect(x.dtype == .float64 && residual.shape == [5, 2, 9])
    }

    /// GELU through a 1 x 1 identity layer (exact products), against erf in float64: within 2e-7 relative to |x|
    /// plus an ulp-sized floor, and the special values.
    @Test func geluMatchesErf() throws {
        let values: [Float] = (0..<4001).map { -10 + Float($0) * 0.005 } + [0, -0.0, 1e-30, -1e-30, 30, -30, 1e30, -1e30, .infinity, -.infinity, .nan]
        let layer = try Linear(weight: Tensor(shape: [1, 1], scalars: [Float(1)]))
        let y = try layer(Tensor(shape: [values.count, 1], scalars: values), activation: .gelu).scalars
        for (x, got) in zip(values, y) {
            let want = gelu(Double(x))
            if x.isNaN { #expect(got.isNaN); continue }
            if x == -.infinity { #expect(got == 0); continue }
            if x == .infinity { #expect(got == .infinity); continue }
            let error = abs(Double(got) - want), bound = 2e-7 * abs(Double(x)) + 1e-7 * abs(want) + 1e-38
            #expect(error <= bound, "gelu(\(x)) = \(got), expected \(want)")
        }
    }

    @Test func layerNormMatchesFloat64() throws {
        let (rows, d) = (300, 37)
        // A large common offset: a one-pass variance would lose it.
        let x = try Tensor(shape: [3, 100, d], scalars: Tensor.randomNormal(shape: [rows * d], seed: 8).scalars.map { 100 + $0 })
        let norm = try LayerNorm(weight: Tensor.randomNormal(shape: [d], seed: 9), bias: Tensor.randomNormal(shape: [d], seed: 10), epsilon: 1e-12)
        let y = try norm(x).doubleScalars, xs = x.doubleScalars, g = norm.weight.doubleScalars, b = norm.bias.doubleScalars
        for r in 0..<rows {
            let row = xs[(r * d)..<((r + 1) * d)]
            let mean = row.reduce(0, +) / Double(d)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(d)
            for j in 0..<d {
                let want = (xs[r * d + j] - mean) / (variance + 1e-12).squareRoot() * g[j] + b[j]
                #expect(abs(y[r * d + j] - want) <= 2e-4 * (abs(g[j]) + abs(b[j])), "row \(r) column \(j)")
            }
        }
        #expect(x.scalars[0] > 90, "the input is not modified")
    }

    /// The block against attention written out in float64: projections, per-head softmax with the bias, output projection.
    @Test(arguments: [(4, 4), (4, 2), (6, 1)])
    func multiHeadAttentionMatchesFloat64(heads: (query: Int, keyValue: Int)) throws {
        let (B, L, D) = (2, 7, 24)
        let (H, Hkv) = heads, E = D / H
        let block = try MultiHeadAttention.random(embedDim: D, heads: H, keyValueHeads: Hkv, seed: 11)
        let x = try Tensor.randomNormal(shape: [B, L, D], seed: 12)
        let lengths = [7, 4]
        let padded = try block(x, attnMask: KeyPaddingBias(validKeyLengths: lengths, seqLenKV: L))
        let causal = try block(x, isCausal: true)
        #expect(padded.shape == [B, L, D] && causal.shape == [B, L, D])

        let width = (H + 2 * Hkv) * E
        let qkv = referenceLinear(x.doubleScalars, block.inputProjection.weight.doubleScalars, block.inputProjection.bias!.doubleScalars,
                                  m: B * L, k: D, n: width).value
        for (result, visible) in [(padded, { (b: Int, i: Int, j: Int) in j < lengths[b] }), (causal, { (_: Int, i: Int, j: Int) in j <= i })] {
            var heads = [Double](repeating: 0, count: B * L * H * E)
            for b in 0..<B {
                for h in 0..<H {
                    let kv = h / (H / Hkv)
                    for i in 0..<L {
                        let q = (b * L + i) * width + h * E
                        let scores = (0..<L).map { j -> Double in
                            guard visible(b, i, j) else { return -.infinity }
                            let k = (b * L + j) * width + (H + kv) * E
                            return (0..<E).reduce(0) { $0 + qkv[q + $1] * qkv[k + $1] } / Double(E).squareRoot()
                        }
                        let top = scores.max()!, weights = scores.map { exp($0 - top) }, total = weights.reduce(0, +)
                        for j in 0..<L where weights[j] > 0 {
                            let v = (b * L + j) * width + (H + Hkv + kv) * E
                            for e in 0..<E { heads[((b * L + i) * H + h) * E + e] += weights[j] / total * qkv[v + e] }
                        }
                    }
                }
            }
            let want = referenceLinear(heads, block.outputProjection.weight.doubleScalars, block.outputProjection.bias!.doubleScalars,
                                       m: B * L, k: H * E, n: D)
            for (i, got) in result.doubleScalars.enumerated() {
                #expect(abs(got - want.value[i]) <= 1e-5 * want.magnitude[i] + 1e-6, "element \(i), heads \(heads)")
            }
        }
    }

    /// Any bias reaches the attention call as given (ALiBi, a sliding window, a dense mask, through the
    /// existential overload): the block equals its projections composed around scaledDotProductAttention by hand.
    @Test func anyBiasPassesThrough() throws {
        let (B, L, D, H, Hkv) = (2, 9, 32, 4, 2)
        let E = D / H
        let block = try MultiHeadAttention.random(embedDim: D, heads: H, keyValueHeads: Hkv, seed: 19)
        let x = try Tensor.randomNormal(shape: [B, L, D], seed: 20)
        let biases: [any AttnBias] = [
            AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: L, causal: .lowerRight),
            SlidingWindowBias(seqLenQ: L, seqLenKV: L, left: 2, right: 1),
            TensorBias(try Tensor.randomBools(shape: [L, L], probability: 0.7, seed: 21)),
        ]
        let qkv = try block.inputProjection(x)
        func heads(_ range: Range<Int>) throws -> Tensor {
            try qkv.sliced(range, along: 2).contiguous().reshaped([B, L, range.count / E, E]).transposed(1, 2)
        }
        for bias in biases {
            let attended = try scaledDotProductAttention(
                query: heads(0..<(H * E)), key: heads((H * E)..<((H + Hkv) * E)), value: heads(((H + Hkv) * E)..<((H + 2 * Hkv) * E)),
                attnMask: bias, enableGQA: true)
            let want = try block.outputProjection(attended.transposed(1, 2).contiguous().reshaped([B, L, H * E])).scalars
            let got = try block(x, attnMask: bias).scalars
            #expect(zip(got, want).map { abs($0 - $1) }.max()! <= 1e-5, "\(type(of: bias))")
        }
    }

    /// Cross-attention against float64: queries from one input, keys and values from others (the same tensor, or two),
    /// each through its rows of the input projection. `D = 20, H = 4` puts the key rows off the weight's panels in
    /// every family (their projection packed anew), `D = 64` on them (a view of the panels).
    @Test(arguments: [(20, 4, 2), (64, 4, 2), (48, 6, 1)])
    func crossAttentionMatchesFloat64(embedDim D: Int, heads H: Int, keyValueHeads Hkv: Int) throws {
        let (B, L, S, E) = (2, 5, 11, D / H)
        let block = try MultiHeadAttention.random(embedDim: D, heads: H, keyValueHeads: Hkv, seed: 31)
        let query = try Tensor.randomNormal(shape: [B, L, D], seed: 32)
        let memory = try Tensor.randomNormal(shape: [B, S, D], seed: 33), other = try Tensor.randomNormal(shape: [B, S, D], seed: 34)
        let lengths = [11, 6]
        let padding = KeyPaddingBias(validKeyLengths: lengths, seqLenKV: S)
        let w = block.inputProjection.weight.doubleScalars, bias = block.inputProjection.bias!.doubleScalars
        func rows(_ range: Range<Int>) -> ([Double], [Double]) { (Array(w[(range.lowerBound * D)..<(range.upperBound * D)]), Array(bias[range])) }
        let (wq, bq) = rows(0..<(H * E)), (wk, bk) = rows((H * E)..<((H + Hkv) * E)), (wv, bv) = rows(((H + Hkv) * E)..<((H + 2 * Hkv) * E))
        for (key, value, label) in [(memory, memory, "one tensor"), (memory, other, "two tensors")] {
            let got = try block(query: query, key: key, value: value, attnMask: padding)
            #expect(got.shape == [B, L, D])
            let q = referenceLinear(query.doubleScalars, wq, bq, m: B * L, k: D, n: H * E).value
            let k = referenceLinear(key.doubleScalars, wk, bk, m: B * S, k: D, n: Hkv * E).value
            let v = referenceLinear(value.doubleScalars, wv, bv, m: B * S, k: D, n: Hkv * E).value
            var heads = [Double](repeating: 0, count: B * L * H * E)
            for b in 0..<B {
                for h in 0..<H {
                    let kv = h / (H / Hkv)
                    for i in 0..<L {
                        let scores = (0..<S).map { j -> Double in
                            guard j < lengths[b] else { return -.infinity }
                            return (0..<E).reduce(0) { $0 + q[((b * L + i) * H + h) * E + $1] * k[((b * S + j) * Hkv + kv) * E + $1] }
                                / Double(E).squareRoot()
                        }
                        let top = scores.max()!, weights = scores.map { exp($0 - top) }, total = weights.reduce(0, +)
                        for j in 0..<S where weights[j] > 0 {
                            for e in 0..<E { heads[((b * L + i) * H + h) * E + e] += weights[j] / total * v[((b * S + j) * Hkv + kv) * E + e] }
                        }
                    }
                }
            }
            let want = referenceLinear(heads, block.outputProjection.weight.doubleScalars, block.outputProjection.bias!.doubleScalars,
                                       m: B * L, k: H * E, n: D)
            for (n, value) in got.doubleScalars.enumerated() {
                #expect(abs(value - want.value[n]) <= 1e-5 * want.magnitude[n] + 1e-6, "element \(n), key and value as \(label)")
            }
        }
    }

    /// The cross-attention form with one input for all three is the self-attention block bit for bit, and key and
    /// value as one tensor (projected together) or as two equal ones (projected apart) give the same bits; an
    /// unbatched call is the batch of one.
    @Test(arguments: [16, 20, 64])
    func crossAttentionAgreesWithItself(embedDim D: Int) throws {
        let block = try MultiHeadAttention.random(embedDim: D, heads: 4, keyValueHeads: 2, seed: 35)
        let x = try Tensor.randomNormal(shape: [2, 7, D], seed: 36), memory = try Tensor.randomNormal(shape: [2, 9, D], seed: 37)
        expectIdentical(try block(query: x, key: x, value: x, isCausal: true), try block(x, isCausal: true), "self-attention")
        let alibi = AlibiBias(numHeads: 4, seqLenQ: 7, seqLenKV: 9)
        let together = try block(query: x, key: memory, value: memory, attnMask: alibi)
        expectIdentical(together, try block(query: x, key: memory, value: try Tensor(shape: memory.shape, scalars: memory.scalars), attnMask: alibi),
                        "one tensor or two")
        expectIdentical(try block(query: x, key: memory, value: memory, attnMask: alibi as any AttnBias), together, "existential")
        let unbatched = try block(query: x.sliced(1..<2, along: 0).reshaped([7, D]), key: memory.sliced(1..<2, along: 0).reshaped([9, D]),
                                  value: memory.sliced(1..<2, along: 0).reshaped([9, D]), attnMask: alibi)
        expectIdentical(unbatched, try together.sliced(1..<2, along: 0).reshaped([7, D]), "unbatched")
    }

    /// A view (sequence-first data transposed, a slice) or another dtype gives what its contiguous float32 copy
    /// gives, bit for bit, through every layer: the converted copy a layer makes lives until the product has read it.
    @Test func layersTakeViewsAndOtherDTypes() throws {
        let (B, L, S, D) = (3, 9, 13, 48)
        let block = try MultiHeadAttention.random(embedDim: D, heads: 4, keyValueHeads: 2, seed: 41)
        let encoder = try TransformerEncoderLayer.random(embedDim: D, heads: 4, feedForwardDim: 64, seed: 42)
        let linear = try Linear.random(inputFeatures: D, outputFeatures: 40, seed: 43), norm = try LayerNorm(features: D)
        let sequenceFirst = try Tensor.randomNormal(shape: [L, B, D], seed: 44)
        let memory = try Tensor.randomNormal(shape: [S, B, D], seed: 45), other = try Tensor.randomNormal(shape: [S, B, D], seed: 47)
        let wide = try Tensor.randomNormal(shape: [B, L, D + 16], seed: 46)
        func sequenceFirstViews(_ dtype: DType, _ memoryDType: DType) throws -> [Tensor] {
            try [sequenceFirst, memory, other].enumerated().map { try $1.transposed(0, 1).converted(to: $0 == 0 ? dtype : memoryDType) }
        }
        let inputs: [([Tensor], String)] = [
            (try sequenceFirstViews(.float32, .float32), "transposed"),
            ([try wide.sliced(8..<(D + 8), along: 2)] + (try sequenceFirstViews(.float32, .float32).dropFirst()), "sliced features"),
            (try sequenceFirstViews(.float64, .float64), "float64"),
            (try sequenceFirstViews(.float16, .bfloat16), "half"),
        ]
        for (views, label) in inputs {
            let (x, m, o) = (views[0], views[1], views[2])
            let (x32, m32, o32) = (try x.converted(to: .float32).contiguous(), try m.converted(to: .float32).contiguous(),
                                   try o.converted(to: .float32).contiguous())
            #expect(!x.isContiguous || x.dtype != .float32, "\(label): the case must need a copy")
            expectIdentical(try block(x, isCausal: true), try block(x32, isCausal: true), "self-attention, \(label)")
            expectIdentical(try block(query: x, key: m, value: m), try block(query: x32, key: m32, value: m32), "cross, one tensor, \(label)")
            expectIdentical(try block(query: x, key: m, value: o), try block(query: x32, key: m32, value: o32), "cross, two tensors, \(label)")
            expectIdentical(try encoder(x), try encoder(x32), "encoder, \(label)")
            expectIdentical(try linear(x, residual: try linear(x)), try linear(x32, residual: try linear(x32)), "linear, \(label)")
            expectIdentical(try norm(x), try norm(x32), "layer norm, \(label)")
        }
    }

    @Test func crossAttentionShapesAreChecked() throws {
        let block = try MultiHeadAttention.random(embedDim: 8, heads: 2, seed: 38)
        let (q, kv) = (try randn([2, 3, 8], seed: 39), try randn([2, 5, 8], seed: 40))
        #expect(throws: SDPAError.shapeMismatch(argument: "key", shape: [3, 5, 8], other: "query", otherShape: [2, 3, 8], reason: "one batch size B")) {
            try block(query: q, key: try randn([3, 5, 8], seed: 41), value: try randn([3, 5, 8], seed: 42))
        }
        #expect(throws: SDPAError.shapeMismatch(argument: "value", shape: [2, 4, 8], other: "key", otherShape: [2, 5, 8],
                                                reason: "key and value hold the same B sequences of S positions")) {
            try block(query: q, key: kv, value: try randn([2, 4, 8], seed: 43))
        }
        for (name, args) in [("key", (q, try randn([2, 5, 7], seed: 44), kv)), ("value", (q, kv, try randn([5, 8], seed: 45))),
                             ("query", (try randn([2, 3, 7], seed: 46), kv, kv)), ("key", (try randn([3, 8], seed: 47), kv, kv))] {
            let error = #expect(throws: SDPAError.self) { try block(query: args.0, key: args.1, value: args.2) }
            guard case let .shapeMismatch(argument, _, _, _, _)? = error else { Issue.record("\(String(describing: error))"); continue }
            #expect(argument == name)
        }
    }

    /// Separate query, key and value weights make the same block as their concatenation.
    @Test func separateProjectionsEqualTheFusedOne() throws {
        let fused = try MultiHeadAttention.random(embedDim: 16, heads: 4, keyValueHeads: 2, seed: 13)
        let w = fused.inputProjection.weight, b = fused.inputProjection.bias!
        let separate = try MultiHeadAttention(
            queryWeight: w.sliced(0..<16, along: 0), keyWeight: w.sliced(16..<24, along: 0), valueWeight: w.sliced(24..<32, along: 0),
            queryBias: b.sliced(0..<16, along: 0), keyBias: b.sliced(16..<24, along: 0), valueBias: b.sliced(24..<32, along: 0),
            outputWeight: fused.outputProjection.weight, outputBias: fused.outputProjection.bias, heads: 4, keyValueHeads: 2)
        let x = try Tensor.randomNormal(shape: [1, 9, 16], seed: 14)
        #expect(try separate(x).scalars == fused(x).scalars)
        #expect(separate.headDim == 4 && separate.keyValueHeads == 2)
    }

    /// Dropout only in training mode: the same seed gives the same output, p = 1 leaves the output bias alone.
    @Test func dropoutInTrainingOnly() throws {
        let block = try MultiHeadAttention.random(embedDim: 16, heads: 2, dropoutP: 0.5, seed: 15)
        let x = try Tensor.randomNormal(shape: [1, 6, 16], seed: 16)
        let evaluation = try block(x).scalars
        #expect(try block(x, training: false, dropoutSeed: 1).scalars == evaluation)
        let first = try block(x, training: true, dropoutSeed: 7).scalars, again = try block(x, training: true, dropoutSeed: 7).scalars
        #expect(first == again)
        #expect(zip(first, evaluation).map { abs($0 - $1) }.max()! > 1e-3)
        var all = block
        all.dropoutP = 1
        let dropped = try all(x, training: true, dropoutSeed: 3).scalars
        let bias = block.outputProjection.bias!.scalars
        #expect(dropped == (0..<6).flatMap { _ in bias })
    }

    /// The fused encoder layer equals its parts run one after another: with the layer norms on each finished
    /// block of rows, and (5 rows of 128: columns shared out) in a pass of their own.
    @Test(arguments: [(32, [10, 3, 7]), (128, [5])])
    func encoderLayerEqualsItsParts(embedDim: Int, lengths: [Int]) throws {
        let layer = try TransformerEncoderLayer.random(embedDim: embedDim, heads: 4, feedForwardDim: 80, seed: 17)
        let L = lengths.max()!
        let x = try Tensor.randomNormal(shape: [lengths.count, L, embedDim], seed: 18)
        let bias = KeyPaddingBias(validKeyLengths: lengths, seqLenKV: L)
        let h = try layer.attentionNorm(x.scalarsAdded(layer.attention(x, attnMask: bias)))
        let f = try layer.feedForwardOut(layer.feedForwardIn(h, activation: .gelu), residual: h)
        let want = try layer.outputNorm(f).scalars
        let got = try layer(x, attnMask: bias).scalars
        #expect(zip(got, want).map { abs($0 - $1) }.max()! <= 1e-5)
    }

    /// Errors name the argument at fault: a head count of 0, a key weight of another `D`, bool values (which a layer
    /// would read as 0 and 1).
    @Test func badLayerArgumentsAreNamed() throws {
        /// `body`'s error, whose message must start with `argument` (the argument it names, and what follows it).
        func expectNamed<T>(_ argument: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T) {
            let error = expectSDPAError(sourceLocation: sourceLocation, body)
            #expect(error?.description.hasPrefix(argument) == true, "\(error.map(String.init(describing:)) ?? "none")", sourceLocation: sourceLocation)
        }
        let (w, out) = (try Tensor.randomNormal(shape: [24, 8], seed: 1), try Tensor.randomNormal(shape: [8, 8], seed: 2))
        let bools = try Tensor.randomBools(shape: [2, 3, 8], seed: 3)
        expectNamed("heads = 0") { try MultiHeadAttention(inputWeight: w, outputWeight: out, heads: 0) }
        expectNamed("keyValueHeads = 0") { try MultiHeadAttention(inputWeight: w, outputWeight: out, heads: 2, keyValueHeads: 0) }
        expectNamed("keyWeight has shape [8, 6]") {
            try MultiHeadAttention(queryWeight: out, keyWeight: try Tensor.randomNormal(shape: [8, 6], seed: 4), valueWeight: out,
                                   outputWeight: out, heads: 2)
        }
        expectNamed("valueWeight has dtype bool") {
            try MultiHeadAttention(queryWeight: out, keyWeight: out, valueWeight: try Tensor.randomBools(shape: [8, 8], seed: 5),
                                   outputWeight: out, heads: 2)
        }
        expectNamed("weight has dtype bool") { try Linear(weight: try Tensor.randomBools(shape: [3, 8], seed: 6)) }
        let block = try MultiHeadAttention(inputWeight: w, outputWeight: out, heads: 2)
        expectNamed("x has dtype bool") { try block(bools) }
        expectNamed("key has dtype bool") { try block(query: try Tensor.randomNormal(shape: [2, 3, 8], seed: 7), key: bools, value: bools) }
        expectNamed("x has dtype bool") { try Linear(weight: out)(bools) }
        expectNamed("x has dtype bool") { try LayerNorm(features: 8)(bools) }
        expectNamed("x has dtype bool") { try TransformerEncoderLayer.random(embedDim: 8, heads: 2, feedForwardDim: 16, seed: 8)(bools) }
    }

    @Test func badShapesAreErrors() throws {
        let layer = try Linear.random(inputFeatures: 4, outputFeatures: 3, seed: 1)
        #expect(throws: SDPAError.self) { try layer(Tensor(zeros: [2, 5])) }
        #expect(throws: SDPAError.self) { try layer(Tensor(zeros: [2, 4]), residual: Tensor(zeros: [2, 4])) }
        #expect(throws: SDPAError.self) { try Linear(weight: Tensor(zeros: [3, 4]), bias: Tensor(zeros: [4])) }
        #expect(throws: SDPAError.self) { try Linear(weight: Tensor(zeros: [3, 4, 1])) }
        #expect(throws: SDPAError.self) { try LayerNorm(weight: Tensor(zeros: [4]), bias: Tensor(zeros: [3])) }
        #expect(throws: SDPAError.self) { try LayerNorm(features: 4, epsilon: -1) }
        #expect(throws: SDPAError.self) { try LayerNorm(features: 4)(Tensor(zeros: [2, 5])) }
        #expect(throws: SDPAError.self) { try MultiHeadAttention.random(embedDim: 10, heads: 4, seed: 1) }
        #expect(throws: SDPAError.self) { try MultiHeadAttention.random(embedDim: 8, heads: 4, keyValueHeads: 3, seed: 1) }
        #expect(throws: SDPAError.self) { try MultiHeadAttention.random(embedDim: 8, heads: 2, dropoutP: 2, seed: 1) }
        let block = try MultiHeadAttention.random(embedDim: 8, heads: 2, seed: 1)
        #expect(throws: SDPAError.self) { try block(Tensor(zeros: [2, 3, 7])) }
        #expect(throws: SDPAError.self) { try block(Tensor(zeros: [8])) }
        // Unbatched [L, D], as PyTorch's nn.MultiheadAttention takes it: the batch of one, without its batch dimension.
        let x = try randn([3, 8], seed: 2)
        expectIdentical(try block(x, isCausal: true), try block(try x.reshaped([1, 3, 8]), isCausal: true).reshaped([3, 8]), "unbatched")
        expectIdentical(try block(x, attnMask: AlibiBias(numHeads: 2, seqLenQ: 3, seqLenKV: 3, causal: .lowerRight)),
                        try block(try x.reshaped([1, 3, 8]), attnMask: AlibiBias(numHeads: 2, seqLenQ: 3, seqLenKV: 3, causal: .lowerRight))
                            .reshaped([3, 8]), "unbatched, ALiBi")
        let encoder = try TransformerEncoderLayer.random(embedDim: 8, heads: 2, feedForwardDim: 16, seed: 3)
        expectIdentical(try encoder(x, isCausal: true), try encoder(try x.reshaped([1, 3, 8]), isCausal: true).reshaped([3, 8]), "encoder, unbatched")
        #expect(throws: SDPAError.self) { try block(Tensor(zeros: [2, 3, 8]), attnMask: KeyPaddingBias(validKeyLengths: [3], seqLenKV: 3)) }
        #expect(throws: SDPAError.self) {
            try TransformerEncoderLayer(attention: block, attentionNorm: LayerNorm(features: 8), feedForwardIn: .random(inputFeatures: 8, outputFeatures: 16, seed: 1),
                                        feedForwardOut: .random(inputFeatures: 15, outputFeatures: 8, seed: 1), outputNorm: LayerNorm(features: 8))
        }
    }
}

extension Tensor {
    /// Element-wise `self + other` of one shape, through the public API (for composing references).
    fileprivate func scalarsAdded(_ other: Tensor) throws -> Tensor {
        try Tensor(shape: shape, scalars: zip(scalars, other.scalars).map(+))
    }
}
