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
}

/// Runs `body` with the fused kernel limited to `threads` threads.
///
/// ```swift
/// let single = try withSDPAThreads(1) { try scaledDotProductAttention(query: q, key: k, value: v) }
/// ```
public func withSDPAThreads<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
    try SDPAThreads.$count.withValue(Swift.max(1, threads), operation: body)
}
