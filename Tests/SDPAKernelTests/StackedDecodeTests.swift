@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

struct StackedDecodeCase: Sendable, CustomTestStringConvertible {
    var L: Int
    var S: Int
    var E: Int
    var dtype: DType
    var bias: String
    var testDescription: String { "L=\(L) S=\(S) E=\(E) \(dtype) \(bias)" }
}

/// Decoding stacks a GQA group's query heads into one tile (`_decodeKeyTile`): each head must get the
/// bits it gets alone, whether the heads share one softmax step (no bias work on the tile) or take one
/// each (bias work, a partial tile).
@Suite("A GQA group's stacked decoding rows give each head's own bits")
struct StackedDecodeTests {
    static let cases: [StackedDecodeCase] = [DType.float32, .bfloat16, .float16].flatMap { dtype in
        [StackedDecodeCase(L: 1, S: 300, E: 64, dtype: dtype, bias: "none"),
         StackedDecodeCase(L: 1, S: 130, E: 36, dtype: dtype, bias: "causal"),
         StackedDecodeCase(L: 1, S: 200, E: 128, dtype: dtype, bias: "alibi"),
         StackedDecodeCase(L: 3, S: 150, E: 20, dtype: dtype, bias: "causal")]
    }

    @Test("stacked equals head by head", arguments: KernelFamily.available, cases)
    func stackedEqualsHeadByHead(_ family: KernelFamily, _ c: StackedDecodeCase) throws {
        let (H, Hkv) = (8, 2)
        for heads in [H, 1] {
            let shape = AttentionShape(batch: 1, queryHeads: heads, keyValueHeads: heads == 1 ? 1 : Hkv, queryLength: c.L, keyLength: c.S,
                                       headDim: c.E, valueHeadDim: c.E)
            #expect(!_TileRefinement(shape).splitsKeys, "\(c.testDescription): \(heads) heads split their keys, whose merge order differs")
        }
        let (q, k, v) = try randomAttentionInputs(1, H, c.L, c.S, c.E, hkv: Hkv, seed: UInt64(c.S + c.E), dtype: c.dtype)
        func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, gqa: Bool) throws -> Tensor {
            switch c.bias {
            case "causal": return try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(c.L, c.S), enableGQA: gqa)
            case "alibi":
                // The same slope for every head, so a head alone sees the bias it sees in the group.
                let alibi = AlibiBias(slopes: [Float](repeating: 0.125, count: q.shape[1]), seqLenQ: c.L, seqLenKV: c.S)
                return try scaledDotProductAttention(query: q, key: k, value: v, attnMask: alibi, enableGQA: gqa)
            default: return try scaledDotProductAttention(query: q, key: k, value: v, enableGQA: gqa)
            }
        }
        try family.run {
            try withSDPAThreads(1) {
                let stacked = try attention(q, k, v, gqa: true)
                for h in 0..<H {
                    let kv = h / (H / Hkv)
                    let alone = try attention(try q.sliced(h..<h + 1, along: 1).contiguous(), try k.sliced(kv..<kv + 1, along: 1).contiguous(),
                                              try v.sliced(kv..<kv + 1, along: 1).contiguous(), gqa: false)
                    expectIdentical(try stacked.sliced(h..<h + 1, along: 1).contiguous(), alone, "\(family.name) \(c.testDescription), head \(h)")
                }
            }
        }
    }
}
