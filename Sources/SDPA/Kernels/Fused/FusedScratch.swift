import CSDPAKernels

/// One thread's scratch for the fused forward kernel, reused by every item it runs: a slot of one
/// allocation made before the threads start (so that memory the system cannot give is an error, not an
/// abort), carved into 64-byte aligned tiles sized by the kernel layer for the plan's operand layouts.
@usableFromInline
struct _FusedScratch {
    /// Packed keys of one tile, prepared query rows of one item (every unit), value rows of one tile (none
    /// when decoding: the direct reader takes keys and values as stored).
    @usableFromInline let keys: UnsafeMutableRawPointer, queries: UnsafeMutableRawPointer, values: UnsafeMutableRawPointer
    /// The score tile (`queryRows x lds`, or every unit's rows stacked when decoding) and its row maxima.
    @usableFromInline let scores: UnsafeMutablePointer<Float>, tileMax: UnsafeMutablePointer<Float>
    /// A value tile as float32, for the exact path of a partial tile whose values hold NaN or infinity.
    @usableFromInline let finiteValues: UnsafeMutablePointer<Float>
    /// The running state of an item run whole (split items keep theirs in the call's partials).
    @usableFromInline let state: UnsafeMutablePointer<Float>?
    /// Row addresses of one key tile and one value tile, for sources that give them row by row.
    @usableFromInline let keyAddresses: UnsafeMutablePointer<UnsafeRawPointer?>, valueAddresses: UnsafeMutablePointer<UnsafeRawPointer?>

    /// The bytes of each tile, in the order they are carved, each a multiple of 64; `nil` when a size
    /// derived from the shape overflows.
    @inlinable
    static func sizes(plan: _ForwardPlan) -> [Int]? {
        let (Bc, E, Ev) = (plan.tiling.keyColumns, plan.shape.headDim, plan.shape.valueHeadDim)
        let queryBytes = plan.queryBytes(rows: plan.items.stateRows)
        guard let finite = _checkedProduct(4, Bc, Ev), let state = _checkedProduct(4, plan.stateFloats) else { return nil }
        let keyBytes = plan.readsKeysDirectly ? 0 : sdpa_operand_bytes(plan.keyLayout, SDPA_OPERAND_KEYS, Int32(Bc), Int32(E))
        let valueBytes = plan.readsKeysDirectly ? 0 : sdpa_operand_bytes(plan.valueLayout, SDPA_OPERAND_VALUES, Int32(Bc), Int32(Ev))
        let scoreRows = plan.scoreRows
        var sizes = [
            keyBytes, queryBytes, valueBytes,
            4 * scoreRows * plan.lds, 4 * scoreRows, finite, plan.items.hasWholeItems ? state : 0,
            MemoryLayout<UnsafeRawPointer?>.stride * Bc, MemoryLayout<UnsafeRawPointer?>.stride * Bc,
        ]
        for i in sizes.indices { sizes[i] = (Swift.max(sizes[i], 1) + 63) / 64 * 64 }
        return sizes
    }

    /// The tiles of one slot starting at `base` (64-byte aligned), laid out by `sizes`.
    @inlinable
    init(base: UnsafeMutableRawPointer, sizes: [Int], plan: _ForwardPlan) {
        // Tile `i` starts after the tiles before it (no array of offsets: a slot is carved on every call).
        let at = { (i: Int) in base + sizes[..<i].reduce(0, +) }
        let (Bc, Ev) = (plan.tiling.keyColumns, plan.shape.valueHeadDim)
        keys = at(0)
        queries = at(1)
        values = at(2)
        scores = at(3).bindMemory(to: Float.self, capacity: plan.scoreRows * plan.lds)
        tileMax = at(4).bindMemory(to: Float.self, capacity: plan.scoreRows)
        finiteValues = at(5).bindMemory(to: Float.self, capacity: Bc * Ev)
        state = plan.items.hasWholeItems ? at(6).bindMemory(to: Float.self, capacity: plan.stateFloats) : nil
        keyAddresses = at(7).bindMemory(to: UnsafeRawPointer?.self, capacity: Bc)
        valueAddresses = at(8).bindMemory(to: UnsafeRawPointer?.self, capacity: Bc)
    }
}

/// Every thread's scratch, allocated at once through the one fallible allocation point: a slot per run
/// of the parallel body, by the run's index, large enough for any of the job's plans.
@usableFromInline
struct _FusedScratchSlots: @unchecked Sendable {
    @usableFromInline let storage: _TensorStorage
    @usableFromInline let plans: [_ForwardPlan]
    /// Each plan's tile sizes (``_FusedScratch/sizes(plan:)``), computed once.
    @usableFromInline let sizes: [[Int]]
    @usableFromInline let slotBytes: Int

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the head dimensions make
    ///   the tiles too large to address or to allocate.
    @inlinable
    init(plans: [_ForwardPlan], threads: Int) throws {
        let sizes = plans.map { _FusedScratch.sizes(plan: $0) }
        let slots = sizes.map { s in
            s.flatMap { $0.reduce(0 as Int?) { total, size in total.flatMap { $0.addingReportingOverflow(size).overflow ? nil : $0 + size } } }
        }
        let slot = slots.contains { $0 == nil } ? nil : slots.map { $0! }.max()
        let bytes = slot.flatMap { _checkedProduct($0, threads) } ?? .max
        let (E, Ev) = (plans[0].shape.headDim, plans[0].shape.valueHeadDim)
        storage = try _TensorStorage(byteCount: bytes, for: "the fused kernel's scratch (E = \(E), Ev = \(Ev), \(threads) threads)", zeroed: false)
        (self.plans, self.sizes, slotBytes) = (plans, sizes.map { $0! }, slot!)
    }

    /// The scratch of run `run` (`0..<threads`) carved for plan number `plan` of those it was sized for.
    @inlinable
    func slot(_ run: Int, plan: Int) -> _FusedScratch {
        _FusedScratch(base: storage.bytes + run * slotBytes, sizes: sizes[plan], plan: plans[plan])
    }
}
