// A float32 tensor seen as a matrix of rows: how the layers hand tensors to the matrix product.

extension Tensor {
    /// This tensor as contiguous float32: itself when it already is, else a converted copy.
    ///
    /// - Throws: ``SDPAError/unsupportedDType(argument:dtype:reason:)`` naming `argument` for a bool tensor, which a
    ///   layer would otherwise read as 0 and 1.
    @usableFromInline
    func _contiguousFloat32(_ argument: @autoclosure () -> String) throws -> Tensor {
        guard dtype.isFloatingPoint else {
            throw SDPAError.unsupportedDType(argument: argument(), dtype: dtype, reason: "a layer takes float32, float16, bfloat16 or float64 values")
        }
        return try (dtype == .float32 ? self : converted(to: .float32)).contiguous()
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
