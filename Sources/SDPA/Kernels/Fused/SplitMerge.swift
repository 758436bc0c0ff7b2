import CSDPAKernels

/// The split items' partial states, one `_RowState` each, and how many splits of each group are done.
///
/// The thread that finishes a group's last split (by the group's counter, not by its index) merges the
/// group's states through their log-sum-exp in split order — so the bits do not depend on which thread
/// computed which split or finished last — and writes the rows. No second pass over the split items,
/// and no wait for the slowest thread before merging can start.
@usableFromInline
struct _SplitPartials: @unchecked Sendable {
    @usableFromInline let storage: _TensorStorage?
    @usableFromInline let finished: _AtomicCounters?
    @usableFromInline let plan: _ForwardPlan

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the states are too large.
    @inlinable
    init(plan: _ForwardPlan) throws {
        self.plan = plan
        let count = plan.items.splitItems
        let bytes = _checkedProduct(4, count, plan.stateFloats) ?? .max
        storage = count > 0 ? try _TensorStorage(byteCount: bytes, for: "the fused kernel's split-KV partial results", zeroed: false) : nil
        finished = count > 0 ? _AtomicCounters(count: plan.items.splitGroups, padded: false) : nil
    }

    /// The state of split item `partial` (counted over the split items in hand-out order).
    @inlinable
    func state(partial: Int) -> _RowState {
        _RowState(storage!.bytes.assumingMemoryBound(to: Float.self) + partial * plan.stateFloats, plan: plan)
    }

    /// Notes that split `item`, whose `unitCount` units are `units`, is done; the last of its group to
    /// finish merges the group's states in split order and writes the rows.
    @inlinable
    func finish(_ item: _WorkItem, units: UnsafeMutableBufferPointer<_QueryUnit>, count unitCount: Int, into writer: _OutputWriter) {
        guard let split = item.split, finished!.add(1, to: item.splitGroup) == item.splits - 1 else { return }
        let firstPartial = item.partial - split
        let first = state(partial: firstPartial)
        // Every split of the group has the same units, their rows one after another in each state.
        let rows = Int32(units[unitCount - 1].stateEnd), Ev = Int32(plan.shape.valueHeadDim)
        for s in 1..<item.splits {
            let other = state(partial: firstPartial + s)
            sdpa_merge_rows(rows, Ev, first.output(row: 0), first.ldo, first.rowMax(row: 0), first.rowSum(row: 0),
                            other.output(row: 0), other.ldo, other.rowMax(row: 0), other.rowSum(row: 0))
        }
        for u in 0..<unitCount { writer.write(batch: item.batch, unit: units[u], state: first) }
    }
}
