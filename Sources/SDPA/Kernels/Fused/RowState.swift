/// The running online-softmax state of one work item's rows: for each unit, `queryRows` output rows
/// (`ldo` floats apart), their maxima and their sums, in one block of floats.
@usableFromInline
struct _RowState {
    @usableFromInline let base: UnsafeMutablePointer<Float>
    @usableFromInline let unitRows: Int, ldo: Int, maxUnits: Int

    @inlinable
    init(_ base: UnsafeMutablePointer<Float>, plan: _ForwardPlan) {
        (self.base, unitRows, ldo, maxUnits) = (base, plan.tiling.queryRows, plan.ldo, plan.items.maxUnits)
    }

    @inlinable func output(unit u: Int) -> UnsafeMutablePointer<Float> { base + u * unitRows * ldo }
    @inlinable func rowMax(unit u: Int) -> UnsafeMutablePointer<Float> { base + maxUnits * unitRows * ldo + u * unitRows }
    @inlinable func rowSum(unit u: Int) -> UnsafeMutablePointer<Float> { base + maxUnits * unitRows * (ldo + 1) + u * unitRows }

    /// No key seen yet for the first `units` units: maxima -inf, sums and outputs 0.
    @inlinable
    func reset(units: Int) {
        rowMax(unit: 0).update(repeating: -.infinity, count: units * unitRows)
        rowSum(unit: 0).update(repeating: 0, count: units * unitRows)
        base.update(repeating: 0, count: units * unitRows * ldo)
    }
}
