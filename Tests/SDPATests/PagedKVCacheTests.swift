import Foundation
import SDPA
import SDPATestSupport
import Testing

/// Random `[Hkv, n, width]` rows, as appended to a cache.
func kvRows(_ heads: Int, _ n: Int, _ width: Int, seed: UInt64, dtype: DType = .float32) throws -> Tensor {
    try randn([heads, n, width], seed: seed, dtype: dtype)
}

/// `chunks` joined along positions: what a sequence appended them to holds.
func joined(_ chunks: [Tensor], heads: Int, width: Int, dtype: DType) throws -> Tensor {
    chunks.isEmpty ? try Tensor(zeros: [heads, 0, width], dtype: dtype) : try Tensor.concatenated(chunks, along: 1)
}

@Suite("Paged KV cache: blocks, appends, forks, frees")
struct PagedKVCacheTests {
    @Test("appends write into the blocks in place; the history never moves",
          arguments: [(DType.float32, 16), (.float16, 3), (.bfloat16, 5), (.float32, 1)])
    func appendsAcrossBlocks(_ dtype: DType, _ blockSize: Int) throws {
        let cache = try PagedKVCache(blockCount: 40, blockSize: blockSize, keyValueHeads: 3, headDim: 8, valueHeadDim: 5, dtype: dtype)
        let s = cache.addSequence()
        var (keys, values) = ([Tensor](), [Tensor]())
        var earlier = [Int](), firstRow: UnsafeRawPointer?
        for (n, count) in [5, 1, 1, 17, 0, 3, 1, 6].enumerated() {
            let k = try kvRows(3, count, 8, seed: UInt64(10 * n), dtype: dtype), v = try kvRows(3, count, 5, seed: UInt64(10 * n + 1), dtype: dtype)
            try cache.append(to: s, key: k, value: v)
            keys.append(k)
            values.append(v)
            let length = keys.map { $0.shape[1] }.reduce(0, +)
            #expect(try cache.length(of: s) == length)
            try cache.withView(of: s) { view in
                #expect(view.length == length && view.blockTable.count == (length + blockSize - 1) / blockSize)
                // Blocks already holding positions keep their indices, and row 0 its address: no copy.
                #expect(Array(view.blockTable.prefix(earlier.count)) == earlier, "append \(n) moved the history")
                if length > 0 {
                    let row = view.keyRows(from: 0, kvHead: 0).base
                    #expect(firstRow == nil || firstRow == row)
                    firstRow = row
                }
                earlier = view.blockTable
                expectIdentical(try view.contiguousKeys(), try joined(keys, heads: 3, width: 8, dtype: dtype), "keys after append \(n)")
                expectIdentical(try view.contiguousValues(), try joined(values, heads: 3, width: 5, dtype: dtype), "values after append \(n)")
            }
        }
        #expect(cache.freeBlockCount == 40 - (34 + blockSize - 1) / blockSize)
    }

    @Test("keys of another dtype are rounded once; strided and [1, Hkv, n, E] inputs are read in place")
    func convertsAndReadsViews() throws {
        let cache = try PagedKVCache(blockCount: 8, blockSize: 4, keyValueHeads: 2, headDim: 6, dtype: .bfloat16)
        let s = cache.addSequence()
        let nhe = try randn([7, 2, 6], seed: 3)                        // [n, Hkv, E], float32
        let k = try nhe.transposed(0, 1), v = try randn([1, 2, 7, 6], seed: 4)
        #expect(!k.isContiguous)
        try cache.append(to: s, key: k, value: v)
        try cache.withView(of: s) { view in
            expectIdentical(try view.contiguousKeys(), try k.contiguous().converted(to: .bfloat16))
            expectIdentical(try view.contiguousValues(), try v.reshaped([2, 7, 6]).converted(to: .bfloat16))
        }
        #expect(k.dtype == .float32 && nhe.shape == [7, 2, 6], "the caller's tensors are untouched")
    }

    @Test("a view's runs end at block boundaries and at the sequence's end")
    func viewRuns() throws {
        let cache = try PagedKVCache(blockCount: 8, blockSize: 4, keyValueHeads: 2, headDim: 3, valueHeadDim: 2)
        let s = cache.addSequence()
        let k = try kvRows(2, 10, 3, seed: 5), v = try kvRows(2, 10, 2, seed: 6)
        try cache.append(to: s, key: k, value: v)
        let (ks, vs) = (k.scalars, v.scalars)
        try cache.withView(of: s) { view in
            for (from, count) in [(0, 4), (1, 3), (4, 4), (5, 3), (8, 2), (9, 1)] {
                for h in 0..<2 {
                    let keys = view.keyRows(from: from, kvHead: h), values = view.valueRows(from: from, kvHead: h)
                    #expect(keys.count == count && values.count == count && keys.rowStride == 3 && values.rowStride == 2)
                    let read = (0..<count * 3).map { keys.base.assumingMemoryBound(to: Float.self)[$0] }
                    #expect(read == Array(ks[(h * 10 + from) * 3..<(h * 10 + from + count) * 3]), "keys from \(from) head \(h)")
                    let readValues = (0..<count * 2).map { values.base.assumingMemoryBound(to: Float.self)[$0] }
                    #expect(readValues == Array(vs[(h * 10 + from) * 2..<(h * 10 + from + count) * 2]), "values from \(from) head \(h)")
                }
            }
        }
    }

    @Test("a fork shares its parent's blocks; the first write to a shared partial block copies it")
    func forkCopiesOnWrite() throws {
        let cache = try PagedKVCache(blockCount: 10, blockSize: 4, keyValueHeads: 1, headDim: 2)
        let parent = cache.addSequence()
        let prompt = try kvRows(1, 10, 2, seed: 7)
        try cache.append(to: parent, key: prompt, value: prompt)
        let parentBlocks = try cache.withView(of: parent) { $0.blockTable }
        let child = try cache.fork(parent)
        #expect(cache.freeBlockCount == 7, "a fork allocates nothing")
        #expect(try cache.withView(of: child) { $0.blockTable } == parentBlocks)

        let a = try kvRows(1, 1, 2, seed: 8), b = try kvRows(1, 1, 2, seed: 9)
        try cache.append(to: child, key: a, value: a)
        let childBlocks = try cache.withView(of: child) { $0.blockTable }
        #expect(Array(childBlocks.prefix(2)) == Array(parentBlocks.prefix(2)), "full blocks stay shared")
        #expect(childBlocks[2] != parentBlocks[2], "the shared partial block was copied")
        #expect(cache.freeBlockCount == 6)
        // The parent now holds its last block alone: it writes in place.
        try cache.append(to: parent, key: b, value: b)
        #expect(try cache.withView(of: parent) { $0.blockTable } == parentBlocks)
        #expect(cache.freeBlockCount == 6)
        try cache.withViews(of: [parent, child]) { views in
            expectIdentical(try views[0].contiguousKeys(), try joined([prompt, b], heads: 1, width: 2, dtype: .float32), "parent")
            expectIdentical(try views[1].contiguousKeys(), try joined([prompt, a], heads: 1, width: 2, dtype: .float32), "child")
        }

        // Forked at a block boundary, nothing is copied: the next position starts a new block.
        let full = cache.addSequence()
        try cache.append(to: full, key: try kvRows(1, 8, 2, seed: 10), value: try kvRows(1, 8, 2, seed: 11))
        let twin = try cache.fork(full)
        let free = cache.freeBlockCount
        try cache.append(to: twin, key: a, value: a)
        #expect(cache.freeBlockCount == free - 1)
        #expect(try cache.withView(of: twin) { Array($0.blockTable.prefix(2)) } == cache.withView(of: full) { $0.blockTable })
    }

    @Test("free returns blocks once no sequence holds them; ids stay invalid")
    func freeReturnsBlocks() throws {
        let cache = try PagedKVCache(blockCount: 6, blockSize: 2, keyValueHeads: 1, headDim: 1)
        let s = cache.addSequence()
        try cache.append(to: s, key: try kvRows(1, 5, 1, seed: 1), value: try kvRows(1, 5, 1, seed: 2))
        let t = try cache.fork(s)
        try cache.append(to: t, key: try kvRows(1, 2, 1, seed: 3), value: try kvRows(1, 2, 1, seed: 4))  // copies block 2, adds one
        #expect(cache.freeBlockCount == 1)
        try cache.free(s)
        #expect(cache.freeBlockCount == 2, "only the block the fork did not share comes back")
        #expect(cache.sequences == [t])
        try cache.free(t)
        #expect(cache.freeBlockCount == 6)
        #expect(cache.sequences.isEmpty)
        let gone = SDPAError.invalidArgument(argument: "sequence", value: "\(s)", reason: "not a live sequence of this cache (freed, or from another cache)")
        #expect(throws: gone) { try cache.length(of: s) }
        #expect(throws: gone) { try cache.free(s) }
        #expect(throws: gone) { try cache.append(to: s, key: try kvRows(1, 1, 1, seed: 5), value: try kvRows(1, 1, 1, seed: 6)) }
        #expect(throws: gone) { try cache.withView(of: s) { _ in } }
        #expect(throws: SDPAError.invalidArgument(argument: "parent", value: "\(s)", reason: "not a live sequence of this cache (freed, or from another cache)")) {
            try cache.fork(s)
        }
        let other = try PagedKVCache(blockCount: 1, keyValueHeads: 1, headDim: 1)
        #expect(throws: SDPAError.self) { try other.length(of: cache.addSequence()) }
        #expect(cache.addSequence().number == 3, "ids are never reused")
    }

    @Test("running out of blocks is a typed error that changes nothing")
    func outOfBlocks() throws {
        let cache = try PagedKVCache(blockCount: 3, blockSize: 4, keyValueHeads: 2, headDim: 2)
        let s = cache.addSequence()
        let k = try kvRows(2, 10, 2, seed: 1)
        try cache.append(to: s, key: k, value: k)
        let more = try kvRows(2, 3, 2, seed: 2)
        #expect(throws: SDPAError.kvCacheFull(sequence: "\(s)", tokens: 3, neededBlocks: 1, freeBlocks: 0, blockCount: 3)) {
            try cache.append(to: s, key: more, value: more)
        }
        try cache.withView(of: s) { view in
            #expect(view.length == 10 && view.blockTable.count == 3)
            expectIdentical(try view.contiguousKeys(), k)
        }
        // Two positions still fit the last block.
        try cache.append(to: s, key: try kvRows(2, 2, 2, seed: 3), value: try kvRows(2, 2, 2, seed: 3))
        #expect(try cache.length(of: s) == 12)

        // Copy on write needs a block too.
        let small = try PagedKVCache(blockCount: 2, blockSize: 4, keyValueHeads: 1, headDim: 2)
        let p = small.addSequence()
        try small.append(to: p, key: try kvRows(1, 6, 2, seed: 4), value: try kvRows(1, 6, 2, seed: 5))
        let c = try small.fork(p)
        let token = try kvRows(1, 1, 2, seed: 6)
        #expect(throws: SDPAError.kvCacheFull(sequence: "\(c)", tokens: 1, neededBlocks: 1, freeBlocks: 0, blockCount: 2)) {
            try small.append(to: c, key: token, value: token)
        }
        #expect(try small.length(of: c) == 6 && small.freeBlockCount == 0)
        try small.free(p)  // now the child holds its blocks alone and writes in place
        try small.append(to: c, key: token, value: token)
        #expect(try small.length(of: c) == 7)
        #expect(SDPAError.kvCacheFull(sequence: "sequence 1", tokens: 1, neededBlocks: 1, freeBlocks: 0, blockCount: 2).description
            == "the paged KV cache needs 1 free blocks to append 1 tokens to sequence 1 but has 0 of 2; free (or preempt) a sequence, or create the cache with more blocks")
    }

    @Test("bad sizes and inputs are typed errors naming the argument")
    func badInputs() throws {
        #expect(throws: SDPAError.invalidArgument(argument: "blockCount", value: "0", reason: "a paged KV cache needs at least 1")) {
            try PagedKVCache(blockCount: 0, keyValueHeads: 1, headDim: 1)
        }
        #expect(throws: SDPAError.invalidArgument(argument: "valueHeadDim", value: "-3", reason: "a paged KV cache needs at least 1")) {
            try PagedKVCache(blockCount: 1, keyValueHeads: 1, headDim: 1, valueHeadDim: -3)
        }
        #expect(throws: SDPAError.unsupportedDType(argument: "dtype", dtype: .float64, reason: "a paged KV cache stores float32, float16 or bfloat16")) {
            try PagedKVCache(blockCount: 1, keyValueHeads: 1, headDim: 1, dtype: .float64)
        }
        #expect(throws: SDPAError.self) { try PagedKVCache(blockCount: Int.max / 2, blockSize: 256, keyValueHeads: 8, headDim: 128) }
        #expect(throws: SDPAError.self, "more than any machine's memory") {
            try PagedKVCache(blockCount: 1 << 40, blockSize: 16, keyValueHeads: 1, headDim: 1)
        }

        let cache = try PagedKVCache(blockCount: 4, blockSize: 4, keyValueHeads: 2, headDim: 3)
        let s = cache.addSequence()
        let good = try kvRows(2, 2, 3, seed: 1)
        let layout = "[Hkv, n, E] = [2, n, 3] (or with a leading batch of 1)"
        #expect(throws: SDPAError.invalidShape(argument: "key", shape: [3, 2, 3], reason: "expected " + layout)) {
            try cache.append(to: s, key: try kvRows(3, 2, 3, seed: 2), value: good)
        }
        #expect(throws: SDPAError.invalidShape(argument: "value", shape: [2, 2, 4],
                                               reason: "expected [Hkv, n, Ev] = [2, n, 3] (or with a leading batch of 1)")) {
            try cache.append(to: s, key: good, value: try kvRows(2, 2, 4, seed: 3))
        }
        #expect(throws: SDPAError.rank(argument: "key", shape: [2, 2, 2, 3], expected: layout)) {
            try cache.append(to: s, key: try randn([2, 2, 2, 3], seed: 4), value: good)
        }
        #expect(throws: SDPAError.shapeMismatch(argument: "value", shape: [2, 3, 3], other: "key", otherShape: [2, 2, 3],
                                                reason: "key and value must hold the same number of positions n")) {
            try cache.append(to: s, key: good, value: try kvRows(2, 3, 3, seed: 5))
        }
        #expect(throws: SDPAError.unsupportedDType(argument: "key", dtype: .bool, reason: "a KV cache holds float keys and values")) {
            try cache.append(to: s, key: try Tensor(zeros: [2, 2, 3], dtype: .bool), value: good)
        }
        #expect(try cache.length(of: s) == 0 && cache.freeBlockCount == 4, "failed appends change nothing")
    }

    @Test("a view pins its blocks: freeing and reusing them waits until the view ends")
    func pinnedViews() throws {
        let cache = try PagedKVCache(blockCount: 4, blockSize: 2, keyValueHeads: 1, headDim: 2)
        let s = cache.addSequence()
        let k = try kvRows(1, 4, 2, seed: 1)
        try cache.append(to: s, key: k, value: k)
        try cache.withView(of: s) { view in
            try cache.free(s)                                  // the body may use the cache
            #expect(cache.freeBlockCount == 2, "pinned blocks stay out of the free list")
            let t = cache.addSequence()
            try cache.append(to: t, key: try kvRows(1, 4, 2, seed: 2), value: try kvRows(1, 4, 2, seed: 3))
            #expect(throws: SDPAError.self) { try cache.append(to: t, key: k, value: k) }
            expectIdentical(try view.contiguousKeys(), k, "the view still reads what it saw")
        }
        #expect(cache.freeBlockCount == 2, "unpinned, the freed sequence's blocks return")
    }

    @Test("tasks appending, forking and freeing at once leave every sequence as its own task wrote it")
    func concurrentUse() async throws {
        let cache = try PagedKVCache(blockCount: 400, blockSize: 3, keyValueHeads: 2, headDim: 4)
        let results = try await withThrowingTaskGroup(of: (PagedKVCache.SequenceID, Tensor).self) { group in
            for task in 0..<8 {
                group.addTask {
                    let s = cache.addSequence()
                    var rows = [Tensor]()
                    for step in 0..<40 {
                        let k = try kvRows(2, 1 + step % 3, 4, seed: UInt64(1000 * task + step))
                        try cache.append(to: s, key: k, value: k)
                        rows.append(k)
                        if step % 10 == 9 { try cache.free(try cache.fork(s)) }
                    }
                    return (s, try joined(rows, heads: 2, width: 4, dtype: .float32))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for (s, expected) in results {
            try cache.withView(of: s) { expectIdentical(try $0.contiguousKeys(), expected, "\(s)") }
        }
        #expect(cache.sequences.count == 8)
    }

    #if os(Linux)
    @Test("the pool asks for huge pages: where an allocation made the same way gets them, the pool has them")
    func poolInHugePages() throws {
        // 64 MiB a pool: past glibc's largest mmap threshold, so each is a fresh mapping of its own.
        let cache = try PagedKVCache(blockCount: 256, blockSize: 128, keyValueHeads: 4, headDim: 128)
        let s = cache.addSequence()
        try cache.append(to: s, key: try kvRows(4, 1, 128, seed: 1), value: try kvRows(4, 1, 128, seed: 2))
        let pool = try cache.withView(of: s) { view in try #require(anonymousHugeKilobytes(containing: view.keyRows(from: 0, kvHead: 0).base)) }
        if pool > 0 { return }
        // None in the pool: the system must give none to a buffer allocated and advised as the pool's is either
        // (transparent huge pages off, or an allocator that does not pass the advice on: the sanitizers').
        let bytes = 64 << 20
        var control: UnsafeMutableRawPointer?
        #expect(posix_memalign(&control, 2 << 20, bytes) == 0)
        defer { free(control) }
        let buffer = try #require(control)
        _ = madvise(buffer, bytes, MADV_HUGEPAGE)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let given = try #require(anonymousHugeKilobytes(containing: buffer))
        #expect(given == 0, "an advised buffer got \(given) kB of huge pages, the pool none")
    }
    #endif
}

#if os(Linux)
/// The `AnonHugePages` of the mapping of this process that holds `address` (`/proc/self/smaps`), in kB.
func anonymousHugeKilobytes(containing address: UnsafeRawPointer) -> Int? {
    // Read to the end: a /proc file reports a size of 0, which a whole-file read would trust.
    guard let data = FileHandle(forReadingAtPath: "/proc/self/smaps")?.readDataToEndOfFile() else { return nil }
    let smaps = String(decoding: data, as: UTF8.self)
    let target = UInt(bitPattern: address)
    var inside = false
    for line in smaps.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
            let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
            inside = bounds.count == 2 && bounds[0] <= target && target < bounds[1]
        } else if inside, fields.first == "AnonHugePages:", fields.count >= 2 {
            return Int(fields[1])
        }
    }
    return nil
}
#endif
