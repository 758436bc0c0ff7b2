import SDPA

/// The machine a report was measured on, and the peak its percentages refer to.
///
/// Reports written before the processor, kernel family and peak source were recorded decode
/// with those `nil`.
public struct MachineDescription: Codable, Sendable, Equatable {
    /// Where ``peakGFLOPSPerCore`` came from.
    public enum PeakSource: String, Codable, Sendable {
        /// One thread running the FMA loop of ``kernelFamily`` (``MachinePeak``).
        case measured
        /// `--peak-gflops`.
        case given
    }

    /// Active processors.
    public var processors: Int
    /// Threads the kernels used.
    public var threads: Int
    /// The per-core peak the percentages use, GFLOP/s.
    public var peakGFLOPSPerCore: Double
    /// The peak of ``threads`` threads: ``peakGFLOPSPerCore`` times the threads, at most one per processor.
    public var peakGFLOPS: Double
    /// The processor's model name, e.g. `AMD EPYC`.
    public var cpuModel: String?
    /// The kernel family the fused kernel ran (`FusedKernelInstructionSet.current`), e.g. `avx512`;
    /// `nil` for another implementation's report.
    public var kernelFamily: String?
    /// How ``peakGFLOPSPerCore`` was obtained.
    public var peakSource: PeakSource?

    /// This machine running `threads` threads of the kernel family in use on this thread, against
    /// `peakGFLOPSPerCore` (given) or, when `nil`, the peak ``MachinePeak`` measures for that family.
    public init(threads: Int, peakGFLOPSPerCore: Double? = nil) {
        processors = MachinePeak.processors
        self.threads = threads
        self.peakGFLOPSPerCore = peakGFLOPSPerCore ?? MachinePeak.measuredGFLOPSPerCore
        peakGFLOPS = MachinePeak.gflops(threads: threads, perCore: self.peakGFLOPSPerCore)
        cpuModel = MachinePeak.cpuModelName
        kernelFamily = FusedKernelInstructionSet.current
        peakSource = peakGFLOPSPerCore == nil ? .measured : .given
    }

    /// `AMD EPYC · avx512 kernels · 2 threads on 2 processors · peak 574 GFLOP/s (287 per core, measured: …)`.
    public var summary: String {
        var parts = [cpuModel ?? "unknown processor"]
        if let kernelFamily { parts.append("\(kernelFamily) kernels") }
        parts.append("\(threads) thread\(threads == 1 ? "" : "s") on \(processors) processor\(processors == 1 ? "" : "s")")
        return (parts + [peakDescription]).joined(separator: " · ")
    }

    /// `peak 574 GFLOP/s (287 per core, measured: avx512 FMA loop on one thread × 2 threads)`.
    public var peakDescription: String {
        let source: String
        switch peakSource {
        case .measured?: source = "measured: \(kernelFamily ?? "the kernels'") FMA loop on one thread × \(max(1, min(threads, processors)))"
        case .given?: source = "given with --peak-gflops"
        case nil: source = "source not recorded"
        }
        return "peak \(MeasurementFormat.fixed(peakGFLOPS, 0)) GFLOP/s (\(MeasurementFormat.fixed(peakGFLOPSPerCore, 0)) per core, \(source))"
    }
}
