import CSDPAKernels

/// Normalizes finished rows and writes them, and their log-sum-exp, once, in the output dtype; a
/// query head's attention sink joins each of its rows' softmax first.
@usableFromInline
struct _OutputWriter: @unchecked Sendable {
    @usableFromInline let result: _AttentionResult
    @usableFromInline let shape: AttentionShape
    /// One logit per query head (``AttentionOptions/sinks``) as float32, or `nil`.
    @usableFromInline let sinks: [Float]?
    /// Where the call's query rows sit in each head of the result: rows `rowOffset...` of `resultLength`
    /// (a segment of a packed problem writes its rows in place; a whole call, `0` of its own length).
    @usableFromInline let rowOffset: Int, resultLength: Int

    /// A writer of a result of its own in the inputs' `dtype`, or in `outputDType` (the backward pass's float32
    /// recomputation, which an allocation that fails names), with the log-sum-exp when `logSumExp` asks for it.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the output or the
    ///   log-sum-exp cannot be allocated.
    @usableFromInline
    init(shape: AttentionShape, dtype: DType, outputDType: DType? = nil, sinks: Tensor? = nil, logSumExp: Bool = true) throws {
        // Every row of both is written once, by the unit (or the split group) that computes it.
        result = _AttentionResult(
            output: try Tensor(_uninitialized: shape.outputShape, dtype: outputDType ?? dtype,
                               argument: outputDType == nil ? "output" : "the backward pass's output recomputed in float32 (for D = rowsum(dO ∘ O))"),
            logSumExp: logSumExp
                ? try Tensor(_uninitialized: Array(shape.outputShape.dropLast()), dtype: .float32, argument: "logSumExp") : nil)
        self.shape = shape
        self.sinks = sinks.map { $0.doubleScalars.map(Float.init) }
        (rowOffset, resultLength) = (0, shape.queryLength)
    }

    /// A writer of the same result for a segment of its call: query rows `rows` of every head, computed
    /// as a call of `shape` (the segment's own query length) whose row 0 is `rows.lowerBound`.
    @inlinable
    init(segment rows: Range<Int>, of whole: _OutputWriter, shape: AttentionShape) {
        (result, sinks, self.shape) = (whole.result, whole.sinks, shape)
        (rowOffset, resultLength) = (whole.rowOffset + rows.lowerBound, whole.resultLength)
    }

    /// Writes the rows of `unit` of an item of `batch` from `state`.
    @inlinable
    func write(batch: Int, unit: _QueryUnit, state: _RowState) {
        let r = unit.stateRow
        write(batch: batch, head: unit.head, firstRow: unit.firstRow, rows: unit.rows,
              acc: state.output(row: r), ldo: state.ldo, rowMax: state.rowMax(row: r), rowSum: state.rowSum(row: r))
    }

    @usableFromInline
    func write(
        batch b: Int, head h: Int, firstRow q0: Int, rows: Int,
        acc: UnsafeMutablePointer<Float>, ldo: Int, rowMax: UnsafePointer<Float>, rowSum: UnsafePointer<Float>
    ) {
        let Ev = shape.valueHeadDim
        if let sink = sinks?[h] {
            // The sink joins each row's softmax as one more score whose value is zero: an online-softmax
            // step over a one-column tile (rescaling the row if the sink is its new maximum), no P·V.
            let rowMax = UnsafeMutablePointer(mutating: rowMax), rowSum = UnsafeMutablePointer(mutating: rowSum)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: rows) { column in
                column.initialize(repeating: sink)
                sdpa_softmax_tile(Int32(rows), 1, column.baseAddress, 1, nil, rowMax, rowSum, acc, ldo, Int32(Ev))
            }
        }
        let rowIndex = (b * shape.queryHeads + h) * resultLength + rowOffset + q0
        let output = result.output
        sdpa_normalize_tile(Int32(rows), Int32(Ev), acc, ldo, rowSum, output.dtype._elementKind,
                            output._storage.bytes + rowIndex * Ev * output.dtype.byteWidth, Ev)
        if let logSumExp = result.logSumExpStorage {
            sdpa_row_logsumexp(Int32(rows), rowMax, rowSum, logSumExp.bytes.assumingMemoryBound(to: Float.self) + rowIndex)
        }
    }
}
