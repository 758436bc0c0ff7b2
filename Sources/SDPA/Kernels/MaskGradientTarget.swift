/// Where a backward pass adds the score gradients that reach a float mask: the fused pass's
/// ``_MaskGradient`` (float32 sums in the mask's shape), the math pass's ``_MaskGradientByTask`` (a partial
/// per task in `Double`, added into the mask's shape at the end).
///
/// A tile is `rows × cols` gradients `rowStride` apart: query rows `queries` and keys from `firstKey`
/// on, of `(batch, head)`, a query head; float32 from the fused pass, `Double` from the math one. Conformers
/// specialize ``add(_:rowStride:cols:batch:head:queries:firstKey:)`` for both (`@_specialize`), so a call
/// through the existential runs a specialized body, no generic conversion per element.
protocol _MaskGradientTarget: Sendable {
    func add<T: BinaryFloatingPoint>(
        _ tile: UnsafePointer<T>, rowStride: Int, cols: Int, batch: Int, head: Int, queries: Range<Int>, firstKey: Int)
    /// The gradient in the mask's shape and dtype, once every tile is in.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)``.
    func result() throws -> Tensor
}
