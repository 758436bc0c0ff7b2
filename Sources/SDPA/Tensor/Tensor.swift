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

    /// A zero-filled contiguous tensor; the shape must already be validated (``validate(shape:argument:dtype:count:of:)``).
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` naming `argument` when the memory cannot be had.
    @usableFromInline
    init(_zeros shape: [Int], dtype: DType, argument: @autoclosure () -> String) throws {
        try self.init(_contiguous: shape, dtype: dtype, zeroed: true, argument: argument())
    }

    /// A zero-filled contiguous tensor in huge pages where the system gives them (a paged KV cache's
    /// pool, a mask's gradient: see ``_TensorStorage/init(byteCount:for:zeroed:limit:hugePages:)``); the shape must already be validated.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` naming `argument` when the memory cannot be had.
    init(_zerosInHugePages shape: [Int], dtype: DType, argument: @autoclosure () -> String) throws {
        try self.init(_contiguous: shape, dtype: dtype, zeroed: true, hugePages: true, argument: argument())
    }

    /// A contiguous tensor whose every element the caller writes before the tensor is read (a kernel's
    /// result): no pass over its bytes to fill them first.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` naming `argument` when the memory cannot be had.
    @usableFromInline
    init(_uninitialized shape: [Int], dtype: DType, argument: @autoclosure () -> String) throws {
        try self.init(_contiguous: shape, dtype: dtype, zeroed: false, argument: argument())
    }

    /// A contiguous tensor, zero-filled or not: what ``init(_zeros:dtype:argument:)`` and
    /// ``init(_uninitialized:dtype:argument:)`` both make.
    @usableFromInline
    init(_contiguous shape: [Int], dtype: DType, zeroed: Bool, hugePages: Bool = false, argument: @autoclosure () -> String) throws {
        let count = shape.reduce(1, *)
        self.init(
            _storage: try _TensorStorage(
                byteCount: count * dtype.byteWidth, for: "\(argument()) \(shape) \(dtype)", zeroed: zeroed, hugePages: hugePages),
            dtype: dtype, shape: shape, strides: Tensor.contiguousStrides(for: shape), offset: 0)
    }

    /// A tensor of zeros (or `false`).
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` for a negative dimension or sizes that
    ///   overflow `Int`; ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the memory cannot be had.
    public init(zeros shape: [Int], dtype: DType = .float32) throws {
        try Tensor.validate(shape: shape, argument: "shape", dtype: dtype)
        try self.init(_zeros: shape, dtype: dtype, argument: "Tensor(zeros:)")
    }

    /// A tensor holding `scalars` in row-major order, stored as `dtype` (rounded to nearest).
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` when the count does not match the shape.
    public init(shape: [Int], scalars: [Float], dtype: DType = .float32) throws {
        try Tensor.validate(shape: shape, argument: "shape", dtype: dtype, count: scalars.count, of: "scalars")
        try self.init(_zeros: shape, dtype: dtype, argument: "Tensor(shape:scalars:)")
        scalars.withUnsafeBufferPointer { _storeContiguous(from: $0) }
    }

    /// A tensor holding `scalars` in row-major order, stored as `dtype` (`.float64` keeps them exactly).
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` when the count does not match the shape.
    public init(shape: [Int], scalars: [Double], dtype: DType = .float64) throws {
        try Tensor.validate(shape: shape, argument: "shape", dtype: dtype, count: scalars.count, of: "scalars")
        try self.init(_zeros: shape, dtype: dtype, argument: "Tensor(shape:scalars:)")
        scalars.withUnsafeBufferPointer { _storeContiguous(from: $0) }
    }

    /// A boolean tensor (an attention mask: `true` = attend) in row-major order.
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` when the count does not match the shape.
    public init(shape: [Int], bools: [Bool]) throws {
        try Tensor.validate(shape: shape, argument: "shape", dtype: .bool, count: bools.count, of: "bools")
        try self.init(_zeros: shape, dtype: .bool, argument: "Tensor(shape:bools:)")
        let p = _storage.bytes.assumingMemoryBound(to: UInt8.self)
        for (i, b) in bools.enumerated() { p[i] = b ? 1 : 0 }
    }

    /// A tensor whose element `n` (counted in row-major order) is `element(n)`, rounded to `dtype`
    /// (`.bool`: `true` for nonzero): a mask or a test pattern from a formula, with no array as large as the tensor.
    ///
    /// ```swift
    /// let (L, S) = (4, 6)
    /// let evenKeys = try Tensor(shape: [L, S], dtype: .bool) { n in n % S % 2 == 0 ? 1 : 0 }
    /// ```
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` for a negative dimension or sizes that
    ///   overflow `Int`; ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the memory cannot be had.
    public init(shape: [Int], dtype: DType = .float32, element: (Int) throws -> Double) throws {
        try self.init(_shape: shape, dtype: dtype, argument: "Tensor(shape:dtype:element:)", element: element)
    }

    /// ``init(shape:dtype:element:)`` naming `argument` in an allocation error.
    init(_shape shape: [Int], dtype: DType, argument: String, element: (Int) throws -> Double) throws {
        try Tensor.validate(shape: shape, argument: "shape", dtype: dtype)
        try self.init(_zeros: shape, dtype: dtype, argument: argument)
        var writer = _BlockWriter(into: self)
        for n in 0..<count { writer.append(try element(n)) }
        writer.flush()
    }

    /// The largest memory one tensor (or one buffer of the kernels) may take: this machine's physical
    /// memory. A larger request throws ``SDPAError/allocationFailed(argument:byteCount:reason:)`` rather
    /// than overcommitting and being killed when the pages are touched.
    public static var maximumByteCount: Int { _TensorStorage.byteLimit }

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
    ///
    /// For sizes no tensor can have (strides past `Int.max`, which every initializer refuses), the strides
    /// saturate at `Int.max` rather than trap.
    @inlinable
    public static func contiguousStrides(for shape: [Int]) -> [Int] {
        // `map`, not `[Int](repeating:count:)`: the latter allocates through a generic path of the standard library
        // that looks up the array storage's type metadata at run time, on every tensor a call makes.
        var strides = shape.map { _ in 1 }
        var running = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[d] = running
            let (product, overflow) = running.multipliedReportingOverflow(by: max(shape[d], 1))
            running = overflow ? .max : product
        }
        return strides
    }

    /// Throws ``SDPAError/invalidShape(argument:shape:reason:)`` naming `argument` unless `shape` can
    /// describe a tensor of `dtype`: no negative dimension, and an element count, a byte count and strides
    /// (the product of the dimensions with each 0 counted as 1, which bounds every element offset of
    /// every view) that fit in `Int`; and, when `count` is given, `count` elements (those of `what`).
    static func validate(shape: [Int], argument: String, dtype: DType, count: Int? = nil, of what: String = "") throws {
        func fail(_ reason: String) -> SDPAError { .invalidShape(argument: argument, shape: shape, reason: reason) }
        if let bad = shape.firstIndex(where: { $0 < 0 }) { throw fail("dimension \(bad) is negative") }
        var elements = 1, span = 1
        for d in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            if overflow { throw fail("the number of elements overflows Int") }
            let (spanProduct, spanOverflow) = span.multipliedReportingOverflow(by: Swift.max(d, 1))
            if spanOverflow { throw fail("its strides overflow Int (the dimensions other than 0 multiply past Int.max)") }
            (elements, span) = (product, spanProduct)
        }
        if span.multipliedReportingOverflow(by: dtype.byteWidth).overflow {
            throw fail(elements == span
                ? "\(elements) elements of \(dtype) (\(dtype.byteWidth) bytes each) need more bytes than Int can count"
                : "its strides in bytes overflow Int (the dimensions other than 0 multiply past Int.max / \(dtype.byteWidth))")
        }
        if let count, count != elements {
            throw fail("it holds \(elements) elements but \(what) has \(count)")
        }
    }
}
