extension Tensor {
    /// A view of the elements `range` along `axis`.
    ///
    /// ```swift
    /// let firstTwoHeads = try x.sliced(0..<2, along: 1)
    /// ```
    /// - Throws: ``SDPAError/invalidAxes(argument:axes:shape:)`` for an axis out of bounds,
    ///   ``SDPAError/invalidArgument(argument:value:reason:)`` naming `range` for a range beyond the dimension.
    public func sliced(_ range: Range<Int>, along axis: Int) throws -> Tensor {
        let d = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(d) else {
            throw SDPAError.invalidAxes(argument: "sliced(\(range), along: \(axis))", axes: [axis], shape: shape)
        }
        guard range.lowerBound >= 0, range.upperBound <= shape[d] else {
            throw SDPAError.invalidArgument(
                argument: "range", value: "\(range)",
                reason: "must lie within 0..<\(shape[d]), dimension \(axis) of a tensor of shape \(shape)")
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
        let frontResult = try result.permuted(axes)
        var start = 0
        for t in tensors {
            let source = try t.permuted(axes), target = try frontResult.sliced(start..<(start + t.shape[d]), along: 0)
            _copyElements(from: source, into: target)
            start += t.shape[d]
        }
        return result
    }

    /// Copies `source`'s elements into `target`'s (the same shape and dtype), in row-major order, as runs
    /// of elements contiguous in both (a row of a head at a time, not an element).
    static func _copyElements(from source: Tensor, into target: Tensor) {
        guard source.count > 0 else { return }
        // The trailing dimensions both lay out contiguously are one run.
        var (run, lead) = (1, source.rank)
        while lead > 0 {
            let d = lead - 1
            if source.shape[d] != 1 {
                guard source.strides[d] == run, target.strides[d] == run else { break }
                run *= source.shape[d]
            }
            lead -= 1
        }
        func leading(_ t: Tensor) -> Tensor {
            Tensor(_storage: t._storage, dtype: t.dtype, shape: Array(t.shape[..<lead]), strides: Array(t.strides[..<lead]), offset: t._offset)
        }
        var offsets = [Int]()
        offsets.reserveCapacity(source.count / run)
        leading(target)._forEachOffset { offsets.append($0) }
        let (width, bytes) = (source.dtype.byteWidth, run * source.dtype.byteWidth)
        var i = 0
        leading(source)._forEachOffset { offset in
            (target._storage.bytes + offsets[i] * width).copyMemory(from: source._storage.bytes + offset * width, byteCount: bytes)
            i += 1
        }
    }
}
