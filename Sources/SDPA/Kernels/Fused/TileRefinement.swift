/// How finely each query tile is cut, by its place in the hand-out order: the part of the work
/// decomposition that fixes the bits, so a function of the shape alone, never of the thread count.
///
/// The tiles handed out first run whole; toward the end they are cut, level by level, into pieces of
/// half the rows (a multiple of the register tile), then their keys into 2, 4, 8… ranges merged through
/// the log-sum-exp: small pieces at the end let many threads finish together (FlashDecoding splits the
/// keys of a decoding step the same way). Level `ℓ` is used from the first position where any coarser
/// piece would break the greedy schedule's bound at ``designThreads`` threads: a list scheduler that
/// hands out a piece of cost `p` when `R` is left (the piece included) finishes within
/// `(1 + slack) · W / T` as long as every `p ≤ (slack · W + R) / T`. Costs here are those of fully
/// visible tiles (``_WorkCost/piece(rows:keyTiles:)``); a level is allowed only while what it adds
/// (another unit's fixed costs, or another split's setup and merge) stays under ``overheadShare`` of
/// the piece, so a small problem is not cut into pieces that cost more than they balance.
@usableFromInline
package struct _TileRefinement: Sendable {
    /// The thread count the cuts are sized for.
    @usableFromInline static var designThreads: Int { _maximumThreads }
    /// The bound's slack: the schedule may end a quarter of `W / T` after the ideal.
    @usableFromInline static var slack: Double { 0.25 }
    /// The most a finer level may add to a piece's cost.
    @usableFromInline static var overheadShare: Double { 0.01 }

    @usableFromInline let queryRows: Int, registerRows: Int, keyTiles: Int
    /// Halvings of the rows (levels `1...rowLevels`); the levels after them split the keys.
    @usableFromInline package let rowLevels: Int
    /// The first position (in hand-out order) of each level `1...`, ascending; empty when nothing is cut.
    @usableFromInline package let levelStarts: [Int]

    @usableFromInline
    package init(shape: AttentionShape, tiling: _FusedTiling, cost: _WorkCost) {
        (queryRows, registerRows, keyTiles) = (tiling.queryRows, tiling.registerRows, tiling.keyTiles)
        // The finest levels the overhead allows: halve the rows while the piece stays a register tile or
        // more and the extra unit is cheap, then split the smallest piece's keys 2, 4, 8… ways.
        var rowLevels = 0
        while true {
            let rows = Self.rows(queryRows, halved: rowLevels + 1, registerRows: registerRows)
            guard rows < Self.rows(queryRows, halved: rowLevels, registerRows: registerRows), rows >= registerRows,
                  cost.extraPiece(keyTiles: keyTiles) <= Self.overheadShare * cost.piece(rows: rows, keyTiles: keyTiles)
            else { break }
            rowLevels += 1
        }
        let smallest = Self.rows(queryRows, halved: rowLevels, registerRows: registerRows)
        var levels = rowLevels
        while true {
            let perSplit = Self.tilesPerSplit(keyTiles, splitLevel: levels + 1 - rowLevels)
            guard perSplit < Self.tilesPerSplit(keyTiles, splitLevel: levels - rowLevels),
                  cost.extraSplit(rows: smallest) <= Self.overheadShare * cost.piece(rows: smallest, keyTiles: perSplit)
            else { break }
            levels += 1
        }
        self.rowLevels = rowLevels
        // Level ℓ starts where level ℓ - 1 breaks the bound: (N - j) · p_tile < T · p(ℓ - 1) - slack · W.
        let tiles = shape.batch * shape.keyValueHeads * tiling.queryTiles
        let tileCost = cost.piece(rows: queryRows, keyTiles: keyTiles)
        let total = Double(tiles) * tileCost, threads = Double(Self.designThreads)
        var starts = [Int]()
        for level in stride(from: 1, through: levels, by: 1) {
            let coarser = cost.piece(rows: Self.rows(queryRows, halved: Swift.min(level - 1, rowLevels), registerRows: registerRows),
                                     keyTiles: Self.tilesPerSplit(keyTiles, splitLevel: Swift.max(0, level - 1 - rowLevels)))
            let short = (threads * coarser - Self.slack * total) / tileCost
            guard short > 0 else { break }
            let start = Swift.max(0, tiles - Int(short.rounded(.up)) + 1, starts.last ?? 0)
            if start >= tiles { break }
            starts.append(start)
        }
        levelStarts = starts
    }

    /// The refinement of `shape` with float32 inputs.
    package init(_ shape: AttentionShape) {
        let tiling = _FusedTiling(shape)
        self.init(shape: shape, tiling: tiling, cost: _WorkCost(shape: shape, tiling: tiling, elementBytes: 4))
    }

    /// `rows` halved `times` times, each half rounded up to a multiple of `registerRows`.
    @inlinable
    static func rows(_ rows: Int, halved times: Int, registerRows: Int) -> Int {
        var rows = rows
        for _ in 0..<times { rows = ((rows + 1) / 2 + registerRows - 1) / registerRows * registerRows }
        return rows
    }

    /// Key tiles per range when `keyTiles` split `2^level` ways.
    @inlinable
    static func tilesPerSplit(_ keyTiles: Int, splitLevel level: Int) -> Int {
        let ranges = 1 << Swift.min(level, 62)
        return (keyTiles + ranges - 1) / ranges
    }

    /// The level of the tile at hand-out position `position`.
    @inlinable
    func level(atPosition position: Int) -> Int {
        var level = 0
        while level < levelStarts.count && levelStarts[level] <= position { level += 1 }
        return level
    }

    /// Rows per piece at `level`.
    @inlinable
    package func pieceRows(atLevel level: Int) -> Int {
        Self.rows(queryRows, halved: Swift.min(level, rowLevels), registerRows: registerRows)
    }

    /// Key tiles per key range at `level` (all of them below the split levels).
    @inlinable
    package func tilesPerSplit(atLevel level: Int) -> Int {
        Self.tilesPerSplit(keyTiles, splitLevel: Swift.max(0, level - rowLevels))
    }

    /// Key ranges the keys split into at `level` (1 below the split levels).
    @inlinable
    func keySplits(atLevel level: Int) -> Int {
        let perSplit = tilesPerSplit(atLevel: level)
        return perSplit >= keyTiles ? 1 : (keyTiles + perSplit - 1) / perSplit
    }

    /// Whether some tile is cut into pieces of fewer rows.
    package var cutsRows: Bool { rowLevels > 0 && !levelStarts.isEmpty }

    /// Whether some tile's keys are split (so some items merge partial results).
    package var splitsKeys: Bool { levelStarts.count > rowLevels }
}
