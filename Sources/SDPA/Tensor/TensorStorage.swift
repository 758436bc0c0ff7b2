import Foundation

/// The bytes behind one or more ``Tensor`` values.
///
/// Every tensor's memory is allocated here, and here only: a request past ``byteLimit`` or one the
/// system refuses is an ``SDPAError/allocationFailed(argument:byteCount:reason:)``, never an abort.
///
/// `@unchecked Sendable` is sound because storage is written only while a
/// single tensor holds it (a fresh result, or after the copy-on-write check in
/// ``Tensor/subscript(_:)``); shared storage is read-only.
@usableFromInline
final class _TensorStorage: @unchecked Sendable {
    @usableFromInline let bytes: UnsafeMutableRawPointer
    @usableFromInline let byteCount: Int

    /// The largest single allocation attempted: the machine's physical memory. A larger request could
    /// only succeed by overcommitting, and then fail later, when its pages are touched, with the
    /// process killed rather than an error thrown.
    @usableFromInline static let byteLimit = Int(clamping: ProcessInfo.processInfo.physicalMemory)

    /// The size of a huge page where ``init(byteCount:for:zeroed:limit:hugePages:)`` asks for them.
    static let hugePageBytes = 2 << 20

    /// Storage aligned for SIMD loads, zero-filled unless `zeroed` is `false` (kernel scratch, written
    /// before it is read), for the tensor or buffer called `argument` in errors.
    ///
    /// With `hugePages` (a large buffer read or written end to end: a paged KV cache's pool, a mask's
    /// gradient), the memory is aligned to 2 MiB and, on Linux, advised as huge pages before it is first
    /// touched: where transparent huge pages are enabled (`always` or `madvise`) its first touches fault
    /// 512 times fewer pages and its reads walk 512 times fewer page-table entries. Elsewhere the advice is a no-op.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` past `limit` or when the
    ///   system has no memory to give.
    @usableFromInline
    init(
        byteCount: Int, for argument: @autoclosure () -> String, zeroed: Bool = true, limit: Int = _TensorStorage.byteLimit,
        hugePages: Bool = false
    ) throws {
        try _checkAllocation(byteCount: byteCount, for: argument(), limit: limit)
        let observedFill = _AllocationObservers.observe(byteCount: byteCount)
        // Whole huge pages, so that the advice covers this buffer and nothing beside it.
        let huge = hugePages && byteCount >= Self.hugePageBytes && byteCount <= Int.max - Self.hugePageBytes
        let allocated = huge ? (byteCount + Self.hugePageBytes - 1) / Self.hugePageBytes * Self.hugePageBytes : Swift.max(byteCount, 1)
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, huge ? Self.hugePageBytes : 64, allocated) == 0, let pointer else {
            throw SDPAError.allocationFailed(
                argument: argument(), byteCount: byteCount, reason: "the system could not provide that much memory")
        }
        #if os(Linux)
        if huge { _ = madvise(pointer, allocated, MADV_HUGEPAGE) }
        #endif
        if let fill = zeroed ? 0 : observedFill {
            pointer.initializeMemory(as: UInt8.self, repeating: fill, count: Swift.max(byteCount, 1))
        }
        self.bytes = pointer
        self.byteCount = byteCount
    }

    deinit { free(bytes) }
}

/// Throws ``SDPAError/allocationFailed(argument:byteCount:reason:)`` unless `byteCount` bytes for
/// `argument` are within `limit` (by default the machine's physical memory). Work buffers sized from
/// the inputs (kernel scratch, the reference path's copies, bias tables) are checked here before they
/// are made, as tensors are.
@usableFromInline
func _checkAllocation(byteCount: Int, for argument: @autoclosure () -> String, limit: Int = _TensorStorage.byteLimit) throws {
    if byteCount > limit {
        throw SDPAError.allocationFailed(
            argument: argument(), byteCount: byteCount,
            reason: "more than this machine's \(limit) bytes (\(_binaryByteCount(limit))) of memory")
    }
}

/// `factors` multiplied, or `nil` when the product overflows `Int`: the checked size arithmetic of
/// every element and byte count derived from user input.
@inlinable
func _checkedProduct(_ factors: Int...) -> Int? { _checkedProduct(factors) }

/// ``_checkedProduct(_:)-(Int...)`` of two or three factors without the variadic call's array (the
/// sizes a fused call derives on every call).
@inlinable
func _checkedProduct(_ a: Int, _ b: Int) -> Int? {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? nil : product
}

/// ``_checkedProduct(_:_:)`` of three factors.
@inlinable
func _checkedProduct(_ a: Int, _ b: Int, _ c: Int) -> Int? {
    _checkedProduct(a, b).flatMap { _checkedProduct($0, c) }
}

/// `factors` multiplied, or `nil` when the product overflows `Int`. Inlinable, so that a variadic call's
/// array can live on the stack.
@inlinable
func _checkedProduct(_ factors: [Int]) -> Int? {
    var product = 1
    for factor in factors {
        let (result, overflow) = product.multipliedReportingOverflow(by: factor)
        if overflow { return nil }
        product = result
    }
    return product
}

/// Allocates `byteCount` bytes through the one allocation point, with `limit` in place of the machine's
/// memory, and frees them: lets tests reach the path where the system itself refuses.
@_spi(Testing)
public func _allocationProbe(byteCount: Int, limit: Int) throws {
    _ = try _TensorStorage(byteCount: byteCount, for: "an allocation probe", zeroed: false, limit: limit)
}
