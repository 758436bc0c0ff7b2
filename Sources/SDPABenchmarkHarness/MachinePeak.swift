import Foundation

/// The floating-point peak the benchmarks report throughput against.
public enum MachinePeak {
    /// FP32 FMA peak of one core of the development machine (AMD EPYC, Zen 3, AVX2 + FMA, no AVX-512),
    /// in GFLOP/s, measured there with an FMA loop: two 256-bit FMA pipes give 32 FLOP per cycle.
    /// On another machine pass `--peak-gflops` with its own per-core figure.
    public static let measuredGFLOPSPerCore = 98.0

    /// The cores this process may use.
    public static var processors: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// The peak of `threads` threads at `perCore` GFLOP/s each; threads beyond the cores add nothing.
    public static func gflops(threads: Int, perCore: Double = measuredGFLOPSPerCore) -> Double {
        perCore * Double(max(1, min(threads, processors)))
    }
}
