// A float32 tensor seen as a matrix of rows: how the layers hand tensors to the matrix product.

extension Tensor {
    /// This tensor as contiguous float32: itself when it already is, else a converted copy.
    @usableFromInline
    func _contiguousFloat32() throws -> Tensor {
        try (dtype == .float32 ? self : converted(to: .float32)).contiguous()
    }

    /// The first element of a contiguous float32 tensor.
    @usableFromInline
    var _floats: UnsafeMutablePointer<Float> {
        _storage.bytes.assumingMemoryBound(to: Float.self) + _offset
    }

    /// A fresh contiguous float32 tensor of `shape` (validated by the caller) that the caller writes in
    /// full (a product's output, a copy): not zero-filled first.
    @usableFromInline
    static func _floatMatrix(_ shape: [Int]) throws -> Tensor {
        try Tensor(_uninitialized: shape, dtype: .float32, argument: "a layer's output")
    }

    /// The `[out, in]` weight of a PyTorch `Linear` as the `[in, out]` matrix the product reads
    /// (contiguous along the outputs), converted to float32.
    @usableFromInline
    func _transposedWeight(argument: String) throws -> Tensor {
        guard rank == 2 else {
            throw SDPAError.rank(argument: argument, shape: shape, expected: "rank 2 [out, in] (PyTorch's Linear.weight)")
        }
        return try converted(to: .float32).transposed(0, 1).contiguous()
    }
}
