// Reading, writing and converting elements: the one place that knows how each
// DType is laid out in storage.

extension Tensor {
    /// Calls `body` with the storage offset (in elements) of every element, in row-major order.
    @inlinable
    func _forEachOffset(_ body: (Int) -> Void) {
        let n = count
        if n == 0 { return }
        if isContiguous {
            for i in 0..<n { body(_offset + i) }
            return
        }
        let r = rank
        var index = [Int](repeating: 0, count: r)
        var offset = _offset
        for _ in 0..<n {
            body(offset)
            var d = r - 1
            while d >= 0 {
                index[d] += 1
                offset += strides[d]
                if index[d] < shape[d] { break }
                offset -= strides[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// All elements in row-major order, converted to `T` (`bool` reads as 0 or 1).
    @inlinable
    func _elements<T: BinaryFloatingPoint>(as: T.Type = T.self) -> [T] {
        var out = [T]()
        out.reserveCapacity(count)
        let raw = UnsafeRawPointer(_storage.bytes)
        switch dtype {
        case .float32:
            let p = raw.assumingMemoryBound(to: Float.self)
            _forEachOffset { out.append(T(p[$0])) }
        case .float64:
            let p = raw.assumingMemoryBound(to: Double.self)
            _forEachOffset { out.append(T(p[$0])) }
        case .float16:
            let p = raw.assumingMemoryBound(to: UInt16.self)
            _forEachOffset { out.append(T(_halfBitsToFloat(p[$0]))) }
        case .bfloat16:
            let p = raw.assumingMemoryBound(to: UInt16.self)
            _forEachOffset { out.append(T(BFloat16(bitPattern: p[$0]).floatValue)) }
        case .bool:
            let p = raw.assumingMemoryBound(to: UInt8.self)
            _forEachOffset { out.append(p[$0] != 0 ? 1 : 0) }
        }
        return out
    }

    /// Writes `values` (row-major) into this tensor, which must be contiguous
    /// with uniquely held storage (a freshly made result). Rounds to nearest.
    @inlinable
    func _storeContiguous<T: BinaryFloatingPoint>(from values: UnsafeBufferPointer<T>) {
        let n = Swift.min(values.count, count)
        let raw = _storage.bytes
        switch dtype {
        case .float32:
            let p = raw.assumingMemoryBound(to: Float.self) + _offset
            for i in 0..<n { p[i] = Float(values[i]) }
        case .float64:
            let p = raw.assumingMemoryBound(to: Double.self) + _offset
            for i in 0..<n { p[i] = Double(values[i]) }
        case .float16:
            let p = raw.assumingMemoryBound(to: UInt16.self) + _offset
            for i in 0..<n { p[i] = _floatToHalfBits(_floatForNarrowing(values[i])) }
        case .bfloat16:
            let p = raw.assumingMemoryBound(to: UInt16.self) + _offset
            for i in 0..<n { p[i] = BFloat16(_floatForNarrowing(values[i])).bitPattern }
        case .bool:
            let p = raw.assumingMemoryBound(to: UInt8.self) + _offset
            for i in 0..<n { p[i] = values[i] != 0 ? 1 : 0 }
        }
    }

    /// `value` as a `Float` that rounds to the same 16-bit value as `value` itself would: rounding a
    /// `Double` to nearest `Float` and then to a 16-bit type can round twice; rounding to odd first
    /// (truncate, then set the last bit if anything was lost) cannot, since 16-bit types keep far fewer bits.
    @inlinable
    func _floatForNarrowing<T: BinaryFloatingPoint>(_ value: T) -> Float {
        let nearest = Float(value)
        guard T.significandBitCount > Float.significandBitCount, nearest.isFinite, T(nearest) != value else { return nearest }
        let truncated = T(nearest.magnitude) > value.magnitude ? (nearest > 0 ? nearest.nextDown : nearest.nextUp) : nearest
        return Float(bitPattern: truncated.bitPattern | 1)
    }

    /// The elements in row-major order as `Float`, whatever the float dtype (`bool` gives 0 or 1).
    ///
    /// ```swift
    /// let out = try scaledDotProductAttention(query: q, key: k, value: v)
    /// let firstRow = out.scalars.prefix(out.shape.last!)
    /// ```
    public var scalars: [Float] { _elements(as: Float.self) }

    /// The elements in row-major order as `Double`; exact for every dtype.
    public var doubleScalars: [Double] { _elements(as: Double.self) }

    /// The elements in row-major order as `Bool` (`true` where nonzero).
    public var bools: [Bool] { _elements(as: Float.self).map { $0 != 0 } }

    /// The element at `indices`, as `Float`; setting it rounds to the dtype.
    ///
    /// Setting copies the storage first when another tensor shares it (copy on write),
    /// so no other value changes. Indices out of range are a programming error and trap, as with `Array`;
    /// so does a copy that cannot be allocated (a setter cannot throw): to handle that as an error,
    /// make the tensor ``contiguous()`` first, which throws instead.
    public subscript(_ indices: Int...) -> Float {
        get { Float(_value(atStorageOffset: _elementOffset(indices))) }
        set {
            let hasBroadcastDimension = zip(shape, strides).contains { $0.0 > 1 && $0.1 == 0 }
            if !isKnownUniquelyReferenced(&_storage) || hasBroadcastDimension {
                do { self = try _copied() } catch { preconditionFailure("Tensor subscript setter: \(error)") }
            }
            let target = Tensor(_storage: _storage, dtype: dtype, shape: [], strides: [], offset: _elementOffset(indices))
            [newValue].withUnsafeBufferPointer { target._storeContiguous(from: $0) }
        }
    }

    func _elementOffset(_ indices: [Int]) -> Int {
        precondition(indices.count == rank, "Tensor subscript needs \(rank) indices for shape \(shape), got \(indices.count)")
        var offset = _offset
        for (d, i) in indices.enumerated() {
            precondition(i >= 0 && i < shape[d], "index \(i) is out of range for dimension \(d) of shape \(shape)")
            offset += i * strides[d]
        }
        return offset
    }

    /// The element at a storage offset (in elements), exactly, as `Double`.
    func _value(atStorageOffset offset: Int) -> Double {
        let raw = UnsafeRawPointer(_storage.bytes)
        switch dtype {
        case .float32: return Double(raw.assumingMemoryBound(to: Float.self)[offset])
        case .float64: return raw.assumingMemoryBound(to: Double.self)[offset]
        case .float16: return Double(_halfBitsToFloat(raw.assumingMemoryBound(to: UInt16.self)[offset]))
        case .bfloat16: return Double(BFloat16(bitPattern: raw.assumingMemoryBound(to: UInt16.self)[offset]).floatValue)
        case .bool: return raw.assumingMemoryBound(to: UInt8.self)[offset] != 0 ? 1 : 0
        }
    }

    /// A contiguous copy of this tensor with storage of its own.
    func _copied() throws -> Tensor {
        let result = try Tensor(_zeros: shape, dtype: dtype, argument: "a contiguous copy")
        let width = dtype.byteWidth
        let src = UnsafeRawPointer(_storage.bytes)
        let dst = result._storage.bytes
        var i = 0
        _forEachOffset { offset in
            (dst + i * width).copyMemory(from: src + offset * width, byteCount: width)
            i += 1
        }
        return result
    }

    /// This tensor laid out row-major without gaps: itself when it already is, else a copy.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the copy cannot be
    ///   allocated (a view broadcast to a large shape holds far more elements than its storage).
    public func contiguous() throws -> Tensor {
        isContiguous ? self : try _copied()
    }

    /// The same values stored as `dtype` (rounded to nearest, ties to even); itself when the dtype already matches.
    ///
    /// Converting to `.bool` gives `true` for every nonzero value.
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` when the result's byte count overflows `Int`,
    ///   ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when it cannot be allocated.
    public func converted(to dtype: DType) throws -> Tensor {
        if dtype == self.dtype { return self }
        try Tensor.validate(shape: shape, argument: "converted(to: \(dtype))", dtype: dtype)
        let result = try Tensor(_zeros: shape, dtype: dtype, argument: "converted(to: \(dtype))")
        var writer = _BlockWriter(into: result)
        _forEachOffset { writer.append(_value(atStorageOffset: $0)) }
        writer.flush()
        return result
    }
}

/// Writes values, in row-major order, into a fresh contiguous tensor a block at a time, rounding each
/// to its dtype: filling a tensor needs no array as large as the tensor.
struct _BlockWriter {
    private let target: Tensor
    private var block: [Double] = []
    private var written = 0
    private static var blockSize: Int { 4096 }

    init(into target: Tensor) {
        self.target = target
        block.reserveCapacity(Swift.min(target.count, Self.blockSize))
    }

    mutating func append(_ value: Double) {
        block.append(value)
        if block.count == Self.blockSize { flush() }
    }

    /// Writes what is buffered; call once after the last `append`.
    mutating func flush() {
        let part = Tensor(_storage: target._storage, dtype: target.dtype, shape: [block.count], strides: [1],
                          offset: target._offset + written)
        block.withUnsafeBufferPointer { part._storeContiguous(from: $0) }
        written += block.count
        block.removeAll(keepingCapacity: true)
    }
}
