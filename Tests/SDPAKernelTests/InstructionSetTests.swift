import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// Which kernel family runs, checked against the processor's own flags (`/proc/cpuinfo`): a silent
/// fall-back to the portable loops on a machine with AVX2 must fail, not pass.
@Suite("Kernel families")
struct InstructionSetTests {
    @Test("the default family is the best this processor runs, by its /proc/cpuinfo flags")
    func defaultFamilyFollowsTheFlags() throws {
        let available = FusedKernelInstructionSet.available
        #expect(available.last == "portable", "the portable loops run everywhere and come last: \(available)")
        #expect(Set(available).count == available.count, "a family is listed twice: \(available)")
        // A family the dispatcher offers must have the flags it needs.
        for (name, flags) in KernelFamily.known where available.contains(name) {
            let missing = flags.filter { !CPUFlags.current.contains($0) }
            #expect(missing.isEmpty, "\(name) is offered but this processor lacks \(missing)")
        }
        // On an AVX2 + FMA + F16C processor the AVX2 family, or a better one, runs by default.
        let hasAVX2 = ["avx2", "fma", "f16c"].allSatisfy(CPUFlags.current.contains)
        if hasAVX2 {
            #expect(available.contains("avx2"), "this processor has avx2, fma and f16c but the AVX2 family is not offered: \(available)")
        }
        let chosen = ProcessInfo.processInfo.environment["SDPA_KERNELS"].flatMap { available.contains($0) ? $0 : nil }
        let expected = try #require(chosen ?? available.first)
        #expect(FusedKernelInstructionSet.current == expected,
                "running \(FusedKernelInstructionSet.current), expected \(expected) (available \(available), SDPA_KERNELS \(chosen ?? "unset"))")
        // Where both AVX-512 families run, an Intel core ranks avx512 first (its vdpbf16ps runs no faster
        // than the float32 FMA), any other vendor avx512bf16.
        if let plain = available.firstIndex(of: "avx512"), let pairs = available.firstIndex(of: "avx512bf16") {
            let intel = CPUFlags.current.vendor == "GenuineIntel"
            #expect(intel ? plain < pairs : pairs < plain, "vendor \(CPUFlags.current.vendor): \(available)")
        }
        if hasAVX2, chosen == nil {
            let rank = available.firstIndex(of: FusedKernelInstructionSet.current) ?? .max
            #expect(rank <= available.firstIndex(of: "avx2") ?? -1, "an AVX2 processor runs \(FusedKernelInstructionSet.current) by default")
        }
    }

    @Test("explainSDPA names the family the fused kernel runs on this thread, and how it multiplies bfloat16")
    func explanationNamesTheFamily() throws {
        let shape = AttentionShape(batch: 1, queryHeads: 2, keyValueHeads: 2, queryLength: 8, keyLength: 16, headDim: 8, valueHeadDim: 8)
        for name in FusedKernelInstructionSet.available {
            let (float32, bfloat16, pairs) = try #require(FusedKernelInstructionSet.withFamily(name) {
                (try explainSDPA(shape: shape, dtype: .float32, attnMask: causalLowerRight(8, 16)),
                 try explainSDPA(shape: shape, dtype: .bfloat16), FusedKernelInstructionSet.multipliesBFloat16Pairs)
            })
            #expect(float32.backend == .fused && float32.kernels == name && float32.description.contains("\nkernels: \(name)\n"))
            let how = pairs ? "bfloat16 multiplied as pairs, float32 sums" : "bfloat16 widened to float32"
            #expect(bfloat16.kernels == "\(name) (\(how))", "\(bfloat16)")
        }
        let math = try withSDPBackends([.math]) { try explainSDPA(shape: shape, dtype: .float32) }
        #expect(math.backend == .math && math.kernels == nil && !math.description.contains("kernels"))
    }

    @Test("withFamily selects a family for the calling thread only, and only a family the processor runs")
    func withFamilyIsPerThread() throws {
        let defaultFamily = FusedKernelInstructionSet.current
        for name in FusedKernelInstructionSet.available {
            let (inside, otherThread) = try #require(FusedKernelInstructionSet.withFamily(name) {
                (FusedKernelInstructionSet.current, familyOnAnotherThread())
            })
            #expect(inside == name)
            #expect(otherThread == defaultFamily, "\(name) leaked to another thread")
            #expect(FusedKernelInstructionSet.current == defaultFamily, "\(name) stayed selected after withFamily")
        }
        var ran = false
        #expect(FusedKernelInstructionSet.withFamily("no-such-family") { ran = true } == nil)
        #expect(!ran && FusedKernelInstructionSet.current == defaultFamily)
    }

    /// Each family the package knows of but this machine does not run is reported here, with the
    /// reason, as a warning (which does not fail the run): the kernel tests run only the families in
    /// ``KernelFamily/available``.
    @Test("kernel families this machine skips, and why", arguments: KernelFamily.all.filter { !$0.isAvailable })
    func skippedFamilies(_ family: KernelFamily) throws {
        Issue.record("kernel family \(family.name) skipped: \(family.skipReason ?? "?")", severity: .warning)
    }

    @Test("SDPA_KERNELS picks the family for the whole process; a name it does not run is ignored")
    func environmentVariable() async {
        await #expect(processExitsWith: .success) {
            // The variable is read once, at the first kernel call: none has happened in this child yet.
            setenv("SDPA_KERNELS", "portable", 1)
            guard FusedKernelInstructionSet.current == "portable" else { exit(1) }
            exit(FusedKernelInstructionSet.available.contains("portable") ? 0 : 2)
        }
        await #expect(processExitsWith: .success) {
            setenv("SDPA_KERNELS", "no-such-family", 1)
            exit(FusedKernelInstructionSet.current == FusedKernelInstructionSet.available.first ? 0 : 1)
        }
    }

    @Test("select changes the family for every thread, refuses a name it does not run, and nil restores the default")
    func processWideSelection() async {
        await #expect(processExitsWith: .success) {
            // The default: the best, or what SDPA_KERNELS names (nil restores that, not always the best).
            let initial = FusedKernelInstructionSet.current
            guard FusedKernelInstructionSet.select("portable"), FusedKernelInstructionSet.current == "portable" else { exit(1) }
            guard familyOnAnotherThread() == "portable" else { exit(2) }
            guard !FusedKernelInstructionSet.select("no-such-family"), FusedKernelInstructionSet.current == "portable" else { exit(3) }
            guard FusedKernelInstructionSet.select(nil), FusedKernelInstructionSet.current == initial else { exit(4) }
            exit(0)
        }
    }
}

/// The family a new thread runs (the process's choice: it has no override of its own).
func familyOnAnotherThread() -> String {
    final class Box: @unchecked Sendable { var name = "" }
    let box = Box(), done = DispatchSemaphore(value: 0)
    Thread { box.name = FusedKernelInstructionSet.current; done.signal() }.start()
    done.wait()
    return box.name
}
