import CSDPAKernels

/// How the fused backward pass divides its work: key tiles and query tiles, each (batch, key/value
/// head) pair's keys cut into chunks, and the work items that own one chunk of one pair.
///
/// A work item owns the dK and dV rows of its chunk (summed over the query heads of the group in a
/// fixed order) and sweeps every query tile of the group, so those need no reduction. dQ rows are
/// shared by every chunk of a pair: chunk 0 adds into the call's dQ, each other chunk into a
/// partial of its own, and the partials are added to dQ in chunk order once the items are done.
/// Everything here is a function of the shape (and the kernel family's register tile), never of the
/// thread count, so the result is bit-identical at any count.
///
/// Items run in rounds: usually one. When items of different pairs would add into the same
/// elements of a float mask's gradient (a mask broadcast over batches or over key/value heads),
/// each round holds only pairs that do not share mask elements, and rounds run one after another.
struct _BackwardSchedule: Sendable {
    let shape: AttentionShape
    /// Query rows per tile (`Br`), a multiple of the family's register-tile rows where possible.
    let queryRows: Int
    /// Keys per tile (`Bc`).
    let keyColumns: Int
    let queryTiles: Int, keyTiles: Int
    /// Chunks per pair, and key tiles per chunk (the last chunk may hold fewer).
    let chunks: Int, tilesPerChunk: Int
    /// Whether pairs of different batches, or of different key/value heads, run in different rounds.
    let batchesInRounds: Bool, headsInRounds: Bool
    /// Pairs per round and rounds.
    let pairsPerRound: Int, rounds: Int

    /// Work items enough to share out among the cores: the pairs' keys are chunked until there are
    /// about this many, each chunk costing one more partial dQ of the pair's rows.
    static var targetItems: Int { 16 }
    /// At most this many chunks per pair: the partial dQ rows they need stay within a few times dQ.
    static var maxChunks: Int { 8 }

    /// - Parameter maskSharing: for a float mask whose gradient is taken, whether the mask is the same
    ///   for every batch, for every head, for every key (broadcast along those dimensions).
    init(shape: AttentionShape, maskSharing: (batches: Bool, heads: Bool, keys: Bool)? = nil) {
        self.shape = shape
        var info = sdpa_kernel_info()
        sdpa_kernels_info(&info)
        let mr = Int(info.tile_rows)
        // 128 keys while the key tile's K, V, dK and dV stay in L2 (E ≤ 64), 64 beyond.
        keyColumns = Swift.max(shape.headDim, shape.valueHeadDim) <= 64 ? 128 : 64
        let rows = Swift.max(mr, 64 / mr * mr)
        let tiles = Swift.max(1, (shape.queryLength + rows - 1) / rows)
        // Balanced tiles: 100 rows as 2 of 54 and 46, not 60 and 40.
        let balanced = ((shape.queryLength + tiles - 1) / tiles + mr - 1) / mr * mr
        queryRows = Swift.max(1, Swift.min(rows, balanced, shape.queryLength))
        queryTiles = (shape.queryLength + queryRows - 1) / queryRows
        keyTiles = (shape.keyLength + keyColumns - 1) / keyColumns
        let sharing = maskSharing ?? (false, false, false)
        batchesInRounds = sharing.batches && shape.batch > 1
        headsInRounds = sharing.heads && shape.keyValueHeads > 1
        pairsPerRound = (batchesInRounds ? 1 : shape.batch) * (headsInRounds ? 1 : shape.keyValueHeads)
        rounds = pairsPerRound == 0 ? 0 : shape.batch * shape.keyValueHeads / pairsPerRound
        // A mask shared by every key gathers every chunk's gradient into one element per row: one chunk.
        let wanted = sharing.keys ? 1 : (Self.targetItems + Swift.max(1, pairsPerRound) - 1) / Swift.max(1, pairsPerRound)
        let chunkCount = Swift.max(1, Swift.min(wanted, Self.maxChunks, keyTiles))
        tilesPerChunk = Swift.max(1, (keyTiles + chunkCount - 1) / chunkCount)
        chunks = keyTiles == 0 ? 1 : (keyTiles + tilesPerChunk - 1) / tilesPerChunk
    }

    /// Whether the forward pass read the keys as stored (``_FusedTiling/readsKeysDirectly(_:)``), and so the
    /// scores are recomputed with its product.
    var readsKeysDirectly: Bool { _FusedTiling.readsKeysDirectly(shape) }

    /// Work items of one round.
    var itemsPerRound: Int { pairsPerRound * chunks }

    /// The item handed out `index`-th in round `round`: chunk-major, so the first chunks of every
    /// pair (under a causal mask, the ones with the most visible queries) go out first.
    func item(_ index: Int, round: Int) -> _BackwardItem {
        let (chunk, pair) = (index / pairsPerRound, index % pairsPerRound)
        let Hkv = shape.keyValueHeads
        let roundHeads = headsInRounds ? Hkv : 1, pairHeads = headsInRounds ? 1 : Hkv
        let batch = batchesInRounds ? round / roundHeads : pair / pairHeads
        let kvHead = headsInRounds ? round % roundHeads : pair % pairHeads
        let first = chunk * tilesPerChunk * keyColumns
        let keys = Swift.min(first, shape.keyLength)..<Swift.min(first + tilesPerChunk * keyColumns, shape.keyLength)
        return _BackwardItem(batch: batch, kvHead: kvHead, chunk: chunk, pairInRound: pair, keys: keys)
    }
}

/// One work item of the backward pass: one chunk of keys of one (batch, key/value head) pair,
/// against every query row of the pair's query heads.
struct _BackwardItem {
    let batch: Int, kvHead: Int
    /// The chunk's index among its pair's chunks; chunk 0 adds into dQ itself.
    let chunk: Int
    /// The pair's position in its round: where its partial dQ rows are.
    let pairInRound: Int
    let keys: Range<Int>
}
