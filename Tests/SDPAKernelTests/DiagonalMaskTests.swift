@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// ``CausalBias`` with its tiles masked by its own tile code (`apply`), as any bias defined outside the
/// package is: the reference for the diagonal read in the `Q·Kᵀ` registers.
private struct TileCodeCausal: FusedAttnBias {
    let causal: CausalBias
    var materializedShape: [Int] { causal.materializedShape }
    static var modifiesScores: Bool { false }
    func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool {
        causal.isVisible(batch: batch, head: head, query: query, key: key)
    }
    func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        causal.tileVisibility(batch: batch, head: head, queries: queries, keys: keys)
    }
    func apply(toScores scores: UnsafeMutablePointer<Float>, rowStride: Int, batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) {
        causal.apply(toScores: scores, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
    }
}

struct DiagonalCase: Sendable, CustomTestStringConvertible {
    var heads = 2
    var group = 1
    var L: Int
    var S: Int
    var E: Int
    var variant: CausalVariant
    var dtype: DType
    var testDescription: String { "H=\(heads)/\(heads / group) L=\(L) S=\(S) E=\(E) \(variant) \(dtype)" }
}

@Suite("Causal diagonal tiles masked in the Q·Kᵀ registers")
struct DiagonalMaskTests {
    static let cases: [DiagonalCase] = [DType.float32, .bfloat16, .float16].flatMap { dtype in
        [DiagonalCase(L: 150, S: 70, E: 24, variant: .upperLeft, dtype: dtype),
         DiagonalCase(L: 150, S: 70, E: 24, variant: .lowerRight, dtype: dtype),  // rows 0–79 see no key
         DiagonalCase(L: 70, S: 150, E: 24, variant: .lowerRight, dtype: dtype),
         DiagonalCase(heads: 4, group: 2, L: 300, S: 300, E: 64, variant: .upperLeft, dtype: dtype),
         DiagonalCase(L: 200, S: 333, E: 128, variant: .lowerRight, dtype: dtype),
         DiagonalCase(L: 97, S: 131, E: 7, variant: .upperLeft, dtype: dtype)]
    }

    @Test("forward: the bits, and the log-sum-exp's, of the bias's own tile code", arguments: KernelFamily.available, cases)
    func forward(_ family: KernelFamily, _ c: DiagonalCase) throws {
        let (q, k, v) = try randomAttentionInputs(2, c.heads, c.L, c.S, c.E, hkv: c.heads / c.group, seed: UInt64(c.L * 7 + c.S), dtype: c.dtype)
        let causal = CausalBias(variant: c.variant, seqLenQ: c.L, seqLenKV: c.S)
        let gqa = c.group > 1
        let (inRegisters, byTileCode) = try family.run {
            try withSDPThreadsAndFused {
                (try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: causal, enableGQA: gqa),
                 try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: TileCodeCausal(causal: causal), enableGQA: gqa))
            }
        }
        expectIdentical(inRegisters.0, byTileCode.0, "\(family.name) \(c.testDescription): output")
        expectIdentical(inRegisters.1, byTileCode.1, "\(family.name) \(c.testDescription): log-sum-exp")
        #expect(try explainSDPA(query: q, key: k, value: v, attnMask: causal, enableGQA: gqa).backend == .fused)
    }

    @Test("backward: the gradients' bits", arguments: KernelFamily.available, cases.filter { $0.dtype != .float16 })
    func backward(_ family: KernelFamily, _ c: DiagonalCase) throws {
        let (q, k, v) = try randomAttentionInputs(1, c.heads, c.L, c.S, c.E, hkv: c.heads / c.group, seed: UInt64(c.L + c.S), dtype: c.dtype)
        let dO = try randn([1, c.heads, c.L, c.E], seed: 77, dtype: c.dtype)
        let causal = CausalBias(variant: c.variant, seqLenQ: c.L, seqLenKV: c.S)
        let gqa = c.group > 1
        func gradients<Bias: AttnBias>(_ bias: Bias) throws -> AttentionGradients {
            let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, enableGQA: gqa)
            return try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse,
                                                         attnMask: bias, enableGQA: gqa)
        }
        let (inRegisters, byTileCode) = try family.run {
            try withSDPThreadsAndFused { (try gradients(causal), try gradients(TileCodeCausal(causal: causal))) }
        }
        for (name, a, b) in [("query", inRegisters.query, byTileCode.query), ("key", inRegisters.key, byTileCode.key),
                             ("value", inRegisters.value, byTileCode.value)] {
            expectIdentical(a, b, "\(family.name) \(c.testDescription): gradient of \(name)")
        }
    }
}

/// One thread (where `KernelFamily.run` selects the family) on the fused backend.
private func withSDPThreadsAndFused<T>(_ body: () throws -> T) throws -> T {
    try withSDPAThreads(1) { try withSDPBackends([.fused]) { try body() } }
}
