import SDPA
import SDPATestSupport
import Testing

/// README.md's library example, verbatim apart from the `#expect`: if it stops compiling or
/// changes its output, the README is wrong.
@Test func readmeExample() throws {
    let (B, H, Hkv, L, S, E) = (1, 8, 2, 4, 128, 64)
    let q = try Tensor.randomNormal(shape: [B, H, L, E], seed: 1)
    let k = try Tensor.randomNormal(shape: [B, Hkv, S, E], seed: 2)
    let v = try Tensor.randomNormal(shape: [B, Hkv, S, E], seed: 3)
    let bias = AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S, causal: .lowerRight)
    let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: true)
    #expect(out.shape == [1, 8, 4, 64])
}

/// The README's packed-sequence example: pack, attend, unpack, and agree with running each sequence alone.
@Test func readmePackedSequences() throws {
    let lengths = [5, 0, 9, 3]
    let queries = try lengths.enumerated().map { try Tensor.randomNormal(shape: [$0.element, 2, 16], seed: UInt64($0.offset)) }
    let keys = try lengths.enumerated().map { try Tensor.randomNormal(shape: [$0.element, 2, 16], seed: UInt64(10 + $0.offset)) }
    let values = try lengths.enumerated().map { try Tensor.randomNormal(shape: [$0.element, 2, 16], seed: UInt64(20 + $0.offset)) }

    let (q, bias) = try BlockDiagonalBias.packing(queries: queries, causal: .upperLeft)
    let k = try BlockDiagonalBias.pack(keys), v = try BlockDiagonalBias.pack(values)
    let outputs = try bias.unpack(scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias))

    #expect(outputs.map(\.shape) == lengths.map { [$0, 2, 16] })
    for (n, length) in lengths.enumerated() where length > 0 {
        // One sequence alone, as [1, H, L, E] views of its [L, H, E] tensors.
        func bhle(_ t: Tensor) throws -> Tensor { try t.reshaped([1] + t.shape).transposed(1, 2) }
        let alone = try scaledDotProductAttention(
            query: bhle(queries[n]), key: bhle(keys[n]), value: bhle(values[n]), isCausal: true)
        let expected = try alone.transposed(1, 2).reshaped([length, 2, 16])
        expectClose(outputs[n], expected, .float32, "sequence \(n)")
    }
}
