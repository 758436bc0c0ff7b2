/// The sizes of one attention problem, read off and checked against query, key and value.
///
/// Shape legend (PyTorch's and MLX's): `B` batch, `H` query heads, `Hkv` key/value heads,
/// `L` query length, `S` key/value length, `E` query/key head dim, `Ev` value head dim.
///
/// | argument | shape |
/// |---|---|
/// | query | `[B, H, L, E]` or `[H, L, E]` |
/// | key | `[B, Hkv, S, E]` or `[Hkv, S, E]` |
/// | value | `[B, Hkv, S, Ev]` or `[Hkv, S, Ev]` |
/// | mask | at most 4-D, broadcastable to `[B, H, L, S]` (`[H, L, S]` for 3-D inputs; up to the inputs' rank for rank 5 and more) |
/// | output | `[B, H, L, Ev]` or `[H, L, Ev]` |
///
/// This shape describes one problem of rank 3 or 4. The entry points take more (PyTorch's broadcasting: any rank
/// from 2, batch dimensions and heads of size 1); ``init(flatteningBatchDimensionsOf:key:value:enableGQA:)``
/// reads the problem such inputs run as.
public struct AttentionShape: Sendable, Hashable, CustomStringConvertible {
    /// `B` (1 for 3-D inputs).
    public var batch: Int
    /// `H`.
    public var queryHeads: Int
    /// `Hkv`: equal to `H`, or 1, unless grouped-query attention is enabled (then `H` is a multiple of it).
    public var keyValueHeads: Int
    /// `L`.
    public var queryLength: Int
    /// `S`.
    public var keyLength: Int
    /// `E`.
    public var headDim: Int
    /// `Ev`.
    public var valueHeadDim: Int
    /// 3 or 4: the rank of the inputs, and of the output, of the problem this shape describes (for the
    /// call other inputs run as, ``init(flatteningBatchDimensionsOf:key:value:enableGQA:)``: 4 for inputs of rank
    /// 5 and more, 3 for rank-2 inputs, whose output has rank 2).
    public var rank: Int

    /// Creates a shape from sizes; ``init(query:key:value:enableGQA:)`` reads them off tensors instead.
    public init(batch: Int, queryHeads: Int, keyValueHeads: Int, queryLength: Int, keyLength: Int,
                headDim: Int, valueHeadDim: Int, rank: Int = 4) {
        self.batch = batch
        self.queryHeads = queryHeads
        self.keyValueHeads = keyValueHeads
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.headDim = headDim
        self.valueHeadDim = valueHeadDim
        self.rank = rank
    }

    /// Reads the sizes off the inputs and checks that they fit together.
    ///
    /// - Throws: ``SDPAError`` naming the argument and shapes: ranks other than 3 or 4, ranks
    ///   that differ, batch / length / head-dim mismatches, head counts that do not fit
    ///   (with or without `enableGQA`; without it, equal counts or one key/value head, broadcast to
    ///   every query head as PyTorch does), dtypes that differ or are not floating point.
    public init(query: borrowing Tensor, key: borrowing Tensor, value: borrowing Tensor, enableGQA: Bool) throws {
        // Runs on every call, so the sizes are read in place: copying a shape array costs a retain
        // and a release, a measurable share of a tiny call. The arrays are copied only to explain
        // an error, by `_diagnose`, which checks in the documented order.
        let dtype = query.dtype
        let rank = query.shape.count
        guard rank == 3 || rank == 4, key.shape.count == rank, value.shape.count == rank,
              key.dtype == dtype, value.dtype == dtype, dtype.isFloatingPoint
        else {
            try AttentionShape._diagnose(query.shape, key.shape, value.shape, dtype, key.dtype, value.dtype, enableGQA: enableGQA)
            preconditionFailure("unreachable: _diagnose throws for every input the checks above reject")
        }
        // The four dimensions of a [B, H, L, E] view (a 3-D input has B = 1).
        let o = rank - 4
        let q = (o < 0 ? 1 : query.shape[0], query.shape[o + 1], query.shape[o + 2], query.shape[o + 3])
        let k = (o < 0 ? 1 : key.shape[0], key.shape[o + 1], key.shape[o + 2], key.shape[o + 3])
        let v = (o < 0 ? 1 : value.shape[0], value.shape[o + 1], value.shape[o + 2], value.shape[o + 3])
        // Without enableGQA one key/value head is broadcast to every query head, as PyTorch's
        // broadcasting does (multi-query attention): GQA's problem with one key/value head shared by all H.
        guard k.0 == q.0, v.0 == q.0, k.1 == v.1, k.2 == v.2, k.3 == q.3,
              AttentionShape._headsFit(query: q.1, keyValue: k.1, enableGQA: enableGQA) else {
            try AttentionShape._diagnose(query.shape, key.shape, value.shape, dtype, key.dtype, value.dtype, enableGQA: enableGQA)
            preconditionFailure("unreachable: _diagnose throws for every input the checks above reject")
        }
        self.init(batch: q.0, queryHeads: q.1, keyValueHeads: k.1, queryLength: q.2, keyLength: k.2,
                  headDim: q.3, valueHeadDim: v.3, rank: rank)
        try _checkDerivedSizes(dtype: dtype)
    }

    /// The shape of the call the entry points run for these inputs: ``init(query:key:value:enableGQA:)`` for
    /// inputs of rank 3 or 4 that need no broadcasting; otherwise that of the call they run as, against which
    /// a bias is built and validated: inputs that broadcast (PyTorch's rules: any rank from 2, batch
    /// dimensions and heads of size 1) expanded to one shape (`rank` 3 for rank-2 inputs), and batch
    /// dimensions of rank 5 and more (PyTorch's `(N, ..., H, L, E)`) flattened into `B` (`rank` 4).
    ///
    /// ```swift
    /// let q = try Tensor.randomNormal(shape: [2, 3, 8, 128, 64], seed: 1)
    /// let k = try Tensor.randomNormal(shape: [1, 3, 8, 256, 64], seed: 2)    // shared across the first dimension
    /// let shape = try AttentionShape(flatteningBatchDimensionsOf: q, key: k, value: k, enableGQA: false)
    /// // B=6 H=8 Hkv=8 L=128 S=256 E=64 Ev=64
    /// ```
    /// - Throws: as ``init(query:key:value:enableGQA:)``, and for inputs that do not broadcast, naming the
    ///   shapes as given.
    public init(flatteningBatchDimensionsOf query: Tensor, key: Tensor, value: Tensor, enableGQA: Bool) throws {
        self = try AttentionShape._ofCall(query: query, key: key, value: value, enableGQA: enableGQA).shape
    }

    /// The shape of the call the entry points run for these inputs, and the batch dimensions it flattens
    /// (`nil` below rank 5), by which a ``TensorBias`` mask is flattened as the call flattens it.
    static func _ofCall(query: Tensor, key: Tensor, value: Tensor, enableGQA: Bool) throws -> (shape: AttentionShape, batch: _BatchDimensions?) {
        guard _BroadcastInputs.isNeeded(query, key, value, enableGQA: enableGQA) else {
            return (try AttentionShape(query: query, key: key, value: value, enableGQA: enableGQA), nil)
        }
        let inputs = try _BroadcastInputs(query: query.shape, key: key.shape, value: value.shape, enableGQA: enableGQA)
        let (qs, ks, vs) = inputs.runShapes
        try AttentionShape._diagnose(qs, ks, vs, query.dtype, key.dtype, value.dtype, enableGQA: enableGQA)
        let shape = inputs.runShape
        try shape._checkDerivedSizes(dtype: query.dtype)
        return (shape, inputs.batch)
    }

    /// Throws unless every size derived from these inputs fits in `Int`: the output's elements and bytes
    /// (`B·H·L·Ev`), the log-sum-exp's (`B·H·L` float32) and the score count `B·H·L·S`, which bounds every
    /// index the kernels compute. Zero-element inputs can describe any of these past `Int.max`
    /// (`[1, 2³¹, 2³¹, 0]` has a log-sum-exp of 2⁶² floats). Runs on every call: no array, no string unless it throws.
    @inline(__always)
    func _checkDerivedSizes(dtype: DType) throws {
        let (rows, a) = batch.multipliedReportingOverflow(by: queryHeads)
        let (queryRows, b) = rows.multipliedReportingOverflow(by: queryLength)
        let (_, c) = queryRows.multipliedReportingOverflow(by: 4)
        let (outputs, d) = queryRows.multipliedReportingOverflow(by: valueHeadDim)
        let (_, e) = outputs.multipliedReportingOverflow(by: dtype.byteWidth)
        let (_, f) = queryRows.multipliedReportingOverflow(by: keyLength)
        if a || b || c || d || e || f { try _throwDerivedSizeError(dtype: dtype) }
    }

    /// The error ``_checkDerivedSizes(dtype:)`` found, named after what overflows.
    @inline(never)
    func _throwDerivedSizeError(dtype: DType) throws {
        let lseShape = Array(outputShape.dropLast())
        if _checkedProduct(batch, queryHeads, queryLength, 4) == nil {
            throw SDPAError.invalidShape(
                argument: "query", shape: rank == 3 ? [queryHeads, queryLength, headDim] : [batch, queryHeads, queryLength, headDim],
                reason: "the log-sum-exp \(lseShape) (B·H·L float32 values) would need more bytes than Int can count")
        }
        if _checkedProduct(batch, queryHeads, queryLength, valueHeadDim, dtype.byteWidth) == nil {
            throw SDPAError.invalidShape(
                argument: "output", shape: outputShape,
                reason: "B·H·L·Ev \(dtype) values (L from query, Ev from value) would need more bytes than Int can count")
        }
        throw SDPAError.invalidShape(
            argument: "attention scores", shape: scoresShape,
            reason: "B·H·L·S (L from query, S from key) overflows Int")
    }

    /// Checks sizes given as numbers rather than read off tensors, as ``explainSDPA(shape:dtype:attnMask:isCausal:scale:dropoutP:enableGQA:sinks:)``
    /// takes them: a rank of 3 or 4, no negative size, `B = 1` for rank 3, inputs that fit together
    /// (the checks of ``init(query:key:value:enableGQA:)``) and element and byte counts of the inputs,
    /// the output, the log-sum-exp and the scores within `Int`. Allocates nothing proportional to the sizes.
    ///
    /// ```swift
    /// let shape = AttentionShape(batch: 1, queryHeads: 8, keyValueHeads: 8, queryLength: 1 << 40,
    ///                            keyLength: 1 << 40, headDim: 64, valueHeadDim: 64)
    /// try shape.validate(dtype: .float32, enableGQA: false)   // throws: B·H·L·S overflows Int
    /// ```
    /// - Throws: ``SDPAError`` naming the argument (`query`, `key`, `value`, `output`, ...) at fault.
    public func validate(dtype: DType, enableGQA: Bool) throws {
        guard rank == 3 || rank == 4 else {
            throw SDPAError.invalidArgument(argument: "AttentionShape.rank", value: "\(rank)", reason: "the inputs have rank 3 or 4")
        }
        if rank == 3 && batch != 1 {
            throw SDPAError.invalidArgument(argument: "AttentionShape.batch", value: "\(batch)", reason: "rank-3 inputs have B = 1")
        }
        func shape(_ heads: Int, _ length: Int, _ dim: Int) -> [Int] { rank == 3 ? [heads, length, dim] : [batch, heads, length, dim] }
        let (qs, ks, vs) = (shape(queryHeads, queryLength, headDim), shape(keyValueHeads, keyLength, headDim),
                            shape(keyValueHeads, keyLength, valueHeadDim))
        try Tensor.validate(shape: qs, argument: "query", dtype: dtype)
        try Tensor.validate(shape: ks, argument: "key", dtype: dtype)
        try Tensor.validate(shape: vs, argument: "value", dtype: dtype)
        try AttentionShape._diagnose(qs, ks, vs, dtype, dtype, dtype, enableGQA: enableGQA)
        try _checkDerivedSizes(dtype: dtype)
    }

    /// Throws the error that explains why these inputs do not fit together, checking in the
    /// documented order (ranks, dtypes, then sizes); returns only if they do fit.
    @inline(never)
    static func _diagnose(
        _ qs: [Int], _ ks: [Int], _ vs: [Int], _ dtype: DType, _ keyDType: DType, _ valueDType: DType, enableGQA: Bool
    ) throws {
        func checkRank(_ name: String, _ shape: [Int]) throws {
            if shape.count != 3 && shape.count != 4 {
                throw SDPAError.rank(
                    argument: name, shape: shape,
                    expected: "rank 4 [B, H, L, E] or rank 3 [H, L, E] (the entry points take any rank from 2 and broadcast, as PyTorch)")
            }
        }
        try checkRank("query", qs)
        try checkRank("key", ks)
        try checkRank("value", vs)
        if ks.count != qs.count || vs.count != qs.count {
            let (name, shape) = ks.count != qs.count ? ("key", ks) : ("value", vs)
            throw SDPAError.shapeMismatch(
                argument: name, shape: shape, other: "query", otherShape: qs,
                reason: "query, key and value must have the same rank")
        }
        guard dtype == keyDType, dtype == valueDType else {
            throw SDPAError.dtypeMismatch(query: dtype, key: keyDType, value: valueDType)
        }
        guard dtype.isFloatingPoint else {
            throw SDPAError.unsupportedDType(argument: "query", dtype: dtype, reason: "attention needs float32, float16, bfloat16 or float64 inputs")
        }
        // The four dimensions of a [B, H, L, E] view (a 3-D input has B = 1).
        func dims(_ shape: [Int]) -> (Int, Int, Int, Int) {
            shape.count == 3 ? (1, shape[0], shape[1], shape[2]) : (shape[0], shape[1], shape[2], shape[3])
        }
        let q = dims(qs), k = dims(ks), v = dims(vs)
        if k.0 != q.0 || v.0 != q.0 {
            let (name, shape) = k.0 != q.0 ? ("key", ks) : ("value", vs)
            let one = (name == "key" ? k.0 : v.0) == 1 || q.0 == 1
            throw SDPAError.shapeMismatch(argument: name, shape: shape, other: "query", otherShape: qs,
                                          reason: one ? "the batch sizes differ (a batch of 1 is not broadcast here; the entry points and AttentionShape(flatteningBatchDimensionsOf:key:value:enableGQA:) broadcast it)"
                                                      : "the batch sizes differ")
        }
        if k.1 != v.1 {
            throw SDPAError.shapeMismatch(argument: "value", shape: vs, other: "key", otherShape: ks,
                                          reason: "key and value must have the same number of heads")
        }
        if k.2 != v.2 {
            throw SDPAError.shapeMismatch(argument: "value", shape: vs, other: "key", otherShape: ks,
                                          reason: "key and value must have the same sequence length S")
        }
        if k.3 != q.3 {
            throw SDPAError.shapeMismatch(argument: "key", shape: ks, other: "query", otherShape: qs,
                                          reason: "query and key must have the same head dimension E")
        }
        if !AttentionShape._headsFit(query: q.1, keyValue: k.1, enableGQA: enableGQA) {
            throw SDPAError.headCountMismatch(query: qs, key: ks, enableGQA: enableGQA)
        }
    }

    /// Whether `keyValue` heads serve `query` heads in one problem: with `enableGQA` as groups (`query` a
    /// multiple of `keyValue`; none for none), without it as the same heads or one shared by all.
    static func _headsFit(query: Int, keyValue: Int, enableGQA: Bool) -> Bool {
        enableGQA ? (keyValue > 0 ? query % keyValue == 0 : query == 0) : query == keyValue || keyValue == 1
    }

    /// Query heads that share one key/value head.
    @inlinable public var groupSize: Int { keyValueHeads == 0 ? 1 : queryHeads / keyValueHeads }

    /// The attention scores' shape, the target a mask is broadcast to: `[B, H, L, S]` (`[H, L, S]` for 3-D inputs).
    public var scoresShape: [Int] {
        rank == 3 ? [queryHeads, queryLength, keyLength] : [batch, queryHeads, queryLength, keyLength]
    }

    /// The output's shape: `[B, H, L, Ev]` (`[H, L, Ev]` for 3-D inputs).
    public var outputShape: [Int] {
        rank == 3 ? [queryHeads, queryLength, valueHeadDim] : [batch, queryHeads, queryLength, valueHeadDim]
    }

    /// The sizes by name (`B`, `H`, `Hkv`, `L`, `S`, `E`, `Ev`), for messages and logs.
    public var description: String {
        "B=\(batch) H=\(queryHeads) Hkv=\(keyValueHeads) L=\(queryLength) S=\(keyLength) E=\(headDim) Ev=\(valueHeadDim)"
    }

    /// Throws unless a bias built for `seqLenQ` x `seqLenKV` fits these inputs.
    func _check(bias: String, seqLenQ: Int, seqLenKV: Int) throws {
        if seqLenQ != queryLength {
            throw SDPAError.biasMismatch(bias: bias, parameter: "seqLenQ", expected: queryLength, actual: seqLenQ,
                                         inputs: "query length L; \(self)")
        }
        if seqLenKV != keyLength {
            throw SDPAError.biasMismatch(bias: bias, parameter: "seqLenKV", expected: keyLength, actual: seqLenKV,
                                         inputs: "key length S; \(self)")
        }
    }
}
