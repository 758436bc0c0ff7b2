import Dispatch

/// Runs `body` on up to `count` threads at once, the calling thread included; each run takes its work
/// from a queue the runs share, so how many runs there are never changes the result. A single thread
/// runs inline, since waking any worker costs more than a small attention call; otherwise the helpers
/// of ``_WorkerPool``, which stay awake for a moment between calls, or GCD's.
@usableFromInline
func _parallelFor(_ count: Int, _ body: @Sendable () -> Void) {
    SDPAWorkerCount.current?.expectThreads(count)
    if count == 1 { return body() }
    #if canImport(Synchronization)
    if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *), _WorkerPool.shared.run(threads: count, body) { return }
    #endif
    DispatchQueue.concurrentPerform(iterations: count) { _ in body() }
}
