import Foundation
@_spi(Testing) import SDPA
import Testing

/// A family of the C micro-kernels (an instruction set), as the tests run them: each family this
/// processor runs, then every other family the package knows of, which tests report as skipped,
/// saying why.
public struct KernelFamily: Sendable, Hashable, CustomTestStringConvertible {
    /// The family's name, as ``FusedKernelInstructionSet/available`` and `SDPA_KERNELS` spell it.
    public let name: String

    public var testDescription: String { name }

    /// The families of the package and the CPU flags (as `/proc/cpuinfo` names them) each needs at
    /// least, best first (an Intel core ranks `avx512` above `avx512bf16`: ``FusedKernelInstructionSet``).
    /// A family the dispatcher lists must have these; one it does not list is reported as skipped.
    public static let known: [(name: String, flags: [String])] = [
        ("amx", ["avx512f", "avx512_bf16", "amx_tile", "amx_bf16"]),
        ("avx512bf16", ["avx512f", "avx512_bf16"]),
        ("avx512", ["avx512f"]),
        ("avx2", ["avx2", "fma", "f16c"]),
        ("neonbf16", ["asimd", "bf16"]),
        ("neon", ["asimd"]),
        ("portable", []),
    ]

    /// Every family a kernel test runs for: the ones this processor runs, best first, then the
    /// other known ones (which skip, with ``skipReason``).
    public static let all: [KernelFamily] = {
        let available = FusedKernelInstructionSet.available
        return (available + known.map(\.name).filter { !available.contains($0) }).map(KernelFamily.init(name:))
    }()

    /// The families this processor runs.
    public static var available: [KernelFamily] { all.filter(\.isAvailable) }

    /// Whether this build has the family and this processor runs it.
    public var isAvailable: Bool { FusedKernelInstructionSet.available.contains(name) }

    /// Why this machine does not run the family, or `nil` when it does.
    public var skipReason: String? {
        guard !isAvailable else { return nil }
        guard let flags = Self.known.first(where: { $0.name == name })?.flags else { return "unknown family" }
        let missing = flags.filter { !CPUFlags.current.contains($0) }
        if name.hasPrefix("neon") && !CPUFlags.current.isARM { return "an arm64 family; this processor is not arm64" }
        if !missing.isEmpty { return "this processor lacks \(missing.joined(separator: ", "))" }
        return "this build has no '\(name)' family (the processor has \(flags.joined(separator: ", ")))"
    }

    /// Runs `body` with this family selected for the kernel calls made on the calling thread (a fused
    /// call under `withSDPAThreads(1)` makes all of them there); when the family does not run here,
    /// cancels the test, which then shows as skipped with ``skipReason``.
    public func run<R>(_ body: () throws -> R, sourceLocation: SourceLocation = #_sourceLocation) throws -> R {
        guard let result = try FusedKernelInstructionSet.withFamily(name, body) else {
            try Test.cancel("kernel family \(name) skipped: \(skipReason ?? "it cannot be selected")", sourceLocation: sourceLocation)
        }
        return result
    }
}

/// The processor's feature flags, as the kernel (`/proc/cpuinfo`) reports them.
public struct CPUFlags: Sendable {
    /// The flags of the first processor listed.
    public let flags: Set<String>
    /// Whether the flags are arm64's ("Features" rather than "flags").
    public let isARM: Bool
    /// The processor's vendor (`vendor_id`: "GenuineIntel", "AuthenticAMD"; empty where not listed).
    public let vendor: String

    /// Read once; empty where there is no `/proc/cpuinfo`.
    public static let current: CPUFlags = {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        var vendor = ""
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            if key == "vendor_id" { vendor = parts[1].trimmingCharacters(in: .whitespaces) }
            if key == "flags" || key == "Features" {
                return CPUFlags(flags: Set(parts[1].split(separator: " ").map(String.init)), isARM: key == "Features", vendor: vendor)
            }
        }
        return CPUFlags(flags: [], isARM: false, vendor: vendor)
    }()

    /// Whether the processor reports `flag`.
    public func contains(_ flag: String) -> Bool { flags.contains(flag) }
}
