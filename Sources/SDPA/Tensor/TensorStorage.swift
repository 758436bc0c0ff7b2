/// The bytes behind one or more ``Tensor`` values.
///
/// `@unchecked Sendable` is sound because storage is written only while a
/// single tensor holds it (a fresh result, or after the copy-on-write check in
/// ``Tensor/subscript(_:)``); shared storage is read-only.
@usableFromInline
final class _TensorStorage: @unchecked Sendable {
    @usableFromInline let bytes: UnsafeMutableRawPointer
    @usableFromInline let byteCount: Int

    /// Zero-filled storage, aligned for SIMD loads.
    @usableFromInline
    init(byteCount: Int) {
        self.byteCount = byteCount
        bytes = .allocate(byteCount: max(byteCount, 1), alignment: 64)
        bytes.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
    }

    deinit { bytes.deallocate() }
}
