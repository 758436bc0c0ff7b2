import CSDPAKernels
import Dispatch
import Foundation

/// Tile sizes for one fused-attention problem, chosen from the head dimensions
/// (philipturner/metal-flash-attention's "kernel descriptor"): they depend only
/// on the shape, never on the thread count, so the result is bit-identical at any count.
@usableFromInline
package struct _FusedTiling {
    /// Query rows per tile (`Br`); a multiple of the 6-row register tile where possible.
    @usableFromInline var queryRows: Int
    /// Keys per tile (`Bc`).
    @usableFromInline var keyColumns: Int
    /// Consecutive query tiles in one work item: each packed Kᵀ tile serves all of them (and every
    /// query head of a GQA group), so the transpose is paid once per this many tiles.
    @usableFromInline var tilesPerItem: Int
    /// Independent key ranges per split work item, merged through their log-sum-exp.
    @usableFromInline package var keySplits: Int
    /// How many of the last work items (in hand-out order) run as ``keySplits`` key ranges each:
    /// every item when there are too few to share out, else a few at the end, so the cores finish
    /// together on small pieces instead of one waiting for the other's last whole item.
    @usableFromInline package var splitItems: Int
    /// Query tiles of one head, and groups of ``tilesPerItem`` of them (the last may hold fewer).
    @usableFromInline var queryTiles: Int, queryBlocks: Int

    /// Up to this many query rows (`L`), the keys are read as stored rather than through a packed Kᵀ:
    /// below one 6-row register tile the transpose costs more than the product it feeds.
    @usableFromInline static var directRows: Int { 4 }

    @usableFromInline
    package init(_ shape: AttentionShape) {
        // Measured on Zen 3 (see RFC.md): 128 keys keep Kᵀ and V tiles in L1/L2 up to E = 64; 64 beyond.
        keyColumns = shape.headDim <= 64 ? 128 : 64
        // The running outputs of one work item (heads of the group x its query rows x Ev floats)
        // must stay cache-resident: about 128 KiB.
        let perRow = Swift.max(1, shape.groupSize * Swift.max(shape.valueHeadDim, 16))
        let rows = Swift.min(96, Swift.max(6, (32_768 / perRow) / 6 * 6))
        // Balanced tiles: L = 512 as 6 tiles of 90 rows (the last 62), not 5 of 96 and a ragged 32.
        let tiles = Swift.max(1, (shape.queryLength + rows - 1) / rows)
        let balanced = ((shape.queryLength + tiles - 1) / tiles + 5) / 6 * 6
        queryRows = Swift.max(1, Swift.min(rows, balanced, shape.queryLength))
        // Up to 4 query tiles per item while the outputs fit and 16 items remain to share out.
        queryTiles = (shape.queryLength + queryRows - 1) / queryRows
        let heads = shape.batch * shape.keyValueHeads
        let byCache = 32_768 / (perRow * queryRows), byWork = heads * queryTiles / 16
        tilesPerItem = Swift.max(1, Swift.min(4, byCache, byWork, queryTiles))
        queryBlocks = (queryTiles + tilesPerItem - 1) / tilesPerItem
        // Too few items to keep the cores busy (decoding, short prompts): split the keys of every
        // item, at least 4 tiles per split. Otherwise split the last few items' keys, up to 4 ways,
        // so the threads end on small pieces: at L = 512, S = 2048 (16 items) the two threads
        // finished 0.7–5.5 % of the call apart on average (up to 10.8 % at the 90th percentile),
        // one waiting for the other's last item; 0.3–1.7 % with the split. Fixed by the shape alone.
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

/// A float32 view of one input: a base pointer into storage and element strides `[B, H, S, E]`
/// (the last one 1). Half-precision inputs keep their storage; the kernel converts tiles.
@usableFromInline
struct _InputView: @unchecked Sendable {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let dtype: DType
    @usableFromInline let strides: [Int]

    @usableFromInline
    init(_ t: Tensor) throws {
        // A [H, L, E] input is a [1, H, L, E] one; a strided last dimension is copied once.
        var t = t.rank == 3 ? t._unsqueezed(at: 0) : t
        if t.strides[3] != 1 && t.shape[3] > 1 { t = try t.contiguous() }
        base = UnsafeRawPointer(t._storage.bytes) + t._offset * t.dtype.byteWidth
        dtype = t.dtype
        strides = t.strides
        _keepAlive = t._storage
    }
    @usableFromInline let _keepAlive: _TensorStorage

    /// Element offset of row `row` of head `head` in batch `batch`.
    @inlinable
    func offset(batch: Int, head: Int, row: Int) -> Int {
        batch * strides[0] + head * strides[1] + row * strides[2]
    }
}

/// One query head's rows in a work item: a query tile of one head of the GQA group.
@usableFromInline
struct _QueryUnit {
    @usableFromInline var head = 0
    @usableFromInline var firstRow = 0
    @usableFromInline var rows = 0
    /// The rows as float32 (the input itself, or converted half-precision rows) and their stride.
    @usableFromInline var q: UnsafePointer<Float>? = nil
    @usableFromInline var ldq = 0
    @usableFromInline var visibility = TileVisibility.empty

    @inlinable init() {}

    @inlinable var queries: Range<Int> { firstRow..<(firstRow + rows) }
}

/// The flash-attention forward kernel: Q tiles against K/V tiles with an online softmax,
/// float32 accumulation, each output row written once.
///
/// Generic over the bias, so each bias type gets its own specialization: empty tiles are
/// skipped, fully visible tiles of pure masks do no bias work, partial ones call the bias's
/// tile `apply`. Work items are (batch, key/value head, a few consecutive query tiles): every
/// query tile of the item, for every query head of the GQA group, runs against a packed K/V
/// tile before the next one is packed. Extra memory is per thread, O(tile), allocated before the
/// threads start so that memory the system cannot give is an error, not an abort.
@inlinable
func _fusedAttention<Modifier: _ScoreModifier>(
    query: Tensor, key: Tensor, value: Tensor, shape: AttentionShape, modifier: Modifier, options: AttentionOptions
) throws -> _AttentionResult {
    let (B, H, Hkv, L, S) = (shape.batch, shape.queryHeads, shape.keyValueHeads, shape.queryLength, shape.keyLength)
    let (E, Ev, group) = (shape.headDim, shape.valueHeadDim, shape.groupSize)
    let output = try Tensor(_zeros: shape.outputShape, dtype: query.dtype, argument: "output")
    let logSumExp = try Tensor(_zeros: Array(shape.outputShape.dropLast()), dtype: .float32, argument: "logSumExp")
    guard B * H * L > 0 else { return _AttentionResult(output: output, logSumExp: logSumExp) }

    let q = try _InputView(query), k = try _InputView(key), v = try _InputView(value)
    let tiling = _FusedTiling(shape)
    let (Br, Bc, splits, splitItems) = (tiling.queryRows, tiling.keyColumns, tiling.keySplits, tiling.splitItems)
    let (queryTiles, queryBlocks, tilesPerItem) = (tiling.queryTiles, tiling.queryBlocks, tiling.tilesPerItem)
    let maxUnits = tilesPerItem * group
    // Items 0..<wholeItems are base items run whole; each base item after them is `splits` items.
    let baseItems = B * Hkv * queryBlocks
    let wholeItems = baseItems - splitItems
    let items = wholeItems + splitItems * splits
    let threads = Swift.min(SDPAThreads.effectiveCount, items)
    let scale = Float(options.resolvedScale(headDim: E))
    // Row strides of the scratch tiles: multiples of 8 floats, off large powers of two.
    let ldkt = (Bc + 7) / 8 * 8, lds = ldkt, ldo = Swift.max(8, (Ev + 7) / 8 * 8)
    let tilesPerSplit = ((S + Bc - 1) / Bc + splits - 1) / splits
    let stateFloats = maxUnits * Br * (ldo + 2)  // acc, rowMax, rowSum of one item
    let writer = _OutputWriter(output: output, logSumExp: logSumExp, shape: shape)
    // Per-thread scratch, reused by every item a thread runs: one allocation per thread, carved into
    // 64-byte aligned tiles (a small call would otherwise spend more time in malloc than computing).
    func padded(_ n: Int) -> Int { (n + 15) / 16 * 16 }
    let ktSize = padded(Swift.max(1, E * ldkt)), scoresSize = padded(Br * lds), vSize = padded(Bc * Ev)
    let stateSize = wholeItems > 0 ? padded(stateFloats) : 0
    let qSize = q.dtype == .float32 ? 0 : padded(maxUnits * Br * E), vTileSize = v.dtype == .float32 ? 0 : vSize
    let scratchFloats = ktSize + scoresSize + vSize + stateSize + qSize + vTileSize + padded(Br)
    // Sized from E and Ev: checked, so that a head dimension too large for the tiles is an error.
    let scratchBytes = _checkedProduct(4, threads, scratchFloats) ?? .max
    try _checkAllocation(byteCount: scratchBytes, for: "the fused kernel's scratch (E = \(E), Ev = \(Ev), \(threads) threads)")
    // Split-KV partial states of the split items, merged in split order afterwards.
    let partialBytes = _checkedProduct(4, splitItems, splits, stateFloats) ?? .max
    try _checkAllocation(byteCount: partialBytes, for: "the fused kernel's split-KV partial results")
    let scratchStorage = try _TensorStorage(byteCount: scratchBytes, for: "the fused kernel's scratch", zeroed: false)
    let partialStorage = splitItems > 0
        ? try _TensorStorage(byteCount: partialBytes, for: "the fused kernel's split-KV partial results", zeroed: false) : nil
    let partialBase = _SendablePointer(partialStorage.map { $0.bytes.bindMemory(to: Float.self, capacity: splitItems * splits * stateFloats) })
    let scratchBase = _SendablePointer(scratchStorage.bytes.bindMemory(to: Float.self, capacity: threads * scratchFloats))
    let scratchSlots = _WorkQueue(count: threads)

    // Items taken one after another share K and V (query blocks of one head), or the mask rows of
    // a mask broadcast over heads (heads of one query block: +2.5–7.5 % on an [L, S] mask).
    let headsFastest = modifier.sharesRowsAcrossHeads
    // A query tile of at most `_FusedTiling.directRows` rows (decoding) reads the keys as stored: packing
    // Kᵀ for one query row took 46 % of a decoding call (H = 8, S = 4096), the product it fed 11 %.
    let readsKeysDirectly = L <= _FusedTiling.directRows
    let keyKind = k.dtype == .float16 ? SDPA_ELEMENT_F16 : k.dtype == .bfloat16 ? SDPA_ELEMENT_BF16 : SDPA_ELEMENT_F32
    /// The (head, query tile) units of the item `base` (splits aside), in a fixed order.
    @Sendable func units(ofItem base: Int, into units: inout [_QueryUnit]) -> (batch: Int, kvHead: Int, count: Int) {
        let (b, kvHead, block) = headsFastest
            ? (base / (Hkv * queryBlocks), base % Hkv, base / Hkv % queryBlocks)
            : (base / (Hkv * queryBlocks), base / queryBlocks % Hkv, base % queryBlocks)
        let firstTile = block * tilesPerItem
        let count = Swift.min(tilesPerItem, queryTiles - firstTile) * group
        for u in 0..<count {
            let q0 = (firstTile + u / group) * Br
            units[u].head = kvHead * group + u % group
            units[u].firstRow = q0
            units[u].rows = Swift.min(Br, L - q0)
        }
        return (b, kvHead, count)
    }

    let queue = _WorkQueue(count: items)
    _parallelFor(threads) {
        // Each run of this closure takes a slot of the scratch of its own; a run beyond `threads` (a
        // helper that joins late) finds none left and leaves the items to the others.
        guard let slot = scratchSlots.next() else { return }
        let scratch = scratchBase.pointer! + slot * scratchFloats
        let kt = scratch, scores = kt + ktSize, vFinite = scores + scoresSize  // Kᵀ, scores, finite V copy
        let ownState = stateSize > 0 ? vFinite + vSize : nil                    // running state of one item
        let qTile = qSize > 0 ? vFinite + vSize + stateSize : nil               // converted Q rows
        let vTile = vTileSize > 0 ? vFinite + vSize + stateSize + qSize : nil   // converted V rows
        let tileMax = vFinite + vSize + stateSize + qSize + vTileSize           // row maxima of a score tile
        var unit = [_QueryUnit](repeating: _QueryUnit(), count: maxUnits)

        while let item = queue.next() {
            // A whole item (split nil) keeps its state in the thread's scratch; a split one in `partials`.
            let split: Int? = item < wholeItems ? nil : (item - wholeItems) % splits
            let base = item < wholeItems ? item : wholeItems + (item - wholeItems) / splits
            let (b, kvHead, unitCount) = units(ofItem: base, into: &unit)
            let state = split == nil ? ownState! : partialBase.pointer! + (item - wholeItems) * stateFloats
            let acc = state, rowMax = state + maxUnits * Br * ldo, rowSum = rowMax + maxUnits * Br

            // Query rows of each unit, as float32 pointers with a row stride.
            for u in 0..<unitCount {
                let offset = q.offset(batch: b, head: unit[u].head, row: unit[u].firstRow)
                if let qTile {
                    let dst = qTile + u * Br * E
                    for r in 0..<unit[u].rows { _convertRow(q, offset: offset + r * q.strides[2], count: E, into: dst + r * E) }
                    (unit[u].q, unit[u].ldq) = (UnsafePointer(dst), E)
                } else {
                    (unit[u].q, unit[u].ldq) = (q.base.assumingMemoryBound(to: Float.self) + offset, q.strides[2])
                }
            }
            rowMax.update(repeating: -.infinity, count: unitCount * Br)
            rowSum.update(repeating: 0, count: unitCount * Br)
            acc.update(repeating: 0, count: unitCount * Br * ldo)

            var k0 = (split ?? 0) * tilesPerSplit * Bc
            let kEnd = split == nil ? S : Swift.min(S, k0 + tilesPerSplit * Bc)
            while k0 < kEnd {
                let cols = Swift.min(Bc, kEnd - k0)
                let keys = k0..<(k0 + cols)
                defer { k0 += cols }
                var anyVisible = false, anyPartial = false
                for u in 0..<unitCount {
                    let visibility = modifier.classify(batch: b, head: unit[u].head, queries: unit[u].queries, keys: keys)
                    unit[u].visibility = visibility
                    anyVisible = anyVisible || visibility != .empty
                    anyPartial = anyPartial || visibility == .partial
                }
                if !anyVisible { continue }

                let kOffset = k.offset(batch: b, head: kvHead, row: k0)
                // Kᵀ packed once for every unit of the item (decoding reads the keys as stored instead).
                switch readsKeysDirectly ? nil : k.dtype {
                case nil: break
                case .float16:
                    sdpa_pack_kt_f16(Int32(cols), Int32(E), k.base.assumingMemoryBound(to: UInt16.self) + kOffset, k.strides[2], kt, ldkt)
                case .bfloat16:
                    sdpa_pack_kt_bf16(Int32(cols), Int32(E), k.base.assumingMemoryBound(to: UInt16.self) + kOffset, k.strides[2], kt, ldkt)
                default:
                    sdpa_pack_kt_f32(Int32(cols), Int32(E), k.base.assumingMemoryBound(to: Float.self) + kOffset, k.strides[2], kt, ldkt)
                }
                let vOffset = v.offset(batch: b, head: kvHead, row: k0)
                let vRows: UnsafePointer<Float>, ldv: Int
                if let vTile {
                    for c in 0..<cols { _convertRow(v, offset: vOffset + c * v.strides[2], count: Ev, into: vTile + c * Ev) }
                    (vRows, ldv) = (UnsafePointer(vTile), Ev)
                } else {
                    (vRows, ldv) = (v.base.assumingMemoryBound(to: Float.self) + vOffset, v.strides[2])
                }

                // A masked key's probability is exactly 0, but 0 * NaN is NaN: a partial tile whose values
                // hold NaN or infinity takes the exact path, so a masked key never reaches the output.
                let exactValues = anyPartial && _containsNonFinite(rows: cols, columns: Ev, vRows, stride: ldv)

                for u in 0..<unitCount where unit[u].visibility != .empty {
                    let rows = unit[u].rows
                    // Row maxima come from the Q·Kᵀ registers unless the bias changes the scores after.
                    let biased = unit[u].visibility == .partial || Modifier.changesScores
                    var maxima = biased ? nil : tileMax, applyBias = biased
                    if readsKeysDirectly {
                        sdpa_qk_tile_direct(Int32(rows), Int32(cols), Int32(E), unit[u].q, unit[u].ldq,
                                            keyKind, k.base + kOffset * k.dtype.byteWidth, k.strides[2], scale, scores, lds, maxima)
                    } else if biased, let mask = modifier.tileMask(batch: b, head: unit[u].head, queries: unit[u].queries, keys: keys) {
                        // A dense mask goes on in the Q·Kᵀ registers, and the maxima are taken after it.
                        (maxima, applyBias) = (tileMax, false)
                        sdpa_qk_tile_masked(Int32(rows), Int32(cols), Int32(E), unit[u].q, unit[u].ldq, kt, ldkt, scale, scores, lds,
                                            mask.kind, mask.base, mask.rowStride, maxima)
                    } else {
                        sdpa_qk_tile(Int32(rows), Int32(cols), Int32(E), unit[u].q, unit[u].ldq, kt, ldkt, scale, scores, lds, maxima)
                    }
                    if applyBias {
                        modifier.apply(to: scores, stride: lds, batch: b, head: unit[u].head, queries: unit[u].queries, keys: keys)
                    }
                    let o = acc + u * Br * ldo
                    sdpa_softmax_tile(Int32(rows), Int32(cols), scores, lds, maxima, rowMax + u * Br, rowSum + u * Br, o, ldo, Int32(Ev))
                    if exactValues && unit[u].visibility == .partial {
                        _accumulateVisible(rows: rows, keys: cols, Ev, scores, lds, vRows, ldv, o, ldo, finiteCopy: vFinite)
                    } else {
                        sdpa_pv_tile(Int32(rows), Int32(cols), Int32(Ev), scores, lds, vRows, ldv, o, ldo)
                    }
                }
            }
            if split == nil {
                for u in 0..<unitCount {
                    writer.write(batch: b, head: unit[u].head, firstRow: unit[u].firstRow, rows: unit[u].rows,
                                 acc: acc + u * Br * ldo, ldo: ldo, rowMax: rowMax + u * Br, rowSum: rowSum + u * Br)
                }
            }
        }
    }
    withExtendedLifetime(scratchStorage) {}
    guard let partialStorage else { return writer.result }

    // Merge the splits of each base item in split order, so the bits do not depend on threads.
    let mergeQueue = _WorkQueue(count: splitItems)
    _parallelFor(Swift.min(threads, splitItems)) {
        var unit = [_QueryUnit](repeating: _QueryUnit(), count: maxUnits)
        while let index = mergeQueue.next() {
            let (b, _, unitCount) = units(ofItem: wholeItems + index, into: &unit)
            let first = partialBase.pointer! + index * splits * stateFloats
            let acc = first, rowMax = first + maxUnits * Br * ldo, rowSum = rowMax + maxUnits * Br
            for s in 1..<splits {
                let other = first + s * stateFloats
                let otherMax = other + maxUnits * Br * ldo, otherSum = otherMax + maxUnits * Br
                for r in 0..<(unitCount * Br) {
                    let m = Swift.max(rowMax[r], otherMax[r])
                    if m == -.infinity { continue }
                    let (a, c) = (Foundation.exp(rowMax[r] - m), Foundation.exp(otherMax[r] - m))
                    rowSum[r] = rowSum[r] * a + otherSum[r] * c
                    let o = acc + r * ldo, p = other + r * ldo
                    for d in 0..<Ev { o[d] = o[d] * a + p[d] * c }
                    rowMax[r] = m
                }
            }
            for u in 0..<unitCount {
                writer.write(batch: b, head: unit[u].head, firstRow: unit[u].firstRow, rows: unit[u].rows,
                             acc: acc + u * Br * ldo, ldo: ldo, rowMax: rowMax + u * Br, rowSum: rowSum + u * Br)
            }
        }
    }
    withExtendedLifetime(partialStorage) {}
    return writer.result
}

/// Hands out work items `0..<count` one at a time to whichever thread asks first. Dynamic rather
/// than a fixed stride per thread: if the pool starts a worker late (or runs two on one core), the
/// others take its items instead of waiting for it. Which thread computes an item never changes
/// its bits, so the result stays independent of the schedule.
@usableFromInline
final class _WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var nextItem = 0
    private let count: Int

    @usableFromInline
    init(count: Int) { self.count = count }

    @usableFromInline
    func next() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard nextItem < count else { return nil }
        nextItem += 1
        return nextItem - 1
    }
}

/// Runs `body` on up to `count` threads at once, the calling thread included; each run takes its work
/// from a queue the runs share, so how many runs there are never changes the result. A single thread
/// runs inline, since waking any worker costs more than a small attention call; otherwise the helpers
/// of ``_WorkerPool``, which stay awake for a moment between calls, or GCD's.
@usableFromInline
func _parallelFor(_ count: Int, _ body: @Sendable () -> Void) {
    if count == 1 { return body() }
    #if canImport(Synchronization)
    if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *), _WorkerPool.shared.run(threads: count, body) { return }
    #endif
    DispatchQueue.concurrentPerform(iterations: count) { _ in body() }
}

/// Normalizes finished rows and writes them, and their log-sum-exp, once, in the output dtype.
@usableFromInline
struct _OutputWriter: @unchecked Sendable {
    @usableFromInline let result: _AttentionResult
    @usableFromInline let shape: AttentionShape

    @usableFromInline
    init(output: Tensor, logSumExp: Tensor, shape: AttentionShape) {
        result = _AttentionResult(output: output, logSumExp: logSumExp)
        self.shape = shape
    }

    @usableFromInline
    func write(
        batch b: Int, head h: Int, firstRow q0: Int, rows: Int,
        acc: UnsafeMutablePointer<Float>, ldo: Int, rowMax: UnsafePointer<Float>, rowSum: UnsafePointer<Float>
    ) {
        let Ev = shape.valueHeadDim
        sdpa_normalize_tile(Int32(rows), Int32(Ev), acc, ldo, rowSum)
        let rowIndex = (b * shape.queryHeads + h) * shape.queryLength + q0
        let lse = result.logSumExp._storage.bytes.assumingMemoryBound(to: Float.self)
        let bytes = result.output._storage.bytes
        for r in 0..<rows {
            lse[rowIndex + r] = rowSum[r] == 0 ? -.infinity : rowMax[r] + Foundation.log(rowSum[r])
            let src = acc + r * ldo, dst = (rowIndex + r) * Ev
            switch result.output.dtype {
            case .float16: sdpa_convert_f32_to_f16(Ev, src, bytes.assumingMemoryBound(to: UInt16.self) + dst)
            case .bfloat16: sdpa_convert_f32_to_bf16(Ev, src, bytes.assumingMemoryBound(to: UInt16.self) + dst)
            default: (bytes.assumingMemoryBound(to: Float.self) + dst).update(from: src, count: Ev)
            }
        }
    }
}

/// Whether a `rows x columns` float32 block holds NaN or an infinity (exponent bits all ones).
@usableFromInline
func _containsNonFinite(rows: Int, columns: Int, _ p: UnsafePointer<Float>, stride: Int) -> Bool {
    let exponent = SIMD8<UInt32>(repeating: 0x7F80_0000)
    for r in 0..<rows {
        let row = UnsafeRawPointer(p + r * stride)
        var c = 0
        while c + 8 <= columns {
            let bits = row.loadUnaligned(fromByteOffset: 4 * c, as: SIMD8<UInt32>.self)
            if any((bits & exponent) .== exponent) { return true }
            c += 8
        }
        while c < columns {
            if !p[r * stride + c].isFinite { return true }
            c += 1
        }
    }
    return false
}

/// `O += P V` where a key with probability exactly 0 contributes exactly nothing, even if its value
/// is NaN or infinite: the product runs on a copy with non-finite values zeroed (so every finite
/// output keeps the bits the fast path gives), then each non-finite value is added to the rows that see it.
@usableFromInline
func _accumulateVisible(
    rows: Int, keys: Int, _ Ev: Int, _ p: UnsafePointer<Float>, _ ldp: Int,
    _ v: UnsafePointer<Float>, _ ldv: Int, _ o: UnsafeMutablePointer<Float>, _ ldo: Int,
    finiteCopy: UnsafeMutablePointer<Float>
) {
    var nonFinite = [(key: Int, column: Int)]()
    for c in 0..<keys {
        for d in 0..<Ev {
            let x = v[c * ldv + d]
            finiteCopy[c * Ev + d] = x.isFinite ? x : 0
            if !x.isFinite { nonFinite.append((c, d)) }
        }
    }
    sdpa_pv_tile(Int32(rows), Int32(keys), Int32(Ev), p, ldp, finiteCopy, Ev, o, ldo)
    for (c, d) in nonFinite {
        for r in 0..<rows where p[r * ldp + c] != 0 {
            o[r * ldo + d] += p[r * ldp + c] * v[c * ldv + d]
        }
    }
}

/// Converts `count` half-precision elements of `view` starting at `offset` to float32.
@usableFromInline
func _convertRow(_ view: _InputView, offset: Int, count: Int, into dst: UnsafeMutablePointer<Float>) {
    let src = view.base.assumingMemoryBound(to: UInt16.self) + offset
    if view.dtype == .float16 {
        sdpa_convert_f16_to_f32(count, src, dst)
    } else {
        sdpa_convert_bf16_to_f32(count, src, dst)
    }
}
