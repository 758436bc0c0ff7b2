@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// The fused kernels' results and scratch are allocated without zero-filling: every element must be
/// written before it is read. With that memory filled with NaN bytes instead of whatever the system
/// gives (often zeros, which would hide a missed write), every result must keep its bits.
@Suite("Memory not zero-filled")
struct UninitializedMemoryTests {
    /// Prefill with cut and grouped tiles, partial and skipped tiles, split keys (many threads), GQA
    /// decoding, a batch entry without keys, half precision, a score-changing bias, and packed sequences.
    static let cases = [
        FusedCase(batch: 16, heads: 4, L: 64, S: 64, E: 64, Ev: 64, bias: "causalUpperLeft"),
        FusedCase(batch: 2, heads: 4, group: 2, L: 300, S: 700, E: 40, Ev: 24, bias: "windowMultiTile"),
        FusedCase(batch: 2, heads: 8, group: 4, L: 1, S: 3000, E: 128, Ev: 128, dtype: .bfloat16, bias: "none"),
        FusedCase(batch: 3, heads: 2, L: 50, S: 900, E: 64, Ev: 64, bias: "keyPadding"),
        FusedCase(batch: 2, heads: 3, L: 61, S: 130, E: 17, Ev: 33, dtype: .float16, bias: "alibiWindowCausal"),
        FusedCase(batch: 1, heads: 2, L: 200, S: 200, E: 32, Ev: 32, bias: "softCap"),
        // Packed sequences run as segments, each writing its rows of the one result.
        FusedCase(batch: 2, heads: 4, group: 2, L: 700, S: 650, E: 32, Ev: 24, bias: "packedShortUpperLeft"),
    ]

    @Test("forward results and log-sum-exp keep their bits at 1, 2 and 64 threads", arguments: cases)
    func forward(_ c: FusedCase) throws {
        let (q, k, v) = try c.inputs()
        for threads in [1, 2, 64] {
            let plain = try withSDPBackends([.fused]) { try withSDPAThreads(threads) { try c.run(q, k, v) } }
            let filled = try _fillingUninitializedMemory(with: 0xFF) {
                try withSDPBackends([.fused]) { try withSDPAThreads(threads) { try c.run(q, k, v) } }
            }
            expectIdentical(filled.output, plain.output, "\(c.testDescription), \(threads) threads: output")
            expectIdentical(filled.logSumExp, plain.logSumExp, "\(c.testDescription), \(threads) threads: log-sum-exp")
        }
    }

    @Test("backward gradients keep their bits at 1 and 64 threads", arguments: [cases[0], cases[1], cases[4], cases[6]])
    func backward(_ c: FusedCase) throws {
        let (q, k, v) = try c.inputs()
        let dO = try randn([c.batch, c.heads, c.L, c.Ev], seed: 77, dtype: c.dtype)
        for threads in [1, 64] {
            let run = {
                try withSDPBackends([.fused]) {
                    try withSDPAThreads(threads) {
                        let forward = try c.run(q, k, v)
                        return try c.backward(q, k, v, dO, output: forward.output, logSumExp: forward.logSumExp)
                    }
                }
            }
            let plain = try run(), filled = try _fillingUninitializedMemory(with: 0xFF, during: run)
            expectIdentical(filled.query, plain.query, "\(c.testDescription), \(threads) threads: dQ")
            expectIdentical(filled.key, plain.key, "\(c.testDescription), \(threads) threads: dK")
            expectIdentical(filled.value, plain.value, "\(c.testDescription), \(threads) threads: dV")
        }
    }

    @Test("attention over a paged cache keeps its bits")
    func paged() throws {
        let (heads, E) = (2, 16)
        let cache = try PagedKVCache(blockCount: 40, blockSize: 16, keyValueHeads: heads, headDim: E)
        var queries = [PagedAttentionQuery]()
        for (n, length) in [1, 37, 300, 0].enumerated() {
            let s = cache.addSequence()
            if length > 0 {
                try cache.append(to: s, key: try randn([heads, length, E], seed: UInt64(10 + n)),
                                 value: try randn([heads, length, E], seed: UInt64(20 + n)))
            }
            queries.append(PagedAttentionQuery(sequence: s, query: try randn([4, n == 2 ? 5 : 1, E], seed: UInt64(30 + n))))
        }
        let plain = try cache.attentionWithLogSumExp(queries)
        let filled = try _fillingUninitializedMemory(with: 0xFF) { try cache.attentionWithLogSumExp(queries) }
        for n in queries.indices {
            expectIdentical(filled[n].output, plain[n].output, "sequence \(n): output")
            expectIdentical(filled[n].logSumExp, plain[n].logSumExp, "sequence \(n): log-sum-exp")
        }
    }

    @Test("an allocation record holds inside a fill's scope and around one (one task-local carries both)")
    func recordAndFillNest() throws {
        let (inner, bytes) = try _largestAllocation {
            try _fillingUninitializedMemory(with: 0xFF) { try Tensor(zeros: [1000], dtype: .float32) }
        }
        #expect(bytes == 4000 && inner.count == 1000)
        let outer = try _fillingUninitializedMemory(with: 0xFF) {
            try _largestAllocation { try Tensor(zeros: [3, 500], dtype: .float64) }.bytes
        }
        #expect(outer == 12000)
    }
}
