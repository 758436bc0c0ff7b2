/// A read-only view of one sequence of a ``PagedKVCache``, as a kernel walks it: the block table, the
/// length, and where the rows of a run of positions lie — no copy of the keys or values.
///
/// Position `p` of the sequence is row `p % blockSize` of block `blockTable[p / blockSize]`. A kernel
/// reading keys `j0..<j1` of a key/value head asks for the rows from `j0` and gets the address of
/// row `j0` and how many rows follow it contiguously (up to the end of its block or of the sequence):
///
/// ```swift
/// try cache.withView(of: sequence) { view in
///     var j = j0
///     while j < j1 {
///         let rows = view.keyRows(from: j, kvHead: h)          // rows.count ≥ 1, each rows.rowStride apart
///         let n = min(rows.count, j1 - j)
///         consume(rows.base, n)                                  // n keys of E elements, in view.dtype
///         j += n
///     }
/// }
/// ```
///
/// With a block size that is a multiple of the tile, a tile's keys are always one run. A view is valid
/// only inside the ``PagedKVCache/withViews(of:_:)`` call that made it: its blocks are pinned (their rows
/// below ``length`` do not change) until that call returns.
public struct PagedSequenceView: Sendable {
    /// The sequence viewed.
    public let sequence: PagedKVCache.SequenceID
    /// Positions held, `S`.
    public let length: Int
    /// Positions per block.
    public let blockSize: Int
    /// The blocks holding the sequence, in order: `(length + blockSize - 1) / blockSize` of them.
    public let blockTable: [Int]
    /// `Hkv`.
    public let keyValueHeads: Int
    /// `E`.
    public let headDim: Int
    /// `Ev`.
    public let valueHeadDim: Int
    /// The element type of the rows.
    public let dtype: DType
    /// The cache's pools, `[blockCount, Hkv, blockSize, E]` and `[blockCount, Hkv, blockSize, Ev]`: a kernel
    /// in this module reads block `b`, head `h`, row `r` as batch `b`, head `h`, row `r` of a 4-D input.
    /// Holding them keeps the storage alive.
    @usableFromInline let _keyPool: Tensor, _valuePool: Tensor

    init(sequence: PagedKVCache.SequenceID, entry: _PagedSequence, cache: PagedKVCache, pool: _PagedBlockPool) {
        (self.sequence, length, blockTable, blockSize) = (sequence, entry.length, entry.blocks, cache.blockSize)
        (keyValueHeads, headDim, valueHeadDim, dtype) = (cache.keyValueHeads, cache.headDim, cache.valueHeadDim, cache.dtype)
        (_keyPool, _valuePool) = (pool.keys, pool.values)
    }

    /// The key rows of `kvHead` from `position`: the run up to the end of its block or of the sequence.
    ///
    /// A position outside `0..<length` or a head outside `0..<keyValueHeads` is a programming error and
    /// traps, as an index out of range does with `Array`.
    @inlinable
    public func keyRows(from position: Int, kvHead: Int) -> PagedRows { rows(of: _keyPool, from: position, kvHead: kvHead) }

    /// The value rows of `kvHead` from `position`; see ``keyRows(from:kvHead:)``.
    @inlinable
    public func valueRows(from position: Int, kvHead: Int) -> PagedRows { rows(of: _valuePool, from: position, kvHead: kvHead) }

    @inlinable
    func rows(of pool: Tensor, from position: Int, kvHead: Int) -> PagedRows {
        precondition(position >= 0 && position < length, "position \(position) is outside the sequence's 0..<\(length)")
        precondition(kvHead >= 0 && kvHead < keyValueHeads, "kvHead \(kvHead) is outside 0..<\(keyValueHeads)")
        let (index, slot) = position.quotientAndRemainder(dividingBy: blockSize)
        let width = pool.shape[3]
        let offset = ((blockTable[index] * keyValueHeads + kvHead) * blockSize + slot) * width
        return PagedRows(base: UnsafeRawPointer(pool._storage.bytes) + offset * pool.dtype.byteWidth,
                         count: Swift.min(blockSize - slot, length - position), rowStride: width)
    }
}

/// A run of consecutive positions of one head in one block of a ``PagedKVCache``: `count` rows from
/// `base`, `rowStride` elements (of the cache's dtype) from one row to the next.
///
/// `base` points into the cache's pool and holds nothing alive: read it while the view it came from (or the cache)
/// is alive (`withExtendedLifetime(view) { … }` where the view is not used after the read), and before the cache
/// writes those positions again (an append after a fork or a free may reuse the block).
public struct PagedRows: @unchecked Sendable {
    /// The first element of the first row.
    public let base: UnsafeRawPointer
    /// How many rows follow contiguously; at least 1.
    public let count: Int
    /// Elements from one row to the next: the head dimension.
    public let rowStride: Int

    @usableFromInline
    init(base: UnsafeRawPointer, count: Int, rowStride: Int) {
        (self.base, self.count, self.rowStride) = (base, count, rowStride)
    }
}
