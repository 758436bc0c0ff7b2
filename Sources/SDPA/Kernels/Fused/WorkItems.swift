/// One work item: a few consecutive query tiles of one (batch, key/value head), for every query head
/// of its GQA group, over all keys or one split's range of them.
@usableFromInline
struct _WorkItem {
    /// The item before splitting; split items of one base item are merged in split order.
    @usableFromInline var base: Int
    /// The key range's index among the base item's splits, or `nil` for an item run whole.
    @usableFromInline var split: Int?
    @usableFromInline var batch: Int
    @usableFromInline var kvHead: Int
    /// The first query tile and how many (the last block may hold fewer).
    @usableFromInline var firstTile: Int, tileCount: Int
    /// The keys this item reads.
    @usableFromInline var keys: Range<Int>

    @inlinable
    init(base: Int, split: Int?, batch: Int, kvHead: Int, firstTile: Int, tileCount: Int, keys: Range<Int>) {
        (self.base, self.split, self.batch, self.kvHead) = (base, split, batch, kvHead)
        (self.firstTile, self.tileCount, self.keys) = (firstTile, tileCount, keys)
    }
}

/// One query head's rows in a work item: a query tile of one head of the GQA group.
@usableFromInline
struct _QueryUnit {
    @usableFromInline var head = 0
    @usableFromInline var firstRow = 0
    @usableFromInline var rows = 0
    /// The rows as the kernel layer prepared them, and their stride (in the layout's units).
    @usableFromInline var query: UnsafeRawPointer? = nil
    @usableFromInline var ldq = 0
    @usableFromInline var visibility = TileVisibility.empty

    @inlinable init() {}

    @inlinable var queries: Range<Int> { firstRow..<(firstRow + rows) }
}

/// The work items of one fused call, in hand-out order: a function of the shape (and the bias's
/// preferred order) alone, so which thread runs which item never changes the bits.
///
/// Items `0..<wholeItems` run whole; each base item after them runs as `keySplits` items over
/// disjoint key ranges, whose partial results are merged afterwards.
@usableFromInline
struct _WorkItems: Sendable {
    @usableFromInline let tiling: _FusedTiling
    @usableFromInline let shape: AttentionShape
    /// Items taken one after another share K and V (query blocks of one head), or the mask rows of
    /// a mask broadcast over heads (heads of one query block).
    @usableFromInline let headsFastest: Bool
    @usableFromInline let wholeItems: Int
    /// Every item, split ones counted once per split.
    @usableFromInline let count: Int
    /// Key tiles per split range.
    @usableFromInline let tilesPerSplit: Int

    @inlinable
    init(shape: AttentionShape, tiling: _FusedTiling, headsFastest: Bool) {
        (self.shape, self.tiling, self.headsFastest) = (shape, tiling, headsFastest)
        let baseItems = shape.batch * shape.keyValueHeads * tiling.queryBlocks
        wholeItems = baseItems - tiling.splitItems
        count = wholeItems + tiling.splitItems * tiling.keySplits
        let keyTiles = (shape.keyLength + tiling.keyColumns - 1) / tiling.keyColumns
        tilesPerSplit = (keyTiles + tiling.keySplits - 1) / tiling.keySplits
    }

    /// Query heads per key/value head: the units of an item are its tiles times this.
    @inlinable var maxUnits: Int { tiling.tilesPerItem * shape.groupSize }

    /// The item handed out `index`-th.
    @inlinable
    func item(_ index: Int) -> _WorkItem {
        let splits = tiling.keySplits
        let split: Int? = index < wholeItems ? nil : (index - wholeItems) % splits
        let base = index < wholeItems ? index : wholeItems + (index - wholeItems) / splits
        return item(base: base, split: split)
    }

    /// Base item `base` (split `split`, or whole).
    @inlinable
    func item(base: Int, split: Int?) -> _WorkItem {
        let (Hkv, blocks) = (shape.keyValueHeads, tiling.queryBlocks)
        let (b, kvHead, block) = headsFastest
            ? (base / (Hkv * blocks), base % Hkv, base / Hkv % blocks)
            : (base / (Hkv * blocks), base / blocks % Hkv, base % blocks)
        let firstTile = block * tiling.tilesPerItem
        let S = shape.keyLength, span = tilesPerSplit * tiling.keyColumns
        let keys = split.map { Swift.min(S, $0 * span)..<Swift.min(S, ($0 + 1) * span) } ?? 0..<S
        return _WorkItem(base: base, split: split, batch: b, kvHead: kvHead, firstTile: firstTile,
                         tileCount: Swift.min(tiling.tilesPerItem, tiling.queryTiles - firstTile), keys: keys)
    }

    /// Fills the (head, query tile) units of `item` in a fixed order (tile-major, heads of the group
    /// inside), returning how many.
    @inlinable
    func units(of item: _WorkItem, into units: inout [_QueryUnit]) -> Int {
        let (group, Br, L) = (shape.groupSize, tiling.queryRows, shape.queryLength)
        let count = item.tileCount * group
        for u in 0..<count {
            let q0 = (item.firstTile + u / group) * Br
            units[u].head = item.kvHead * group + u % group
            units[u].firstRow = q0
            units[u].rows = Swift.min(Br, L - q0)
        }
        return count
    }
}
