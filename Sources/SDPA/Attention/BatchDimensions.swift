/// PyTorch's `(N, ..., H, L, E)`: inputs of rank 5 and more carry several batch dimensions. A call runs
/// on the inputs with them flattened into one, `B = N · …` in row-major order (views where the strides
/// allow, a contiguous copy otherwise, as PyTorch's `reshape`), and its results get them back. A bias's
/// per-batch parameters (``KeyPaddingBias``'s lengths, ``PrefixLMBias``'s prefixes) index the flattened
/// batch; a ``TensorBias`` mask broadcasts over the batch dimensions as PyTorch broadcasts it.
@usableFromInline
struct _BatchDimensions {
    /// The batch dimensions, all but the inputs' last three.
    let leading: [Int]
    /// Their product, the flattened batch.
    let count: Int
    /// The attention scores' last three sizes, `[H, L, S]`: what a mask broadcasts to after the batch.
    let scores: [Int]

    /// The batch dimensions of inputs of rank 5 or more with these shapes, equal in query, key and value
    /// (``_BroadcastInputs`` has made them so).
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` for a batch whose size overflows `Int`.
    init(query: [Int], key: [Int], value: [Int]) throws {
        let rank = query.count
        assert(key.count == rank && value.count == rank && key.prefix(rank - 3) == query.prefix(rank - 3)
               && value.prefix(rank - 3) == query.prefix(rank - 3), "_BroadcastInputs gives one rank and equal batch dimensions")
        leading = Array(query.prefix(rank - 3))
        guard let product = _checkedProduct(leading) else {
            throw SDPAError.invalidShape(argument: "query", shape: query, reason: "the batch dimensions' product overflows Int")
        }
        count = product
        scores = [query[rank - 3], query[rank - 2], key[rank - 2]]
    }

    /// `tensor` (`[leading..., rest...]`) as `[B, rest...]`.
    ///
    /// - Throws: ``SDPAError/shapeMismatch(argument:shape:other:otherShape:reason:)`` naming `argument` when its
    ///   first dimensions are not the batch dimensions.
    func flattened(_ tensor: Tensor, argument: String) throws -> Tensor {
        let k = leading.count
        guard tensor.rank >= k, Array(tensor.shape.prefix(k)) == leading else {
            throw SDPAError.shapeMismatch(
                argument: argument, shape: tensor.shape, other: "batch dimensions", otherShape: leading,
                reason: "it must start with the inputs' batch dimensions")
        }
        let rest = Array(tensor.shape.dropFirst(k)), restStrides = Array(tensor.strides.dropFirst(k))
        // One stride steps through the batch when each batch dimension of size > 1 is laid out as
        // `size` steps of the next one's.
        let sized = (0..<k).filter { leading[$0] > 1 }
        let mergeable = zip(sized, sized.dropFirst()).allSatisfy { tensor.strides[$0] == tensor.strides[$1] * leading[$1] }
        if mergeable {
            return Tensor(_storage: tensor._storage, dtype: tensor.dtype, shape: [count] + rest,
                          strides: [sized.last.map { tensor.strides[$0] } ?? 0] + restStrides, offset: tensor._offset)
        }
        return try tensor.contiguous().reshaped([count] + rest)
    }

    /// A result `[B, rest...]` as `[leading..., rest...]`: a view.
    ///
    /// - Throws: ``SDPAError/shapeMismatch(argument:shape:other:otherShape:reason:)`` naming `argument` when the
    ///   result's first dimension is not `B` (a bias's own `dispatch` returning another shape).
    func restored(_ tensor: Tensor, argument: String) throws -> Tensor {
        guard tensor.rank >= 1, tensor.shape[0] == count else {
            throw SDPAError.shapeMismatch(
                argument: argument, shape: tensor.shape, other: "flattened batch", otherShape: [count],
                reason: "the call on the flattened inputs must return [B, ...] with B = \(count), the batch dimensions' product")
        }
        var strides = [Int](repeating: 0, count: leading.count)
        var step = tensor.strides[0]
        for d in leading.indices.reversed() {
            strides[d] = step
            step *= Swift.max(leading[d], 1)
        }
        return Tensor(_storage: tensor._storage, dtype: tensor.dtype, shape: leading + Array(tensor.shape.dropFirst()),
                      strides: strides + Array(tensor.strides.dropFirst()), offset: tensor._offset)
    }

    /// How a mask's batch dimensions (padded on the left with 1s) meet the inputs'.
    private enum MaskBatch { case none, broadcast, full, mixed }

    /// - Throws: ``SDPAError`` naming `attnMask`: more dimensions than the inputs, or a batch dimension
    ///   that is neither 1 nor the inputs'.
    private func maskBatch(_ mask: Tensor) throws -> (kind: MaskBatch, padded: [Int]) {
        let k = leading.count
        guard mask.rank <= k + 3 else {
            throw SDPAError.rank(
                argument: "attnMask", shape: mask.shape,
                expected: "at most \(k + 3) dimensions, broadcast to the attention scores' shape \(leading + scores)")
        }
        // Checked whole first, so that an error names the shapes as given rather than flattened.
        guard mask.broadcastStrides(to: leading + scores) != nil else {
            throw SDPAError.maskNotBroadcastable(mask: mask.shape, target: leading + scores)
        }
        guard mask.rank > 3 else { return (.none, []) }
        let padded = [Int](repeating: 1, count: k + 3 - mask.rank) + mask.shape.prefix(mask.rank - 3)
        if padded.allSatisfy({ $0 == 1 }) { return (.broadcast, padded) }
        return (padded == leading ? .full : .mixed, padded)
    }

    /// A mask broadcastable to `[leading..., H, L, S]` as one broadcastable to `[B, H, L, S]`: unchanged
    /// when it has no batch dimension, without them when they are all 1, flattened when they are the
    /// inputs', and otherwise broadcast over the batch and copied (the one case with a copy).
    func flattenedMask(_ mask: Tensor) throws -> Tensor {
        let (kind, padded) = try maskBatch(mask)
        let last = Array(mask.shape.suffix(3)), lastStrides = Array(mask.strides.suffix(3))
        switch kind {
        case .none:
            return mask
        case .broadcast:
            return Tensor(_storage: mask._storage, dtype: mask.dtype, shape: last, strides: lastStrides, offset: mask._offset)
        case .full:
            let strides = [Int](repeating: 0, count: padded.count - (mask.rank - 3)) + mask.strides.prefix(mask.rank - 3)
            let batched = Tensor(_storage: mask._storage, dtype: mask.dtype, shape: padded + last, strides: strides + lastStrides,
                                 offset: mask._offset)
            return try flattened(batched, argument: "attnMask")
        case .mixed:
            // A half-precision mask is copied as float32 (exactly): its gradient is then summed over the batch
            // dimensions before it is rounded, once, to the mask's dtype.
            let copied = try mask.broadcast(to: leading + last).contiguous()
            let widened = mask.dtype.isHalfPrecision ? try copied.converted(to: .float32) : copied
            return try widened.reshaped([count] + last)
        }
    }

    /// The gradient of a mask given to ``flattenedMask(_:)``, from the gradient of the mask that ran: in
    /// `mask`'s shape, summed over the batch dimensions it was broadcast along.
    func restoredMaskGradient(_ gradient: Tensor, of mask: Tensor) throws -> Tensor {
        guard try maskBatch(mask).kind == .mixed else { return try gradient.reshaped(mask.shape) }
        // [B, h, l, s] read as [leading..., h, l, s], the mask's broadcast, summed back into its shape.
        return try Tensor._summingBroadcast(gradient, as: leading + gradient.shape.dropFirst(), to: mask.shape, dtype: mask.dtype,
                                            argument: "grads.attnMask")
    }
}
