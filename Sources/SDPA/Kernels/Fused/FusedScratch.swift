import Foundation
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
    /// Row addresses of the next key and value tiles, which decoding prefetches during this tile's `P·V` where
    /// the plan ``_ForwardPlan/prefetchesNextTile`` (one unused entry each otherwise).
    @usableFromInline let nextKeyAddresses: UnsafeMutablePointer<UnsafeRawPointer?>
    @usableFromInline let nextValueAddresses: UnsafeMutablePointer<UnsafeRawPointer?>

    /// Where each tile of a slot starts, and the slot's bytes: each tile a multiple of 64 bytes, in the order
    /// the stored properties name them. Computed without arrays: a slot is carved on every call.
    @usableFromInline
    struct Layout {
        @usableFromInline var keys = 0, queries = 0, values = 0, scores = 0, tileMax = 0, finiteValues = 0, state = 0
        @usableFromInline var keyAddresses = 0, valueAddresses = 0, nextKeyAddresses = 0, nextValueAddresses = 0
        /// The slot's bytes: the end of its last tile.
        @usableFromInline var bytes = 0

        /// `nil` when a size derived from the shape overflows.
        @inlinable
        init?(plan: _ForwardPlan) {
            let (Bc, E, Ev) = (plan.tiling.keyColumns, plan.shape.headDim, plan.shape.valueHeadDim)
            guard let finite = _checkedProduct(4, Bc, Ev), let state = _checkedProduct(4, plan.stateFloats),
                  let scores = _checkedProduct(4, plan.scoreRows, plan.lds) else { return nil }
            let keyBytes = plan.readsKeysDirectly ? 0 : sdpa_operand_bytes(plan.keyLayout, SDPA_OPERAND_KEYS, Int32(Bc), Int32(E))
            let valueBytes = plan.readsKeysDirectly ? 0 : sdpa_operand_bytes(plan.valueLayout, SDPA_OPERAND_VALUES, Int32(Bc), Int32(Ev))
            let addressBytes = MemoryLayout<UnsafeRawPointer?>.stride * Bc
            var end = 0, overflow = false
            // The start of a tile of `size` bytes (at least one, rounded up to 64) after those before it.
            func carve(_ size: Int) -> Int {
                let start = end, (rounded, o1) = Swift.max(size, 1).addingReportingOverflow(63)
                let (next, o2) = start.addingReportingOverflow(rounded / 64 * 64)
                (end, overflow) = (next, overflow || o1 || o2)
                return start
            }
            keys = carve(keyBytes)
            queries = carve(plan.queryBytes(rows: plan.items.stateRows))
            values = carve(valueBytes)
            self.scores = carve(scores)
            tileMax = carve(4 * plan.scoreRows)
            finiteValues = carve(finite)
            self.state = carve(plan.items.hasWholeItems ? state : 0)
            keyAddresses = carve(addressBytes)
            valueAddresses = carve(addressBytes)
            nextKeyAddresses = carve(plan.prefetchesNextTile ? addressBytes : 0)
            nextValueAddresses = carve(plan.prefetchesNextTile ? addressBytes : 0)
            guard !overflow else { return nil }
            bytes = end
        }
    }

    /// The tiles of one slot starting at `base` (64-byte aligned), laid out by `layout`.
    @inlinable
    init(base: UnsafeMutableRawPointer, layout: Layout, plan: _ForwardPlan) {
        let (Bc, Ev) = (plan.tiling.keyColumns, plan.shape.valueHeadDim)
        keys = base + layout.keys
        queries = base + layout.queries
        values = base + layout.values
        scores = (base + layout.scores).bindMemory(to: Float.self, capacity: plan.scoreRows * plan.lds)
        tileMax = (base + layout.tileMax).bindMemory(to: Float.self, capacity: plan.scoreRows)
        finiteValues = (base + layout.finiteValues).bindMemory(to: Float.self, capacity: Bc * Ev)
        state = plan.items.hasWholeItems ? (base + layout.state).bindMemory(to: Float.self, capacity: plan.stateFloats) : nil
        keyAddresses = (base + layout.keyAddresses).bindMemory(to: UnsafeRawPointer?.self, capacity: Bc)
        valueAddresses = (base + layout.valueAddresses).bindMemory(to: UnsafeRawPointer?.self, capacity: Bc)
        let nextRows = plan.prefetchesNextTile ? Bc : 1
        nextKeyAddresses = (base + layout.nextKeyAddresses).bindMemory(to: UnsafeRawPointer?.self, capacity: nextRows)
        nextValueAddresses = (base + layout.nextValueAddresses).bindMemory(to: UnsafeRawPointer?.self, capacity: nextRows)
    }
}

/// Every thread's scratch, allocated at once through the one fallible allocation point: a slot per run
/// of the parallel body, by the run's index, large enough for any of the job's plans.
@usableFromInline
struct _FusedScratchSlots: @unchecked Sendable {
    @usableFromInline let storage: _TensorStorage
    @usableFromInline let slotBytes: Int

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the head dimensions make
    ///   the tiles too large to address or to allocate.
    @inlinable
    init<Layouts: Sequence<_FusedScratch.Layout?>>(layouts: Layouts, shape: AttentionShape, threads: Int) throws {
        var slot: Int? = 0
        for layout in layouts { slot = slot.flatMap { s in layout.map { Swift.max(s, $0.bytes) } } }
        let bytes = slot.flatMap { _checkedProduct($0, threads) } ?? .max
        let (E, Ev) = (shape.headDim, shape.valueHeadDim)
        storage = try _ScratchReuse.take(byteCount: bytes) ?? _TensorStorage(
            byteCount: bytes, for: "the fused kernel's scratch (E = \(E), Ev = \(Ev), \(threads) threads)", zeroed: false)
        slotBytes = slot!
    }

    /// Hands the storage on to the next job (when it is small enough to keep): call once the job's
    /// threads are done with it.
    @inlinable
    func recycle() { _ScratchReuse.keep(storage) }

    /// The scratch of run `run` (`0..<threads`) carved for `plan` by its `layout`, one of those it was sized for.
    @inlinable
    func slot(_ run: Int, layout: _FusedScratch.Layout, plan: _ForwardPlan) -> _FusedScratch {
        _FusedScratch(base: storage.bytes + run * slotBytes, layout: layout, plan: plan)
    }
}

/// The storage of one small job's scratch, kept for the next job: a tiny call's scratch (tens of KiB)
/// cost it an allocation large enough to make the C allocator consolidate its free lists on every call.
/// At most ``largest`` bytes stay held between calls; larger scratch is freed as before.
@usableFromInline
enum _ScratchReuse {
    /// Scratch up to this size is kept: a few small calls' worth.
    static var largest: Int { 128 * 1024 }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var kept: _TensorStorage?

    /// The kept storage if it holds `byteCount` bytes (taken: no other job gets it until it is kept
    /// again), filled as a fresh allocation would be while a test watches (``_AllocationObservers``), or `nil`.
    @usableFromInline
    static func take(byteCount: Int) -> _TensorStorage? {
        guard byteCount <= largest else { return nil }
        let storage: _TensorStorage? = lock.withLock {
            guard let kept, kept.byteCount >= byteCount else { return nil }
            defer { self.kept = nil }
            return kept
        }
        guard let storage else { return nil }
        if let fill = _AllocationObservers.observe(byteCount: byteCount) {
            storage.bytes.initializeMemory(as: UInt8.self, repeating: fill, count: byteCount)
        }
        return storage
    }

    /// Keeps `storage` for the next job if it is small enough, in place of what was kept.
    @usableFromInline
    static func keep(_ storage: _TensorStorage) {
        guard storage.byteCount <= largest else { return }
        lock.withLock { kept = storage }
    }
}
