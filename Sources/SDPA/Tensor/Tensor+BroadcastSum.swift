extension Tensor {
    /// ``_summingBroadcast(_:shape:to:dtype:argument:)`` of `tensor`'s elements read row-major as `shape` (its own
    /// element count): the `Double` copy they are summed from checked against the machine's memory first.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` naming `argument`.
    static func _summingBroadcast(_ tensor: Tensor, as shape: [Int], to target: [Int], dtype: DType, argument: String) throws -> Tensor {
        try _checkAllocation(byteCount: _checkedProduct(tensor.count, MemoryLayout<Double>.stride) ?? .max, for: argument)
        return try tensor.doubleScalars.withUnsafeBufferPointer {
            try _summingBroadcast($0, shape: shape, to: target, dtype: dtype, argument: argument)
        }
    }

    /// The gradient of a tensor of shape `target` that was broadcast to `shape` (PyTorch's rules: aligned from
    /// the right, a 1 or a missing dimension repeated): `values`, row-major over `shape`, summed over the
    /// dimensions it was broadcast along, in `target`'s shape and in `dtype`. Summed in row-major order of
    /// `shape`: the same order at any thread count.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` naming `argument`.
    static func _summingBroadcast(
        _ values: UnsafeBufferPointer<Double>, shape: [Int], to target: [Int], dtype: DType, argument: String
    ) throws -> Tensor {
        // The target's contiguous strides, aligned from the right with `shape`; 0 where it was broadcast.
        let targetStrides = Tensor.contiguousStrides(for: target)
        var strides = [Int](repeating: 0, count: shape.count)
        for n in 0..<Swift.min(target.count, shape.count) where target[target.count - 1 - n] != 1 {
            strides[shape.count - 1 - n] = targetStrides[target.count - 1 - n]
        }
        var sums = [Double](repeating: 0, count: target.reduce(1, *))
        if let inner = shape.last, inner > 0, !values.isEmpty {
            let (outer, innerStride) = (shape.dropLast(), strides.last!)
            var index = [Int](repeating: 0, count: outer.count), offset = 0
            for start in stride(from: 0, to: values.count, by: inner) {
                for j in 0..<inner { sums[offset + j * innerStride] += values[start + j] }
                // The next row: the odometer over the outer dimensions, the target's offset with it.
                for d in outer.indices.reversed() {
                    index[d] += 1
                    offset += strides[d]
                    if index[d] < outer[d] { break }
                    offset -= strides[d] * index[d]
                    index[d] = 0
                }
            }
        }
        let gradient = try Tensor(_zeros: target, dtype: dtype, argument: argument)
        sums.withUnsafeBufferPointer { gradient._storeContiguous(from: $0) }
        return gradient
    }
}
