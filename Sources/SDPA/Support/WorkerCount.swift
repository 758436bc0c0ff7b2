import Foundation

/// Counts the threads that take work in the fused-attention calls made inside ``counting(_:)``, so
/// that a test can show a multi-thread call really ran on more than one thread (bit-identical
/// results prove nothing if only one thread ever worked).
///
/// A thread counts when it takes at least one work item in a parallel run (a call has one, or two
/// when split keys are merged); the count is the most threads any one run had. While counting, a
/// thread that has taken an item waits (up to ``patience``) for a second thread to take one before
/// it takes another, so that on a busy machine the caller does not finish alone before a helper is
/// scheduled: which thread computes an item never changes its bits, so this changes only the
/// schedule. Bound per task, so concurrent tests do not see each other's counts.
@_spi(Testing)
public final class SDPAWorkerCount: @unchecked Sendable {
    /// The counter of the calls made in the current task, if one is counting.
    @TaskLocal static var current: SDPAWorkerCount?

    /// How long a thread waits for company before it carries on alone.
    static let patience = Duration.seconds(5)

    private let lock = NSLock()
    /// The threads that took items in the current run, how many it asked for, and the most so far.
    private var threads = Set<ObjectIdentifier>()
    private var expected = 1
    private var most = 0

    private init() {}

    /// Runs `body` and returns its result with the most threads that took work items in one parallel
    /// run of the fused calls it made (1 for a call on one thread, 0 if it made none).
    public static func counting<R>(_ body: () throws -> R) rethrows -> (result: R, threads: Int) {
        let counter = SDPAWorkerCount()
        let result = try $current.withValue(counter, operation: body)
        return (result, counter.lock.withLock { counter.most })
    }

    /// Notes that a parallel run of `count` threads starts.
    func expectThreads(_ count: Int) {
        lock.withLock { (expected, threads) = (count, []) }
    }

    /// Notes that the calling thread took a work item.
    func recordCurrentThread() {
        let thread = ObjectIdentifier(Thread.current)
        lock.withLock {
            threads.insert(thread)
            most = Swift.max(most, threads.count)
        }
    }

    /// Waits while this thread has taken an item, the run has several threads and no other has
    /// taken one yet.
    func waitForAnotherThread() {
        let thread = ObjectIdentifier(Thread.current)
        let clock = ContinuousClock(), deadline = clock.now + Self.patience
        while lock.withLock({ expected > 1 && threads == [thread] }) && clock.now < deadline {
            usleep(20)
        }
    }
}
