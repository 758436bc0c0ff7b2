import CSDPAKernels

/// The gradients of query, key and value as the fused backward pass builds them: dK and dV written
/// a key tile at a time by the item that owns it, dQ accumulated in float32 (in the result itself
/// for float32 inputs) with each chunk after the first in partial rows of its own, added in chunk
/// order after each round.
struct _GradientBuffers: @unchecked Sendable {
    let query: Tensor, key: Tensor, value: Tensor
    let schedule: _BackwardSchedule
    /// dQ in float32, `[B, H, L, E]`: the result's storage for float32 inputs.
    let queryAccumulator: UnsafeMutablePointer<Float>
    /// Partial dQ rows: for chunk `c ≥ 1` and pair `p` of a round, `group · L · E` floats.
    let partials: UnsafeMutablePointer<Float>?
    /// Keeps the float32 dQ (when the result is not float32) and the partials alive.
    let storage: (_TensorStorage?, _TensorStorage?)

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the gradients or the
    ///   partial rows cannot be allocated.
    init(query q: Tensor, key k: Tensor, value v: Tensor, schedule: _BackwardSchedule) throws {
        query = try Tensor(_zeros: q.shape, dtype: q.dtype, argument: "grads.query")
        key = try Tensor(_zeros: k.shape, dtype: k.dtype, argument: "grads.key")
        value = try Tensor(_zeros: v.shape, dtype: v.dtype, argument: "grads.value")
        self.schedule = schedule
        let shape = schedule.shape
        var wide: _TensorStorage?
        if q.dtype == .float32 {
            queryAccumulator = query._storage.bytes.assumingMemoryBound(to: Float.self)
        } else {
            wide = try _TensorStorage(byteCount: _checkedProduct(4, query.count) ?? .max, for: "the backward pass's float32 dQ")
            queryAccumulator = wide!.bytes.assumingMemoryBound(to: Float.self)
        }
        let partialFloats = _checkedProduct(schedule.chunks - 1, schedule.pairsPerRound, shape.groupSize, shape.queryLength, shape.headDim)
        var partialStorage: _TensorStorage?
        if partialFloats != 0 {
            partialStorage = try _TensorStorage(
                byteCount: partialFloats.flatMap { _checkedProduct(4, $0) } ?? .max,
                for: "the backward pass's partial dQ rows (\(schedule.chunks) key chunks per head)", zeroed: false)
        }
        partials = partialStorage?.bytes.assumingMemoryBound(to: Float.self)
        storage = (wide, partialStorage)
    }

    /// Floats of one pair's dQ rows: every head of its group, `L × E` each.
    var pairQueryFloats: Int { schedule.shape.groupSize * schedule.shape.queryLength * schedule.shape.headDim }

    /// Where `item` adds the dQ of query row `row` of head `head` (rows `E` floats apart).
    func queryGradientRows(_ item: _BackwardItem, head: Int, row: Int) -> UnsafeMutablePointer<Float> {
        let shape = schedule.shape
        let (H, L, E) = (shape.queryHeads, shape.queryLength, shape.headDim)
        if item.chunk == 0 { return queryAccumulator + ((item.batch * H + head) * L + row) * E }
        let pair = partials! + ((item.chunk - 1) * schedule.pairsPerRound + item.pairInRound) * pairQueryFloats
        return pair + ((head - item.kvHead * shape.groupSize) * L + row) * E
    }

    /// Zeroes the partial dQ rows `item` adds into (chunk 0 adds into dQ, zero from the start).
    func clearPartialRows(of item: _BackwardItem) {
        if item.chunk == 0 { return }
        queryGradientRows(item, head: item.kvHead * schedule.shape.groupSize, row: 0).update(repeating: 0, count: pairQueryFloats)
    }

    /// Adds every chunk's partial dQ rows of round `round` into dQ, in chunk order, pair by pair in parallel.
    func mergePartials(round: Int, threads: Int) {
        guard schedule.chunks > 1 else { return }
        let queue = _WorkQueue(count: schedule.pairsPerRound), buffers = self
        _parallelFor(Swift.min(threads, schedule.pairsPerRound)) {
            while let pair = queue.next() {
                let item = buffers.schedule.item(pair, round: round)
                let head = item.kvHead * buffers.schedule.shape.groupSize
                let total = buffers.queryGradientRows(item, head: head, row: 0), n = buffers.pairQueryFloats
                for chunk in 1..<buffers.schedule.chunks {
                    let part = buffers.queryGradientRows(buffers.schedule.item(chunk * buffers.schedule.pairsPerRound + pair, round: round),
                                                         head: head, row: 0)
                    for x in 0..<n { total[x] += part[x] }
                }
            }
        }
    }

    /// Writes `rows` rows of dK (`keys`) and dV (`values`) of `item`'s pair from key `firstKey` on,
    /// converted to the inputs' dtype.
    func writeKeyTile(_ item: _BackwardItem, firstKey: Int, rows: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        let shape = schedule.shape
        let row = (item.batch * shape.keyValueHeads + item.kvHead) * shape.keyLength + firstKey
        _store(keys, count: rows * shape.headDim, into: key, at: row * shape.headDim)
        _store(values, count: rows * shape.valueHeadDim, into: value, at: row * shape.valueHeadDim)
    }

    /// dQ in the query's dtype (converted from the float32 sums for half precisions).
    func queryGradient() -> Tensor {
        if query.dtype != .float32 { _store(queryAccumulator, count: query.count, into: query, at: 0) }
        return query
    }
}

/// Stores `count` floats at element `offset` of the contiguous `tensor` (a fresh result), rounded to
/// its dtype (float32, float16 or bfloat16) to nearest.
func _store(_ floats: UnsafePointer<Float>, count: Int, into tensor: Tensor, at offset: Int) {
    let bytes = tensor._storage.bytes
    switch tensor.dtype {
    case .float16: sdpa_convert_f32_to_f16(count, floats, bytes.assumingMemoryBound(to: UInt16.self) + offset)
    case .bfloat16: sdpa_convert_f32_to_bf16(count, floats, bytes.assumingMemoryBound(to: UInt16.self) + offset)
    default: (bytes.assumingMemoryBound(to: Float.self) + offset).update(from: floats, count: count)
    }
}
