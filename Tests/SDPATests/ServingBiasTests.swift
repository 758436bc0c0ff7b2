import SDPA
import SDPATestSupport
import Testing

/// A serving bias with its definition written out independently, one position at a time.
struct ServingBiasCase: Sendable, CustomTestStringConvertible {
    let label: String
    let batch: Int, L: Int, S: Int
    let bias: any FusedAttnBias
    let visible: @Sendable (_ batch: Int, _ query: Int, _ key: Int) -> Bool

    var testDescription: String { "\(label) B\(batch) L\(L) S\(S)" }

    static func chunked(_ L: Int, _ S: Int, _ chunk: Int, _ alignment: CausalVariant) -> ServingBiasCase {
        let off = alignment == .upperLeft ? 0 : S - L
        return ServingBiasCase(label: "chunked \(chunk) \(alignment)", batch: 1, L: L, S: S,
                               bias: ChunkedCausalBias(seqLenQ: L, seqLenKV: S, chunkSize: chunk, alignment: alignment)) { _, i, j in
            let d = i + off
            return d >= 0 && j <= d && j / chunk == d / chunk
        }
    }

    static func prefix(_ L: Int, _ S: Int, _ prefixes: [Int], _ alignment: CausalVariant) -> ServingBiasCase {
        let off = alignment == .upperLeft ? 0 : S - L
        return ServingBiasCase(label: "prefix-LM \(prefixes) \(alignment)", batch: prefixes.count, L: L, S: S,
                               bias: PrefixLMBias(prefixLengths: prefixes, seqLenQ: L, seqLenKV: S, alignment: alignment)) { b, i, j in
            j < prefixes[b] || j <= i + off
        }
    }

    static func sinkTokens(_ L: Int, _ S: Int, _ n: Int, _ window: Int, _ alignment: CausalVariant) -> ServingBiasCase {
        let off = alignment == .upperLeft ? 0 : S - L
        return ServingBiasCase(label: "sink tokens \(n) window \(window) \(alignment)", batch: 1, L: L, S: S,
                               bias: SinkTokensBias(sinkTokens: n, window: window, seqLenQ: L, seqLenKV: S, alignment: alignment)) { _, i, j in
            let d = i + off
            return j <= d && (j < n || j >= d - window)
        }
    }

    static let all: [ServingBiasCase] = [
        chunked(13, 13, 4, .upperLeft), chunked(9, 21, 5, .lowerRight), chunked(21, 9, 4, .lowerRight), chunked(12, 20, 6, .upperLeft),
        chunked(7, 10, 1, .lowerRight), chunked(8, 15, 100, .lowerRight), chunked(20, 7, 3, .upperLeft),
        prefix(12, 12, [0, 5, 12], .lowerRight), prefix(6, 14, [3, 9], .lowerRight), prefix(10, 7, [4, 0], .upperLeft),
        prefix(13, 6, [2, 6], .lowerRight),
        sinkTokens(11, 11, 2, 1, .lowerRight), sinkTokens(8, 14, 0, 3, .lowerRight), sinkTokens(12, 9, 4, 0, .upperLeft),
        sinkTokens(10, 16, 3, 50, .lowerRight), sinkTokens(12, 7, 1, 2, .lowerRight), sinkTokens(16, 16, 6, 2, .upperLeft),
        sinkTokens(14, 14, 0, 0, .lowerRight),
    ]
}

@Suite("Serving biases: chunked causal, prefix-LM, sink tokens")
struct ServingBiasTests {
    @Test("isVisible, apply and the materialized mask are the definition", arguments: ServingBiasCase.all)
    func elementwise(_ c: ServingBiasCase) throws {
        func check<B: FusedAttnBias>(_ bias: B) throws {
            let mask = try bias.materialize(device: .cpu)
            #expect(mask.dtype == .bool)
            let bools = mask.bools
            let perBatch = mask.shape.count == 4 && mask.shape[0] > 1
            var scores = [Float](repeating: 0, count: c.L * c.S)
            for b in 0..<c.batch {
                scores.withUnsafeMutableBufferPointer {
                    $0.update(repeating: 1)
                    bias.apply(toScores: $0.baseAddress!, rowStride: c.S, batch: b, head: 0, queries: 0..<c.L, keys: 0..<c.S)
                }
                for i in 0..<c.L {
                    for j in 0..<c.S {
                        let expected = c.visible(b, i, j)
                        #expect(bias.isVisible(batch: b, head: 0, query: i, key: j) == expected, "\(c) isVisible b\(b) i\(i) j\(j)")
                        #expect((scores[i * c.S + j] == 1) == expected, "\(c) apply b\(b) i\(i) j\(j)")
                        #expect(bools[((perBatch ? b : 0) * c.L + i) * c.S + j] == expected, "\(c) materialized b\(b) i\(i) j\(j)")
                    }
                }
            }
        }
        try check(c.bias)
    }

    @Test("tileVisibility is exact both ways: empty exactly when no position is visible, full exactly when all are",
          arguments: ServingBiasCase.all)
    func tilesAreExact(_ c: ServingBiasCase) {
        for b in 0..<c.batch {
            for q0 in 0..<c.L {
                for q1 in (q0 + 1)...Swift.min(c.L, q0 + 7) {
                    for k0 in 0..<c.S {
                        for k1 in (k0 + 1)...Swift.min(c.S, k0 + 9) {
                            let seen = (q0..<q1).flatMap { i in (k0..<k1).map { c.visible(b, i, $0) } }
                            let expected: TileVisibility = seen.allSatisfy { !$0 } ? .empty : seen.allSatisfy { $0 } ? .full : .partial
                            let answer = c.bias.tileVisibility(batch: b, head: 0, queries: q0..<q1, keys: k0..<k1)
                            #expect(answer == expected, "\(c) b\(b) queries \(q0)..<\(q1) keys \(k0)..<\(k1)")
                        }
                    }
                }
            }
        }
        #expect(c.bias.tileVisibility(batch: 0, head: 0, queries: 0..<0, keys: 0..<c.S) == .empty)
        #expect(c.bias.tileVisibility(batch: 0, head: 0, queries: 0..<c.L, keys: 3..<3) == .empty)
    }

    @Test("fused equals math, alone and composed, across several tiles", arguments: [
        FusedCase(L: 300, S: 700, bias: "chunkedCausal"), FusedCase(batch: 3, group: 2, L: 257, S: 389, bias: "prefixLM"),
        FusedCase(L: 200, S: 1030, E: 72, Ev: 40, bias: "sinkTokens"), FusedCase(L: 1, S: 1030, bias: "sinkTokens"),
        FusedCase(L: 129, S: 700, dtype: .bfloat16, bias: "chunkedCausal"),
    ])
    func fusedMatchesMath(_ c: FusedCase) throws {
        try c.expectFusedMatchesMath()
    }

    @Test("composed with other biases, fused equals math")
    func composed() throws {
        let (L, S) = (150, 400)
        let (q, k, v) = try randomAttentionInputs(2, 4, L, S, 16, hkv: 2, seed: 23)
        let biases: [any FusedAttnBias] = [
            ChunkedCausalBias(seqLenQ: L, seqLenKV: S, chunkSize: 64).combined(with: AlibiBias(numHeads: 4, seqLenQ: L, seqLenKV: S)),
            PrefixLMBias(prefixLengths: [100, 300], seqLenQ: L, seqLenKV: S).combined(with: KeyPaddingBias(validKeyLengths: [350, 200], seqLenKV: S)),
            SinkTokensBias(sinkTokens: 4, window: 64, seqLenQ: L, seqLenKV: S).combined(with: SoftCapBias(cap: 2)),
            SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 40).combined(with: SinkTokensBias(sinkTokens: 8, window: 200, seqLenQ: L, seqLenKV: S)),
        ]
        for bias in biases {
            let fused = try withSDPBackends([.fused]) { try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: true) }
            let math = try withSDPBackends([.math]) { try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: true) }
            expectClose(fused, math, .float32, "\(type(of: bias))")
        }
    }

    @Test("bad parameters are typed errors naming the parameter")
    func badParameters() throws {
        let (q, k, v) = try randomAttentionInputs(2, 2, 4, 6, 8, seed: 29)
        func run(_ bias: some FusedAttnBias) throws { _ = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias) }
        #expect(throws: SDPAError.invalidArgument(argument: "ChunkedCausalBias.chunkSize", value: "0", reason: "a chunk holds at least one position")) {
            try run(ChunkedCausalBias(seqLenQ: 4, seqLenKV: 6, chunkSize: 0))
        }
        #expect(throws: SDPAError.invalidArgument(argument: "ChunkedCausalBias.seqLenKV", value: "-6", reason: "a sequence length cannot be negative")) {
            _ = try ChunkedCausalBias(seqLenQ: 4, seqLenKV: -6, chunkSize: 2).materialize(device: .cpu)
        }
        #expect(throws: SDPAError.biasMismatch(bias: "ChunkedCausalBias", parameter: "seqLenKV", expected: 6, actual: 7,
                                               inputs: "key length S; B=2 H=2 Hkv=2 L=4 S=6 E=8 Ev=8")) {
            try run(ChunkedCausalBias(seqLenQ: 4, seqLenKV: 7, chunkSize: 2))
        }
        #expect(throws: SDPAError.biasMismatch(bias: "PrefixLMBias", parameter: "prefixLengths.count", expected: 2, actual: 3,
                                               inputs: "one prefix length per batch entry; B=2 H=2 Hkv=2 L=4 S=6 E=8 Ev=8")) {
            try run(PrefixLMBias(prefixLengths: [1, 2, 3], seqLenQ: 4, seqLenKV: 6))
        }
        #expect(throws: SDPAError.invalidArgument(argument: "PrefixLMBias.prefixLengths[1]", value: "7", reason: "a prefix length must be in 0...6 (seqLenKV)")) {
            try run(PrefixLMBias(prefixLengths: [1, 7], seqLenQ: 4, seqLenKV: 6))
        }
        #expect(throws: SDPAError.invalidArgument(argument: "PrefixLMBias.prefixLengths[0]", value: "-1", reason: "a prefix length must be in 0...6 (seqLenKV)")) {
            _ = try PrefixLMBias(prefixLengths: [-1], seqLenQ: 4, seqLenKV: 6).materialize(device: .cpu)
        }
        #expect(throws: SDPAError.invalidArgument(argument: "SinkTokensBias.sinkTokens", value: "-1", reason: "a count of sink tokens cannot be negative")) {
            try run(SinkTokensBias(sinkTokens: -1, window: 2, seqLenQ: 4, seqLenKV: 6))
        }
        #expect(throws: SDPAError.invalidArgument(argument: "SinkTokensBias.window", value: "-2", reason: "a window size cannot be negative")) {
            try run(SinkTokensBias(sinkTokens: 1, window: -2, seqLenQ: 4, seqLenKV: 6))
        }
        #expect(throws: SDPAError.biasMismatch(bias: "SinkTokensBias", parameter: "seqLenQ", expected: 4, actual: 5,
                                               inputs: "query length L; B=2 H=2 Hkv=2 L=4 S=6 E=8 Ev=8")) {
            try run(SinkTokensBias(sinkTokens: 1, window: 2, seqLenQ: 5, seqLenKV: 6))
        }
        // A mask too large to count is a typed error, not a trap.
        #expect(throws: SDPAError.self) { _ = try ChunkedCausalBias(seqLenQ: Int.max / 2, seqLenKV: 4, chunkSize: 1).materialize(device: .cpu) }
        #expect(throws: SDPAError.self) { _ = try PrefixLMBias(prefixLengths: [0, 0, 0], seqLenQ: Int.max / 4, seqLenKV: 4).materialize(device: .cpu) }
    }

    @Test("with the whole sequence in one chunk, chunked causal is causal; with no prefix, prefix-LM is causal; sink tokens over the whole past too")
    func degenerateFormsAreCausal() throws {
        let (q, k, v) = try randomAttentionInputs(1, 2, 37, 90, 16, seed: 31)
        let causal = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(37, 90))
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: ChunkedCausalBias(seqLenQ: 37, seqLenKV: 90, chunkSize: 90)), causal, "one chunk")
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: PrefixLMBias(prefixLengths: [0], seqLenQ: 37, seqLenKV: 90)), causal, "no prefix")
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: SinkTokensBias(sinkTokens: 0, window: 90, seqLenQ: 37, seqLenKV: 90)), causal, "whole window")
    }
}
