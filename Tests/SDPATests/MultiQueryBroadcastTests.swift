import SDPA
import SDPATestSupport
import Testing

/// "[2, 3, 4, 6]": how a shape appears in messages.
private func s(_ shape: [Int]) -> String { "\(shape)" }

/// One key/value head without `enableGQA` is broadcast to every query head, as PyTorch 2.15's
/// `scaled_dot_product_attention` broadcasts `[B, 1, S, E]` keys against `[B, H, L, E]` queries
/// (multi-query attention): the same bits as `enableGQA: true` (forward, log-sum-exp and gradients,
/// both backends) and as the key/value head repeated for every query head (forward and log-sum-exp);
/// the gradients within float64 rounding of the repeated heads' with dK and dV summed over them.
@Suite("Multi-query attention: one key/value head broadcast without enableGQA")
struct MultiQueryBroadcastTests {
    static let cases: [(rank: Int, heads: Int, l: Int, s: Int, dtype: DType)] = [
        (4, 3, 4, 5, .float32), (4, 8, 1, 37, .float32), (3, 5, 17, 70, .float32),
        (4, 4, 2, 9, .bfloat16), (4, 2, 6, 6, .float64),
    ]

    private func inputs(rank: Int, heads: Int, l: Int, s: Int, dtype: DType) throws -> (Tensor, Tensor, Tensor) {
        let lead = rank == 4 ? [2] : []
        return (try randn(lead + [heads, l, 16], seed: 11, dtype: dtype),
                try randn(lead + [1, s, 16], seed: 12, dtype: dtype),
                try randn(lead + [1, s, 24], seed: 13, dtype: dtype))
    }

    @Test(arguments: [SDPBackend.fused, .math])
    func forwardMatchesGQAAndRepeatedHeads(backend: SDPBackend) throws {
        for c in Self.cases where backend == .math || c.dtype != .float64 {  // float64 runs on the math backend only
            let (q, k, v) = try inputs(rank: c.rank, heads: c.heads, l: c.l, s: c.s, dtype: c.dtype)
            let label = "rank \(c.rank) H \(c.heads) L \(c.l) S \(c.s) \(c.dtype) \(backend)"
            try withSDPBackends([backend]) {
                let broadcast = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true)
                let gqa = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true, enableGQA: true)
                expectIdentical(broadcast.output, gqa.output, label)
                expectIdentical(broadcast.logSumExp, gqa.logSumExp, label)
                #expect(broadcast.output.shape == Array(q.shape.dropLast()) + [24], "\(label)")
                let mask = try Tensor.randomBools(shape: [c.l, c.s], probability: 0.7, seed: 5)
                let masked = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
                expectIdentical(masked, try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask), enableGQA: true), label)
                let (kr, vr) = (try repeatHeads(k, c.heads), try repeatHeads(v, c.heads))
                let repeatedHeads = try scaledDotProductAttentionWithLogSumExp(query: q, key: kr, value: vr, isCausal: true)
                expectIdentical(broadcast.output, repeatedHeads.output, "\(label), repeated heads")
                expectIdentical(broadcast.logSumExp, repeatedHeads.logSumExp, "\(label), repeated heads")
                let window = SlidingWindowBias(seqLenQ: c.l, seqLenKV: c.s, left: 3)
                expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: window),
                                try scaledDotProductAttention(query: q, key: kr, value: vr, attnMask: window), "\(label), window")
            }
        }
    }

    @Test(arguments: [SDPBackend.fused, .math])
    func gradientsMatchGQA(backend: SDPBackend) throws {
        for c in Self.cases where c.dtype != .bfloat16 && (backend == .math || c.dtype != .float64) {
            let (q, k, v) = try inputs(rank: c.rank, heads: c.heads, l: c.l, s: c.s, dtype: c.dtype)
            let label = "rank \(c.rank) H \(c.heads) L \(c.l) S \(c.s) \(c.dtype) \(backend)"
            try withSDPBackends([backend]) {
                let forward = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: causalLowerRight(c.l, c.s))
                let dO = try randn(forward.output.shape, seed: 14, dtype: c.dtype)
                let broadcast = try scaledDotProductAttentionBackward(
                    gradOutput: dO, query: q, key: k, value: v, output: forward.output, logSumExp: forward.logSumExp,
                    attnMask: causalLowerRight(c.l, c.s))
                let gqa = try scaledDotProductAttentionBackward(
                    gradOutput: dO, query: q, key: k, value: v, output: forward.output, logSumExp: forward.logSumExp,
                    attnMask: causalLowerRight(c.l, c.s), enableGQA: true)
                #expect(broadcast.key.shape == k.shape && broadcast.value.shape == v.shape, "\(label)")
                expectIdentical(broadcast.query, gqa.query, label)
                expectIdentical(broadcast.key, gqa.key, label)
                expectIdentical(broadcast.value, gqa.value, label)
            }
        }
    }

    /// The definition, independently of the GQA path: attention over the head repeated `H` times,
    /// whose dK and dV summed over the heads are the one head's gradients (math backend, float64).
    @Test func gradientsAreTheRepeatedHeadsSummed() throws {
        for (rank, heads, l, s) in [(4, 3, 4, 5), (3, 5, 7, 11)] {
            let (q, k, v) = try inputs(rank: rank, heads: heads, l: l, s: s, dtype: .float64)
            let (kr, vr) = (try repeatHeads(k, heads), try repeatHeads(v, heads))
            try withSDPBackends([.math]) {
                let bias = causalLowerRight(l, s)
                let f = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias)
                let fr = try scaledDotProductAttentionWithLogSumExp(query: q, key: kr, value: vr, attnMask: bias)
                let dO = try randn(f.output.shape, seed: 14, dtype: .float64)
                let g = try scaledDotProductAttentionBackward(
                    gradOutput: dO, query: q, key: k, value: v, output: f.output, logSumExp: f.logSumExp, attnMask: bias)
                let gr = try scaledDotProductAttentionBackward(
                    gradOutput: dO, query: q, key: kr, value: vr, output: fr.output, logSumExp: fr.logSumExp, attnMask: bias)
                let tolerance = Tolerance(atol: 1e-12, rtol: 1e-12)
                let label = "rank \(rank) H \(heads)"
                expectClose(g.query, gr.query, tolerance, "dQ, \(label)")
                for (name, one, all) in [("dK", g.key, gr.key), ("dV", g.value, gr.value)] {
                    #expect(one.shape == k.shape.dropLast() + [one.shape.last!], "\(name), \(label)")
                    expectClose(one, summedHeadGroups(all, heads), tolerance, "\(name), \(label)")
                }
            }
        }
    }

    @Test func explainAndOtherCounts() throws {
        let q = try randn([1, 6, 3, 8], seed: 1), k = try randn([1, 1, 5, 8], seed: 2), v = try randn([1, 1, 5, 8], seed: 3)
        #expect(try explainSDPA(query: q, key: k, value: v).description == explainSDPA(query: q, key: k, value: v, enableGQA: true).description)
        // Two key/value heads for six query heads need enableGQA, as in PyTorch.
        let k2 = try randn([1, 2, 5, 8], seed: 2), v2 = try randn([1, 2, 5, 8], seed: 3)
        let e = expectSDPAError(mentions: ["query has 6 heads", "key/value have 2", "one head", "enableGQA"]) {
            try scaledDotProductAttention(query: q, key: k2, value: v2)
        }
        #expect(e == .headCountMismatch(query: q.shape, key: k2.shape, enableGQA: false))
        // One key head with six value heads broadcasts too (PyTorch's matmul rules): the key head shared by all six.
        let v6 = try randn([1, 6, 5, 8], seed: 4)
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v6),
                        try scaledDotProductAttention(query: q, key: try k.broadcast(to: [1, 6, 5, 8]).contiguous(), value: v6),
                        "one key head, six value heads")
        // A batch of 1 broadcasts, as in PyTorch; where neither batch is 1 the error names both.
        let qb = try randn([2, 6, 3, 8], seed: 5), kb = try randn([1, 6, 5, 8], seed: 6), vb = try randn([1, 6, 5, 8], seed: 7)
        let k3 = try randn([3, 6, 5, 8], seed: 8)
        #expect(throws: SDPAError.shapeMismatch(argument: "key", shape: [3, 6, 5, 8], other: "query", otherShape: [2, 6, 3, 8],
                                                reason: "the batch dimensions at dimension -4 do not broadcast: 3 against 2 (each must be 1 or equal)")) {
            try scaledDotProductAttention(query: qb, key: k3, value: k3)
        }
        let broadcast = try scaledDotProductAttention(query: qb, key: kb, value: vb)
        expectIdentical(broadcast, try scaledDotProductAttention(query: qb, key: Tensor.concatenated([kb, kb], along: 0),
                                                                 value: Tensor.concatenated([vb, vb], along: 0)), "batch of 1 broadcast")
        let expanded = try scaledDotProductAttention(query: qb, key: kb.broadcast(to: [2, 6, 5, 8]), value: vb.broadcast(to: [2, 6, 5, 8]))
        let copied = try scaledDotProductAttention(query: qb, key: Tensor.concatenated([kb, kb], along: 0), value: Tensor.concatenated([vb, vb], along: 0))
        expectIdentical(expanded, copied, "batch expanded by a view")
        // The sizes-only check (explainSDPA(shape:), `sdpa explain --shape`) takes the same rule.
        let one = AttentionShape(batch: 1, queryHeads: 6, keyValueHeads: 1, queryLength: 3, keyLength: 5, headDim: 8, valueHeadDim: 8)
        try one.validate(dtype: .float32, enableGQA: false)
        #expect(try explainSDPA(shape: one).backend != nil)
        var two = one
        two.keyValueHeads = 2
        #expect(throws: SDPAError.headCountMismatch(query: [1, 6, 3, 8], key: [1, 2, 5, 8], enableGQA: false)) {
            try two.validate(dtype: .float32, enableGQA: false)
        }
        // Zero query heads against one key/value head: an empty output, as broadcasting 1 to 0 gives.
        let empty = try scaledDotProductAttention(query: try randn([1, 0, 3, 8], seed: 1), key: k, value: v)
        #expect(empty.shape == [1, 0, 3, 8])
    }
}
