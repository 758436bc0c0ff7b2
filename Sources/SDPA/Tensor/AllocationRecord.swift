import Foundation

/// What the tests watch in every allocation through ``_TensorStorage`` (and in kept scratch taken again):
/// the largest allocation (``_largestAllocation(during:)``) and a byte to fill uninitialized memory with
/// (``_fillingUninitializedMemory(with:during:)``). One task-local for both, set only inside those
/// functions: an unobserved allocation pays one task-local read.
struct _AllocationObservers: Sendable {
    var record: _AllocationRecord?
    /// Filled into every allocation that is not zero-filled (kernel results and scratch), so that an
    /// element read before anything writes it shows (0xFF bytes are NaN in every float dtype).
    var fill: UInt8?

    @TaskLocal static var current = _AllocationObservers()

    /// Notes an allocation of `byteCount` bytes for a watching record, and returns the byte a test asks it to be
    /// filled with, if any: what every allocation (and kept scratch taken again) does, with one task-local read.
    static func observe(byteCount: Int) -> UInt8? {
        let observers = current
        observers.record?.note(byteCount)
        return observers.fill
    }
}

/// The largest allocation made through ``_TensorStorage`` while a test watches: how the tests check
/// that a kernel's extra memory stays within its bound (the fused backward pass: no `L × S` buffer).
/// A lock, not `Synchronization`'s `Mutex`, which macOS has only from version 15.
final class _AllocationRecord: @unchecked Sendable {
    private let lock = NSLock()
    private var largest = 0

    func note(_ byteCount: Int) { lock.withLock { largest = Swift.max(largest, byteCount) } }

    var bytes: Int { lock.withLock { largest } }
}

/// Runs `body` and returns its result with the largest single allocation (in bytes) it made through
/// the package's one allocation point, on this task (kernels allocate before their threads start).
@_spi(Testing)
public func _largestAllocation<R>(during body: () throws -> R) rethrows -> (result: R, bytes: Int) {
    let record = _AllocationRecord()
    var observers = _AllocationObservers.current
    observers.record = record
    let result = try _AllocationObservers.$current.withValue(observers, operation: body)
    return (result, record.bytes)
}

/// Runs `body` with every allocation that is not zero-filled (kernel results and scratch) filled with
/// `byte` instead of left as the system gives it, on this task (kernels allocate before their threads
/// start).
@_spi(Testing)
public func _fillingUninitializedMemory<R>(with byte: UInt8, during body: () throws -> R) rethrows -> R {
    var observers = _AllocationObservers.current
    observers.fill = byte
    return try _AllocationObservers.$current.withValue(observers, operation: body)
}
