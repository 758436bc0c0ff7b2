import Foundation
#if canImport(Synchronization)
import Synchronization
#endif

/// Counters that many threads add to at once: `Synchronization`'s atomics where the platform has them
/// (Linux, macOS 15 and later), one lock around all of them elsewhere. Each counter may sit on a cache
/// line of its own, so that threads adding to different counters do not slow each other down.
///
/// An addition acquires and releases: whatever a thread wrote before its addition is visible to the
/// thread whose addition comes after it, which is what lets the last of several threads read the
/// results of the others.
@usableFromInline
final class _AtomicCounters: @unchecked Sendable {
    private let storage: UnsafeMutableRawPointer
    private let count: Int
    /// Bytes from one counter to the next.
    private let stride: Int
    /// Guards every counter where there are no atomics.
    private let lock: NSLock?

    /// The bytes of a cache line, with room for the adjacent-line prefetcher of x86 processors.
    static var lineBytes: Int { 128 }

    /// `count` counters, all 0; `padded` puts each on a cache line of its own.
    @usableFromInline
    init(count: Int, padded: Bool) {
        self.count = Swift.max(0, count)
        stride = padded ? Self.lineBytes : MemoryLayout<Int>.stride
        storage = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(1, self.count) * stride, alignment: Self.lineBytes)
        #if canImport(Synchronization)
        if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *) {
            for n in 0..<self.count {
                (storage + n * stride).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
            }
            lock = nil
            return
        }
        #endif
        for n in 0..<self.count { (storage + n * stride).storeBytes(of: 0, as: Int.self) }
        lock = NSLock()
    }

    deinit {
        #if canImport(Synchronization)
        if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *), lock == nil {
            for n in 0..<count { _ = (storage + n * stride).assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1) }
        }
        #endif
        storage.deallocate()
    }

    /// Adds `value` to counter `index` and returns what it held before.
    @usableFromInline
    func add(_ value: Int, to index: Int) -> Int {
        #if canImport(Synchronization)
        if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *), lock == nil {
            return (storage + index * stride).assumingMemoryBound(to: Atomic<Int>.self).pointee
                .wrappingAdd(value, ordering: .acquiringAndReleasing).oldValue
        }
        #endif
        return lock!.withLock {
            let old = (storage + index * stride).load(as: Int.self)
            (storage + index * stride).storeBytes(of: old &+ value, as: Int.self)
            return old
        }
    }
}
