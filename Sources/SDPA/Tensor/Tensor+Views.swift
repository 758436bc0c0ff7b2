// Views share storage with the tensor they come from: no element is copied.

extension Tensor {
    /// A view with the dimensions reordered: dimension `d` of the result is dimension `axes[d]` of this tensor.
    ///
    /// ```swift
    /// let bhle = try blhe.permuted([0, 2, 1, 3])   // [B, L, H, E] seen as [B, H, L, E]
    /// ```
    /// - Throws: ``SDPAError/invalidAxes(argument:axes:shape:)`` unless `axes` is a permutation of `0..<rank`.
    public func permuted(_ axes: [Int]) throws -> Tensor {
        guard axes.count == rank, Set(axes) == Set(0..<rank) else {
            throw SDPAError.invalidAxes(argument: "axes", axes: axes, shape: shape)
        }
        return Tensor(
            _storage: _storage, dtype: dtype,
            shape: axes.map { shape[$0] }, strides: axes.map { strides[$0] }, offset: _offset)
    }

    /// A view with two dimensions swapped (negative axes count from the end).
    ///
    /// - Throws: ``SDPAError/invalidAxes(argument:axes:shape:)`` for an axis out of range.
    public func transposed(_ a: Int, _ b: Int) throws -> Tensor {
        let (da, db) = (a < 0 ? a + rank : a, b < 0 ? b + rank : b)
        guard (0..<rank).contains(da), (0..<rank).contains(db) else {
            throw SDPAError.invalidAxes(argument: "transposed axes", axes: [a, b], shape: shape)
        }
        var axes = Array(0..<rank)
        axes.swapAt(da, db)
        return try permuted(axes)
    }

    /// The same elements in row-major order with another shape; one dimension may be `-1` (inferred).
    ///
    /// A view when this tensor is contiguous, otherwise a contiguous copy (as PyTorch's `reshape`).
    /// - Throws: ``SDPAError/reshape(from:to:)`` when the element counts differ.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var resolved = newShape
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        if inferred.count > 1 || newShape.contains(where: { $0 < -1 }) {
            throw SDPAError.reshape(from: shape, to: newShape)
        }
        if let d = inferred.first {
            var known = 1
            for (n, size) in newShape.enumerated() where n != d {
                let (product, overflow) = known.multipliedReportingOverflow(by: size)
                guard !overflow else { throw SDPAError.reshape(from: shape, to: newShape) }
                known = product
            }
            guard known > 0, count % known == 0 else { throw SDPAError.reshape(from: shape, to: newShape) }
            resolved[d] = count / known
        }
        // A shape whose sizes overflow cannot hold this tensor's elements, whatever it multiplies to.
        guard (try? Tensor.validate(shape: resolved, argument: "newShape", dtype: dtype)) != nil,
              resolved.reduce(1, *) == count
        else { throw SDPAError.reshape(from: shape, to: newShape) }
        let base = try contiguous()
        return Tensor(
            _storage: base._storage, dtype: dtype, shape: resolved,
            strides: Tensor.contiguousStrides(for: resolved), offset: base._offset)
    }

    /// A view without dimension `axis`, which has size 1.
    func _squeezed(at axis: Int) -> Tensor {
        precondition(shape[axis] == 1, "only a dimension of size 1 is squeezed")
        var s = shape, st = strides
        s.remove(at: axis)
        st.remove(at: axis)
        return Tensor(_storage: _storage, dtype: dtype, shape: s, strides: st, offset: _offset)
    }

    /// A view with a new dimension of size 1 inserted at `axis`.
    func _unsqueezed(at axis: Int) -> Tensor {
        var s = shape, st = strides
        s.insert(1, at: axis)
        st.insert(axis < rank ? strides[axis] * shape[axis] : 1, at: axis)
        return Tensor(_storage: _storage, dtype: dtype, shape: s, strides: st, offset: _offset)
    }

    /// A view of this tensor broadcast to `target` with PyTorch's rules: dimensions align from
    /// the right, and each must equal the target's or be 1 (which repeats it with stride 0).
    /// Unlike `torch.broadcast_to`, leading dimensions beyond the target's rank are dropped when
    /// they are 1 (a `[1, H, L, S]` mask read against 3-D inputs' `[H, L, S]` scores).
    ///
    /// ```swift
    /// let mask = try Tensor(shape: [4, 6], bools: ...)      // [L, S]
    /// let scores = try mask.broadcast(to: [2, 8, 4, 6])     // [B, H, L, S], no copy
    /// ```
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` for a target with a negative dimension or
    ///   sizes that overflow `Int`; ``SDPAError/maskNotBroadcastable(mask:target:)`` when a dimension does not fit.
    public func broadcast(to target: [Int]) throws -> Tensor {
        try Tensor.validate(shape: target, argument: "broadcast target", dtype: dtype)
        guard let strides = broadcastStrides(to: target) else {
            throw SDPAError.maskNotBroadcastable(mask: shape, target: target)
        }
        return Tensor(_storage: _storage, dtype: dtype, shape: target, strides: strides, offset: _offset)
    }

    /// Strides that read this tensor as if it had shape `target`, or `nil` when it cannot be broadcast.
    public func broadcastStrides(to target: [Int]) -> [Int]? {
        guard rank <= target.count else {
            // Extra leading dimensions are allowed only when they are 1.
            let extra = rank - target.count
            guard shape.prefix(extra).allSatisfy({ $0 == 1 }) else { return nil }
            return Tensor(
                _storage: _storage, dtype: dtype, shape: Array(shape.dropFirst(extra)),
                strides: Array(strides.dropFirst(extra)), offset: _offset
            ).broadcastStrides(to: target)
        }
        var result = [Int](repeating: 0, count: target.count)
        let lead = target.count - rank
        for d in 0..<rank {
            let t = target[lead + d]
            if shape[d] == t {
                result[lead + d] = t == 1 ? 0 : strides[d]
            } else if shape[d] == 1 {
                result[lead + d] = 0
            } else {
                return nil
            }
        }
        return result
    }
}
