import Dispatch

/// The most threads one parallel run uses, the calling thread included: the fused kernel's work
/// decomposition is sized for this many (``_TileRefinement``), and the pool keeps at most this many
/// minus one helpers. A larger ``SDPAThreads/count`` runs on this many.
@usableFromInline
let _maximumThreads = 256

/// Runs `body` on up to `count` threads at once (at most ``_maximumThreads``), the calling thread
/// included; each run gets its own index in `0..<count` (the caller's is 0) and takes its work from a
/// queue the runs share, so how many runs there are never changes the result, and a run that never
/// starts (a helper that arrives after the work is gone) leaves nothing undone. A single thread runs
/// inline, since waking any worker costs more than a small attention call; otherwise the helpers of
/// ``_WorkerPool``, which stay awake for a moment between calls, or GCD's.
@usableFromInline
func _parallelFor(_ count: Int, _ body: @Sendable (_ run: Int) -> Void) {
    let count = Swift.max(1, Swift.min(count, _maximumThreads))
    SDPAWorkerCount.current?.expectThreads(count)
    if count == 1 { return body(0) }
    #if canImport(Synchronization)
    if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *), _WorkerPool.shared.run(threads: count, body) { return }
    #endif
    DispatchQueue.concurrentPerform(iterations: count) { body($0) }
}

/// ``_parallelFor(_:_:)`` for a body that does not need its run's index.
@usableFromInline
func _parallelFor(_ count: Int, _ body: @Sendable () -> Void) {
    _parallelFor(count) { (_: Int) in body() }
}
