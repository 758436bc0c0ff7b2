/// A float mask's gradient as the math backward pass gathers it. Each task (one batch and key/value head, its
/// group's query heads) adds into a partial of its own: the mask's elements it reaches, its batch's and its
/// heads' (all of them along a dimension the mask is broadcast along), a contiguous block of the mask. The
/// partials are added into the mask's shape in task order once the pass is done: no two threads add into one
/// sum, and the result does not depend on the thread count. Extra memory: the partials, at most `B·H·L·S`
/// values for a mask of the scores' whole shape, one block per task for a broadcast one.
final class _MaskGradientByTask: _MaskGradientTarget, @unchecked Sendable {
    private let mask: Tensor
    /// The mask's dimensions aligned with `[B, H, L, S]` (1 where it is broadcast).
    private let dims: (batch: Int, head: Int, query: Int, key: Int)
    private let batches: Int, keyValueHeads: Int, group: Int
    /// Elements of one task's block: its heads' (the group's, or one broadcast head) rows and keys.
    private let block: Int
    private let partials: UnsafeMutableBufferPointer<Double>

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the partials do not fit.
    init(mask: Tensor, shape: AttentionShape) throws {
        self.mask = mask
        let padded = [Int](repeating: 1, count: Swift.max(0, 4 - mask.rank)) + mask.shape.suffix(4)
        dims = (padded[0], padded[1], padded[2], padded[3])
        (batches, keyValueHeads, group) = (shape.batch, shape.keyValueHeads, shape.groupSize)
        block = (dims.head == 1 ? 1 : shape.groupSize) * dims.query * dims.key
        let count = _checkedProduct(shape.batch, shape.keyValueHeads, block) ?? .max
        try _checkAllocation(byteCount: _checkedProduct(count, MemoryLayout<Double>.stride) ?? .max,
                             for: "the math backend's partial sums of grads.attnMask")
        partials = .allocate(capacity: count)
        partials.initialize(repeating: 0)
    }

    deinit { partials.deallocate() }

    /// The start of `(batch, head)`'s rows in its task's block.
    private func rows(batch: Int, head: Int) -> UnsafeMutablePointer<Double> {
        let task = batch * keyValueHeads + head / group
        return partials.baseAddress! + task * block + (dims.head == 1 ? 0 : head % group * dims.query * dims.key)
    }

    /// Adds a tile, widened to `Double` one by one.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    func add<T: BinaryFloatingPoint>(
        _ tile: UnsafePointer<T>, rowStride: Int, cols: Int, batch: Int, head: Int, queries: Range<Int>, firstKey: Int
    ) {
        let base = rows(batch: batch, head: head)
        for (r, i) in queries.enumerated() {
            let row = base + (dims.query == 1 ? 0 : i * dims.key)
            if dims.key == 1 {
                for c in 0..<cols { row[0] += Double(tile[r * rowStride + c]) }
            } else {
                for c in 0..<cols { row[firstKey + c] += Double(tile[r * rowStride + c]) }
            }
        }
    }

    /// The partials added in task order into the mask's shape, rounded once to its dtype: read as `[B, Hkv or H, L, S]`
    /// (one head per task where the mask has none, the group's heads where it has them), they are the broadcast sum's input.
    func result() throws -> Tensor {
        let heads = dims.head == 1 ? keyValueHeads : keyValueHeads * group
        // Read in place: the partials can be as large as the scores (a mask of their whole shape).
        return try Tensor._summingBroadcast(UnsafeBufferPointer(partials), shape: [batches, heads, dims.query, dims.key], to: mask.shape, dtype: mask.dtype,
                                            argument: "grads.attnMask")
    }
}
