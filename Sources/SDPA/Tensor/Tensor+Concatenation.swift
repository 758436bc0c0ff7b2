extension Tensor {
    /// A view of the elements `range` along `axis`.
    ///
    /// ```swift
    /// let firstTwoHeads = try x.sliced(0..<2, along: 1)
    /// ```
    /// - Throws: ``SDPAError/invalidAxes(argument:axes:shape:)`` for an axis or range out of bounds.
    public func sliced(_ range: Range<Int>, along axis: Int) throws -> Tensor {
        let d = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(d), range.lowerBound >= 0, range.upperBound <= shape[d] else {
            throw SDPAError.invalidAxes(argument: "sliced(\(range), along: \(axis))", axes: [axis], shape: shape)
        }
        var s = shape
        s[d] = range.count
        return Tensor(_storage: _storage, dtype: dtype, shape: s, strides: strides, offset: _offset + range.lowerBound * strides[d])
    }

    /// The tensors joined along `axis`: every other dimension, and the dtype, must agree.
    ///
    /// ```swift
    /// let packed = try Tensor.concatenated([a, b, c], along: 0)    // [La + Lb + Lc, H, E]
    /// ```
    /// - Throws: ``SDPAError/shapeMismatch(argument:shape:other:otherShape:reason:)`` or
    ///   ``SDPAError/dtypeMismatch(query:key:value:)``-style errors naming the first tensor that does not fit.
    public static func concatenated(_ tensors: [Tensor], along axis: Int) throws -> Tensor {
        guard let first = tensors.first else {
            throw SDPAError.invalidArgument(argument: "tensors", value: "[]", reason: "nothing to concatenate")
        }
        let d = axis < 0 ? axis + first.rank : axis
        guard (0..<first.rank).contains(d) else {
            throw SDPAError.invalidAxes(argument: "concatenated(along: \(axis))", axes: [axis], shape: first.shape)
        }
        for (n, t) in tensors.enumerated() {
            var a = t.shape, b = first.shape
            if a.count == b.count { a[d] = 0; b[d] = 0 }
            if a != b {
                throw SDPAError.shapeMismatch(argument: "tensors[\(n)]", shape: t.shape, other: "tensors[0]", otherShape: first.shape,
                                              reason: "all dimensions but \(d) must agree")
            }
            if t.dtype != first.dtype {
                throw SDPAError.unsupportedDType(argument: "tensors[\(n)]", dtype: t.dtype, reason: "tensors[0] has dtype \(first.dtype); all must agree")
            }
        }
        var shape = first.shape
        shape[d] = 0
        for t in tensors {
            let (sum, overflow) = shape[d].addingReportingOverflow(t.shape[d])
            if overflow {
                throw SDPAError.invalidShape(argument: "tensors", shape: first.shape,
                                             reason: "the sizes along dimension \(d) sum past Int.max")
            }
            shape[d] = sum
        }
        try Tensor.validate(shape: shape, argument: "concatenated(along: \(axis))", dtype: first.dtype)
        // Copy each part into its slice of the result, moving `d` to the front so every part is one block.
        let result = try Tensor(_zeros: shape, dtype: first.dtype, argument: "concatenated(along: \(axis))")
        var axes = Array(0..<first.rank)
        axes.remove(at: d)
        axes.insert(d, at: 0)
        let width = first.dtype.byteWidth
        let frontResult = try result.permuted(axes)
        var start = 0
        for t in tensors {
            let source = try t.permuted(axes), target = try frontResult.sliced(start..<(start + t.shape[d]), along: 0)
            var offsets = [Int]()
            offsets.reserveCapacity(target.count)
            target._forEachOffset { offsets.append($0) }
            var i = 0
            source._forEachOffset { offset in
                (result._storage.bytes + offsets[i] * width).copyMemory(from: source._storage.bytes + offset * width, byteCount: width)
                i += 1
            }
            start += t.shape[d]
        }
        return result
    }
}
