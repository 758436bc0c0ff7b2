/// One work item: consecutive pieces of one block of query tiles of one (batch, key/value head), for
/// every query head of its GQA group, over all keys or one split's range of them.
@usableFromInline
struct _WorkItem {
    /// The block in hand-out order, its batch and key/value head.
    @usableFromInline var block: Int, batch: Int, kvHead: Int
    /// The block's pieces this item runs.
    @usableFromInline var firstPiece: Int, pieceCount: Int
    /// The keys this item reads.
    @usableFromInline var keys: Range<Int>
    /// The key range's index among its pieces' splits, or `nil` for an item run whole.
    @usableFromInline var split: Int?
    /// How many key ranges the pieces split into (1 when whole).
    @usableFromInline var splits: Int
    /// For a split item: its group of splits (merged together) and its own partial state, counted
    /// over the split items in hand-out order.
    @usableFromInline var splitGroup: Int, partial: Int

    @inlinable
    init(block: Int, batch: Int, kvHead: Int, firstPiece: Int, pieceCount: Int, keys: Range<Int>,
         split: Int?, splits: Int, splitGroup: Int, partial: Int) {
        (self.block, self.batch, self.kvHead, self.firstPiece, self.pieceCount) = (block, batch, kvHead, firstPiece, pieceCount)
        (self.keys, self.split, self.splits, self.splitGroup, self.partial) = (keys, split, splits, splitGroup, partial)
    }
}

/// One query head's rows in a work item: a piece of a query tile for one head of the GQA group.
@usableFromInline
struct _QueryUnit {
    @usableFromInline var head = 0
    @usableFromInline var firstRow = 0
    @usableFromInline var rows = 0
    /// The rows as the kernel layer prepared them, and their stride (in the layout's units).
    @usableFromInline var query: UnsafeRawPointer? = nil
    @usableFromInline var ldq = 0
    @usableFromInline var visibility = TileVisibility.empty
    /// The first of the unit's rows in its item's running state (and prepared query rows).
    @usableFromInline var stateRow = 0

    @inlinable init() {}

    @inlinable var queries: Range<Int> { firstRow..<(firstRow + rows) }
}

/// A piece of a query tile: rows cut by ``_TileRefinement`` at the tile's level.
@usableFromInline
struct _Piece {
    @usableFromInline var firstRow = 0, rows = 0, level = 0
    @inlinable init() {}
}

/// The work items of one fused call at a given thread count, in hand-out order, and how they are claimed.
///
/// What fixes the bits — the query tiles, their pieces and key splits (``_TileRefinement``), the order
/// splits merge in — is a function of the shape (and the bias's preferred order) alone. Which pieces of
/// a block share one item (and so one packed key tile) is scheduling, and changes no bits: every row's
/// arithmetic is its own, whichever unit it runs in. That grouping is sized for the thread count: whole blocks while plenty of work
/// remains, then smaller groups, so that a list scheduler of `threads` threads ends within half a percent
/// of the ideal by the same bound the refinement uses, planned for twice the threads since a mask may
/// skip half the tiles (the costs are those of fully visible tiles: no bias is read to plan).
///
/// Blocks `0..<regularItems` run whole, one item each, claimed ``blocksPerClaim`` at a time; each item
/// of the blocks after them is in ``tail``, one claim each.
@usableFromInline
struct _WorkItems: Sendable {
    /// One item of the tail: pieces of a block over one key range.
    @usableFromInline
    struct Span: Sendable {
        @usableFromInline var block: Int, firstPiece: Int, pieceCount: Int
        /// The split's index (`-1` for an item run whole), how many, and the key tiles of each range.
        @usableFromInline var split: Int, splits: Int, keyTilesPerSplit: Int
        /// For a split item: its group of splits, and its partial state (both counted in hand-out order).
        @usableFromInline var splitGroup = 0, partial = 0

        @inlinable
        init(block: Int, firstPiece: Int, pieceCount: Int, split: Int, splits: Int, keyTilesPerSplit: Int) {
            (self.block, self.firstPiece, self.pieceCount) = (block, firstPiece, pieceCount)
            (self.split, self.splits, self.keyTilesPerSplit) = (split, splits, keyTilesPerSplit)
        }
    }

    @usableFromInline let shape: AttentionShape
    @usableFromInline let tiling: _FusedTiling
    @usableFromInline let refinement: _TileRefinement
    @usableFromInline let order: _HandOutOrder
    @usableFromInline let regularItems: Int
    @usableFromInline let tail: [Span]
    @usableFromInline let blocksPerClaim: Int
    /// Claims in all: the work queue hands out `0..<claims`.
    @usableFromInline let claims: Int
    /// Split items, and groups of them merged together.
    @usableFromInline let splitItems: Int, splitGroups: Int

    /// The least modeled work worth one claim: a claim takes several tiny blocks at once, so that many
    /// threads do not all wait on the queue's one counter.
    @usableFromInline static var claimWork: Double { 20_000 }
    /// The grouping bound's slack, as a share of the work.
    @usableFromInline static var slack: Double { 0.005 }

    @inlinable
    init(shape: AttentionShape, tiling: _FusedTiling, refinement: _TileRefinement, cost: _WorkCost,
         headsFastest: Bool, threads: Int) {
        (self.shape, self.tiling, self.refinement) = (shape, tiling, refinement)
        let order = _HandOutOrder(shape: shape, tiling: tiling, headsFastest: headsFastest)
        self.order = order
        let perBlock = tiling.tilesPerBlock
        let tileCost = cost.piece(rows: tiling.queryRows, keyTiles: tiling.keyTiles)
        let blockCost = Double(perBlock) * tileCost
        // Less work than one claim is one thread's: grouping it for more would only cost the call time.
        let shared = threads > 1 && Double(order.tiles) * tileCost > Self.claimWork
        let planned = Double(shared ? 2 * Swift.min(threads, _maximumThreads) : 1)
        let slack = Self.slack * Double(order.tiles) * tileCost
        // Walk back from the last block: group its pieces into items while the bound allows, and stop at
        // the first block of whole tiles that may run whole (every block before it may too: more work
        // remains after them, and their tiles are whole: levels only grow along the order).
        var reversed = [Span](), remaining = 0.0, regular = 0
        var pieces = [_Piece]()
        for block in stride(from: order.blocks - 1, through: 0, by: -1) {
            let tiles = tiling.tiles(ofBlock: order.block(block).block).count
            if refinement.level(atPosition: order.firstPosition(ofBlock: block) + tiles - 1) == 0,
               blockCost <= (slack + remaining + blockCost) / planned {
                regular = block + 1
                break
            }
            if pieces.isEmpty { pieces = [_Piece](repeating: _Piece(), count: perBlock << refinement.rowLevels) }
            var end = pieces.withUnsafeMutableBufferPointer {
                Self.pieces(ofBlock: block, order: order, refinement: refinement, into: $0)
            }
            while end > 0 {
                let level = pieces[end - 1].level, perSplit = refinement.tilesPerSplit(atLevel: level)
                // At most a block's worth of pieces, and never fewer than a whole tile's: the pieces of one
                // tile then share each packed key tile even when a block is one tile.
                let height = refinement.pieceRows(atLevel: level)
                let most = Swift.max(perBlock, (tiling.queryRows + height - 1) / height)
                var first = end - 1, work = cost.piece(rows: pieces[first].rows, keyTiles: perSplit)
                while first > 0, end - first < most, refinement.tilesPerSplit(atLevel: pieces[first - 1].level) == perSplit {
                    let more = work + cost.piece(rows: pieces[first - 1].rows, keyTiles: perSplit)
                    if more > (slack + remaining + more) / planned { break }
                    (work, first) = (more, first - 1)
                }
                let splits = refinement.keySplits(atLevel: level)
                for split in (0..<splits).reversed() {
                    reversed.append(Span(block: block, firstPiece: first, pieceCount: end - first,
                                         split: splits > 1 ? split : -1, splits: splits, keyTilesPerSplit: perSplit))
                }
                remaining += work * Double(splits)
                end = first
            }
        }
        // Number the split items and their groups in hand-out order.
        var tail = [Span](), splitItems = 0, splitGroups = 0
        tail.reserveCapacity(reversed.count)
        for var span in reversed.reversed() {
            if span.split >= 0 {
                (span.splitGroup, span.partial) = (splitGroups, splitItems)
                splitItems += 1
                if span.split == span.splits - 1 { splitGroups += 1 }
            }
            tail.append(span)
        }
        (regularItems, self.tail, self.splitItems, self.splitGroups) = (regular, tail, splitItems, splitGroups)
        blocksPerClaim = Swift.max(1, Int(Self.claimWork / Swift.max(blockCost, 1)))
        claims = (regular + blocksPerClaim - 1) / blocksPerClaim + tail.count
    }

    /// Every item, split ones counted once per split.
    @inlinable var count: Int { regularItems + tail.count }

    /// Query units of one item at most: a block's pieces, for every head of the group.
    @inlinable var maxUnits: Int { maxPieces * shape.groupSize }

    /// Rows of one item's running state at most: a block's query rows, for every head of the group
    /// (an item's pieces lie in one block).
    @inlinable var stateRows: Int { tiling.tilesPerBlock * tiling.queryRows * shape.groupSize }

    /// Pieces of one block at most.
    @inlinable var maxPieces: Int { tiling.tilesPerBlock << refinement.rowLevels }

    /// Whether some item runs whole (and so needs a thread's own running state).
    @inlinable var hasWholeItems: Bool { regularItems > 0 || splitItems < tail.count }

    /// The items of claim `claim`.
    @inlinable
    func items(ofClaim claim: Int) -> Range<Int> {
        let regularClaims = (regularItems + blocksPerClaim - 1) / blocksPerClaim
        if claim < regularClaims {
            return (claim * blocksPerClaim)..<Swift.min(regularItems, (claim + 1) * blocksPerClaim)
        }
        let item = regularItems + claim - regularClaims
        return item..<(item + 1)
    }

    /// The item handed out `index`-th.
    @inlinable
    func item(_ index: Int) -> _WorkItem {
        let span = index < regularItems
            ? Span(block: index, firstPiece: 0, pieceCount: maxPieces, split: -1, splits: 1, keyTilesPerSplit: tiling.keyTiles)
            : tail[index - regularItems]
        let (batch, kvHead, _) = order.block(span.block)
        var keys = 0..<shape.keyLength
        if span.split >= 0 {
            let width = span.keyTilesPerSplit * tiling.keyColumns
            keys = Swift.min(shape.keyLength, span.split * width)..<Swift.min(shape.keyLength, (span.split + 1) * width)
        }
        return _WorkItem(block: span.block, batch: batch, kvHead: kvHead, firstPiece: span.firstPiece, pieceCount: span.pieceCount,
                         keys: keys, split: span.split >= 0 ? span.split : nil, splits: span.splits,
                         splitGroup: span.splitGroup, partial: span.partial)
    }

    /// Fills `pieces` with block `block`'s pieces in hand-out order (tiles last rows first, each tile's
    /// pieces top down) and returns how many.
    @inlinable
    static func pieces(ofBlock block: Int, order: _HandOutOrder, refinement: _TileRefinement,
                       into pieces: UnsafeMutableBufferPointer<_Piece>) -> Int {
        let tiling = order.tiling, tiles = tiling.tiles(ofBlock: order.block(block).block)
        let first = order.firstPosition(ofBlock: block)
        var count = 0
        for tile in tiles.reversed() {
            let level = refinement.level(atPosition: first + tiles.upperBound - 1 - tile)
            let rows = tiling.rows(ofTile: tile, length: order.shape.queryLength), height = refinement.pieceRows(atLevel: level)
            var row = rows.lowerBound
            while row < rows.upperBound {
                pieces[count].firstRow = row
                pieces[count].rows = Swift.min(height, rows.upperBound - row)
                pieces[count].level = level
                (row, count) = (row + height, count + 1)
            }
        }
        return count
    }

    /// Fills the (head, piece) units of `item` in a fixed order (piece-major, heads of the group inside),
    /// each with its rows' place in the item's running state (the units' rows one after another), and
    /// returns how many; `pieces` is room for ``maxPieces``.
    @inlinable
    func units(of item: _WorkItem, into units: UnsafeMutableBufferPointer<_QueryUnit>, pieces: UnsafeMutableBufferPointer<_Piece>) -> Int {
        let count = Self.pieces(ofBlock: item.block, order: order, refinement: refinement, into: pieces)
        let group = shape.groupSize, end = Swift.min(count, item.firstPiece + Swift.min(item.pieceCount, count))
        var n = 0, stateRow = 0
        for p in item.firstPiece..<end {
            for g in 0..<group {
                units[n].head = item.kvHead * group + g
                units[n].firstRow = pieces[p].firstRow
                units[n].rows = pieces[p].rows
                units[n].stateRow = stateRow
                (stateRow, n) = (stateRow + pieces[p].rows, n + 1)
            }
        }
        return n
    }
}
