/// A float mask's gradient as the math backward pass gathers it: the gradient that reaches the mask at
/// every score, `[B, H, L, S]` in `Double` (each task adds only into its own heads' rows), summed over the
/// dimensions the mask is broadcast along once the pass is done.
final class _ScoreGradientRows: _MaskGradientTarget, @unchecked Sendable {
    private let mask: Tensor
    private let shape: [Int]
    private let values: UnsafeMutableBufferPointer<Double>

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the `[B, H, L, S]` sums do not fit.
    init(mask: Tensor, shape: AttentionShape) throws {
        self.mask = mask
        self.shape = [shape.batch, shape.queryHeads, shape.queryLength, shape.keyLength]
        let count = _checkedProduct(self.shape) ?? .max
        try _checkAllocation(byteCount: _checkedProduct(count, MemoryLayout<Double>.stride) ?? .max,
                             for: "the math backend's score gradients for grads.attnMask")
        values = .allocate(capacity: count)
        values.initialize(repeating: 0)
    }

    deinit { values.deallocate() }

    func add(_ tile: UnsafePointer<Double>, rowStride: Int, cols: Int, batch: Int, head: Int, queries: Range<Int>, firstKey: Int) {
        let (H, L, S) = (shape[1], shape[2], shape[3])
        for (r, i) in queries.enumerated() {
            let row = values.baseAddress! + ((batch * H + head) * L + i) * S + firstKey
            for c in 0..<cols { row[c] += tile[r * rowStride + c] }
        }
    }

    func add(_ tile: UnsafePointer<Float>, rowStride: Int, cols: Int, batch: Int, head: Int, queries: Range<Int>, firstKey: Int) {
        let (H, L, S) = (shape[1], shape[2], shape[3])
        for (r, i) in queries.enumerated() {
            let row = values.baseAddress! + ((batch * H + head) * L + i) * S + firstKey
            for c in 0..<cols { row[c] += Double(tile[r * rowStride + c]) }
        }
    }

    /// The sums in the mask's shape and dtype.
    func result() throws -> Tensor {
        try Tensor._summingBroadcast(UnsafeBufferPointer(values), shape: shape, to: mask.shape, dtype: mask.dtype, argument: "grads.attnMask")
    }
}
