import Foundation
@_spi(Testing) import SDPA

/// What a micro-kernel check found, collected rather than reported, so that one check runs both in
/// process (`#expect` on ``found``) and in an exit test's child process with the portable loops
/// forced (``exitWithPortableLoops(_:)``).
struct KernelMismatches {
    private(set) var found: [String] = []

    /// Records `message` unless `condition` holds.
    mutating func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { found.append(message()) }
    }
}

/// Forces the portable loops (process-wide: call it only in an exit test's child) and exits with 0
/// when `check` finds nothing, 1 when it finds something or throws, 3 when the loops cannot be forced.
func exitWithPortableLoops(_ check: () throws -> [String]) -> Never {
    FusedKernelInstructionSet.select("portable")
    guard FusedKernelInstructionSet.current == "portable" else { exit(3) }
    exit((try? check())?.isEmpty == true ? 0 : 1)
}
