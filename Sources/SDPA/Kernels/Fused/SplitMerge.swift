import CSDPAKernels

/// The split items' partial states: `keySplits` states per split base item, each a `_RowState`.
@usableFromInline
struct _SplitPartials: @unchecked Sendable {
    @usableFromInline let storage: _TensorStorage?
    @usableFromInline let plan: _ForwardPlan

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the states are too large.
    @inlinable
    init(plan: _ForwardPlan) throws {
        self.plan = plan
        let count = plan.tiling.splitItems * plan.tiling.keySplits
        let bytes = _checkedProduct(4, count, plan.stateFloats) ?? .max
        storage = count > 0 ? try _TensorStorage(byteCount: bytes, for: "the fused kernel's split-KV partial results", zeroed: false) : nil
    }

    /// The state of the `index`-th split item (items after the whole ones, in hand-out order).
    @inlinable
    func state(splitItem index: Int) -> _RowState {
        _RowState(storage!.bytes.assumingMemoryBound(to: Float.self) + index * plan.stateFloats, plan: plan)
    }

    /// Merges the splits of each split base item in split order (so the bits do not depend on which
    /// thread computed which split) and writes the rows.
    @inlinable
    func mergeAndWrite(into writer: _OutputWriter, threads: Int) {
        let items = plan.items, splits = plan.tiling.keySplits
        let queue = _WorkQueue(count: plan.tiling.splitItems)
        let partials = self
        _parallelFor(Swift.min(threads, plan.tiling.splitItems)) {
            var unit = [_QueryUnit](repeating: _QueryUnit(), count: items.maxUnits)
            while let index = queue.next() {
                let item = items.item(base: items.wholeItems + index, split: nil)
                let unitCount = items.units(of: item, into: &unit)
                let first = partials.state(splitItem: index * splits)
                let rows = Int32(unitCount * first.unitRows), Ev = Int32(partials.plan.shape.valueHeadDim)
                for s in 1..<splits {
                    let other = partials.state(splitItem: index * splits + s)
                    sdpa_merge_rows(rows, Ev, first.output(unit: 0), first.ldo, first.rowMax(unit: 0), first.rowSum(unit: 0),
                                    other.output(unit: 0), other.ldo, other.rowMax(unit: 0), other.rowSum(unit: 0))
                }
                for u in 0..<unitCount { writer.write(batch: item.batch, unit: unit[u], state: first, index: u) }
            }
        }
    }
}
