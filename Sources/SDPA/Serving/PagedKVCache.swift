import Foundation

/// A key/value cache for serving many sequences at once, stored in fixed-size blocks (vLLM's
/// PagedAttention, FlashAttention's `block_table`): a sequence grows a token at a time without its
/// history ever being copied, sequences of any lengths share one preallocated pool, and a fork shares
/// its parent's blocks.
///
/// Each block holds `blockSize` positions of every key/value head, `[Hkv, blockSize, E]` keys and
/// `[Hkv, blockSize, Ev]` values, in float32, float16 or bfloat16. A sequence is a list of blocks (its
/// block table) and a length; appending writes the new rows into its last block and fresh ones.
///
/// ```swift
/// let cache = try PagedKVCache(blockCount: 1024, blockSize: 128, keyValueHeads: 8, headDim: 128)
/// let prompt = cache.addSequence()
/// try cache.append(to: prompt, key: k, value: v)             // [Hkv, n, E] and [Hkv, n, Ev]
/// let beam = try cache.fork(prompt)                          // shares the prompt's blocks
/// let out = try cache.attention([PagedAttentionQuery(sequence: prompt, query: q)])   // [H, L, Ev] each
/// try cache.free(beam)
/// ```
///
/// **Blocks.** The pool holds `blockCount` blocks, allocated and zeroed at creation (its memory is
/// committed then, not while serving). On Linux the pool asks for 2 MiB pages (transparent huge pages,
/// where the system's setting is `always` or `madvise`): a decode step reads every sequence's blocks,
/// and with 4 KiB pages the page-table walks cost about 8 % of a step (RFC.md, metrics). A block is
/// free, or held by one or more sequences: a fork shares every block of its parent, and the first append to a shared, partly filled last block copies it
/// (copy on write) — full blocks are never written again, so they are shared for good. ``free(_:)``
/// returns a sequence's blocks to the free list once nothing else holds them. An append that needs more
/// blocks than are free throws ``SDPAError/kvCacheFull(sequence:tokens:neededBlocks:freeBlocks:blockCount:)``
/// and changes nothing, so a server can preempt a sequence and retry.
///
/// **Block size.** Any positive size works. The fused kernel reads keys in tiles of 128 (head dims up to
/// 64) or 64 positions: a block size that is a multiple of 128 (the default) keeps every tile inside one
/// block, so its rows are read in place with no gather; smaller blocks waste less of a sequence's last
/// block but split tiles across blocks.
///
/// **Concurrency.** A `PagedKVCache` is a class shared by reference, safe to use from any number of
/// tasks: one lock makes every method atomic, and a failed method changes nothing. Attention and
/// ``withViews(of:_:)`` read the blocks without the lock: they pin the blocks they read, so a sequence
/// freed, forked or appended to meanwhile cannot change a row they see (appends write past the length
/// they read or copy a shared block; a pinned block is not reused until it is unpinned). Appending to one
/// sequence from two tasks at once is allowed but orders the tokens as the lock does.
public final class PagedKVCache: @unchecked Sendable {
    /// Identifies one sequence of one cache; ids are never reused, so a freed sequence's id stays invalid.
    public struct SequenceID: Hashable, Sendable, Comparable, CustomStringConvertible {
        /// The cache's own number for the sequence: 0, 1, 2, … in the order sequences were added.
        public let number: Int
        let cache: ObjectIdentifier

        /// Ordered by ``number``.
        public static func < (a: SequenceID, b: SequenceID) -> Bool { a.number < b.number }

        /// `sequence 3`.
        public var description: String { "sequence \(number)" }
    }

    /// Positions per block.
    public let blockSize: Int
    /// Blocks in the pool.
    public let blockCount: Int
    /// `Hkv`.
    public let keyValueHeads: Int
    /// `E`, the key head dimension.
    public let headDim: Int
    /// `Ev`, the value head dimension.
    public let valueHeadDim: Int
    /// How keys and values are stored.
    public let dtype: DType

    private let lock = NSLock()
    var pool: _PagedBlockPool
    private var table: [Int: _PagedSequence] = [:]
    private var nextNumber = 0

    /// A cache of `blockCount` blocks of `blockSize` positions each, for `keyValueHeads` heads of
    /// `headDim`-wide keys and `valueHeadDim`-wide values (`headDim` unless given), stored as `dtype`.
    ///
    /// - Throws: ``SDPAError/invalidArgument(argument:value:reason:)`` for a size below 1 or a pool larger
    ///   than the machine's memory, ``SDPAError/unsupportedDType(argument:dtype:reason:)`` for a dtype other
    ///   than float32, float16 or bfloat16.
    public init(
        blockCount: Int, blockSize: Int = 128, keyValueHeads: Int, headDim: Int, valueHeadDim: Int? = nil, dtype: DType = .float32
    ) throws {
        let valueHeadDim = valueHeadDim ?? headDim
        for (name, value) in [("blockCount", blockCount), ("blockSize", blockSize), ("keyValueHeads", keyValueHeads),
                              ("headDim", headDim), ("valueHeadDim", valueHeadDim)] where value < 1 {
            throw SDPAError.invalidArgument(argument: name, value: "\(value)", reason: "a paged KV cache needs at least 1")
        }
        guard [.float32, .float16, .bfloat16].contains(dtype) else {
            throw SDPAError.unsupportedDType(argument: "dtype", dtype: dtype, reason: "a paged KV cache stores float32, float16 or bfloat16")
        }
        let keyShape = [blockCount, keyValueHeads, blockSize, headDim], valueShape = [blockCount, keyValueHeads, blockSize, valueHeadDim]
        // The pool is allocated and zeroed now: a size the machine cannot hold is an error, not a trap.
        var total = 0
        for shape in [keyShape, valueShape] {
            var bytes = dtype.byteWidth
            for d in shape {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: d)
                if overflow {
                    throw SDPAError.invalidArgument(
                        argument: "blockCount", value: "\(blockCount)",
                        reason: "the pool of \(shape) \(dtype) elements has more bytes than Int can count")
                }
                bytes = product
            }
            total = total.addingReportingOverflow(bytes).overflow ? Int.max : total + bytes
        }
        let memory = ProcessInfo.processInfo.physicalMemory
        if UInt64(total) > memory {
            throw SDPAError.invalidArgument(
                argument: "blockCount", value: "\(blockCount)",
                reason: "the pool's \(total) bytes of keys and values exceed this machine's \(memory) bytes of memory")
        }
        (self.blockCount, self.blockSize, self.keyValueHeads) = (blockCount, blockSize, keyValueHeads)
        (self.headDim, self.valueHeadDim, self.dtype) = (headDim, valueHeadDim, dtype)
        pool = _PagedBlockPool(keys: try Tensor(_zerosInHugePages: keyShape, dtype: dtype, argument: "PagedKVCache keys"),
                               values: try Tensor(_zerosInHugePages: valueShape, dtype: dtype, argument: "PagedKVCache values"),
                               blockSize: blockSize, keyValueHeads: keyValueHeads)
    }

    /// Runs `body` with the lock held.
    func locked<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Blocks free now.
    public var freeBlockCount: Int { locked { pool.free.count } }

    /// The live sequences, in the order they were added.
    public var sequences: [SequenceID] { locked { table.keys.sorted().map(id) } }

    /// How many positions `sequence` holds.
    ///
    /// - Throws: ``SDPAError/invalidArgument(argument:value:reason:)`` for a sequence that is not live in this cache.
    public func length(of sequence: SequenceID) throws -> Int { try locked { try entry(sequence).length } }

    /// A new, empty sequence; it holds no block until appended to.
    public func addSequence() -> SequenceID {
        locked {
            let number = nextNumber
            nextNumber += 1
            table[number] = _PagedSequence()
            return id(number)
        }
    }

    /// A new sequence holding `parent`'s keys and values: it shares every block of `parent` (no copy
    /// and no allocation now); the first append to a shared, partly filled last block, by either
    /// sequence, copies that block.
    ///
    /// - Throws: ``SDPAError/invalidArgument(argument:value:reason:)`` for a parent that is not live in this cache.
    public func fork(_ parent: SequenceID) throws -> SequenceID {
        try locked {
            let source = try entry(parent, argument: "parent")
            for block in source.blocks { pool.share(block) }
            let number = nextNumber
            nextNumber += 1
            table[number] = source
            return id(number)
        }
    }

    /// Ends `sequence`: its id becomes invalid, and each of its blocks returns to the free list once no
    /// other sequence (a fork) and no view holds it.
    ///
    /// - Throws: ``SDPAError/invalidArgument(argument:value:reason:)`` for a sequence that is not live in this cache.
    public func free(_ sequence: SequenceID) throws {
        try locked {
            let released = try entry(sequence)
            table[sequence.number] = nil
            for block in released.blocks { pool.release(block) }
        }
    }

    /// Runs `body` with a read-only view of each sequence of `sequences` (repeats allowed), in order.
    ///
    /// The views' blocks are pinned while `body` runs: their rows below each view's length do not change
    /// and their memory is not reused, whatever other tasks do to the cache meanwhile, and `body` may call
    /// the cache itself. The views are valid only inside `body`.
    /// - Throws: ``SDPAError/invalidArgument(argument:value:reason:)`` for a sequence that is not live in
    ///   this cache (before `body` runs), and whatever `body` throws.
    public func withViews<R>(of sequences: [SequenceID], _ body: ([PagedSequenceView]) throws -> R) throws -> R {
        try withViews(of: sequences, naming: { _ in "sequence" }, body)
    }

    /// ``withViews(of:_:)`` whose error for a sequence that is not live names it `naming(index)`.
    func withViews<R>(of sequences: [SequenceID], naming: (Int) -> String, _ body: ([PagedSequenceView]) throws -> R) throws -> R {
        let views = try locked {
            let entries = try sequences.enumerated().map { try entry($1, argument: naming($0)) }
            for e in entries { pool.pin(e.blocks) }
            return zip(sequences, entries).map { PagedSequenceView(sequence: $0, entry: $1, cache: self, pool: pool) }
        }
        defer { locked { for view in views { pool.unpin(view.blockTable) } } }
        return try body(views)
    }

    /// ``withViews(of:_:)`` for one sequence.
    public func withView<R>(of sequence: SequenceID, _ body: (PagedSequenceView) throws -> R) throws -> R {
        try withViews(of: [sequence]) { try body($0[0]) }
    }

    /// The id of sequence `number` of this cache.
    private func id(_ number: Int) -> SequenceID { SequenceID(number: number, cache: ObjectIdentifier(self)) }

    /// The live sequence `sequence`; call with the lock held.
    func entry(_ sequence: SequenceID, argument: String = "sequence") throws -> _PagedSequence {
        guard sequence.cache == ObjectIdentifier(self), let found = table[sequence.number] else {
            throw SDPAError.invalidArgument(
                argument: argument, value: "\(sequence)", reason: "not a live sequence of this cache (freed, or from another cache)")
        }
        return found
    }

    /// Replaces the record of a live sequence; call with the lock held.
    func replace(_ sequence: SequenceID, with record: _PagedSequence) {
        table[sequence.number] = record
    }
}

/// One sequence's block table and length.
struct _PagedSequence {
    /// The blocks holding positions `n * blockSize ..< (n + 1) * blockSize`, exactly as many as the length needs.
    var blocks: [Int] = []
    var length = 0
}
