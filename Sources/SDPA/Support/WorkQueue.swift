import Foundation

/// Hands out work items `0..<count` one at a time to whichever thread asks first. Dynamic rather
/// than a fixed stride per thread: if the pool starts a worker late (or runs two on one core), the
/// others take its items instead of waiting for it. Which thread computes an item never changes
/// its bits, so the result stays independent of the schedule.
@usableFromInline
final class _WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var nextItem = 0
    private let count: Int
    /// Set only while a test counts the threads that take work (read on the calling thread).
    private let workers = SDPAWorkerCount.current

    @usableFromInline
    init(count: Int) { self.count = count }

    @usableFromInline
    func next() -> Int? {
        workers?.waitForAnotherThread()
        lock.lock()
        defer { lock.unlock() }
        guard nextItem < count else { return nil }
        workers?.recordCurrentThread()
        nextItem += 1
        return nextItem - 1
    }
}
