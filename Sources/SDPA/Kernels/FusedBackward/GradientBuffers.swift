import CSDPAKernels

/// The gradients of query, key and value, allocated once per backward call: dQ accumulated in float32
/// (in the result itself for float32 gradients), dK and dV written in the gradients' dtype (the inputs', or
/// float32 for half-precision inputs whose gradients are summed after: ``_BackwardTensors/gradientDType``).
final class _GradientResults: @unchecked Sendable {
    let query: Tensor, key: Tensor, value: Tensor
    /// dQ in float32, `[B, H, L, E]`: the result's storage for float32 gradients.
    let queryAccumulator: UnsafeMutablePointer<Float>
    /// Keeps the float32 dQ alive when the result is not float32.
    let wide: _TensorStorage?

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the gradients cannot be allocated.
    init(_ tensors: _BackwardTensors) throws {
        let (q, k, v, dtype) = (tensors.query, tensors.key, tensors.value, tensors.gradientDType)
        query = try Tensor(_zeros: q.shape, dtype: dtype, argument: "grads.query")
        key = try Tensor(_zeros: k.shape, dtype: dtype, argument: "grads.key")
        value = try Tensor(_zeros: v.shape, dtype: dtype, argument: "grads.value")
        if dtype == .float32 {
            wide = nil
            queryAccumulator = query._storage.bytes.assumingMemoryBound(to: Float.self)
        } else {
            wide = try _TensorStorage(byteCount: _checkedProduct(4, query.count) ?? .max, for: "the backward pass's float32 dQ")
            queryAccumulator = wide!.bytes.assumingMemoryBound(to: Float.self)
        }
    }

    /// dQ in the gradients' dtype (converted from the float32 sums for half precisions).
    func queryGradient() -> Tensor {
        if query.dtype != .float32 { _store(queryAccumulator, count: query.count, into: query, at: 0) }
        return query
    }
}

/// How one fused backward schedule adds into the gradients (``_GradientResults``): dK and dV written a
/// key tile at a time by the item that owns it, dQ added into the float32 sums, each chunk after the
/// first in partial rows of its own, added in chunk order after each round. The schedule's rows and keys
/// may be a segment of the results' (packed sequences, ``_Segmentation``): each head's rows and keys are
/// then at an offset in the results' longer ones.
struct _GradientBuffers: @unchecked Sendable {
    let results: _GradientResults
    let schedule: _BackwardSchedule
    /// Where the schedule's query rows and keys start in each head of the results, and how many each head has there.
    let rowOffset: Int, resultRows: Int, keyOffset: Int, resultKeys: Int
    /// Partial dQ rows: for chunk `c ≥ 1` and pair `p` of a round, `group · L · E` floats.
    let partials: UnsafeMutablePointer<Float>?
    let partialStorage: _TensorStorage?

    /// The buffers of a whole call, into results of their own.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the gradients or the
    ///   partial rows cannot be allocated.
    init(_ tensors: _BackwardTensors, schedule: _BackwardSchedule) throws {
        try self.init(into: try _GradientResults(tensors), rows: 0..<schedule.shape.queryLength,
                      keys: 0..<schedule.shape.keyLength, schedule: schedule)
    }

    /// The buffers of `schedule`, whose query rows are `rows` and keys `keys` of each head of `results`.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the partial rows cannot be allocated.
    init(into results: _GradientResults, rows: Range<Int>, keys: Range<Int>, schedule: _BackwardSchedule) throws {
        (self.results, self.schedule) = (results, schedule)
        let rank = results.query.rank
        (rowOffset, resultRows) = (rows.lowerBound, results.query.shape[rank - 2])
        (keyOffset, resultKeys) = (keys.lowerBound, results.key.shape[rank - 2])
        let shape = schedule.shape
        let partialFloats = _checkedProduct(schedule.chunks - 1, schedule.pairsPerRound, shape.groupSize, shape.queryLength, shape.headDim)
        var storage: _TensorStorage?
        if partialFloats != 0 {
            storage = try _TensorStorage(
                byteCount: partialFloats.flatMap { _checkedProduct(4, $0) } ?? .max,
                for: "the backward pass's partial dQ rows (\(schedule.chunks) key chunks per head)", zeroed: false)
        }
        partials = storage?.bytes.assumingMemoryBound(to: Float.self)
        partialStorage = storage
    }

    /// Floats of one head's dQ rows: `L × E`.
    var headQueryFloats: Int { schedule.shape.queryLength * schedule.shape.headDim }

    /// Floats of one pair's partial dQ rows: every head of its group, `L × E` each.
    var pairQueryFloats: Int { schedule.shape.groupSize * headQueryFloats }

    /// Where `item` adds the dQ of query row `row` of head `head` (rows `E` floats apart).
    func queryGradientRows(_ item: _BackwardItem, head: Int, row: Int) -> UnsafeMutablePointer<Float> {
        let shape = schedule.shape
        let (H, L, E) = (shape.queryHeads, shape.queryLength, shape.headDim)
        if item.chunk == 0 { return results.queryAccumulator + ((item.batch * H + head) * resultRows + rowOffset + row) * E }
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
                let group = buffers.schedule.shape.groupSize, n = buffers.headQueryFloats
                for g in 0..<group {
                    let head = item.kvHead * group + g
                    let total = buffers.queryGradientRows(item, head: head, row: 0)
                    for chunk in 1..<buffers.schedule.chunks {
                        let part = buffers.queryGradientRows(buffers.schedule.item(chunk * buffers.schedule.pairsPerRound + pair, round: round),
                                                             head: head, row: 0)
                        for x in 0..<n { total[x] += part[x] }
                    }
                }
            }
        }
    }

    /// Writes `rows` rows of dK (`keys`) and dV (`values`) of `item`'s pair from key `firstKey` on,
    /// converted to the gradients' dtype.
    func writeKeyTile(_ item: _BackwardItem, firstKey: Int, rows: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        let shape = schedule.shape
        let row = (item.batch * shape.keyValueHeads + item.kvHead) * resultKeys + keyOffset + firstKey
        _store(keys, count: rows * shape.headDim, into: results.key, at: row * shape.headDim)
        _store(values, count: rows * shape.valueHeadDim, into: results.value, at: row * shape.valueHeadDim)
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
