/// PyTorch's broadcasting of query, key and value: its SDPA takes inputs of any rank from 2 and broadcasts
/// everything before their last two dimensions as `matmul` does (aligned from the right, a 1 or a missing
/// dimension repeated), the heads included; with `enableGQA` key's and value's heads are first repeated
/// to the query's (`repeat_interleave`), each count dividing it.
///
/// A call whose inputs do not already describe one `[B, H, L, E]` problem (``isNeeded(_:_:_:enableGQA:)``)
/// runs on these: one rank (at least 3), equal batch dimensions, as many key as value heads, as views
/// where a dimension is broadcast (stride 0, nothing copied), copied only when key and value head counts
/// differ and neither is 1. Its results get the inputs' rank back (rank-2 inputs run as rank 3), its
/// gradients the inputs' shapes (summed over what was broadcast or repeated).
@usableFromInline
struct _BroadcastInputs {
    /// The shapes as given.
    let givenQuery: [Int], givenKey: [Int], givenValue: [Int]
    /// The shapes the call runs on.
    let query: [Int], key: [Int], value: [Int]
    /// How many copies of each key / value head the run has, side by side (`repeat_interleave`): more than 1
    /// only with `enableGQA`, for key and value head counts that differ and neither of which is 1.
    let keyRepeats: Int, valueRepeats: Int
    /// The results' rank: the inputs' largest.
    let resultRank: Int

    /// Whether these inputs need broadcasting: ranks that differ or are below 3, batch dimensions that
    /// differ, key and value head counts that differ, or (without `enableGQA`) one query head against
    /// several key/value heads. Runs on every call: reads the shapes in place.
    @inlinable
    static func isNeeded(_ query: borrowing Tensor, _ key: borrowing Tensor, _ value: borrowing Tensor, enableGQA: Bool) -> Bool {
        let rank = query.shape.count
        guard rank >= 3, key.shape.count == rank, value.shape.count == rank else { return true }
        for d in 0..<(rank - 3) where key.shape[d] != query.shape[d] || value.shape[d] != query.shape[d] { return true }
        let (hq, hk, hv) = (query.shape[rank - 3], key.shape[rank - 3], value.shape[rank - 3])
        return hk != hv || (!enableGQA && hq == 1 && hk > 1)
    }

    /// The shapes a call on these inputs runs on: theirs, or their expansion's when they broadcast.
    ///
    /// - Throws: as ``init(query:key:value:enableGQA:)``.
    static func runShapes(_ query: Tensor, _ key: Tensor, _ value: Tensor, enableGQA: Bool) throws -> (query: [Int], key: [Int], value: [Int]) {
        guard isNeeded(query, key, value, enableGQA: enableGQA) else { return (query.shape, key.shape, value.shape) }
        let inputs = try _BroadcastInputs(query: query.shape, key: key.shape, value: value.shape, enableGQA: enableGQA)
        return (inputs.query, inputs.key, inputs.value)
    }

    /// The shapes a call on inputs of these shapes runs on.
    ///
    /// - Throws: ``SDPAError`` naming the argument and shapes: a rank below 2 (below 3 with `enableGQA`),
    ///   head dimensions `E` or key lengths `S` that differ, batch dimensions or head counts that do not
    ///   broadcast, or (with `enableGQA`) key or value heads that do not divide the query's.
    init(query q: [Int], key k: [Int], value v: [Int], enableGQA: Bool) throws {
        let least = enableGQA ? 3 : 2
        for (name, shape) in [("query", q), ("key", k), ("value", v)] where shape.count < least {
            throw SDPAError.rank(
                argument: name, shape: shape,
                expected: enableGQA ? "at least 3 dimensions [..., H, L, E] with enableGQA (it repeats the heads, dimension -3)"
                                    : "at least 2 dimensions, [..., L, E]")
        }
        if k[k.count - 1] != q[q.count - 1] {
            throw SDPAError.shapeMismatch(argument: "key", shape: k, other: "query", otherShape: q,
                                          reason: "query and key must have the same head dimension E")
        }
        if v[v.count - 2] != k[k.count - 2] {
            throw SDPAError.shapeMismatch(argument: "value", shape: v, other: "key", otherShape: k,
                                          reason: "key and value must have the same sequence length S")
        }
        (givenQuery, givenKey, givenValue) = (q, k, v)
        resultRank = Swift.max(q.count, k.count, v.count)
        let rank = Swift.max(resultRank, 3), h = rank - 3
        func padded(_ shape: [Int]) -> [Int] { [Int](repeating: 1, count: rank - shape.count) + shape }
        let (qp, kp, vp) = (padded(q), padded(k), padded(v))

        // Batch dimensions: each 1 or the size the others agree on.
        var batch = [Int]()
        for d in 0..<h {
            var size = qp[d]
            if kp[d] != size && kp[d] != 1 && size != 1 {
                throw SDPAError.shapeMismatch(
                    argument: "key", shape: k, other: "query", otherShape: q,
                    reason: "the batch dimensions do not broadcast: \(kp[d]) against \(size) at dimension \(d - h - 3) (each must be 1 or equal)")
            }
            if size == 1 { size = kp[d] }
            if vp[d] != size && vp[d] != 1 && size != 1 {
                throw SDPAError.shapeMismatch(
                    argument: "value", shape: v, other: qp[d] == 1 ? "key" : "query", otherShape: qp[d] == 1 ? k : q,
                    reason: "the batch dimensions do not broadcast: \(vp[d]) against \(size) at dimension \(d - h - 3) (each must be 1 or equal)")
            }
            if size == 1 { size = vp[d] }
            batch.append(size)
        }

        // Heads: repeated under GQA, broadcast without it; key and value end with one count.
        let (hq, hk, hv) = (qp[h], kp[h], vp[h])
        var (queryHeads, keyValueHeads, keyRepeats, valueRepeats) = (hq, hk, 1, 1)
        if enableGQA {
            guard hk > 0, hq % hk == 0 else { throw SDPAError.headCountMismatch(query: q, key: k, enableGQA: true) }
            guard hv > 0, hq % hv == 0 else {
                throw SDPAError.shapeMismatch(argument: "value", shape: v, other: "query", otherShape: q,
                                              reason: "with enableGQA the value heads must divide the query heads")
            }
            if hk != hv {
                if hk == 1 {
                    keyValueHeads = hv
                } else if hv != 1 {
                    // Both repeated to the least count each divides, which divides the query's too.
                    var (a, b) = (hk, hv)
                    while b != 0 { (a, b) = (b, a % b) }
                    keyValueHeads = hk / a * hv
                    (keyRepeats, valueRepeats) = (keyValueHeads / hk, keyValueHeads / hv)
                }
            }
        } else {
            if hk != hq && hk != 1 && hq != 1 { throw SDPAError.headCountMismatch(query: q, key: k, enableGQA: false) }
            queryHeads = hq == 1 ? hk : hq
            if hv != queryHeads && hv != 1 && queryHeads != 1 {
                throw SDPAError.shapeMismatch(
                    argument: "value", shape: v, other: "query", otherShape: q,
                    reason: "the heads do not broadcast: \(hv) value heads against \(queryHeads) (each must be 1 or equal; or pass enableGQA)")
            }
            if queryHeads == 1 { queryHeads = hv }
            // One key/value head shared by every query head stays one: the kernels' multi-query problem.
            keyValueHeads = hk == 1 && hv == 1 ? 1 : queryHeads
        }
        (self.keyRepeats, self.valueRepeats) = (keyRepeats, valueRepeats)
        query = batch + [queryHeads, qp[h + 1], qp[h + 2]]
        key = batch + [keyValueHeads, kp[h + 1], kp[h + 2]]
        value = batch + [keyValueHeads, vp[h + 1], vp[h + 2]]
    }

    /// Query, key and value as the call runs them: views, or a copy of key or value whose heads are repeated.
    func expanded(query: Tensor, key: Tensor, value: Tensor) throws -> (query: Tensor, key: Tensor, value: Tensor) {
        func expanded(_ tensor: Tensor, to target: [Int], repeats: Int) throws -> Tensor {
            guard repeats > 1 else { return try tensor.broadcast(to: target) }
            // [..., h, S, E] read as [..., h, repeats, S, E] (stride 0), copied, merged into h·repeats heads.
            let r = tensor.rank
            let split = Tensor(_storage: tensor._storage, dtype: tensor.dtype,
                               shape: Array(tensor.shape.prefix(r - 2)) + [repeats] + tensor.shape.suffix(2),
                               strides: Array(tensor.strides.prefix(r - 2)) + [0] + tensor.strides.suffix(2), offset: tensor._offset)
            let repeated = try split.contiguous().reshaped(
                Array(tensor.shape.prefix(r - 3)) + [tensor.shape[r - 3] * repeats] + tensor.shape.suffix(2))
            return try repeated.broadcast(to: target)
        }
        return (try expanded(query, to: self.query, repeats: 1), try expanded(key, to: self.key, repeats: keyRepeats),
                try expanded(value, to: self.value, repeats: valueRepeats))
    }

    /// A result of the run (`[..., H, L, Ev]` or `[..., H, L]`) in the inputs' rank: itself, or without
    /// the leading 1 a rank-2 call ran with (a view).
    ///
    /// - Throws: ``SDPAError/shapeMismatch(argument:shape:other:otherShape:reason:)`` naming `argument` when the run
    ///   returned no leading 1 (a bias's own `dispatch` returning another shape).
    func result(_ tensor: Tensor, argument: String) throws -> Tensor {
        guard resultRank == 2 else { return tensor }
        guard tensor.rank >= 1, tensor.shape[0] == 1 else {
            throw SDPAError.shapeMismatch(
                argument: argument, shape: tensor.shape, other: "query", otherShape: givenQuery,
                reason: "the call on rank-2 inputs, run as rank 3, must return a leading dimension of 1")
        }
        return Tensor(_storage: tensor._storage, dtype: tensor.dtype, shape: Array(tensor.shape.dropFirst()),
                      strides: Array(tensor.strides.dropFirst()), offset: tensor._offset)
    }

    /// A tensor given in the results' rank (`output`, `gradOutput`: `[L, Ev]`; `logSumExp`: `[L]`, for a
    /// rank-2 call) in the run's: with a leading 1 when the call is rank 2 and `tensor` has `rank`
    /// dimensions; otherwise as given (the run's checks name what does not fit).
    func lifted(_ tensor: Tensor, rank: Int) -> Tensor {
        guard resultRank == 2, tensor.rank == rank else { return tensor }
        return Tensor(_storage: tensor._storage, dtype: tensor.dtype, shape: [1] + tensor.shape, strides: [0] + tensor.strides,
                      offset: tensor._offset)
    }

    /// The gradient of an input given in shape `given`, from the gradient of the run's expanded input:
    /// summed over the heads' repeats, then over every broadcast dimension, rounded once to its dtype.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` naming `argument`.
    func gradient(_ gradient: Tensor, given: [Int], repeats: Int, argument: String) throws -> Tensor {
        if gradient.shape == given { return gradient }
        var (values, shape) = (gradient.doubleScalars, gradient.shape)
        if repeats > 1 {
            let r = shape.count, heads = shape[r - 3] / repeats
            let split = Array(shape.prefix(r - 3)) + [heads, repeats] + shape.suffix(2)
            let summedShape = Array(shape.prefix(r - 3)) + [heads, 1] + shape.suffix(2)
            values = try Tensor._summingBroadcast(values, shape: split, to: summedShape, dtype: .float64, argument: argument).doubleScalars
            shape = Array(shape.prefix(r - 3)) + [heads] + shape.suffix(2)
        }
        return try Tensor._summingBroadcast(values, shape: shape, to: given, dtype: gradient.dtype, argument: argument)
    }
}
