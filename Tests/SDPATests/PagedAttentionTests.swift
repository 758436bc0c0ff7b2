import SDPA
import SDPATestSupport
import Testing

/// Sequences of given lengths in a cache, with what they hold as contiguous tensors kept aside.
private struct Served {
    let cache: PagedKVCache
    let ids: [PagedKVCache.SequenceID]
    var keys: [Tensor], values: [Tensor]

    init(lengths: [Int], blockSize: Int, heads: Int = 2, E: Int = 16, Ev: Int = 12, dtype: DType = .float32) throws {
        let blocks = lengths.map { ($0 + 40 + blockSize - 1) / blockSize }.reduce(0, +)
        cache = try PagedKVCache(blockCount: blocks, blockSize: blockSize, keyValueHeads: heads, headDim: E, valueHeadDim: Ev, dtype: dtype)
        var (ids, keys, values) = ([PagedKVCache.SequenceID](), [Tensor](), [Tensor]())
        for (n, length) in lengths.enumerated() {
            let s = cache.addSequence()
            // Appended in uneven chunks, so that they cross blocks mid-chunk.
            var (k, v) = ([Tensor](), [Tensor]())
            var done = 0
            while done < length {
                let count = Swift.min(length - done, [7, 1, 30, 2][done % 4])
                k.append(try kvRows(heads, count, E, seed: UInt64(100 * n + done), dtype: dtype))
                v.append(try kvRows(heads, count, Ev, seed: UInt64(100 * n + done + 50), dtype: dtype))
                try cache.append(to: s, key: k.last!, value: v.last!)
                done += count
            }
            ids.append(s)
            keys.append(try joined(k, heads: heads, width: E, dtype: dtype))
            values.append(try joined(v, heads: heads, width: Ev, dtype: dtype))
        }
        (self.ids, self.keys, self.values) = (ids, keys, values)
    }
}

/// A user's own fused bias: every other key, plus a score tweak.
private struct EvenKeysTilted: FusedAttnBias {
    var seqLenQ: Int, seqLenKV: Int
    var materializedShape: [Int] { [seqLenQ, seqLenKV] }
    func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { key % 2 == 0 || key == seqLenKV - 1 }
    func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T { score + T(head) * 0.25 }
}

@Suite("Paged KV cache: attention over a batch of sequences")
struct PagedAttentionTests {
    @Test("each sequence's result is scaledDotProductAttention on its contiguous keys, bit for bit",
          arguments: [(DType.float32, 128), (.float32, 5), (.bfloat16, 16), (.float16, 64)])
    func matchesContiguous(_ dtype: DType, _ blockSize: Int) throws {
        let served = try Served(lengths: [1, 37, 300, 129, 0, 64], blockSize: blockSize, dtype: dtype)
        let rows = [1, 1, 7, 1, 1, 64]  // decode steps and prefill chunks
        let queries = try rows.enumerated().map { try randn([8, $0.element, 16], seed: UInt64(900 + $0.offset), dtype: dtype) }
        let outputs = try served.cache.attention(zip(served.ids, queries).map { PagedAttentionQuery(sequence: $0, query: $1) })
        for n in rows.indices {
            let (L, S) = (rows[n], served.keys[n].shape[1])
            let expected = try scaledDotProductAttention(
                query: queries[n], key: served.keys[n], value: served.values[n], attnMask: causalLowerRight(L, S), enableGQA: true)
            #expect(outputs[n].shape == [8, L, 12])
            expectIdentical(outputs[n], expected, "sequence \(n) (S = \(S), L = \(L))")
        }
        // The log-sum-exp variant gives the same outputs and scaledDotProductAttentionWithLogSumExp's log-sum-exp.
        let pairs = try served.cache.attentionWithLogSumExp(zip(served.ids, queries).map { PagedAttentionQuery(sequence: $0, query: $1) })
        for n in rows.indices {
            let expected = try scaledDotProductAttentionWithLogSumExp(
                query: queries[n], key: served.keys[n], value: served.values[n],
                attnMask: causalLowerRight(rows[n], served.keys[n].shape[1]), enableGQA: true)
            expectIdentical(pairs[n].output, outputs[n])
            expectIdentical(pairs[n].logSumExp, expected.logSumExp, "log-sum-exp \(n)")
        }
    }

    @Test("a bias per sequence composes with the causal mask, bit for bit")
    func biasesCompose() throws {
        let served = try Served(lengths: [45, 200, 3], blockSize: 16)
        let queries = try [1, 5, 3].enumerated().map { try randn([4, $0.element, 16], seed: UInt64(700 + $0.offset)) }
        let entries = zip(served.ids, queries).map { PagedAttentionQuery(sequence: $0, query: $1) }
        func expectEach<B: FusedAttnBias>(causal: Bool, scale: Float?, _ make: @escaping (Int, Int) -> B) throws {
            let outputs = try served.cache.attention(entries, scale: scale, causal: causal) { make($0.queryLength, $0.keyLength) }
            for n in entries.indices {
                let (L, S) = (queries[n].shape[1], served.keys[n].shape[1])
                let expected = causal
                    ? try scaledDotProductAttention(query: queries[n], key: served.keys[n], value: served.values[n],
                                                    attnMask: causalLowerRight(L, S).combined(with: make(L, S)), scale: scale, enableGQA: true)
                    : try scaledDotProductAttention(query: queries[n], key: served.keys[n], value: served.values[n],
                                                    attnMask: make(L, S), scale: scale, enableGQA: true)
                expectIdentical(outputs[n], expected, "\(B.self) causal \(causal), sequence \(n)")
            }
        }
        try expectEach(causal: true, scale: nil) { L, S in
            AlibiBias(numHeads: 4, seqLenQ: L, seqLenKV: S).combined(with: SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 20))
        }
        try expectEach(causal: true, scale: 0.3) { _, _ in SoftCapBias(cap: 5) }
        try expectEach(causal: false, scale: nil) { L, S in EvenKeysTilted(seqLenQ: L, seqLenKV: S) }
        try expectEach(causal: true, scale: nil) { L, S in SinkTokensBias(sinkTokens: 4, window: 8, seqLenQ: L, seqLenKV: S) }
        // Without a bias and without the causal mask: every key.
        let open = try served.cache.attention(entries, causal: false)
        for n in entries.indices {
            expectIdentical(open[n], try scaledDotProductAttention(query: queries[n], key: served.keys[n], value: served.values[n], enableGQA: true))
        }
    }

    @Test("prefill then decode token by token agrees with causal attention over the whole sequence")
    func generationAgreesWithPrefill() throws {
        let (H, Hkv, E, prompt, steps) = (4, 2, 16, 50, 20)
        let cache = try PagedKVCache(blockCount: 10, blockSize: 8, keyValueHeads: Hkv, headDim: E)
        let s = cache.addSequence()
        let (q, k, v) = try randomAttentionInputs(1, H, prompt + steps, prompt + steps, E, hkv: Hkv, seed: 41)
        func positions(_ t: Tensor, _ range: Range<Int>) throws -> Tensor { try t.sliced(range, along: 2).reshaped([t.shape[1], range.count, E]) }
        try cache.append(to: s, key: positions(k, 0..<prompt), value: positions(v, 0..<prompt))
        var rows = [try cache.attention([PagedAttentionQuery(sequence: s, query: positions(q, 0..<prompt))])[0]]
        for t in prompt..<(prompt + steps) {
            try cache.append(to: s, key: positions(k, t..<(t + 1)), value: positions(v, t..<(t + 1)))
            rows.append(try cache.attention([PagedAttentionQuery(sequence: s, query: positions(q, t..<(t + 1)))])[0])
        }
        let whole = try scaledDotProductAttention(query: q, key: k, value: v, isCausal: true, enableGQA: true)
        expectClose(try Tensor.concatenated(rows, along: 1), try whole.reshaped([H, prompt + steps, E]), .float32, "generated vs one causal pass")
    }

    @Test("sinks join every sequence's softmax, bit for bit the contiguous call with the same sinks", arguments: [DType.float32, .bfloat16])
    func sinksMatchContiguous(_ dtype: DType) throws {
        let served = try Served(lengths: [3, 200, 65], blockSize: 16, dtype: dtype)
        let rows = [1, 1, 5]
        let sinks = try Tensor(shape: [8], scalars: [Float(0.5), -1, 2, -.infinity, 0, 3, -4, 1.25])
        let queries = try rows.enumerated().map { try randn([8, $0.element, 16], seed: UInt64(700 + $0.offset), dtype: dtype) }
        let entries = zip(served.ids, queries).map { PagedAttentionQuery(sequence: $0, query: $1) }
        let paged = try served.cache.attentionWithLogSumExp(entries, sinks: sinks)
        for n in rows.indices {
            let (L, S) = (rows[n], served.keys[n].shape[1])
            let expected = try CausalBias.dispatchWithLogSumExp(
                query: queries[n], key: served.keys[n], value: served.values[n], attnBias: causalLowerRight(L, S),
                options: AttentionOptions(enableGQA: true, sinks: sinks))
            expectIdentical(paged[n].output, expected.output, "sequence \(n) with sinks")
            expectIdentical(paged[n].logSumExp, expected.logSumExp, "sequence \(n)'s log-sum-exp with sinks")
        }
    }

    @Test("[1, H, L, E] queries give [1, H, L, Ev] outputs; the bias may read the cache")
    func rankFourAndReentrantBias() throws {
        let served = try Served(lengths: [20, 9], blockSize: 4)
        let q = try randn([1, 2, 3, 16], seed: 3)
        var seen = [Int]()
        let outputs = try served.cache.attention(served.ids.map { PagedAttentionQuery(sequence: $0, query: q) }) { s in
            seen.append(try served.cache.length(of: s.sequence))  // the cache is not locked while the bias is made
            return KeyPaddingBias(validKeyLengths: [s.keyLength - 1], seqLenKV: s.keyLength)
        }
        #expect(seen == [20, 9])
        for n in 0..<2 {
            #expect(outputs[n].shape == [1, 2, 3, 12])
            let (k, v) = (try served.keys[n].reshaped([1, 2, served.keys[n].shape[1], 16]), try served.values[n].reshaped([1, 2, served.values[n].shape[1], 12]))
            let S = k.shape[2]
            expectIdentical(outputs[n], try scaledDotProductAttention(
                query: q, key: k, value: v, attnMask: causalLowerRight(3, S).combined(with: KeyPaddingBias(validKeyLengths: [S - 1], seqLenKV: S))))
        }
    }

    @Test("queries that do not fit, and sequences that are not live, are errors naming the entry")
    func badQueries() throws {
        let served = try Served(lengths: [10, 10], blockSize: 4)
        let good = try randn([2, 1, 16], seed: 1)
        func call(_ second: Tensor, _ id: PagedKVCache.SequenceID? = nil) throws {
            _ = try served.cache.attention([PagedAttentionQuery(sequence: served.ids[0], query: good),
                                            PagedAttentionQuery(sequence: id ?? served.ids[1], query: second)])
        }
        let layout = "[H, L, E] or [1, H, L, E] with E = 16 and H a multiple of Hkv = 2", expected = "expected " + layout
        #expect(throws: SDPAError.invalidShape(argument: "queries[1].query", shape: [3, 1, 16], reason: expected)) { try call(try randn([3, 1, 16], seed: 2)) }
        #expect(throws: SDPAError.invalidShape(argument: "queries[1].query", shape: [2, 1, 8], reason: expected)) { try call(try randn([2, 1, 8], seed: 3)) }
        #expect(throws: SDPAError.rank(argument: "queries[1].query", shape: [2, 2, 1, 16], expected: layout)) { try call(try randn([2, 2, 1, 16], seed: 4)) }
        #expect(throws: SDPAError.unsupportedDType(argument: "queries[1].query", dtype: .float16, reason: "the cache stores float32; queries must match it")) {
            try call(try randn([2, 1, 16], seed: 5, dtype: .float16))
        }
        try served.cache.free(served.ids[1])
        #expect(throws: SDPAError.invalidArgument(argument: "queries[1].sequence", value: "\(served.ids[1])",
                                                  reason: "not a live sequence of this cache (freed, or from another cache)")) { try call(good) }
        #expect(served.cache.freeBlockCount == served.cache.blockCount - 3, "a failed call leaves no block pinned")
    }
}
