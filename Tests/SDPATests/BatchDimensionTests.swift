import SDPA
import SDPATestSupport
import Testing

// PyTorch's `(N, ..., H, L, E)`: inputs of rank 5 and more carry several batch dimensions, which a call
// flattens into one. Each result must be the flattened rank-4 call's, bit for bit, with the batch
// dimensions back; a mask broadcasts over them as PyTorch broadcasts it, and its gradient is summed over
// the ones it was broadcast along.

/// `tensor` with its first `count` dimensions flattened into one (a copy in row-major order).
private func flattened(_ tensor: Tensor, _ count: Int) throws -> Tensor {
    try tensor.reshaped([tensor.shape.prefix(count).reduce(1, *)] + tensor.shape.dropFirst(count))
}

/// `tensor` (`[B, rest...]`) as `[leading..., rest...]`.
private func unflattened(_ tensor: Tensor, _ leading: [Int]) throws -> Tensor {
    try tensor.reshaped(leading + tensor.shape.dropFirst())
}

@Suite("Batch dimensions: inputs of rank 5 and more")
struct BatchDimensionTests {
    static let (N, G, H, L, S, E, Ev) = (2, 3, 4, 5, 7, 8, 6)

    /// `[N, G, H, L, E]` query, key and value (`Hkv` key/value heads), float32.
    static func inputs(hkv: Int = H, seed: UInt64 = 1) throws -> (Tensor, Tensor, Tensor) {
        (try randn([N, G, H, L, E], seed: seed), try randn([N, G, hkv, S, E], seed: seed + 1), try randn([N, G, hkv, S, Ev], seed: seed + 2))
    }

    @Test func forwardIsTheFlattenedCall() throws {
        let (q, k, v) = try Self.inputs()
        let (q4, k4, v4) = (try flattened(q, 2), try flattened(k, 2), try flattened(v, 2))
        for isCausal in [false, true] {
            let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: isCausal, scale: 0.4)
            let expected = try scaledDotProductAttentionWithLogSumExp(query: q4, key: k4, value: v4, isCausal: isCausal, scale: 0.4)
            #expect(out.shape == [Self.N, Self.G, Self.H, Self.L, Self.Ev] && lse.shape == [Self.N, Self.G, Self.H, Self.L])
            expectIdentical(out, try unflattened(expected.output, [Self.N, Self.G]), "isCausal \(isCausal)")
            expectIdentical(lse, try unflattened(expected.logSumExp, [Self.N, Self.G]), "isCausal \(isCausal) log-sum-exp")
        }
        // A bias type runs on the flattened batch too; so does the math backend.
        let alibi = AlibiBias(numHeads: Self.H, seqLenQ: Self.L, seqLenKV: Self.S, causal: .lowerRight)
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: alibi),
                        try unflattened(try scaledDotProductAttention(query: q4, key: k4, value: v4, attnMask: alibi), [Self.N, Self.G]), "ALiBi")
        try withSDPBackends([.math]) {
            expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v),
                            try unflattened(try scaledDotProductAttention(query: q4, key: k4, value: v4), [Self.N, Self.G]), "math")
        }
    }

    /// Grouped-query attention and one key/value head, rank 6, and views: batch dimensions that merge into
    /// one stride (read in place) and ones that do not (copied).
    @Test func groupsRanksAndViews() throws {
        let (q, k, v) = try Self.inputs(hkv: 2, seed: 4)
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, enableGQA: true),
                        try unflattened(try scaledDotProductAttention(query: try flattened(q, 2), key: try flattened(k, 2),
                                                                      value: try flattened(v, 2), enableGQA: true), [Self.N, Self.G]), "GQA")
        let (_, k1, v1) = try Self.inputs(hkv: 1, seed: 7)
        expectIdentical(try scaledDotProductAttention(query: q, key: k1, value: v1),
                        try unflattened(try scaledDotProductAttention(query: try flattened(q, 2), key: try flattened(k1, 2),
                                                                      value: try flattened(v1, 2)), [Self.N, Self.G]), "one key/value head")
        let shape6 = [2, 1, 3, Self.H, Self.L]
        let (q6, k6, v6) = (try randn(shape6 + [Self.E], seed: 10), try randn([2, 1, 3, Self.H, Self.S, Self.E], seed: 11),
                            try randn([2, 1, 3, Self.H, Self.S, Self.Ev], seed: 12))
        let out6 = try scaledDotProductAttention(query: q6, key: k6, value: v6, isCausal: true)
        #expect(out6.shape == shape6 + [Self.Ev])
        expectIdentical(out6, try unflattened(try scaledDotProductAttention(
            query: try flattened(q6, 3), key: try flattened(k6, 3), value: try flattened(v6, 3), isCausal: true), [2, 1, 3]), "rank 6")
        // [N, G, L, H, E] storage seen as [N, G, H, L, E]: N and G merge into one stride, the rest is strided.
        let qViewed = try randn([Self.N, Self.G, Self.L, Self.H, Self.E], seed: 13).transposed(2, 3)
        // [G, N, H, L, E] storage seen as [N, G, H, L, E]: N and G do not merge.
        let kSwapped = try randn([Self.G, Self.N, Self.H, Self.S, Self.E], seed: 14).transposed(0, 1)
        expectIdentical(try scaledDotProductAttention(query: qViewed, key: kSwapped, value: try randn([Self.N, Self.G, Self.H, Self.S, Self.Ev], seed: 15)),
                        try scaledDotProductAttention(query: try qViewed.contiguous(), key: try kSwapped.contiguous(),
                                                      value: try randn([Self.N, Self.G, Self.H, Self.S, Self.Ev], seed: 15)), "views")
    }

    /// Masks of every kind of batch part: none, all 1, the inputs' own, and some of each (broadcast and copied).
    @Test(arguments: [[Self.L, Self.S], [1, 1, Self.H, Self.L, Self.S], [Self.N, Self.G, 1, Self.L, Self.S],
                      [Self.N, 1, 1, Self.L, Self.S], [Self.G, Self.H, Self.L, Self.S], [1, Self.G, 1, 1, Self.S]])
    func masksBroadcastOverTheBatch(maskShape: [Int]) throws {
        let (q, k, v) = try Self.inputs(seed: 20)
        let boolMask = try Tensor(shape: maskShape, bools: (0..<maskShape.reduce(1, *)).map { $0 % 3 != 1 })
        let floatMask = try randn(maskShape, seed: 21)
        let scores = [Self.N, Self.G, Self.H, Self.L, Self.S]
        for mask in [boolMask, floatMask] {
            let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
            let expanded = try mask.broadcast(to: scores).contiguous()
            let expected = try scaledDotProductAttention(
                query: try flattened(q, 2), key: try flattened(k, 2), value: try flattened(v, 2), attnMask: TensorBias(try flattened(expanded, 2)))
            expectIdentical(out, try unflattened(expected, [Self.N, Self.G]), "\(mask.dtype) mask \(maskShape)")
        }
    }

    /// The backward pass: the flattened call's gradients with the batch dimensions back, and a float mask's
    /// gradient in its own shape, summed over the batch dimensions it was broadcast along.
    @Test(arguments: [[Self.N, 1, 1, Self.L, Self.S], [Self.N, Self.G, Self.H, Self.L, Self.S], [1, 1, 1, Self.L, Self.S],
                      [Self.L, Self.S], [Self.G, 1, Self.L, Self.S]])
    func gradients(maskShape: [Int]) throws {
        let (q, k, v) = try Self.inputs(seed: 30)
        let mask = try randn(maskShape, seed: 31)
        let dO = try randn([Self.N, Self.G, Self.H, Self.L, Self.Ev], seed: 32)
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: TensorBias(mask))
        let grads = try scaledDotProductAttentionBackward(
            gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: TensorBias(mask))

        let scores = [Self.N, Self.G, Self.H, Self.L, Self.S]
        let flatMask = try flattened(try mask.broadcast(to: scores).contiguous(), 2)
        let (q4, k4, v4, dO4) = (try flattened(q, 2), try flattened(k, 2), try flattened(v, 2), try flattened(dO, 2))
        let (out4, lse4) = try scaledDotProductAttentionWithLogSumExp(query: q4, key: k4, value: v4, attnMask: TensorBias(flatMask))
        let expected = try scaledDotProductAttentionBackward(
            gradOutput: dO4, query: q4, key: k4, value: v4, output: out4, logSumExp: lse4, attnMask: TensorBias(flatMask))
        for (name, got, want) in [("dQ", grads.query, expected.query), ("dK", grads.key, expected.key), ("dV", grads.value, expected.value)] {
            expectIdentical(got, try unflattened(want, [Self.N, Self.G]), "\(name) \(maskShape)")
        }
        // The expanded mask's gradient, summed over the dimensions where the mask has 1 and the scores do not.
        let full = try #require(expected.attnMask).doubleScalars
        let padded = [Int](repeating: 1, count: 5 - maskShape.count) + maskShape
        var sums = [Double](repeating: 0, count: mask.count)
        var index = [Int](repeating: 0, count: 5)
        for value in full {
            var target = 0
            for d in 0..<5 { target = target * padded[d] + (padded[d] == 1 ? 0 : index[d]) }
            sums[target] += value
            for d in (0..<5).reversed() {
                index[d] += 1
                if index[d] < scores[d] { break }
                index[d] = 0
            }
        }
        let maskGradient = try #require(grads.attnMask)
        #expect(maskGradient.shape == maskShape && maskGradient.dtype == mask.dtype)
        // The kernel sums a broadcast mask's gradient in float32 in its own order: within float32 rounding of the sums.
        expectClose(maskGradient, sums, Tolerance(atol: 1e-6, rtol: 1e-5), "dMask \(maskShape)")
    }

    /// Batch parts the other tests do not reach: a mask with fewer batch dimensions than the inputs that still
    /// covers them all (`N = 1`), a rank-6 mask, a float16 mask's gradient (summed before it is rounded, once).
    @Test func otherMaskBatchParts() throws {
        let (G, H, L, S, E) = (Self.G, Self.H, Self.L, Self.S, Self.E)
        let (q, k, v) = (try randn([1, G, H, L, E], seed: 50), try randn([1, G, H, S, E], seed: 51), try randn([1, G, H, S, E], seed: 52))
        let mask = try randn([G, H, L, S], seed: 53)
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask)),
                        try unflattened(try scaledDotProductAttention(query: try flattened(q, 2), key: try flattened(k, 2),
                                                                      value: try flattened(v, 2), attnMask: TensorBias(mask)), [1, G]), "[G, H, L, S]")
        let (q6, k6, v6) = (try randn([2, 1, G, H, L, E], seed: 54), try randn([2, 1, G, H, S, E], seed: 55), try randn([2, 1, G, H, S, E], seed: 56))
        let mask6 = try Tensor(shape: [2, 1, 1, 1, L, S], bools: (0..<(2 * L * S)).map { $0 % 4 != 0 })
        expectIdentical(try scaledDotProductAttention(query: q6, key: k6, value: v6, attnMask: TensorBias(mask6)),
                        try unflattened(try scaledDotProductAttention(
                            query: try flattened(q6, 3), key: try flattened(k6, 3), value: try flattened(v6, 3),
                            attnMask: TensorBias(try flattened(try mask6.broadcast(to: [2, 1, G, 1, L, S]).contiguous(), 3))), [2, 1, G]), "rank-6 mask")
        // float16 inputs and mask: the mask's gradient is the float32 sums rounded once.
        let (qh, kh, vh) = (try q6.converted(to: .float16), try k6.converted(to: .float16), try v6.converted(to: .float16))
        let halfMask = try randn([2, 1, 1, 1, L, S], seed: 57, dtype: .float16)
        let dO = try randn([2, 1, G, H, L, E], seed: 58, dtype: .float16)
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: qh, key: kh, value: vh, attnMask: TensorBias(halfMask))
        let grads = try scaledDotProductAttentionBackward(
            gradOutput: dO, query: qh, key: kh, value: vh, output: out, logSumExp: lse, attnMask: TensorBias(halfMask))
        let widened = TensorBias(try flattened(try halfMask.converted(to: .float32).broadcast(to: [2, 1, G, 1, L, S]).contiguous(), 3))
        let (q4, k4, v4, dO4) = (try flattened(qh, 3), try flattened(kh, 3), try flattened(vh, 3), try flattened(dO, 3))
        let (out4, lse4) = try scaledDotProductAttentionWithLogSumExp(query: q4, key: k4, value: v4, attnMask: widened)
        let reference = try scaledDotProductAttentionBackward(
            gradOutput: dO4, query: q4, key: k4, value: v4, output: out4, logSumExp: lse4, attnMask: widened)
        let perBatch = try #require(reference.attnMask).doubleScalars, inner = L * S
        var sums = [Double](repeating: 0, count: 2 * inner)
        for b in 0..<(2 * G) { for e in 0..<inner { sums[b / G * inner + e] += perBatch[b * inner + e] } }
        let maskGradient = try #require(grads.attnMask)
        #expect(maskGradient.shape == halfMask.shape && maskGradient.dtype == .float16)
        expectIdentical(maskGradient, try Tensor(shape: halfMask.shape, scalars: sums, dtype: .float16), "float16 dMask")
    }

    /// The shape a call runs, for building and validating a bias: `B` the batch dimensions' product. The plain
    /// initializer, which a bias's own `dispatch` relies on, still takes ranks 3 and 4 only.
    @Test func shapeOfTheCall() throws {
        let (q, k, v) = try Self.inputs(hkv: 2)
        let shape = try AttentionShape(flatteningBatchDimensionsOf: q, key: k, value: v, enableGQA: true)
        #expect(shape == AttentionShape(batch: Self.N * Self.G, queryHeads: Self.H, keyValueHeads: 2, queryLength: Self.L,
                                        keyLength: Self.S, headDim: Self.E, valueHeadDim: Self.Ev))
        #expect(throws: SDPAError.self) { try AttentionShape(query: q, key: k, value: v, enableGQA: true) }
        // A bias type's dispatch, called directly with rank-5 inputs, refuses them rather than reading them as rank 4.
        #expect(throws: SDPAError.self) {
            try CausalBias.dispatch(query: q, key: k, value: v, attnBias: causalLowerRight(Self.L, Self.S), options: AttentionOptions(enableGQA: true))
        }
        // explainSDPA explains the call the flattened inputs make.
        let mask = try randn([Self.N, 1, 1, Self.L, Self.S], seed: 43)
        let flatMask = TensorBias(try flattened(try mask.broadcast(to: [Self.N, Self.G, 1, Self.L, Self.S]).contiguous(), 2))
        #expect(try explainSDPA(query: q, key: k, value: v, attnMask: TensorBias(mask), enableGQA: true).description
                    == explainSDPA(query: try flattened(q, 2), key: try flattened(k, 2), value: try flattened(v, 2), attnMask: flatMask,
                                   enableGQA: true).description)
    }

    /// A bias whose own `dispatch` returns a result without the flattened batch gets an error, not a view past its storage.
    @Test func aDispatchReturningAnotherBatchIsAnError() throws {
        struct FirstBatchOnly: AttnBias {
            func materialize(device: Device) throws -> Tensor { try Tensor(shape: [1], bools: [true]) }
            var needsMaterialization: Bool { false }
            static func dispatch(query: Tensor, key: Tensor, value: Tensor, attnBias: Self, options: AttentionOptions) throws -> Tensor {
                try Tensor(zeros: [1] + query.shape.dropFirst().dropLast() + [value.shape.last!], dtype: query.dtype)
            }
        }
        let (q, k, v) = try Self.inputs()
        #expect(throws: SDPAError.shapeMismatch(
            argument: "output", shape: [1, Self.H, Self.L, Self.Ev], other: "flattened batch", otherShape: [Self.N * Self.G],
            reason: "the call on the flattened inputs must return [B, ...] with B = \(Self.N * Self.G), the batch dimensions' product")) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: FirstBatchOnly())
        }
    }

    @Test func errorsNameTheArgumentAndShapes() throws {
        let (q, k, v) = try Self.inputs()
        let otherBatch = try randn([Self.N, Self.G + 1, Self.H, Self.S, Self.E], seed: 40)
        #expect(throws: SDPAError.shapeMismatch(
            argument: "key", shape: otherBatch.shape, other: "query", otherShape: q.shape,
            reason: "the batch dimensions at dimension -4 do not broadcast: 4 against 3 (each must be 1 or equal)")) {
            try scaledDotProductAttention(query: q, key: otherBatch, value: v)
        }
        // The sizes after the batch are checked as given: the messages name the rank-5 shapes.
        let wideKey = try randn([Self.N, Self.G, Self.H, Self.S, Self.E + 1], seed: 43)
        #expect(throws: SDPAError.shapeMismatch(argument: "key", shape: wideKey.shape, other: "query", otherShape: q.shape,
                                                reason: "query and key must have the same head dimension E")) {
            try scaledDotProductAttention(query: q, key: wideKey, value: v)
        }
        let (k3, v3) = (try randn([Self.N, Self.G, 3, Self.S, Self.E], seed: 44), try randn([Self.N, Self.G, 3, Self.S, Self.Ev], seed: 45))
        #expect(throws: SDPAError.headCountMismatch(query: q.shape, key: k3.shape, enableGQA: true)) {
            try scaledDotProductAttention(query: q, key: k3, value: v3, enableGQA: true)
        }
        #expect(throws: SDPAError.self) {
            try AttentionShape(flatteningBatchDimensionsOf: q, key: wideKey, value: v, enableGQA: false)
        }
        let tooDeep = try randn([1, Self.N, Self.G, Self.H, Self.L, Self.S], seed: 41)
        #expect(throws: SDPAError.rank(
            argument: "attnMask", shape: tooDeep.shape,
            expected: "at most 5 dimensions, broadcast to the attention scores' shape \([Self.N, Self.G, Self.H, Self.L, Self.S])")) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(tooDeep))
        }
        let wrongBatch = try randn([Self.G, 1, 1, Self.L, Self.S], seed: 42)
        #expect(throws: SDPAError.maskNotBroadcastable(mask: wrongBatch.shape, target: [Self.N, Self.G, Self.H, Self.L, Self.S])) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(wrongBatch))
        }
    }
}
