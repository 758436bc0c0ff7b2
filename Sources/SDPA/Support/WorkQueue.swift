/// Hands out work items `0..<count` one at a time, in order, to whichever thread asks first. Dynamic
/// rather than a fixed stride per thread: if the pool starts a worker late (or runs two on one core),
/// the others take its items instead of waiting for it, and the items go out in the order the work
/// was laid out in (largest first, the small ones last). Which thread computes an item never changes
/// its bits, so the result stays independent of the schedule.
///
/// One atomic addition per item, on a cache line of its own. Callers keep that from becoming a hot spot
/// at many threads by handing out items that are not tiny: the fused kernel's claims hold tens of
/// microseconds of work or more (``_WorkItems``), so even 256 threads ask a few times per microsecond.
@usableFromInline
final class _WorkQueue: @unchecked Sendable {
    /// How many items have been asked for (past `count` once they are all handed out).
    private let handedOut = _AtomicCounters(count: 1, padded: true)
    private let count: Int
    /// Set only while a test counts the threads that take work (read on the calling thread).
    private let workers = SDPAWorkerCount.current

    @usableFromInline
    init(count: Int) { self.count = count }

    /// The next item, or `nil` once every item has been handed out.
    @usableFromInline
    func next() -> Int? {
        workers?.waitForAnotherThread()
        let item = handedOut.add(1, to: 0)
        guard item < count else { return nil }
        workers?.recordCurrentThread()
        return item
    }
}

/// Claims `0..<count` of a job, handed out through a ``_WorkQueue`` when several threads take them, and
/// in order with no queue when one does: a one-thread job (every tiny call) then allocates nothing to
/// hand out its work.
@usableFromInline
struct _Claims: @unchecked Sendable {
    @usableFromInline let queue: _WorkQueue?
    @usableFromInline let count: Int
    /// The test hook a queue notes its threads in, for the one thread of a job without a queue.
    private let workers: SDPAWorkerCount?

    @usableFromInline
    init(count: Int, threads: Int) {
        self.count = count
        queue = threads > 1 ? _WorkQueue(count: count) : nil
        workers = threads > 1 ? nil : SDPAWorkerCount.current
    }

    /// The next claim for a thread that has taken `taken` claims so far (counted here), or `nil` once
    /// every claim has been handed out.
    @usableFromInline
    func next(taken: inout Int) -> Int? {
        if let queue { return queue.next() }
        guard taken < count else { return nil }
        defer { taken += 1 }
        workers?.recordCurrentThread()
        return taken
    }
}
