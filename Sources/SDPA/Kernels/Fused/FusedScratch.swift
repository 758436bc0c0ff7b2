import CSDPAKernels

/// One thread's scratch for the fused forward kernel, reused by every item it runs: one allocation
/// carved into 64-byte aligned tiles, sized by the kernel layer for the plan's operand layouts (a
/// small call would otherwise spend more time in malloc than computing).
@usableFromInline
struct _FusedScratch {
    /// Packed keys of one tile, prepared query rows of one item (every unit), value rows of one tile.
    @usableFromInline let keys: UnsafeMutableRawPointer, queries: UnsafeMutableRawPointer, values: UnsafeMutableRawPointer
    /// The score tile (`queryRows x lds`) and its row maxima.
    @usableFromInline let scores: UnsafeMutablePointer<Float>, tileMax: UnsafeMutablePointer<Float>
    /// A value tile as float32, for the exact path of a partial tile whose values hold NaN or infinity.
    @usableFromInline let finiteValues: UnsafeMutablePointer<Float>
    /// The running state of an item run whole (split items keep theirs in the call's partials).
    @usableFromInline let state: UnsafeMutablePointer<Float>?
    /// Row addresses of one key tile and one value tile, for sources that give them row by row.
    @usableFromInline let keyAddresses: UnsafeMutablePointer<UnsafeRawPointer?>, valueAddresses: UnsafeMutablePointer<UnsafeRawPointer?>
    @usableFromInline let allocation: UnsafeMutableRawPointer

    @inlinable
    init(plan: _ForwardPlan) {
        let (Br, Bc, E, Ev) = (plan.tiling.queryRows, plan.tiling.keyColumns, plan.shape.headDim, plan.shape.valueHeadDim)
        func aligned(_ bytes: Int) -> Int { (Swift.max(bytes, 1) + 63) / 64 * 64 }
        let keyBytes = plan.readsKeysDirectly ? 0 : sdpa_operand_bytes(plan.keyLayout, SDPA_OPERAND_KEYS, Int32(Bc), Int32(E))
        let sizes = [
            aligned(keyBytes),
            aligned(plan.items.maxUnits * plan.queryBytesPerUnit),
            aligned(sdpa_operand_bytes(plan.valueLayout, SDPA_OPERAND_VALUES, Int32(Bc), Int32(Ev))),
            aligned(4 * Br * plan.lds), aligned(4 * Br), aligned(4 * Bc * Ev),
            plan.items.wholeItems > 0 ? aligned(4 * plan.stateFloats) : 0,
            aligned(MemoryLayout<UnsafeRawPointer?>.stride * Bc), aligned(MemoryLayout<UnsafeRawPointer?>.stride * Bc),
        ]
        let base = UnsafeMutableRawPointer.allocate(byteCount: sizes.reduce(0, +), alignment: 64)
        allocation = base
        var offsets = [Int](), running = 0
        for size in sizes { offsets.append(running); running += size }
        let at = { (i: Int) in base + offsets[i] }
        keys = at(0)
        queries = at(1)
        values = at(2)
        scores = at(3).bindMemory(to: Float.self, capacity: Br * plan.lds)
        tileMax = at(4).bindMemory(to: Float.self, capacity: Br)
        finiteValues = at(5).bindMemory(to: Float.self, capacity: Bc * Ev)
        state = sizes[6] > 0 ? at(6).bindMemory(to: Float.self, capacity: plan.stateFloats) : nil
        keyAddresses = at(7).bindMemory(to: UnsafeRawPointer?.self, capacity: Bc)
        valueAddresses = at(8).bindMemory(to: UnsafeRawPointer?.self, capacity: Bc)
    }

    @inlinable func deallocate() { allocation.deallocate() }
}
