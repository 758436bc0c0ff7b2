#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The cache of one core, which sizes the fused kernel's work items (``_FusedTiling/tilesPerBlock``).
@usableFromInline
package enum _CoreCache {
    /// Assumed where the system does not say: Zen 3's L2, the smallest of the CPUs the tiles were tuned on.
    @usableFromInline package static var assumedL2Bytes: Int { 512 << 10 }

    /// A core's L2 cache in bytes as the system reports it (``assumedL2Bytes`` where it does not);
    /// read once per process, so a process's tiles, and so its bits, never change.
    @usableFromInline package static let l2Bytes: Int = reportedL2Bytes() ?? assumedL2Bytes

    /// What the system reports of a core's L2, `nil` where it says nothing.
    package static func reportedL2Bytes() -> Int? {
        #if os(Linux)
        #if canImport(Glibc)
        let reported = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
        if reported > 0 { return reported }
        #endif
        // glibc answers 0 on many arm64 systems (and musl has no such query); the kernel's cache
        // description says it ("2048K").
        return sysfsSize("/sys/devices/system/cpu/cpu0/cache/index2/size")
        #elseif canImport(Darwin)
        // Apple silicon: the performance cores' L2 (shared by their cluster).
        for name in ["hw.perflevel0.l2cachesize", "hw.l2cachesize"] {
            var value: Int64 = 0
            var size = MemoryLayout<Int64>.size
            if sysctlbyname(name, &value, &size, nil, 0) == 0, value > 0 { return Int(value) }
        }
        return nil
        #else
        return nil
        #endif
    }

    #if os(Linux)
    /// A size such as `2048K` or `1M` in a sysfs file.
    package static func sysfsSize(_ path: String) -> Int? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return parsedSize(String(decoding: buffer[..<count], as: UTF8.self))
    }
    #endif

    /// `2048K` → 2 MiB, `1M` → 1 MiB, `65536` → 64 KiB; `nil` for anything else.
    package static func parsedSize(_ text: String) -> Int? {
        let trimmed = text.filter { !$0.isWhitespace }
        let unit: Int
        switch trimmed.last {
        case "K": unit = 1 << 10
        case "M": unit = 1 << 20
        default: unit = 1
        }
        guard let value = Int(unit == 1 ? trimmed : String(trimmed.dropLast())), value > 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: unit)
        return overflow ? nil : bytes
    }
}
