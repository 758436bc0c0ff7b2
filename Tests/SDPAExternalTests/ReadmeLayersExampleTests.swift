import SDPA
import Testing

@Suite("README layers example") struct ReadmeLayersExampleTests {
    /// README.md's attention-block example, verbatim apart from the `#expect`s.
    @Test func readmeAttentionBlockExample() throws {
        let block = try MultiHeadAttention.random(embedDim: 64, heads: 8, keyValueHeads: 2, dropoutP: 0.1, seed: 1)
        let x = try Tensor.randomNormal(shape: [2, 10, 64], seed: 2)                                  // [B, L, D]
        let y = try block(x, attnMask: KeyPaddingBias(validKeyLengths: [10, 6], seqLenKV: 10))        // [2, 10, 64]
        let z = try block(x, isCausal: true, training: true, dropoutSeed: 7)                           // dropout while training
        let memory = try Tensor.randomNormal(shape: [2, 12, 64], seed: 3)                             // [B, S, D]
        let c = try block(query: x, key: memory, value: memory)                                        // [2, 10, 64]
        let w = try block.attentionWeights(query: x, key: memory)                                      // [2, 10, 12], need_weights
        #expect(y.shape == [2, 10, 64] && z.shape == [2, 10, 64] && c.shape == [2, 10, 64] && w.shape == [2, 10, 12])
        #expect(block.dropoutP == 0.1 && block.headDim == 8)
    }
}
