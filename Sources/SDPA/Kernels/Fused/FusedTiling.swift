import CSDPAKernels

/// Tile sizes for one fused-attention problem, chosen from the head dimensions and the kernel
/// family's register tile (philipturner/metal-flash-attention's "kernel descriptor"), and the blocks of
/// query tiles from a core's L2: they depend only on the shape and the machine, never on the thread
/// count, so the result is bit-identical at any count.
@usableFromInline
package struct _FusedTiling: Sendable {
    /// Query rows per tile (`Br`); a multiple of the kernel family's register-tile rows where possible.
    @usableFromInline package var queryRows: Int
    /// Keys per tile (`Bc`).
    @usableFromInline var keyColumns: Int
    /// The kernel family's register-tile rows: pieces of a query tile are multiples of it.
    @usableFromInline var registerRows: Int
    /// Query tiles of one head, and key tiles.
    @usableFromInline package var queryTiles: Int, keyTiles: Int
    /// Consecutive query tiles in one block: a work item takes at most this many tiles' worth of
    /// pieces, and each packed key tile serves all of them (and every query head of a GQA group), so
    /// the packing is paid once per this many tiles.
    @usableFromInline package var tilesPerBlock: Int
    /// Blocks of ``tilesPerBlock`` query tiles per head (the last may hold fewer).
    @usableFromInline package var blocksPerHead: Int

    /// Up to this many query rows (`L`), the keys are read as stored rather than packed: below one
    /// register tile the packing costs more than the product it feeds.
    @usableFromInline static var directRows: Int { 4 }

    /// Whether a call of `shape` reads the keys as stored (decoding: at most ``directRows`` query rows) rather
    /// than packed. The forward pass decides by it, and the backward pass recomputes such a call's scores
    /// with the same product, so that `exp(S − lse)` gets the forward's bits of `S`.
    @inlinable static func readsKeysDirectly(_ shape: AttentionShape) -> Bool { shape.queryLength <= directRows }

    /// Whether a decoding tile's `P·V` prefetches the next key tile on this CPU (`sdpa_prefetches_next_tile`:
    /// not on Intel cores, where the burst stalls it); asked once per process.
    @usableFromInline package static let prefetchesNextTile: Bool = sdpa_prefetches_next_tile() != 0

    @usableFromInline
    package init(_ shape: AttentionShape) {
        var info = sdpa_kernel_info()
        sdpa_kernels_info(&info)
        let mr = Int(info.tile_rows)
        registerRows = mr
        // 128 keys keep the key and value tiles in L1/L2 up to E = 64; 64 beyond (RFC.md, "The fused kernel").
        keyColumns = shape.headDim <= 64 ? 128 : 64
        // The running outputs of one work item (heads of the group x its query rows x Ev floats)
        // must stay cache-resident: about 128 KiB.
        let perRow = Swift.max(1, shape.groupSize * Swift.max(shape.valueHeadDim, 16))
        let rows = Swift.min(96 / mr * mr, Swift.max(mr, (32_768 / perRow) / mr * mr))
        // Balanced tiles: L = 512 as 6 tiles of 90 rows (the last 62), not 5 of 96 and a ragged 32.
        let tiles = Swift.max(1, (shape.queryLength + rows - 1) / rows)
        let balanced = ((shape.queryLength + tiles - 1) / tiles + mr - 1) / mr * mr
        queryRows = Swift.max(1, Swift.min(rows, balanced, shape.queryLength))
        queryTiles = (shape.queryLength + queryRows - 1) / queryRows
        keyTiles = (shape.keyLength + keyColumns - 1) / keyColumns
        // Up to 4 query tiles per block while their running outputs take at most a quarter of a core's L2
        // (128 KiB of Zen 3's 512 KiB; E = 128 on a 2 MiB L2 then runs 4 tiles, not 2: RFC.md, metrics).
        // More than 4 leaves too few blocks for 64 threads (the scaling targets).
        let outputFloats = Swift.max(32_768, _CoreCache.l2Bytes / 16)
        let byCache = outputFloats / (perRow * queryRows)
        tilesPerBlock = Swift.max(1, Swift.min(4, byCache, queryTiles))
        blocksPerHead = (queryTiles + tilesPerBlock - 1) / tilesPerBlock
    }

    /// The query tiles of block `block` of a head.
    @inlinable
    func tiles(ofBlock block: Int) -> Range<Int> {
        (block * tilesPerBlock)..<Swift.min(queryTiles, (block + 1) * tilesPerBlock)
    }

    /// The rows of query tile `tile` in a query of `length` rows.
    @inlinable
    func rows(ofTile tile: Int, length: Int) -> Range<Int> {
        (tile * queryRows)..<Swift.min(length, (tile + 1) * queryRows)
    }
}
