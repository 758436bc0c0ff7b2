@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// Decoding with the head widths of DeepSeek's MLA (E = 576, Ev = 512) and of E = 192 / Ev = 128:
/// the fused kernel against the math backend, contiguous and through the paged cache, on every family.
@Suite("Decoding with wide heads")
struct WideHeadDecodeTests {
    @Test("E = 576 / Ev = 512 and E = 192 / Ev = 128: fused decode, GQA and key splits, as the math backend",
          arguments: KernelFamily.available)
    func wideHeads(_ family: KernelFamily) throws {
        // S = 1500 splits across items; 16 query heads over 1 and 4 key/value heads (MLA shares one).
        for (E, Ev, hkv) in [(576, 512, 1), (192, 128, 4)] {
            for dtype in [DType.float32, .bfloat16] {
                let (q32, k32, v32) = try randomAttentionInputs(1, 16, 1, 1500, E, ev: Ev, hkv: hkv, seed: 41)
                let (q, k, v) = try (q32.converted(to: dtype), k32.converted(to: dtype), v32.converted(to: dtype))
                let label = "\(family.name) E=\(E) Ev=\(Ev) Hkv=\(hkv) \(dtype)"
                let fused = try family.run {
                    try withSDPAThreads(1) {
                        try withSDPBackends([.fused]) {
                            try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, enableGQA: true)
                        }
                    }
                }
                let math = try withSDPBackends([.math]) {
                    try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, enableGQA: true)
                }
                #expect(fused.output.shape == [1, 16, 1, Ev], "\(label)")
                var tolerance = dtype == .float32 ? Tolerance.float32 : Tolerance.float32.bothRounded(to: dtype)
                if dtype == .bfloat16, try family.run({ FusedKernelInstructionSet.multipliesBFloat16Pairs }) {
                    tolerance = tolerance.withBFloat16Probabilities(maxAbsValue: v.doubleScalars.map(abs).max() ?? 0)
                }
                expectClose(fused.output, math.output, tolerance, "\(label) output", dtype: dtype)
                expectClose(fused.logSumExp, math.logSumExp, .logSumExp, "\(label) log-sum-exp")
            }
        }
    }

    @Test("E = 576 / Ev = 512 through the paged cache: bit for bit the contiguous call", arguments: [DType.float32, .bfloat16])
    func wideHeadsPaged(_ dtype: DType) throws {
        let (E, Ev, S) = (576, 512, 700)
        let cache = try PagedKVCache(blockCount: 12, blockSize: 64, keyValueHeads: 1, headDim: E, valueHeadDim: Ev, dtype: dtype)
        let sequence = cache.addSequence()
        let (k, v) = (try kvRows(1, S, E, seed: 5, dtype: dtype), try kvRows(1, S, Ev, seed: 6, dtype: dtype))
        try cache.append(to: sequence, key: k, value: v)
        let q = try randn([16, 1, E], seed: 7, dtype: dtype)
        let paged = try cache.attention([PagedAttentionQuery(sequence: sequence, query: q)])[0]
        let contiguous = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(1, S), enableGQA: true)
        #expect(paged.shape == [16, 1, Ev])
        expectIdentical(paged, contiguous, "paged E=\(E) Ev=\(Ev) \(dtype)")
    }
}
