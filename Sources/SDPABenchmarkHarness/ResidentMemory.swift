import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's resident memory, as Linux reports it in `/proc`.
///
/// Elsewhere every figure is `nil`: the benchmarks then leave the memory columns empty
/// rather than report a number measured another way.
public enum ResidentMemory {
    /// Resident memory now (`VmRSS`), in bytes.
    public static var currentBytes: Int? { kilobytes(of: "VmRSS", in: "/proc/self/status").map { $0 * 1024 } }

    /// The most resident memory since the process started or since ``resetPeak()`` (`VmHWM`), in bytes.
    public static var peakBytes: Int? { kilobytes(of: "VmHWM", in: "/proc/self/status").map { $0 * 1024 } }

    /// Memory the system can give out without swapping (`MemAvailable`), in bytes.
    public static var availableBytes: Int? { kilobytes(of: "MemAvailable", in: "/proc/meminfo").map { $0 * 1024 } }

    /// Sets the peak back to the current resident memory (writes `5` to `/proc/self/clear_refs`,
    /// Linux 4.0 and later); `false` when the system does not allow it.
    @discardableResult
    public static func resetPeak() -> Bool {
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return write(fd, "5", 1) == 1
    }

    /// Runs `body` and returns how far resident memory rose above its level before the call:
    /// the extra memory the call needed at its peak, or `nil` where it cannot be measured.
    ///
    /// Memory the allocator freed earlier is handed back to the system first, so that a call
    /// reusing it still counts. The peak is the process's, so measurements on several threads take
    /// turns: one resetting it in the middle of another's call would cut that call's figure short.
    public static func peakExtraBytes<Result>(during body: () throws -> Result) rethrows -> (result: Result, bytes: Int?) {
        measuring.lock()
        defer { measuring.unlock() }
        returnFreedMemoryToSystem()
        let canReset = resetPeak()
        let before = currentBytes
        let result = try body()
        guard canReset, let before, let peak = peakBytes else { return (result, nil) }
        return (result, max(0, peak - before))
    }

    /// Held for the whole of a ``peakExtraBytes(during:)`` measurement.
    private static let measuring = NSLock()

    /// Asks the C allocator to give freed memory back to the system (glibc's `malloc_trim(0)`);
    /// does nothing where there is no such function.
    public static func returnFreedMemoryToSystem() {
        #if canImport(Glibc)
        // Swift's Glibc module does not import <malloc.h>, so look the function up by name.
        typealias MallocTrim = @convention(c) (Int) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
            _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
        }
        #endif
    }

    /// Makes this process the first the kernel's out-of-memory killer picks (`oom_score_adj` 1000),
    /// for a child that measures how much memory a configuration needs.
    public static func volunteerForOutOfMemoryKill() {
        let fd = open("/proc/self/oom_score_adj", O_WRONLY)
        guard fd >= 0 else { return }
        _ = write(fd, "1000", 4)
        close(fd)
    }

    /// The value of a `Name:   1234 kB` line of a `/proc` file.
    static func kilobytes(of field: String, in path: String) -> Int? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // /proc files report size 0, so read until end of file.
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).split { $0 == " " || $0 == "\t" }.first ?? "")
        }
        return nil
    }
}
