import Foundation

/// How many threads the fused kernel may use; the result is bit-identical whatever the count.
public enum SDPAThreads {
    /// The thread count in the current task: `nil` means one per active processor.
    @TaskLocal public static var count: Int?

    /// The count in effect: ``count`` if set (at least 1), else the number of active processors.
    public static var effectiveCount: Int {
        Swift.max(1, count ?? processorCount)
    }

    /// Read once: asking the system costs microseconds, more than a whole small attention call.
    static let processorCount = ProcessInfo.processInfo.activeProcessorCount

    /// How long the fused kernel's helper threads stay awake after a call, spinning on its processor for
    /// the next one before they sleep: 200 µs by default, or the whole microseconds (0 to 10⁶) of the
    /// environment variable `SDPA_SPIN_MICROSECONDS` at start-up.
    ///
    /// Calls that follow one another (a model's layers, decoding steps) find the helpers awake and skip
    /// waking them, which costs about as much as a small call; a call followed by the application's own
    /// work lends that work's processors to spinning helpers for this long. `.zero` parks them at once
    /// (OpenMP's `OMP_WAIT_POLICY=passive`). Process-wide, unlike ``count``; negative durations count as
    /// zero, longer ones than a second as a second. Only helpers that have a processor of their own spin.
    /// Where the helpers are GCD's (Apple systems before macOS 15 / iOS 18), which park at once, it reads `.zero`
    /// and setting it does nothing.
    public static var helperSpin: Duration {
        get {
            #if canImport(Synchronization)
            if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *) {
                return .nanoseconds(_WorkerPool.shared.spinNanoseconds.load(ordering: .relaxed))
            }
            #endif
            return .zero
        }
        set {
            #if canImport(Synchronization)
            if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *) {
                _WorkerPool.shared.spinNanoseconds.store(_WorkerPool.nanoseconds(clamping: newValue), ordering: .relaxed)
            }
            #endif
        }
    }

    /// Whether the pool's first helper thread (the first to join a call, and one that spins between calls on
    /// two or more processors) is asleep now, for tests of ``helperSpin``.
    @_spi(Testing) public static var _firstHelperIsAsleep: Bool {
        #if canImport(Synchronization)
        if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *) { return _WorkerPool.shared.isFirstHelperParked }
        #endif
        return false
    }
}

/// Runs `body` with the fused kernel limited to `threads` threads.
///
/// ```swift
/// let single = try withSDPAThreads(1) { try scaledDotProductAttention(query: q, key: k, value: v) }
/// ```
public func withSDPAThreads<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
    try SDPAThreads.$count.withValue(Swift.max(1, threads), operation: body)
}
