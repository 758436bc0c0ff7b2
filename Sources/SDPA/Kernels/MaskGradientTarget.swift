/// Where a backward pass adds the score gradients that reach a float mask: the fused pass's
/// ``_MaskGradient`` (float32 sums in the mask's shape), the math pass's ``_MaskGradientByTask`` (a partial
/// per task in `Double`, added into the mask's shape at the end).
///
/// A tile is `rows × cols` gradients `rowStride` apart: query rows `queries` and keys from `firstKey`
/// on, of `(batch, head)`, a query head. Two requirements, one per precision a kernel computes in, so an
/// existential call costs no generic conversion per element (``add(_:rowStride:cols:batch:head:queries:firstKey:)``
/// picks one).
protocol _MaskGradientTarget: Sendable {
    func add(_ tile: UnsafePointer<Float>, rowStride: Int, cols: Int, batch: Int, head: Int, queries: Range<Int>, firstKey: Int)
    func add(_ tile: UnsafePointer<Double>, rowStride: Int, cols: Int, batch: Int, head: Int, queries: Range<Int>, firstKey: Int)
    /// The gradient in the mask's shape and dtype, once every tile is in.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)``.
    func result() throws -> Tensor
}

extension _MaskGradientTarget {
    /// Adds a tile in the precision the caller computes in (float32 on the fused pass, `Double` on the math one).
    func add<T: BinaryFloatingPoint>(
        _ tile: UnsafePointer<T>, rowStride: Int, cols: Int, batch: Int, head: Int, queries: Range<Int>, firstKey: Int
    ) {
        if T.self == Float.self {
            add(UnsafeRawPointer(tile).assumingMemoryBound(to: Float.self), rowStride: rowStride, cols: cols, batch: batch,
                head: head, queries: queries, firstKey: firstKey)
        } else if T.self == Double.self {
            add(UnsafeRawPointer(tile).assumingMemoryBound(to: Double.self), rowStride: rowStride, cols: cols, batch: batch,
                head: head, queries: queries, firstKey: firstKey)
        } else {
            preconditionFailure("a kernel computes score gradients in Float or Double")
        }
    }
}
