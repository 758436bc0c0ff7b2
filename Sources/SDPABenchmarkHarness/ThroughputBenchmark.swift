import SDPA

/// How a bias reaches the kernel in a throughput measurement.
public enum AttentionPath: String, Codable, Sendable, CaseIterable {
    /// The mask built beforehand with ``AttnBias/materialize(device:)`` and passed as a ``TensorBias``:
    /// what a library without bias types does.
    case materialized
    /// ``materialized`` with building the mask inside the timed call.
    case materializedIncludingBuild = "materialized+build"
    /// The bias itself (or no mask): its kernel computes it, nothing is materialized.
    case fused

    /// The paths that mean something for `bias`: no mask and dense masks have only one, and so has
    /// a bias without a materialized form (soft-capping).
    public static func applicable(to bias: (any AttnBias)?) -> [AttentionPath] {
        guard let bias else { return [.fused] }
        if !hasMaterializedForm(bias) { return [.fused] }
        return bias.needsMaterialization ? [.materialized] : allCases
    }
}

/// Times attention workloads on each path: the measurement behind `sdpa bench`, the demo
/// and the `KernelThroughput` benchmark.
public struct ThroughputBenchmark: Sendable {
    /// How each configuration is timed.
    public var plan: MeasurementPlan
    /// The per-core peak percentages refer to, GFLOP/s; `nil`: the one measured for the kernel family in use.
    public var peakGFLOPSPerCore: Double?
    /// Whether to run each configuration once more to measure its peak extra memory.
    public var measuresMemory: Bool

    /// A benchmark timing with `plan`.
    public init(plan: MeasurementPlan = .kernel, peakGFLOPSPerCore: Double? = nil,
                measuresMemory: Bool = true) {
        self.plan = plan
        self.peakGFLOPSPerCore = peakGFLOPSPerCore
        self.measuresMemory = measuresMemory
    }

    /// The (workload, path) pairs `paths` gives for `workloads`, keeping only paths that apply to each bias.
    ///
    /// - Throws: ``SDPAError`` when a workload's bias cannot be built.
    public func configurations(_ workloads: [AttentionWorkload], paths: [AttentionPath]) throws -> [(AttentionWorkload, AttentionPath)] {
        try workloads.flatMap { workload in
            let applicable = AttentionPath.applicable(to: try workload.makeBias())
            return paths.filter(applicable.contains).map { (workload, $0) }
        }
    }

    /// Measures every applicable (workload, path) pair, reporting each step to `progress`.
    ///
    /// - Throws: ``SDPAError`` from the first configuration that fails.
    public func measureAll(_ workloads: [AttentionWorkload], paths: [AttentionPath], progress: (Int, Int, String) -> Void) throws -> [BenchmarkResult] {
        let all = try configurations(workloads, paths: paths)
        return try all.enumerated().map { index, configuration in
            progress(index, all.count, "\(configuration.0) \(configuration.1.rawValue)")
            return try measure(configuration.0, path: configuration.1)
        }
    }

    /// Measures one workload on one path, with the thread count of the current ``withSDPAThreads(_:_:)`` scope.
    ///
    /// Peak extra memory counts what the call allocates: the output, the kernel's buffers and,
    /// on the materialized paths, the mask.
    /// - Throws: ``SDPAError`` from the inputs, the bias or the call.
    public func measure(_ workload: AttentionWorkload, path: AttentionPath, alibiSlopes: [Double]? = nil) throws -> BenchmarkResult {
        let (q, k, v) = try workload.makeInputs()
        let bias = try workload.makeBias(alibiSlopes: alibiSlopes)
        let call: () throws -> Tensor
        switch path {
        case .fused:
            call = { try attention(query: q, key: k, value: v, bias: bias) }
        case .materialized:
            let mask = try bias.map { TensorBias(try $0.materialize(device: .cpu)) }
            call = { try attention(query: q, key: k, value: v, bias: mask) }
        case .materializedIncludingBuild:
            call = { try attention(query: q, key: k, value: v, bias: try bias.map { TensorBias(try $0.materialize(device: .cpu)) }) }
        }
        var peakExtra: Int?
        if measuresMemory {
            // Before the timing, so that as little as possible is already resident; the materialized
            // paths' memory includes building the mask, which is what they cost.
            let memoryCall = path == .fused ? call : {
                try attention(query: q, key: k, value: v, bias: try bias.map { TensorBias(try $0.materialize(device: .cpu)) })
            }
            peakExtra = try ResidentMemory.peakExtraBytes { try memoryCall() }.bytes
        }
        let timing = try SDPABenchmarkHarness.measure(plan, call)
        let threads = SDPAThreads.effectiveCount
        return BenchmarkResult(workload: workload, path: path.rawValue, threads: threads, timing: timing, peakExtraBytes: peakExtra)
            .withThroughput(peakGFLOPS: MachinePeak.gflops(threads: threads, perCore: peakGFLOPSPerCore ?? MachinePeak.measuredGFLOPSPerCore))
    }
}

extension ThroughputBenchmark {
    /// Measures every applicable (workload, path) pair, and PyTorch on the same workload right after it,
    /// `rounds` times over; each side keeps, per (workload, path), its round with the median time.
    ///
    /// Both sides see the same spells of a shared machine, so their ratio does not move with them the
    /// way two runs one after the other do. Memory is measured in the first round only.
    /// - Returns: this package's results and PyTorch's, in workload order.
    /// - Throws: ``SDPAError`` from a configuration, ``PyTorchCounterpartError`` from PyTorch's process.
    public func measureInterleaved(
        _ workloads: [AttentionWorkload], paths: [AttentionPath], with pytorch: PyTorchCounterpart,
        rounds: Int, progress: (Int, Int, String) -> Void
    ) throws -> (ours: [BenchmarkResult], pytorch: [BenchmarkResult]) {
        let rounds = Swift.max(1, rounds)
        var ours = [BenchmarkResult](), theirs = [BenchmarkResult]()
        var later = self
        later.measuresMemory = false
        for (index, workload) in workloads.enumerated() {
            let mine = try configurations([workload], paths: paths).map(\.1)
            var ourRounds = [[BenchmarkResult]](), theirRounds = [[BenchmarkResult]]()
            for round in 0..<rounds {
                progress(index * rounds + round, workloads.count * rounds, "\(workload) round \(round + 1) of \(rounds)")
                ourRounds.append(try mine.map { try (round == 0 ? self : later).measure(workload, path: $0) })
                theirRounds.append(try pytorch.measure(workload))
            }
            ours += Self.medianRounds(ourRounds)
            theirs += Self.medianRounds(theirRounds)
        }
        return (ours, theirs)
    }

    /// Per path (in the first round's order), the round with the median time (the faster of the middle
    /// two for an even count), carrying the first round's memory figure.
    static func medianRounds(_ rounds: [[BenchmarkResult]]) -> [BenchmarkResult] {
        guard let first = rounds.first else { return [] }
        return first.map { firstResult in
            let timed = rounds.compactMap { round in round.first { $0.path == firstResult.path && $0.timing != nil } }
            guard var median = medianRound(timed, seconds: { $0.timing!.medianSeconds }) else { return firstResult }
            median.peakExtraBytes = firstResult.peakExtraBytes
            return median
        }
    }
}
