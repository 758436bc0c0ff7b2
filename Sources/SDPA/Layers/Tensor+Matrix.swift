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
}
