import Synchronization

/// The largest allocation made through ``_TensorStorage`` while a test watches: how the tests check
/// that a kernel's extra memory stays within its bound (the fused backward pass: no `L × S` buffer).
final class _AllocationRecord: Sendable {
    /// Set only inside ``_largestAllocation(during:)``: unobserved calls pay one task-local read.
    @TaskLocal static var current: _AllocationRecord?

    private let largest = Mutex(0)

    func note(_ byteCount: Int) { largest.withLock { $0 = Swift.max($0, byteCount) } }

    var bytes: Int { largest.withLock { $0 } }
}

/// Runs `body` and returns its result with the largest single allocation (in bytes) it made through
/// the package's one allocation point, on this task (kernels allocate before their threads start).
@_spi(Testing)
public func _largestAllocation<R>(during body: () throws -> R) rethrows -> (result: R, bytes: Int) {
    let record = _AllocationRecord()
    let result = try _AllocationRecord.$current.withValue(record, operation: body)
    return (result, record.bytes)
}

/// A byte that every allocation made without zero-filling is filled with while a test watches
/// (``_fillingUninitializedMemory(with:during:)``): a result or scratch element that is read before
/// anything writes it then shows (0xFF bytes are NaN in every float dtype).
enum _UninitializedFill {
    /// Set only inside ``_fillingUninitializedMemory(with:during:)``.
    @TaskLocal static var byte: UInt8?
}

/// Runs `body` with every allocation that is not zero-filled (kernel results and scratch) filled with
/// `byte` instead of left as the system gives it, on this task (kernels allocate before their threads
/// start).
@_spi(Testing)
public func _fillingUninitializedMemory<R>(with byte: UInt8, during body: () throws -> R) rethrows -> R {
    try _UninitializedFill.$byte.withValue(byte, operation: body)
}
