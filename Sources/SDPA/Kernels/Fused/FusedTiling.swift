import CSDPAKernels

/// Tile sizes for one fused-attention problem, chosen from the head dimensions and the kernel
/// family's register tile (philipturner/metal-flash-attention's "kernel descriptor"): they depend only
/// on the shape and the family, never on the thread count, so the result is bit-identical at any count.
@usableFromInline
package struct _FusedTiling: Sendable {
    /// Query rows per tile (`Br`); a multiple of the kernel family's register-tile rows where possible.
    @usableFromInline var queryRows: Int
    /// Keys per tile (`Bc`).
    @usableFromInline var keyColumns: Int
    /// Consecutive query tiles in one work item: each packed key tile serves all of them (and every
    /// query head of a GQA group), so the packing is paid once per this many tiles.
    @usableFromInline var tilesPerItem: Int
    /// Independent key ranges per split work item, merged through their log-sum-exp.
    @usableFromInline package var keySplits: Int
    /// How many of the last work items (in hand-out order) run as ``keySplits`` key ranges each:
    /// every item when there are too few to share out, else a few at the end, so the cores finish
    /// together on small pieces instead of one waiting for the other's last whole item.
    @usableFromInline package var splitItems: Int
    /// Query tiles of one head, and groups of ``tilesPerItem`` of them (the last may hold fewer).
    @usableFromInline var queryTiles: Int, queryBlocks: Int

    /// Up to this many query rows (`L`), the keys are read as stored rather than packed: below one
    /// register tile the packing costs more than the product it feeds.
    @usableFromInline static var directRows: Int { 4 }

    @usableFromInline
    package init(_ shape: AttentionShape) {
        var info = sdpa_kernel_info()
        sdpa_kernels_info(&info)
        let mr = Int(info.tile_rows)
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
        // Up to 4 query tiles per item while the outputs fit and 16 items remain to share out.
        queryTiles = (shape.queryLength + queryRows - 1) / queryRows
        let heads = shape.batch * shape.keyValueHeads
        let byCache = 32_768 / (perRow * queryRows), byWork = heads * queryTiles / 16
        tilesPerItem = Swift.max(1, Swift.min(4, byCache, byWork, queryTiles))
        queryBlocks = (queryTiles + tilesPerItem - 1) / tilesPerItem
        // Too few items to keep the cores busy (decoding, short prompts): split the keys of every
        // item, at least 4 tiles per split. Otherwise split the last few items' keys, up to 4 ways,
        // so the threads end on small pieces (RFC.md, "The fused kernel"). Fixed by the shape alone.
        let items = heads * queryBlocks
        let keyTiles = (shape.keyLength + keyColumns - 1) / keyColumns
        if items < 16 {
            keySplits = Swift.max(1, Swift.min(16 / Swift.max(items, 1), keyTiles / 4))
            splitItems = keySplits > 1 ? items : 0
        } else {
            keySplits = Swift.max(1, Swift.min(4, keyTiles / 4))
            splitItems = keySplits > 1 ? Swift.min(4, items / 8) : 0
        }
    }
}
