/// PyTorch's broadcasting of query, key and value: its SDPA takes inputs of any rank from 2 and broadcasts
/// everything before their last two dimensions as `matmul` does (aligned from the right, a 1 or a missing
/// dimension repeated), the heads included; with `enableGQA` key's and value's heads are first repeated
/// to the query's (`repeat_interleave`), each count dividing it.
///
/// A call whose inputs do not already describe one `[B, H, L, E]` or `[H, L, E]` problem
/// (``isNeeded(_:_:_:enableGQA:)``; inputs of rank 5 and more among them, whose shapes are checked here as
/// given before their batch dimensions are flattened) runs on these: one rank (at least 3), equal batch
/// dimensions, as many key as value heads, as views where a dimension is broadcast (stride 0, nothing
/// copied), copied only when key and value head counts differ and neither is 1 (and, by the flatten after,
/// batch dimensions of rank 5 and more whose strides do not merge). Its results get the
/// inputs' rank back (rank-2 inputs run as rank 3), its gradients the inputs' shapes (summed over what was
/// broadcast or repeated).
@usableFromInline
struct _BroadcastInputs {
    /// The shapes as given.
    let givenQuery: [Int], givenKey: [Int], givenValue: [Int]
    /// The shapes broadcast to one batch and head layout (the given rank, at least 3).
    let expandedQuery: [Int], expandedKey: [Int], expandedValue: [Int]
    /// The batch dimensions the call flattens into `B` (inputs of rank 5 and more), or `nil`.
    let batch: _BatchDimensions?
    /// How many copies of each key / value head the run has, side by side (`repeat_interleave`): more than 1
    /// only with `enableGQA`, for key and value head counts that differ and neither of which is 1.
    let keyRepeats: Int, valueRepeats: Int
    /// The results' rank: the inputs' largest.
    let resultRank: Int

    /// Whether these inputs are not one rank-3 or rank-4 problem as given: ranks that differ, below 3 or above
    /// 4 (batch dimensions to flatten: their shapes are checked here, as given, before), batch dimensions that
    /// differ, key and value head counts that differ, or (without `enableGQA`) one query head against another
    /// number of key/value heads. Runs on every call: reads the shapes in place.
    @inlinable
    static func isNeeded(_ query: borrowing Tensor, _ key: borrowing Tensor, _ value: borrowing Tensor, enableGQA: Bool) -> Bool {
        let rank = query.shape.count
        guard rank == 3 || rank == 4, key.shape.count == rank, value.shape.count == rank else { return true }
        if rank == 4 && (key.shape[0] != query.shape[0] || value.shape[0] != query.shape[0]) { return true }
        let (hq, hk, hv) = (query.shape[rank - 3], key.shape[rank - 3], value.shape[rank - 3])
        return hk != hv || (!enableGQA && hq == 1 && hk != 1)
    }

    /// The shapes a call on inputs of these shapes runs on.
    ///
    /// - Throws: ``SDPAError`` naming the argument and the shapes as given: a rank below 2 (below 3 with
    ///   `enableGQA`), head dimensions `E` or key lengths `S` that differ, batch dimensions or head counts
    ///   that do not broadcast, or (with `enableGQA`) key or value heads that do not divide the query's.
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
        // The run's rank; its dimensions before the heads are the batch dimensions, `heads` their count.
        let rank = Swift.max(resultRank, 3), heads = rank - 3
        func padded(_ shape: [Int]) -> [Int] { [Int](repeating: 1, count: rank - shape.count) + shape }
        let (qp, kp, vp) = (padded(q), padded(k), padded(v))
        // A size against the size the earlier arguments agree on: each 1 or both equal.
        func broadcast(
            _ size: Int, _ agreed: Int, _ name: String, _ shape: [Int], against: (String, [Int]), _ what: @autoclosure () -> String
        ) throws -> Int {
            guard size == agreed || size == 1 || agreed == 1 else {
                throw SDPAError.shapeMismatch(argument: name, shape: shape, other: against.0, otherShape: against.1,
                                              reason: "\(what()) do not broadcast: \(size) against \(agreed) (each must be 1 or equal)")
            }
            return agreed == 1 ? size : agreed
        }

        var batch = [Int]()
        for d in 0..<heads {
            let queryAndKey = try broadcast(kp[d], qp[d], "key", k, against: ("query", q), "the batch dimensions at dimension \(d - rank)")
            batch.append(try broadcast(vp[d], queryAndKey, "value", v, against: qp[d] == 1 ? ("key", k) : ("query", q),
                                       "the batch dimensions at dimension \(d - rank)"))
        }

        let (hq, hk, hv) = (qp[heads], kp[heads], vp[heads])
        var (queryHeads, keyValueHeads, keyRepeats, valueRepeats) = (hq, hk, 1, 1)
        if enableGQA {
            // Each repeated to the query's count (PyTorch's repeat_interleave), so each must divide it.
            guard AttentionShape._headsFit(query: hq, keyValue: hk, enableGQA: true) else {
                throw SDPAError.headCountMismatch(query: q, key: k, enableGQA: true)
            }
            guard AttentionShape._headsFit(query: hq, keyValue: hv, enableGQA: true), hk == hv || (hk > 0 && hv > 0) else {
                throw SDPAError.shapeMismatch(
                    argument: "value", shape: v, other: "query", otherShape: q,
                    reason: "with enableGQA the value's \(hv) heads must divide the query's \(hq), as the key's \(hk) do")
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
            queryHeads = try broadcast(hv, queryHeads, "value", v, against: hq == 1 ? ("key", k) : ("query", q), "the heads")
            // One key/value head shared by every query head stays one: the kernels' multi-query problem.
            keyValueHeads = hk == 1 && hv == 1 ? 1 : queryHeads
        }
        (self.keyRepeats, self.valueRepeats) = (keyRepeats, valueRepeats)
        expandedQuery = batch + [queryHeads, qp[heads + 1], qp[heads + 2]]
        expandedKey = batch + [keyValueHeads, kp[heads + 1], kp[heads + 2]]
        expandedValue = batch + [keyValueHeads, vp[heads + 1], vp[heads + 2]]
        self.batch = rank > 4 ? try _BatchDimensions(query: expandedQuery, key: expandedKey, value: expandedValue) : nil
    }

    /// The shapes the call runs on: the expanded ones, their batch dimensions flattened (rank 3 or 4).
    var runShapes: (query: [Int], key: [Int], value: [Int]) {
        guard let batch else { return (expandedQuery, expandedKey, expandedValue) }
        return ([batch.count] + expandedQuery.suffix(3), [batch.count] + expandedKey.suffix(3), [batch.count] + expandedValue.suffix(3))
    }

    /// The problem the call runs, from ``runShapes`` alone (nothing expanded or copied yet): what the options
    /// (the sinks' shape) are checked against before any work.
    var runShape: AttentionShape {
        let (q, k, v) = runShapes
        return AttentionShape(batch: q.count == 4 ? q[0] : 1, queryHeads: q[q.count - 3], keyValueHeads: k[k.count - 3],
                              queryLength: q[q.count - 2], keyLength: k[k.count - 2], headDim: q[q.count - 1],
                              valueHeadDim: v[v.count - 1], rank: q.count)
    }

    /// The output's shape in the inputs' rank.
    var outputShape: [Int] {
        let run = Array(expandedQuery.dropLast()) + [expandedValue[expandedValue.count - 1]]
        return resultRank == 2 ? Array(run.dropFirst()) : run
    }

    /// Query, key and value as the call runs them (``runShapes``): views, or copies where a key or value's heads
    /// are repeated or batch dimensions do not flatten into one stride.
    func expanded(query: Tensor, key: Tensor, value: Tensor) throws -> (query: Tensor, key: Tensor, value: Tensor) {
        func expanded(_ tensor: Tensor, to target: [Int], repeats: Int, argument: String) throws -> Tensor {
            let view = try repeated(tensor, repeats).broadcast(to: target)
            return try batch?.flattened(view, argument: argument) ?? view
        }
        func repeated(_ tensor: Tensor, _ repeats: Int) throws -> Tensor {
            guard repeats > 1 else { return tensor }
            // [..., h, S, E] read as [..., h, repeats, S, E] (stride 0), copied, merged into h·repeats heads.
            let r = tensor.rank
            let split = try tensor._unsqueezed(at: r - 2).broadcast(to: Array(tensor.shape.prefix(r - 2)) + [repeats] + tensor.shape.suffix(2))
            return try split.reshaped(Array(tensor.shape.prefix(r - 3)) + [tensor.shape[r - 3] * repeats] + tensor.shape.suffix(2))
        }
        return (try expanded(query, to: expandedQuery, repeats: 1, argument: "query"),
                try expanded(key, to: expandedKey, repeats: keyRepeats, argument: "key"),
                try expanded(value, to: expandedValue, repeats: valueRepeats, argument: "value"))
    }

    /// A result of the run (`[..., H, L, Ev]` or `[..., H, L]`) in the inputs' rank: itself, with its batch
    /// dimensions back, or without the leading 1 a rank-2 call ran with (a view).
    ///
    /// - Throws: ``SDPAError/shapeMismatch(argument:shape:other:otherShape:reason:)`` naming `argument` when the run
    ///   returned another batch or no leading 1 (a bias's own `dispatch` returning another shape).
    func inInputsRank(_ tensor: Tensor, argument: String) throws -> Tensor {
        if let batch { return try batch.restored(tensor, argument: argument) }
        guard resultRank == 2 else { return tensor }
        guard tensor.rank >= 1, tensor.shape[0] == 1 else {
            throw SDPAError.shapeMismatch(
                argument: argument, shape: tensor.shape, other: "query", otherShape: givenQuery,
                reason: "the call on rank-2 inputs, run as rank 3, must return a leading dimension of 1")
        }
        return tensor._squeezed(at: 0)
    }

    /// A forward result or its gradient given back for the backward pass (`output`, `gradOutput`: the output's
    /// shape; `logSumExp`: without its last dimension) as the run takes it: with a leading 1 for a rank-2 call,
    /// its batch dimensions flattened for rank 5 and more.
    ///
    /// - Throws: ``SDPAError/shapeMismatch(argument:shape:other:otherShape:reason:)`` naming `argument` and the
    ///   shapes as given when it has another shape.
    func inRunRank(_ tensor: Tensor, argument: String, isLogSumExp: Bool = false) throws -> Tensor {
        let expected = isLogSumExp ? Array(outputShape.dropLast()) : outputShape
        guard tensor.shape == expected else {
            throw SDPAError.shapeMismatch(
                argument: argument, shape: tensor.shape, other: "query", otherShape: givenQuery,
                reason: "the forward's \(isLogSumExp ? "log-sum-exp" : "output") for these inputs has shape \(expected) "
                    + "(key \(givenKey), value \(givenValue))")
        }
        if let batch { return try batch.flattened(tensor, argument: argument) }
        return resultRank == 2 ? tensor._unsqueezed(at: 0) : tensor
    }

    /// Whether an input's gradient (given shape, the run's shape, heads repeated by) is a sum over what was broadcast
    /// or repeated, not only the run's gradient or a view of it (a difference of leading 1s).
    private static func sums(given: [Int], run: [Int], repeats: Int) -> Bool {
        repeats > 1 || given.drop(while: { $0 == 1 }) != run.drop(while: { $0 == 1 })
    }

    /// The dtype the run's gradients are to come in for inputs of `dtype`: float32 for half precisions when some
    /// gradient is a sum (its parts kept wider until summed, then rounded once), else `dtype`.
    func runGradientDType(for dtype: DType) -> DType {
        let sums = Self.sums(given: givenQuery, run: expandedQuery, repeats: 1) || Self.sums(given: givenKey, run: expandedKey, repeats: keyRepeats)
            || Self.sums(given: givenValue, run: expandedValue, repeats: valueRepeats)
        return dtype.isHalfPrecision && sums ? .float32 : dtype
    }

    /// The gradient of an input given in shape `given` and dtype `dtype`, from the gradient of the run's input
    /// (in ``runGradientDType(for:)``): summed in `Double` over the heads'
    /// repeats and every broadcast dimension, then rounded to `dtype` (from float32 parts for half precision,
    /// not from parts already rounded to it).
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` naming `argument`.
    func gradient(_ run: Tensor, given: [Int], dtype: DType, repeats: Int, argument: String) throws -> Tensor {
        var gradient = try batch?.restored(run, argument: argument) ?? run
        if !Self.sums(given: given, run: gradient.shape, repeats: repeats) {
            // Nothing summed: the run's gradient, or a view of it when only the rank differs (leading 1s).
            if gradient.dtype != dtype { gradient = try gradient.converted(to: dtype) }
            return gradient.shape == given ? gradient : try gradient.reshaped(given)
        }
        let r = gradient.rank
        // [batch..., h·repeats, S, E] read as [batch..., h, repeats, S, E], summed into the given shape with a 1 for
        // the repeats (aligned from the right, a missing dimension summed), then without it.
        let split = Array(gradient.shape.prefix(r - 3)) + [gradient.shape[r - 3] / repeats, repeats] + gradient.shape.suffix(2)
        let target = Array(given.dropLast(2)) + [1] + given.suffix(2)
        return try Tensor._summingBroadcast(gradient, as: split, to: target, dtype: dtype, argument: argument).reshaped(given)
    }
}
