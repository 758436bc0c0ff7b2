/// The order the fused kernel hands its work out in: blocks of ``_FusedTiling/tilesPerBlock`` query tiles
/// of one (batch, key/value head), and the position of every query tile in that order.
///
/// A head's blocks go out last rows first, and so do the tiles inside a block: under a causal mask the
/// last rows see the most keys, so the largest pieces of work go out first and the smallest last, the
/// order a list scheduler balances best (FlashAttention-3's schedulers take causal blocks the same way).
/// Blocks of one head follow one another, so the threads working side by side read the same K and V;
/// for a dense mask broadcast over heads (`headsFastest`) the heads of one block do instead, so they read
/// the same mask rows.
@usableFromInline
struct _HandOutOrder: Sendable {
    @usableFromInline let shape: AttentionShape
    @usableFromInline let tiling: _FusedTiling
    @usableFromInline let headsFastest: Bool

    @inlinable
    init(shape: AttentionShape, tiling: _FusedTiling, headsFastest: Bool) {
        (self.shape, self.tiling, self.headsFastest) = (shape, tiling, headsFastest)
    }

    /// Blocks in all: one per (batch, key/value head, block of query tiles).
    @inlinable var blocks: Int { shape.batch * shape.keyValueHeads * tiling.blocksPerHead }

    /// Query tiles in all: the positions are `0..<tiles`.
    @inlinable var tiles: Int { shape.batch * shape.keyValueHeads * tiling.queryTiles }

    /// The block handed out `index`-th: its batch, key/value head, and index among its head's blocks.
    @inlinable
    func block(_ index: Int) -> (batch: Int, kvHead: Int, block: Int) {
        let (heads, perHead) = (shape.keyValueHeads, tiling.blocksPerHead)
        let (batch, kvHead, rank) = headsFastest
            ? (index / (heads * perHead), index % heads, index / heads % perHead)
            : (index / (heads * perHead), index / perHead % heads, index % perHead)
        return (batch, kvHead, perHead - 1 - rank)
    }

    /// The position of the first tile handed out of block `index` (its last query tile); the block's
    /// tile `t` is at this position plus `last - t`.
    @inlinable
    func firstPosition(ofBlock index: Int) -> Int {
        let (batch, kvHead, block) = self.block(index)
        let (heads, tilesPerHead) = (shape.keyValueHeads, tiling.queryTiles)
        let tiles = tiling.tiles(ofBlock: block)
        // Tiles of the head's later blocks go out before this block's.
        let later = tilesPerHead - tiles.upperBound
        return headsFastest
            ? batch * heads * tilesPerHead + heads * later + kvHead * tiles.count
            : (batch * heads + kvHead) * tilesPerHead + later
    }
}
