/// The running online-softmax state of one work item's rows: output rows (`ldo` floats apart), their
/// maxima and their sums, in one block of floats. A unit's rows start at its ``_QueryUnit/stateRow``.
@usableFromInline
struct _RowState {
    @usableFromInline let base: UnsafeMutablePointer<Float>
    /// Rows of one query tile, the output rows' stride, and the rows the block holds.
    @usableFromInline let unitRows: Int, ldo: Int, capacity: Int

    @inlinable
    init(_ base: UnsafeMutablePointer<Float>, plan: _ForwardPlan) {
        (self.base, unitRows, ldo, capacity) = (base, plan.tiling.queryRows, plan.ldo, plan.items.stateRows)
    }

    @inlinable func output(row r: Int) -> UnsafeMutablePointer<Float> { base + r * ldo }
    @inlinable func rowMax(row r: Int) -> UnsafeMutablePointer<Float> { base + capacity * ldo + r }
    @inlinable func rowSum(row r: Int) -> UnsafeMutablePointer<Float> { base + capacity * (ldo + 1) + r }

    /// No key seen yet for rows `0..<rows`: maxima -inf, sums and outputs 0.
    @inlinable
    func reset(rows: Int) {
        rowMax(row: 0).update(repeating: -.infinity, count: rows)
        rowSum(row: 0).update(repeating: 0, count: rows)
        base.update(repeating: 0, count: rows * ldo)
    }
}

extension _QueryUnit {
    /// The row after the unit's last one in its item's running state.
    @inlinable var stateEnd: Int { stateRow + rows }
}
