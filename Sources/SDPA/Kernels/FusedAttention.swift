import CSDPAKernels
import Dispatch
import Foundation

/// Tile sizes for one fused-attention problem, chosen from the head dimensions
/// (philipturner/metal-flash-attention's "kernel descriptor"): they depend only
/// on the shape, never on the thread count, so the result is bit-identical at any count.
struct _FusedTiling {
    /// Query rows per tile (`Br`); a multiple of the 6-row register tile where possible.
    var queryRows: Int
    /// Keys per tile (`Bc`).
    var keyColumns: Int

    init(_ shape: AttentionShape) {
        // Measured on Zen 3 (see RFC.md): 128 keys keep Kᵀ and V tiles in L1/L2 up to E = 64; 64 beyond.
        keyColumns = shape.headDim <= 64 ? 128 : 64
        // All query heads of a GQA group share one K/V tile, so their running outputs
        // (group x Br x Ev floats) must stay cache-resident: about 128 KiB.
        let perRow = Swift.max(1, shape.groupSize * Swift.max(shape.valueHeadDim, 16))
        let rows = Swift.min(96, Swift.max(6, (32_768 / perRow) / 6 * 6))
        queryRows = Swift.max(1, Swift.min(rows, shape.queryLength))
    }
}

/// A float32 view of one input: a base pointer into storage and element strides `[B, H, S, E]`
/// (the last one 1). Half-precision inputs keep their storage; the kernel converts tiles.
private struct _InputView: @unchecked Sendable {
    let base: UnsafeRawPointer
    let dtype: DType
    let strides: [Int]

    init(_ t: Tensor) {
        // A [H, L, E] input is a [1, H, L, E] one; a strided last dimension is copied once.
        var t = t.rank == 3 ? t._unsqueezed(at: 0) : t
        if t.strides[3] != 1 && t.shape[3] > 1 { t = t.contiguous() }
        base = UnsafeRawPointer(t._storage.bytes) + t._offset * t.dtype.byteWidth
        dtype = t.dtype
        strides = t.strides
        _keepAlive = t._storage
    }
    private let _keepAlive: _TensorStorage

    /// Element offset of row `row` of head `head` in batch `batch`.
    func offset(batch: Int, head: Int, row: Int) -> Int {
        batch * strides[0] + head * strides[1] + row * strides[2]
    }
}

/// The flash-attention forward kernel: Q tiles against K/V tiles with an online softmax,
/// float32 accumulation, each output row written once.
///
/// Generic over the bias, so each bias type gets its own specialization: empty tiles are
/// skipped, fully visible tiles of pure masks do no bias work, partial ones call the bias's
/// tile `apply`. Work items are (batch, key/value head, query tile): every query head of a
/// GQA group reads each packed K/V tile once. Extra memory is per thread, O(tile).
func _fusedAttention<Modifier: _ScoreModifier>(
    query: Tensor, key: Tensor, value: Tensor, shape: AttentionShape, modifier: Modifier, options: AttentionOptions
) -> _AttentionResult {
    let (B, H, Hkv, L, S) = (shape.batch, shape.queryHeads, shape.keyValueHeads, shape.queryLength, shape.keyLength)
    let (E, Ev, group) = (shape.headDim, shape.valueHeadDim, shape.groupSize)
    let output = Tensor(_zeros: shape.outputShape, dtype: query.dtype)
    let logSumExp = Tensor(_zeros: Array(shape.outputShape.dropLast()), dtype: .float32)
    let lsePointer = logSumExp._storage.bytes.assumingMemoryBound(to: Float.self)
    guard B * H * L > 0 else { return _AttentionResult(output: output, logSumExp: logSumExp) }

    let q = _InputView(query), k = _InputView(key), v = _InputView(value)
    let tiling = _FusedTiling(shape)
    let (Br, Bc) = (tiling.queryRows, tiling.keyColumns)
    let queryTiles = (L + Br - 1) / Br
    let items = B * Hkv * queryTiles
    let threads = Swift.min(SDPAThreads.effectiveCount, items)
    let scale = Float(options.resolvedScale(headDim: E))
    // Row strides of the scratch tiles: multiples of 8 floats, off large powers of two.
    let ldkt = (Bc + 7) / 8 * 8, lds = ldkt, ldo = Swift.max(8, (Ev + 7) / 8 * 8)
    let outBase = _SendablePointer(output._storage.bytes.assumingMemoryBound(to: Float.self))
    let outHalf = _SendablePointer(output._storage.bytes.assumingMemoryBound(to: UInt16.self))
    let lseBase = _SendablePointer(lsePointer)

    DispatchQueue.concurrentPerform(iterations: threads) { worker in
        // Per-thread scratch, reused by every item this thread runs.
        let kt = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, E * ldkt))
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: Br * lds)
        let acc = UnsafeMutablePointer<Float>.allocate(capacity: group * Br * ldo)
        let rowMax = UnsafeMutablePointer<Float>.allocate(capacity: group * Br)
        let rowSum = UnsafeMutablePointer<Float>.allocate(capacity: group * Br)
        let qTile = q.dtype == .float32 ? nil : UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, group * Br * E))
        let vTile = v.dtype == .float32 ? nil : UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, Bc * Ev))
        var visibility = [_TileVisibility](repeating: .empty, count: group)
        defer {
            kt.deallocate(); scores.deallocate(); acc.deallocate(); rowMax.deallocate(); rowSum.deallocate()
            qTile?.deallocate(); vTile?.deallocate()
        }

        for item in stride(from: worker, to: items, by: threads) {
            let qt = item % queryTiles, bk = item / queryTiles
            let (b, kvHead) = (bk / Hkv, bk % Hkv)
            let q0 = qt * Br, rows = Swift.min(Br, L - q0)
            let queries = q0..<(q0 + rows)

            // Query rows of each head in the group, as float32 pointers with a row stride.
            var qRows = [(UnsafePointer<Float>, Int)]()
            for g in 0..<group {
                let h = kvHead * group + g
                let offset = q.offset(batch: b, head: h, row: q0)
                if let qTile {
                    let dst = qTile + g * Br * E
                    for r in 0..<rows {
                        _convertRow(q, offset: offset + r * q.strides[2], count: E, into: dst + r * E)
                    }
                    qRows.append((UnsafePointer(dst), E))
                } else {
                    qRows.append((q.base.assumingMemoryBound(to: Float.self) + offset, q.strides[2]))
                }
            }
            (rowMax).update(repeating: -.infinity, count: group * Br)
            rowSum.update(repeating: 0, count: group * Br)
            acc.update(repeating: 0, count: group * Br * ldo)

            var k0 = 0
            while k0 < S {
                let cols = Swift.min(Bc, S - k0)
                let keys = k0..<(k0 + cols)
                var anyVisible = false
                for g in 0..<group {
                    visibility[g] = modifier.classify(batch: b, head: kvHead * group + g, queries: queries, keys: keys)
                    if visibility[g] != .empty { anyVisible = true }
                }
                defer { k0 += cols }
                if !anyVisible { continue }

                let kOffset = k.offset(batch: b, head: kvHead, row: k0)
                switch k.dtype {
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

                for g in 0..<group where visibility[g] != .empty {
                    let h = kvHead * group + g
                    sdpa_qk_tile(Int32(rows), Int32(cols), Int32(E), qRows[g].0, qRows[g].1, kt, ldkt, scale, scores, lds)
                    if visibility[g] == .partial || Modifier.changesScores {
                        modifier.apply(to: scores, stride: lds, batch: b, head: h, queries: queries, keys: keys)
                    }
                    let o = acc + g * Br * ldo
                    sdpa_softmax_tile(Int32(rows), Int32(cols), scores, lds, rowMax + g * Br, rowSum + g * Br, o, ldo, Int32(Ev))
                    sdpa_pv_tile(Int32(rows), Int32(cols), Int32(Ev), scores, lds, vRows, ldv, o, ldo)
                }
            }

            // Normalize and write each head's rows once, in the query's dtype.
            for g in 0..<group {
                let h = kvHead * group + g
                let o = acc + g * Br * ldo, m = rowMax + g * Br, l = rowSum + g * Br
                sdpa_normalize_tile(Int32(rows), Int32(Ev), o, ldo, l)
                let rowIndex = (b * H + h) * L + q0
                for r in 0..<rows {
                    lseBase.pointer![rowIndex + r] = l[r] == 0 ? -.infinity : m[r] + Foundation.log(l[r])
                    let src = o + r * ldo, dst = (rowIndex + r) * Ev
                    switch output.dtype {
                    case .float16: sdpa_convert_f32_to_f16(Ev, src, outHalf.pointer! + dst)
                    case .bfloat16: sdpa_convert_f32_to_bf16(Ev, src, outHalf.pointer! + dst)
                    default: (outBase.pointer! + dst).update(from: src, count: Ev)
                    }
                }
            }
        }
    }
    return _AttentionResult(output: output, logSumExp: logSumExp)
}

/// Converts `count` half-precision elements of `view` starting at `offset` to float32.
private func _convertRow(_ view: _InputView, offset: Int, count: Int, into dst: UnsafeMutablePointer<Float>) {
    let src = view.base.assumingMemoryBound(to: UInt16.self) + offset
    if view.dtype == .float16 {
        sdpa_convert_f16_to_f32(count, src, dst)
    } else {
        sdpa_convert_bf16_to_f32(count, src, dst)
    }
}
