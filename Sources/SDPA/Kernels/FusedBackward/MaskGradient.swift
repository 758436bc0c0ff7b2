/// The gradient of a float mask (a ``TensorBias``) as the fused backward pass accumulates it: each
/// tile of score gradients added into the mask's own shape, summed over the dimensions the mask is
/// broadcast along, in float32, then rounded once to the mask's dtype.
///
/// Elements are shared between work items only as ``_BackwardSchedule`` allows: items that run at
/// the same time never add into the same element, and each adds its tiles in a fixed order. The same
/// for a float mask alone and for one that is a part of a composition (``_ParameterGradientPlan/differentiatedMasks``).
struct _MaskGradient: _MaskGradientTarget, @unchecked Sendable {
    let gradient: Tensor
    let sums: UnsafeMutablePointer<Float>
    /// Element strides of the sums for `[B, H, L, S]`: 0 along a dimension the mask is broadcast along.
    let strides: (batch: Int, head: Int, query: Int, key: Int)
    private let wide: _TensorStorage?

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the gradient cannot be allocated.
    init(mask: Tensor) throws {
        gradient = try Tensor(_zerosInHugePages: mask.shape, dtype: mask.dtype, argument: "grads.attnMask")
        if mask.dtype == .float32 {
            wide = nil
            sums = gradient._storage.bytes.assumingMemoryBound(to: Float.self)
        } else {
            wide = try _TensorStorage(byteCount: _checkedProduct(4, mask.count) ?? .max, for: "the float32 sums of grads.attnMask", hugePages: true)
            sums = wide!.bytes.assumingMemoryBound(to: Float.self)
        }
        // The mask's contiguous strides, aligned from the right with the scores' dimensions.
        let contiguous = Tensor.contiguousStrides(for: mask.shape)
        var s = [0, 0, 0, 0]
        for n in 0..<Swift.min(mask.rank, 4) where mask.shape[mask.rank - 1 - n] != 1 {
            s[3 - n] = contiguous[mask.rank - 1 - n]
        }
        strides = (s[0], s[1], s[2], s[3])
    }

    /// Which dimensions the mask is the same along: the batches, the heads, the keys.
    var sharing: (batches: Bool, heads: Bool, keys: Bool) { (strides.batch == 0, strides.head == 0, strides.key == 0) }

    /// What any of `masks` is the same along (items that run at once must not add into the same element of
    /// any of their gradients), or `nil` without masks.
    static func sharing(of masks: [_MaskGradient]) -> (batches: Bool, heads: Bool, keys: Bool)? {
        guard !masks.isEmpty else { return nil }
        return masks.reduce((false, false, false)) { all, mask in
            let one = mask.sharing
            return (all.0 || one.batches, all.1 || one.heads, all.2 || one.keys)
        }
    }

    /// Adds a tile of score gradients (`rows × cols`, `rowStride` apart) of query rows `queries` and
    /// keys from `firstKey` on, of `(batch, head)`; `Double` ones each rounded to float32 first.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    func add<T: BinaryFloatingPoint>(
        _ tile: UnsafePointer<T>, rowStride: Int, cols: Int, batch: Int, head: Int, queries: Range<Int>, firstKey: Int
    ) {
        let base = sums + batch * strides.batch + head * strides.head + firstKey * strides.key
        for (r, i) in queries.enumerated() {
            let (src, dst) = (tile + r * rowStride, base + i * strides.query)
            if strides.key == 1 {
                for c in 0..<cols { dst[c] += Float(src[c]) }
            } else {
                var sum: Float = 0
                for c in 0..<cols { sum += Float(src[c]) }
                dst[0] += sum
            }
        }
    }

    /// The gradient in the mask's dtype.
    func result() -> Tensor {
        if gradient.dtype != .float32 {
            let sums = UnsafeBufferPointer(start: UnsafePointer(sums), count: gradient.count)
            gradient._storeContiguous(from: sums)
        }
        return gradient
    }
}
