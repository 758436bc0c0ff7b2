import Dispatch
import Foundation

/// The machine's memory read bandwidth, measured in process (STREAM's method, read-only): what a
/// memory-bound kernel such as decoding attention, which reads every key and value once, can reach.
///
/// `threads` threads each sum their own contiguous share of a buffer far larger than the caches, with
/// several independent SIMD accumulators (so that the adds never limit the loads); the buffer is
/// written once beforehand so that its pages exist. The figure is the best of `repetitions` passes:
/// on a shared machine, the pass least disturbed by other processes.
public struct MemoryBandwidth: Sendable, Equatable, CustomStringConvertible {
    /// Bytes read per second, in the best pass.
    public var bytesPerSecond: Double
    /// The buffer's size in bytes.
    public var bytes: Int
    /// The threads that read it.
    public var threads: Int

    /// Reads a `bytes`-byte buffer (256 MiB by default, rounded down to whole 64-byte lines) with
    /// `threads` threads, `repetitions` times, and keeps the best pass.
    public static func measure(bytes: Int = 256 << 20, threads: Int, repetitions: Int = 5) -> MemoryBandwidth {
        let lanes = 16, floats = Swift.max(lanes, bytes / 4 / lanes * lanes)
        let threads = Swift.max(1, threads)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: floats)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: floats)
        let base = SendableBuffer(pointer: buffer)
        // Whole vectors per thread; the last thread takes the remainder.
        let vectors = floats / lanes, share = vectors / threads
        var best = Double.infinity
        for _ in 0..<Swift.max(1, repetitions) {
            let start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let first = t * share, count = t == threads - 1 ? vectors - first : share
                blackHole(sum(UnsafeRawPointer(base.pointer) + first * lanes * 4, vectors: count))
            }
            best = Swift.min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        }
        return MemoryBandwidth(bytesPerSecond: Double(floats * 4) / best, bytes: floats * 4, threads: threads)
    }

    /// `12.3 GB/s (256 MiB read by 2 threads, best of 5)`-style summary, in decimal gigabytes.
    public var description: String {
        "\(MeasurementFormat.fixed(bytesPerSecond / 1e9, 1)) GB/s read (\(bytes >> 20) MiB by \(threads) thread\(threads == 1 ? "" : "s"))"
    }

    /// The sum of `vectors` 16-float vectors from `p`, four accumulators deep.
    private static func sum(_ p: UnsafeRawPointer, vectors: Int) -> Float {
        var (a, b, c, d) = (SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>())
        var v = 0
        while v + 4 <= vectors {
            a += p.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self)
            b += p.loadUnaligned(fromByteOffset: v * 64 + 64, as: SIMD16<Float>.self)
            c += p.loadUnaligned(fromByteOffset: v * 64 + 128, as: SIMD16<Float>.self)
            d += p.loadUnaligned(fromByteOffset: v * 64 + 192, as: SIMD16<Float>.self)
            v += 4
        }
        while v < vectors {
            a += p.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self)
            v += 1
        }
        return (a + b + c + d).sum()
    }

    private struct SendableBuffer: @unchecked Sendable { let pointer: UnsafeMutablePointer<Float> }
}
