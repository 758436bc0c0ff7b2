import Foundation
import SDPA
import SDPATestSupport
import Testing

@Suite("README examples") struct ReadmeExampleTests {
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

    /// README.md's attention-sinks example, verbatim apart from the `#expect`s (the first example's inputs
    /// before it): a sink only adds to each row's denominator, so against the same call without sinks the
    /// output is scaled by `exp(lse_plain - lse)` and `lse = logaddexp(lse_plain, sink)`.
    @Test func readmeSinks() throws {
        let (B, H, Hkv, L, S, E) = (1, 8, 2, 4, 128, 64)
        let q = try Tensor.randomNormal(shape: [B, H, L, E], seed: 1)
        let k = try Tensor.randomNormal(shape: [B, Hkv, S, E], seed: 2)
        let v = try Tensor.randomNormal(shape: [B, Hkv, S, E], seed: 3)
        let bias = AlibiBias(numHeads: H, seqLenQ: L, seqLenKV: S, causal: .lowerRight)

        let sinks = try Tensor(shape: [H], scalars: [Float](repeating: 0.5, count: H))   // one logit per query head
        let (sunk, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias,
                                                                     enableGQA: true, sinks: sinks)
        print(sunk.shape, lse.shape)   // [1, 8, 4, 64] [1, 8, 4]
        #expect(sunk.shape == [1, 8, 4, 64] && lse.shape == [1, 8, 4])

        let plain = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, enableGQA: true)
        let plainLSE = plain.logSumExp.doubleScalars
        let expectedLSE = plainLSE.map { max($0, 0.5) + log1p(exp(-abs($0 - 0.5))) }
        expectClose(lse.doubleScalars, expectedLSE, .logSumExp, "log-sum-exp")
        let lseValues = lse.doubleScalars
        let expected = plain.output.doubleScalars.enumerated().map { n, x in x * exp(plainLSE[n / E] - lseValues[n / E]) }
        expectClose(sunk, expected, .float32, "output")
        // The sink takes weight from every row.
        #expect(zip(lseValues, plainLSE).allSatisfy { $0 > $1 })

        let dOut = try Tensor.randomNormal(shape: sunk.shape, seed: 4)   // dL/doutput
        let grads = try scaledDotProductAttentionBackward(gradOutput: dOut, query: q, key: k, value: v, output: sunk,
                                                          logSumExp: lse, attnMask: bias, enableGQA: true, sinks: sinks)
        print(grads.sinks!.shape)   // [8]: dL/dsinks, one per query head
        #expect(grads.sinks?.shape == [8] && grads.sinks?.dtype == .float32)
        // dL/dsinks[h] = −Σ_i p_sink · rowsum(dO ∘ O), p_sink = exp(0.5 − lse): the definition, summed here.
        let (o, d) = (sunk.doubleScalars, dOut.doubleScalars)
        let perHead = (0..<H).map { h in
            -(0..<L).reduce(0.0) { sum, i in
                let row = h * L + i
                return sum + exp(0.5 - lseValues[row]) * (0..<E).reduce(0.0) { $0 + o[row * E + $1] * d[row * E + $1] }
            }
        }
        expectClose(grads.sinks!, perHead, Tolerance(atol: 1e-6, rtol: 1e-5), "dL/dsinks")
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

    /// README.md's generation loop over a paged KV cache, verbatim apart from the `#expect`s.
    @Test func readmeGenerationLoop() throws {
        let (H, Hkv, E) = (32, 8, 128)
        let cache = try PagedKVCache(blockCount: 512, blockSize: 128, keyValueHeads: Hkv, headDim: E)
        let sequence = cache.addSequence()

        // Prefill: the prompt's keys and values, [Hkv, n, E], then its queries, [H, n, E], causally.
        let prompt = 40
        try cache.append(to: sequence, key: try Tensor.randomNormal(shape: [Hkv, prompt, E], seed: 1),
                         value: try Tensor.randomNormal(shape: [Hkv, prompt, E], seed: 2))
        let queries = try Tensor.randomNormal(shape: [H, prompt, E], seed: 3)
        var out = try cache.attention([PagedAttentionQuery(sequence: sequence, query: queries)])[0]   // [H, n, E]
        #expect(out.shape == [32, 40, 128])

        // Decode: one token per step (a model would compute it from `out`).
        for step in 0..<8 {
            let seed = UInt64(10 + 3 * step)
            try cache.append(to: sequence, key: try Tensor.randomNormal(shape: [Hkv, 1, E], seed: seed),
                             value: try Tensor.randomNormal(shape: [Hkv, 1, E], seed: seed + 1))
            let query = try Tensor.randomNormal(shape: [H, 1, E], seed: seed + 2)
            out = try cache.attention([PagedAttentionQuery(sequence: sequence, query: query)])[0]
        }
        print(try cache.length(of: sequence), out.shape)   // 48 [32, 1, 128]
        #expect(try cache.length(of: sequence) == 48 && out.shape == [32, 1, 128])
        // The last step is the last row of causal attention over the whole sequence, as contiguous tensors.
        let keys = try Tensor.concatenated([try Tensor.randomNormal(shape: [Hkv, prompt, E], seed: 1)]
            + (0..<8).map { try Tensor.randomNormal(shape: [Hkv, 1, E], seed: UInt64(10 + 3 * $0)) }, along: 1)
        let values = try Tensor.concatenated([try Tensor.randomNormal(shape: [Hkv, prompt, E], seed: 2)]
            + (0..<8).map { try Tensor.randomNormal(shape: [Hkv, 1, E], seed: UInt64(11 + 3 * $0)) }, along: 1)
        let last = try Tensor.randomNormal(shape: [H, 1, E], seed: UInt64(12 + 3 * 7))
        expectIdentical(out, try scaledDotProductAttention(query: last, key: keys, value: values, enableGQA: true))
        try cache.free(sequence)
        #expect(cache.freeBlockCount == 512)
    }
}
