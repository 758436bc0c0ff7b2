@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// Packed sequences (``BlockDiagonalBias``) run as their own calls, one job of the worker pool: each
/// segment's rows are those of its sequences run alone, the result does not depend on the thread
/// count, the scaling model follows the same segments, and `explainSDPA` says when it happens; the
/// backward pass runs the same segments.
@Suite("Packed sequences run as their own calls")
struct PackedSequenceTests {
    /// Sequences that are each a segment of their own (no two fit in one query tile of these shapes),
    /// one with no keys.
    static let queries = [70, 130, 49, 201, 96, 55], keys = [64, 150, 49, 0, 300, 90]
    static let (H, Hkv, E, Ev) = (4, 2, 32, 24)

    /// Each sequence's query rows and keys in the packed axes.
    static var sequences: [(rows: Range<Int>, keys: Range<Int>)] {
        var (q0, k0, ranges) = (0, 0, [(rows: Range<Int>, keys: Range<Int>)]())
        for (lq, lk) in zip(queries, keys) {
            ranges.append((q0..<(q0 + lq), k0..<(k0 + lk)))
            (q0, k0) = (q0 + lq, k0 + lk)
        }
        return ranges
    }

    static func inputs(_ dtype: DType, batch: Int = 2) throws -> (Tensor, Tensor, Tensor) {
        let (L, S) = (queries.reduce(0, +), keys.reduce(0, +))
        return (try randn([batch, H, L, E], seed: 1, dtype: dtype), try randn([batch, Hkv, S, E], seed: 2, dtype: dtype),
                try randn([batch, Hkv, S, Ev], seed: 3, dtype: dtype))
    }

    @Test("each sequence's rows are those of the sequence run alone, bit for bit",
          arguments: [DType.float32, .float16, .bfloat16], [nil, CausalVariant.upperLeft, .lowerRight])
    func sequencesAsAlone(_ dtype: DType, _ causal: CausalVariant?) throws {
        let (q, k, v) = try Self.inputs(dtype)
        let bias = BlockDiagonalBias(queryLengths: Self.queries, keyLengths: Self.keys, causal: causal)
        let segments = try explainSDPA(query: q, key: k, value: v, attnMask: bias, enableGQA: true).segments
        #expect(segments?.hasPrefix("6 calls") == true, "\(segments ?? "one call")")
        let packed = try withSDPBackends([.fused]) {
            try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, enableGQA: true)
        }
        for (rows, keys) in Self.sequences {
            let label = "\(dtype) \(causal.map { "\($0)" } ?? "no causal") rows \(rows)"
            if keys.isEmpty {
                // Queries that see no key: 0, and a log-sum-exp of -infinity.
                #expect(try packed.output.sliced(rows, along: 2).doubleScalars.allSatisfy { $0 == 0 }, "\(label)")
                #expect(try packed.logSumExp.sliced(rows, along: 2).doubleScalars.allSatisfy { $0 == -.infinity }, "\(label)")
            } else {
                let alone = try withSDPBackends([.fused]) {
                    try scaledDotProductAttentionWithLogSumExp(
                        query: q.sliced(rows, along: 2), key: k.sliced(keys, along: 2), value: v.sliced(keys, along: 2),
                        attnMask: BlockDiagonalBias(queryLengths: [rows.count], keyLengths: [keys.count], causal: causal), enableGQA: true)
                }
                expectIdentical(try packed.output.sliced(rows, along: 2), alone.output, "\(label): output")
                expectIdentical(try packed.logSumExp.sliced(rows, along: 2), alone.logSumExp, "\(label): log-sum-exp")
            }
        }
    }

    @Test("short sequences grouped into segments equal the math backend, with sinks, strided inputs and at any thread count",
          arguments: [DType.float32, .bfloat16])
    func groupedSegmentsMatchMath(_ dtype: DType) throws {
        // [L_i, H, E] sequences packed into one strided [1, H, ΣL, E] view, as a user packs them.
        let lengths = [5, 17, 0, 40, 1, 63, 12, 90, 33, 8, 8, 8, 120, 2, 77]
        let sequences = try lengths.enumerated().map { try randn([$0.element, Self.H, Self.E], seed: UInt64(10 + $0.offset), dtype: dtype) }
        let (q, bias) = try BlockDiagonalBias.packing(queries: sequences, causal: .lowerRight)
        let k = try randn([1, Self.H, bias.seqLenKV, Self.E], seed: 4, dtype: dtype)
        let v = try randn([1, Self.H, bias.seqLenKV, Self.Ev], seed: 5, dtype: dtype)
        let sinks = try randn([Self.H], seed: 6)
        let segments = try explainSDPA(query: q, key: k, value: v, attnMask: bias, sinks: sinks).segments
        #expect(segments != nil, "the packed sequences run as one call")
        let math = try withSDPBackends([.math]) { try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, sinks: sinks) }
        var tolerance = dtype == .float32 ? Tolerance.float32 : Tolerance.float32.bothRounded(to: dtype)
        if dtype == .bfloat16 && FusedKernelInstructionSet.multipliesBFloat16Pairs {
            tolerance = tolerance.withBFloat16Probabilities(maxAbsValue: v.doubleScalars.map(abs).max() ?? 0)
        }
        let one = try withSDPBackends([.fused]) {
            try withSDPAThreads(1) { try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, sinks: sinks) }
        }
        expectClose(one.output, math.output, tolerance, "\(dtype) output", dtype: dtype)
        expectClose(one.logSumExp, math.logSumExp, .logSumExp, "\(dtype) log-sum-exp")
        for threads in [2, 64] {
            let many = try withSDPBackends([.fused]) {
                try withSDPAThreads(threads) { try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, sinks: sinks) }
            }
            expectIdentical(many.output, one.output, "\(dtype), \(threads) threads: output")
            expectIdentical(many.logSumExp, one.logSumExp, "\(dtype), \(threads) threads: log-sum-exp")
        }
    }

    @Test("each sequence's gradients are those of the sequence's own backward pass, bit for bit",
          arguments: [DType.float32, .bfloat16], [nil, CausalVariant.lowerRight])
    func gradientsAsAlone(_ dtype: DType, _ causal: CausalVariant?) throws {
        let (q, k, v) = try Self.inputs(dtype)
        let dO = try randn([2, Self.H, q.shape[2], Self.Ev], seed: 8, dtype: dtype)
        let bias = BlockDiagonalBias(queryLengths: Self.queries, keyLengths: Self.keys, causal: causal)
        let packed = try withSDPBackends([.fused]) {
            let (o, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, enableGQA: true)
            return try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: o, logSumExp: lse,
                                                         attnMask: bias, enableGQA: true)
        }
        for (rows, keys) in Self.sequences {
            let label = "\(dtype) \(causal.map { "\($0)" } ?? "no causal") rows \(rows) keys \(keys)"
            if keys.isEmpty {
                #expect(try packed.query.sliced(rows, along: 2).doubleScalars.allSatisfy { $0 == 0 }, "\(label): dQ of queries that see no key")
            } else {
                let (sq, sk, sv, sdO) = (try q.sliced(rows, along: 2), try k.sliced(keys, along: 2), try v.sliced(keys, along: 2),
                                         try dO.sliced(rows, along: 2))
                let alone = BlockDiagonalBias(queryLengths: [rows.count], keyLengths: [keys.count], causal: causal)
                let gradients = try withSDPBackends([.fused]) {
                    let (o, lse) = try scaledDotProductAttentionWithLogSumExp(query: sq, key: sk, value: sv, attnMask: alone, enableGQA: true)
                    return try scaledDotProductAttentionBackward(gradOutput: sdO, query: sq, key: sk, value: sv, output: o, logSumExp: lse,
                                                                 attnMask: alone, enableGQA: true)
                }
                expectIdentical(try packed.query.sliced(rows, along: 2), gradients.query, "\(label): dQ")
                expectIdentical(try packed.key.sliced(keys, along: 2), gradients.key, "\(label): dK")
                expectIdentical(try packed.value.sliced(keys, along: 2), gradients.value, "\(label): dV")
            }
        }
    }

    @Test("the gradients of grouped short sequences equal the math backend's, at any thread count",
          arguments: [DType.float32, .float16])
    func groupedGradientsMatchMath(_ dtype: DType) throws {
        let c = FusedCase(batch: 2, heads: 4, group: 2, L: 700, S: 650, E: 24, Ev: 16, dtype: dtype, bias: "packedShortUpperLeft")
        let (q, k, v) = try c.inputs()
        #expect(try explainSDPA(query: q, key: k, value: v, attnMask: c.attnBias(), enableGQA: true).segments != nil)
        let math = try caseGradients(c, on: .math).gradients
        let one = try withSDPAThreads(1) { try caseGradients(c, on: .fused).gradients }
        expectGradientsClose(one, math, dtype: dtype, c.testDescription)
        for threads in [2, 64] {
            let many = try withSDPAThreads(threads) { try caseGradients(c, on: .fused).gradients }
            expectIdentical(many.query, one.query, "\(threads) threads: dQ")
            expectIdentical(many.key, one.key, "\(threads) threads: dK")
            expectIdentical(many.value, one.value, "\(threads) threads: dV")
        }
    }

    @Test("[H, L, E] inputs, keys and values packed from [S_i, H, E] views too: forward and gradients equal the math backend's")
    func rankThreeStridedInputs() throws {
        let (queryLengths, keyLengths) = ([30, 90, 7, 64, 120], [45, 60, 0, 64, 130])
        func packed(_ lengths: [Int], seed: UInt64, width: Int) throws -> Tensor {
            // [H, ΣL, E] views of one [ΣL, H, E] tensor (strided: rows H · E apart).
            try Tensor.concatenated(lengths.enumerated().map { try randn([$0.element, Self.H, width], seed: seed + UInt64($0.offset)) },
                                    along: 0).transposed(0, 1)
        }
        let (q, k, v) = (try packed(queryLengths, seed: 20, width: Self.E), try packed(keyLengths, seed: 40, width: Self.E),
                         try packed(keyLengths, seed: 60, width: Self.Ev))
        #expect(q.strides == [Self.E, Self.H * Self.E, 1] && k.strides[1] == Self.H * Self.E, "the inputs are strided views")
        let dO = try randn([Self.H, q.shape[1], Self.Ev], seed: 80)
        let bias = BlockDiagonalBias(queryLengths: queryLengths, keyLengths: keyLengths, causal: .upperLeft)
        #expect(try explainSDPA(query: q, key: k, value: v, attnMask: bias).segments != nil)
        func run(_ backend: SDPBackend) throws -> (output: Tensor, gradients: AttentionGradients) {
            try withSDPBackends([backend]) {
                let (o, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias)
                return (o, try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: o, logSumExp: lse, attnMask: bias))
            }
        }
        let (fused, math) = (try run(.fused), try run(.math))
        expectClose(fused.output, math.output, .float32, "output")
        expectGradientsClose(fused.gradients, math.gradients, dtype: .float32, "[H, L, E] packed views")
    }

    @Test("one call where nothing is gained: a single sequence, or sequences that share one tile")
    func oneCallOtherwise() throws {
        let (q, k, v) = try Self.inputs(.float32, batch: 1)
        let bias = BlockDiagonalBias(queryLengths: Self.queries, keyLengths: Self.keys)
        #expect(try explainSDPA(query: q, key: k, value: v, attnMask: bias, enableGQA: true).segments != nil)
        #expect(try explainSDPA(query: q, key: k, value: v, attnMask: bias, dropoutP: 0.1, enableGQA: true).segments != nil)
        let (L, S) = (bias.seqLenQ, bias.seqLenKV)
        let single = BlockDiagonalBias(queryLengths: [L], keyLengths: [S])
        #expect(try explainSDPA(query: q, key: k, value: v, attnMask: single, enableGQA: true).segments == nil)
        // Ten sequences in 40 query rows: one query tile, one segment.
        let small = try randn([1, Self.H, 40, Self.E], seed: 7)
        let few = BlockDiagonalBias(queryLengths: [Int](repeating: 4, count: 10), keyLengths: [Int](repeating: S / 10, count: 9) + [S - 9 * (S / 10)])
        #expect(try explainSDPA(query: small, key: k, value: v, attnMask: few, enableGQA: true).segments == nil)
    }

    @Test("the scaling model runs the segments' calls as one job: its items and tiles are theirs")
    func modelFollowsTheSegments() throws {
        let bias = BlockDiagonalBias(queryLengths: Self.queries, keyLengths: Self.keys, causal: .upperLeft)
        let shape = AttentionShape(batch: 2, queryHeads: Self.H, keyValueHeads: Self.Hkv, queryLength: bias.seqLenQ,
                                   keyLength: bias.seqLenKV, headDim: Self.E, valueHeadDim: Self.Ev)
        let whole = try predictSDPAScaling(shape: shape, attnMask: bias, enableGQA: true, threads: [1, 8])
        var (items, tiles, visible, work) = (0, 0, 0, 0.0)
        for (lq, lk) in zip(Self.queries, Self.keys) {
            var part = shape
            (part.queryLength, part.keyLength) = (lq, lk)
            let alone = try predictSDPAScaling(shape: part, attnMask: BlockDiagonalBias(queryLengths: [lq], keyLengths: [lk], causal: .upperLeft),
                                               enableGQA: true, threads: [1])[0]
            (items, tiles, visible, work) = (items + alone.workItems, tiles + alone.tiles, visible + alone.visibleTiles, work + alone.work)
        }
        #expect(whole[0].workItems == items && whole[0].tiles == tiles && whole[0].visibleTiles == visible)
        #expect(abs(whole[0].work - work) <= 1e-9 * work, "modeled work \(whole[0].work) s against the sequences' \(work) s")
        #expect(whole[0].oneThread == whole[1].oneThread && whole[1].speedup > 1)
    }

    /// Compositions that hold packed sequences, with the parts around them seen in the whole problem's
    /// coordinates: no trainable part (the backward pass then runs the segments too), and the user's own bias.
    static func composed(_ name: String, L: Int, S: Int) -> any FusedAttnBias {
        let packed = BlockDiagonalBias(queryLengths: Self.queries, keyLengths: Self.keys, causal: .lowerRight)
        switch name {
        case "window+packed": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 40, right: 0).combined(with: packed)
        case "softcap+packed+padding":
            return SoftCapBias(cap: 2).combined(with: packed).combined(with: KeyPaddingBias(validKeyLengths: [S - 100, S / 2], seqLenKV: S))
        case "alibi+packed": return AlibiBias(numHeads: Self.H, seqLenQ: L, seqLenKV: S).combined(with: packed)
        case "softcap+alibi+softcap+packed":
            // ALiBi's slopes between two soft-caps take the chain rule, in each segment's scratch.
            return SoftCapBias(cap: 4).combined(with: AlibiBias(numHeads: Self.H, seqLenQ: L, seqLenKV: S)).combined(with: SoftCapBias(cap: 2))
                .combined(with: packed)
        default:
            // Soft-capping between two of the user's parts: the backward pass takes the derivative element by
            // element, at each position's own scores.
            return packed.combined(with: DistanceDecay(rate: 0.05)).combined(with: SoftCapBias(cap: 3)).combined(with: DistanceDecay(rate: 0.02))
        }
    }

    @Test("a composition that holds packed sequences runs them as segments: forward and gradients equal the math backend's, at any thread count",
          arguments: ["window+packed", "softcap+packed+padding", "alibi+packed", "softcap+alibi+softcap+packed", "user's bias+packed"])
    func compositionsRunAsSegments(_ name: String) throws {
        let (q, k, v) = try Self.inputs(.float32)
        let (L, S) = (q.shape[2], k.shape[2])
        let dO = try randn([2, Self.H, L, Self.Ev], seed: 9)
        func run(_ backend: SDPBackend, threads: Int = 2) throws -> (output: Tensor, gradients: AttentionGradients) {
            func open<B: FusedAttnBias>(_ bias: B) throws -> (output: Tensor, gradients: AttentionGradients) {
                try withSDPBackends([backend]) {
                    try withSDPAThreads(threads) {
                        let (o, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, enableGQA: true)
                        return (o, try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: o, logSumExp: lse,
                                                                          attnMask: bias, enableGQA: true))
                    }
                }
            }
            return try open(Self.composed(name, L: L, S: S))
        }
        func explained<B: FusedAttnBias>(_ bias: B) throws -> String? {
            try explainSDPA(query: q, key: k, value: v, attnMask: bias, enableGQA: true).segments
        }
        #expect(try explained(Self.composed(name, L: L, S: S))?.hasPrefix("6 calls") == true)
        let (fused, math) = (try run(.fused), try run(.math))
        expectClose(fused.output, math.output, .float32, "\(name) output")
        expectGradientsClose(fused.gradients, math.gradients, dtype: .float32, name)
        for threads in [1, 64] {
            let other = try run(.fused, threads: threads)
            expectIdentical(other.output, fused.output, "\(name), \(threads) threads: output")
            expectIdentical(other.gradients.query, fused.gradients.query, "\(name), \(threads) threads: dQ")
            expectIdentical(other.gradients.key, fused.gradients.key, "\(name), \(threads) threads: dK")
            expectIdentical(other.gradients.value, fused.gradients.value, "\(name), \(threads) threads: dV")
            if let slopes = fused.gradients.alibiSlopes {
                // ALiBi's slopes are trainable: their gradient comes from every segment's tiles, merged in one order.
                #expect(other.gradients.alibiSlopes == slopes, "\(name), \(threads) threads: dSlopes")
            }
        }
        #expect((fused.gradients.alibiSlopes != nil) == name.contains("alibi"), "\(name): a slope gradient for ALiBi")
    }

    @Test("with dropout the segments drop the whole problem's weights: the math forward's for the same seed")
    func dropoutRunsAsSegments() throws {
        // Short sequences grouped into segments, one segment's keys starting past the first tile.
        let lengths = [30, 90, 7, 64, 120, 3, 55]
        let bias = BlockDiagonalBias(queryLengths: lengths, causal: .upperLeft)
        let (L, S) = (bias.seqLenQ, bias.seqLenKV)
        let q = try randn([1, 2, L, 8], seed: 30), k = try randn([1, 2, S, 8], seed: 31)
        #expect(try explainSDPA(query: q, key: k, value: k, attnMask: bias, dropoutP: 0.3).segments != nil)
        // With V the identity, the output rows are the weights as dropout leaves them.
        let eye = try Tensor(shape: [1, 2, S, S], scalars: (0..<2 * S * S).map { $0 % S == $0 / S % S ? 1 : 0 } as [Float])
        let run = { (backend: SDPBackend) in
            try withSDPBackends([backend]) { try scaledDotProductAttention(query: q, key: k, value: eye, attnMask: bias, dropoutP: 0.3, dropoutSeed: 99) }
        }
        let (fused, math) = (try run(.fused).doubleScalars, try run(.math).doubleScalars)
        let (zeros, mathZeros) = (fused.indices.filter { fused[$0] == 0 }, math.indices.filter { math[$0] == 0 })
        let sameZeros = zeros == mathZeros
        #expect(sameZeros, "the same weights dropped (and masked): \(zeros.count) zeros against the math backend's \(mathZeros.count)")
        expectClose(fused, math, Tolerance(atol: 1e-6, rtol: 1e-5), "kept weights")

        // The gradients with dropout through segments are checked by "Fused dropout", on these cases.
        for name in ["packedShortUpperLeft", "packedShortComposed"] {
            let c = FusedCase(batch: 2, heads: 4, group: 2, L: 700, S: 650, bias: name)
            let (cq, ck, cv) = try c.inputs()
            #expect(try explainSDPA(query: cq, key: ck, value: cv, attnMask: c.attnBias(), dropoutP: 0.25, enableGQA: true).segments != nil, "\(name)")
        }
    }
}

/// A user's own bias, defined outside the package: scores fall off with the distance between positions.
private struct DistanceDecay: FusedAttnBias {
    var rate: Double
    var materializedShape: [Int] { [1, 1] }
    static var modifiesScores: Bool { true }
    func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { true }
    func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        score - T(rate * Double(abs(query - key)))
    }
}
