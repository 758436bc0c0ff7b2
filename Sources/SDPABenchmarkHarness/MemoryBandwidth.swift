import CSDPAKernels
import Dispatch
import Foundation

/// The machine's memory read bandwidth, measured in process (STREAM's method, read-only): what a
/// memory-bound kernel such as decoding attention, which reads every key and value once, can reach.
///
/// ``ReadPass``es over a buffer far larger than the caches; the figure is the best of `repetitions`
/// passes: on a shared machine, the pass least disturbed by other processes.
public struct MemoryBandwidth: Sendable, Equatable, CustomStringConvertible {
    /// Bytes read per second, in the best pass.
    public var bytesPerSecond: Double
    /// The buffer's size in bytes.
    public var bytes: Int
    /// The threads that read it.
    public var threads: Int

    /// `12.3 GB/s (256 MiB read by 2 threads, best of 5)`-style summary, in decimal gigabytes.
    public var description: String {
        "\(MeasurementFormat.fixed(bytesPerSecond / 1e9, 1)) GB/s read (\(bytes >> 20) MiB by \(threads) thread\(threads == 1 ? "" : "s"))"
    }

    /// Reads a `bytes`-byte buffer (256 MiB by default, rounded down to whole 64-byte lines) with
    /// `threads` threads, `repetitions` times, and keeps the best pass.
    public static func measure(bytes: Int = 256 << 20, threads: Int, repetitions: Int = 5) -> MemoryBandwidth {
        let pass = ReadPass(bytes: bytes, threads: threads)
        var best = Double.infinity
        for _ in 0..<Swift.max(1, repetitions) { best = Swift.min(best, pass.run()) }
        return MemoryBandwidth(bytesPerSecond: Double(pass.bytes) / best, bytes: pass.bytes, threads: pass.threads)
    }

    /// One buffer and the threads that read it, for read passes timed one at a time: between the
    /// calls of a memory-bound kernel, so that the kernel's time and the time of reading as many bytes
    /// are taken seconds apart, not minutes (on a shared machine the bandwidth drifts between the two).
    ///
    /// `threads` threads each sum their own contiguous share of the buffer (whole vectors; the last
    /// thread takes the remainder) with `sdpa_read_sum`: the loads of the kernel family in use, four
    /// accumulators deep, so that the adds never limit the loads (a Swift loop, compiled for baseline
    /// x86-64, loads 16 bytes at a time and read about 15 % slower on Zen 5). The buffer is written
    /// once at creation so that its pages exist.
    public final class ReadPass: @unchecked Sendable {
        /// The buffer's size in bytes: the size asked for, rounded down to whole 64-byte vectors (one at least).
        public let bytes: Int
        /// The threads that read it.
        public let threads: Int
        private let buffer: UnsafeMutableRawPointer
        private let vectors: Int

        /// A buffer of `bytes` bytes (rounded down to whole 64-byte vectors), read by `threads` threads.
        public init(bytes: Int, threads: Int) {
            vectors = Swift.max(1, bytes / 64)
            self.bytes = vectors * 64
            buffer = UnsafeMutableRawPointer.allocate(byteCount: self.bytes, alignment: 64)
            buffer.initializeMemory(as: Float.self, repeating: 1, count: self.bytes / 4)
            self.threads = Swift.max(1, threads)
        }

        deinit { buffer.deallocate() }

        /// Reads the whole buffer once; returns the seconds it took.
        @discardableResult
        public func run() -> Double {
            let (threads, vectors, share) = (threads, vectors, vectors / threads)
            let base = SendableAddress(pointer: UnsafeRawPointer(buffer))
            let start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let first = t * share, count = t == threads - 1 ? vectors - first : share
                blackHole(ReadPass.sum(base.pointer + first * 64, vectors: count))
            }
            return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        }

        /// The sum of `vectors` 64-byte vectors from `p`, in the kernel family's loads.
        private static func sum(_ p: UnsafeRawPointer, vectors: Int) -> Double {
            sdpa_read_sum(p, vectors * 64)
        }

        private struct SendableAddress: @unchecked Sendable { let pointer: UnsafeRawPointer }
    }
}
