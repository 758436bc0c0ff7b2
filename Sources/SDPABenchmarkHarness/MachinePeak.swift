import CSDPAKernels
import Foundation
import SDPA

/// The floating-point peak the benchmarks report throughput against, measured on this machine.
///
/// The per-core figure is one thread running the FMA loop of the kernel family in use
/// (`sdpa_kernels_fma_peak_gflops`: AVX-512, AVX2, NEON or portable, a few milliseconds,
/// measured once per process). A multi-threaded peak is that figure times the threads used:
/// FMA units belong to a core, and a loop measured on every core of a shared machine would
/// measure its neighbours as much as the cores. The all-core clock can sit a little below the
/// one-core clock, so the multi-core peak errs high and "% of peak" errs low, never flattering.
public enum MachinePeak {
    /// The FP32 FMA peak of one core running the kernel family in use on this thread, GFLOP/s.
    public static var measuredGFLOPSPerCore: Double {
        measuredGFLOPSPerCore(family: FusedKernelInstructionSet.current)
            ?? measuredGFLOPSPerCore(family: "portable") ?? 0
    }

    /// The FP32 FMA peak of one core running the FMA loop of `family` (an instruction-set family
    /// name such as `avx512bf16`, `avx2`, `neon` or `portable`), GFLOP/s; `nil`
    /// when there is no loop of that name or this processor cannot run it.
    public static func measuredGFLOPSPerCore(family: String) -> Double? {
        let gflops = sdpa_kernels_fma_peak_gflops(family)
        return gflops > 0 && gflops.isFinite ? gflops : nil
    }

    /// The cores this process may use.
    public static var processors: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// The peak of `threads` threads at `perCore` GFLOP/s each; threads beyond the cores add nothing.
    public static func gflops(threads: Int, perCore: Double) -> Double {
        perCore * Double(max(1, min(threads, processors)))
    }

    /// The processor's model name (`model name` in `/proc/cpuinfo`), or `nil` where it is not given.
    public static let cpuModelName: String? = modelName(inCPUInfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")

    /// The first `model name` (x86) or `Model` (some arm64 kernels) of a `/proc/cpuinfo` text, or `nil`.
    public static func modelName(inCPUInfo text: String) -> String? {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            if (key == "model name" || key == "Model") && !value.isEmpty { return value }
        }
        return nil
    }
}
