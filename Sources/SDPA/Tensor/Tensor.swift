/// An n-dimensional array with value semantics: the operands and results of attention.
///
/// A tensor is a shape, strides (in elements) and an offset into shared,
/// copy-on-write storage, so permuting, transposing and broadcasting are views
/// that copy nothing. Shapes follow PyTorch's row-major convention.
///
/// ```swift
/// let q = try Tensor(shape: [1, 2, 3, 4], scalars: (0..<24).map(Float.init))
/// let blhe = try Tensor.randomNormal(shape: [1, 16, 8, 64], seed: 1)
/// let bhle = try blhe.transposed(1, 2)      // a [B, H, L, E] view, no copy
/// print(bhle.shape, bhle.isContiguous)      // [1, 8, 16, 64] false
/// ```
///
/// See also: ``DType``, ``Tensor/init(contentsOf:)``.
public struct Tensor: Sendable {
    /// The element type.
    public let dtype: DType
    /// The size of each dimension.
    public private(set) var shape: [Int]
    /// The distance, in elements, between neighbours along each dimension (0 for a broadcast dimension).
    public private(set) var strides: [Int]
    @usableFromInline var _storage: _TensorStorage
    /// Offset of element `[0, 0, ...]` in storage, in elements.
    @usableFromInline var _offset: Int

    @usableFromInline
    init(_storage: _TensorStorage, dtype: DType, shape: [Int], strides: [Int], offset: Int) {
        self._storage = _storage
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self._offset = offset
    }

    /// A zero-filled contiguous tensor; the shape must already be validated.
    @usableFromInline
    init(_zeros shape: [Int], dtype: DType) {
        let count = shape.reduce(1, *)
        self.init(
            _storage: _TensorStorage(byteCount: count * dtype.byteWidth),
            dtype: dtype, shape: shape, strides: Tensor.contiguousStrides(for: shape), offset: 0)
    }

    /// A tensor of zeros (or `false`).
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` for a negative dimension.
    public init(zeros shape: [Int], dtype: DType = .float32) throws {
        try Tensor.validate(shape: shape, argument: "shape")
        self.init(_zeros: shape, dtype: dtype)
    }

    /// A tensor holding `scalars` in row-major order, stored as `dtype` (rounded to nearest).
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` when the count does not match the shape.
    public init(shape: [Int], scalars: [Float], dtype: DType = .float32) throws {
        try Tensor.validate(shape: shape, argument: "shape", count: scalars.count, of: "scalars")
        self.init(_zeros: shape, dtype: dtype)
        scalars.withUnsafeBufferPointer { _storeContiguous(from: $0) }
    }

    /// A tensor holding `scalars` in row-major order, stored as `dtype` (`.float64` keeps them exactly).
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` when the count does not match the shape.
    public init(shape: [Int], scalars: [Double], dtype: DType = .float64) throws {
        try Tensor.validate(shape: shape, argument: "shape", count: scalars.count, of: "scalars")
        self.init(_zeros: shape, dtype: dtype)
        scalars.withUnsafeBufferPointer { _storeContiguous(from: $0) }
    }

    /// A boolean tensor (an attention mask: `true` = attend) in row-major order.
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` when the count does not match the shape.
    public init(shape: [Int], bools: [Bool]) throws {
        try Tensor.validate(shape: shape, argument: "shape", count: bools.count, of: "bools")
        self.init(_zeros: shape, dtype: .bool)
        let p = _storage.bytes.assumingMemoryBound(to: UInt8.self)
        for (i, b) in bools.enumerated() { p[i] = b ? 1 : 0 }
    }

    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }
    /// The number of elements.
    @inlinable public var count: Int { shape.reduce(1, *) }

    /// Whether the elements lie in storage in row-major order with no gaps.
    public var isContiguous: Bool {
        if shape.contains(0) { return true }  // no element to be out of place, as in PyTorch
        var expected = 1
        for d in stride(from: rank - 1, through: 0, by: -1) where shape[d] != 1 {
            if strides[d] != expected { return false }
            expected *= shape[d]
        }
        return true
    }

    /// Row-major strides for `shape`.
    @inlinable
    public static func contiguousStrides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[d] = running
            running *= max(shape[d], 1)
        }
        return strides
    }

    static func validate(shape: [Int], argument: String, count: Int? = nil, of what: String = "") throws {
        if let bad = shape.firstIndex(where: { $0 < 0 }) {
            throw SDPAError.invalidShape(argument: argument, shape: shape, reason: "dimension \(bad) is negative")
        }
        var elements = 1
        for d in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            if overflow {
                throw SDPAError.invalidShape(argument: argument, shape: shape, reason: "the number of elements overflows Int")
            }
            elements = product
        }
        if let count, count != elements {
            throw SDPAError.invalidShape(
                argument: argument, shape: shape,
                reason: "it holds \(shape.reduce(1, *)) elements but \(what) has \(count)")
        }
    }
}
