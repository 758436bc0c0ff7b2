/// How to time a piece of code: warm-up calls, samples, and how long one sample must last.
///
/// A call that takes nanoseconds is repeated inside each sample until the sample lasts at
/// least ``minimumSampleSeconds``, so the clock's own cost and resolution do not show.
public struct MeasurementPlan: Sendable, Hashable {
    /// Untimed calls before the first sample (caches, page faults, thread start-up).
    public var warmUpCalls: Int
    /// Timed samples; the summary is over these.
    public var samples: Int
    /// A sample repeats the call until it lasts at least this long (0: one call per sample).
    public var minimumSampleSeconds: Double

    /// A plan with `warmUpCalls` untimed calls and `samples` samples of at least `minimumSampleSeconds` each.
    public init(warmUpCalls: Int, samples: Int, minimumSampleSeconds: Double = 0) {
        self.warmUpCalls = max(0, warmUpCalls)
        self.samples = max(1, samples)
        self.minimumSampleSeconds = max(0, minimumSampleSeconds)
    }

    /// For calls of milliseconds or more: one warm-up call, 10 samples of one call each.
    public static let kernel = MeasurementPlan(warmUpCalls: 1, samples: 10)
    /// A quicker ``kernel``: 3 samples.
    public static let quickKernel = MeasurementPlan(warmUpCalls: 1, samples: 3)
    /// For calls of nanoseconds to microseconds: 21 samples of at least 10 ms each.
    public static let dispatch = MeasurementPlan(warmUpCalls: 1000, samples: 21, minimumSampleSeconds: 0.01)
    /// A quicker ``dispatch``: 7 samples of at least 5 ms each.
    public static let quickDispatch = MeasurementPlan(warmUpCalls: 200, samples: 7, minimumSampleSeconds: 0.005)
}

/// The time of one call: the fastest, median and slowest sample, each divided by the calls in it.
public struct TimingSummary: Codable, Sendable, Hashable {
    /// How many samples were taken.
    public var samples: Int
    /// How many calls each sample timed.
    public var callsPerSample: Int
    /// The fastest sample, per call.
    public var minSeconds: Double
    /// The median sample, per call.
    public var medianSeconds: Double
    /// The slowest sample, per call.
    public var maxSeconds: Double

    /// A summary of `perCallSeconds` (one value per sample), each sample having timed `callsPerSample` calls.
    public init(perCallSeconds: [Double], callsPerSample: Int) {
        let sorted = perCallSeconds.sorted()
        samples = sorted.count
        self.callsPerSample = callsPerSample
        minSeconds = sorted.first ?? 0
        maxSeconds = sorted.last ?? 0
        let n = sorted.count
        medianSeconds = n == 0 ? 0 : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// Times `body` as `plan` says, passing every result to ``blackHole(_:)`` so that the
/// optimizer cannot drop the work.
///
/// ```swift
/// let timing = try measure(.kernel) { try scaledDotProductAttention(query: q, key: k, value: v) }
/// print(timing.medianSeconds)
/// ```
public func measure<Result>(_ plan: MeasurementPlan, _ body: () throws -> Result) rethrows -> TimingSummary {
    for _ in 0..<plan.warmUpCalls { blackHole(try body()) }
    let calls = try callsPerSample(plan, body)
    var perCall = [Double]()
    perCall.reserveCapacity(plan.samples)
    for _ in 0..<plan.samples { perCall.append(try timeCalls(calls, body) / Double(calls)) }
    return TimingSummary(perCallSeconds: perCall, callsPerSample: calls)
}

/// Two bodies timed in alternation by ``measureInterleaved(_:_:_:)``: each side's summary, and each
/// side's per-call time sample by sample, so that a pair (taken back to back) can be compared.
public struct InterleavedTiming: Sendable, Hashable {
    /// The first body's per-call seconds, one per sample, in the order taken.
    public let firstSeconds: [Double]
    /// The second body's per-call seconds, one per sample; `secondSeconds[i]` was taken right after `firstSeconds[i]`.
    public let secondSeconds: [Double]
    /// How many calls each of the first body's samples timed.
    public let firstCallsPerSample: Int
    /// How many calls each of the second body's samples timed.
    public let secondCallsPerSample: Int

    /// Two sides' per-call seconds sample by sample (`secondSeconds[i]` taken right after `firstSeconds[i]`),
    /// each sample having timed `firstCallsPerSample` or `secondCallsPerSample` calls.
    public init(firstSeconds: [Double], secondSeconds: [Double], firstCallsPerSample: Int = 1, secondCallsPerSample: Int = 1) {
        (self.firstSeconds, self.secondSeconds) = (firstSeconds, secondSeconds)
        (self.firstCallsPerSample, self.secondCallsPerSample) = (firstCallsPerSample, secondCallsPerSample)
    }

    /// The first body's timing.
    public var first: TimingSummary { TimingSummary(perCallSeconds: firstSeconds, callsPerSample: firstCallsPerSample) }
    /// The second body's timing.
    public var second: TimingSummary { TimingSummary(perCallSeconds: secondSeconds, callsPerSample: secondCallsPerSample) }

    /// Per sample pair, (first − second) per call.
    public var differenceSeconds: [Double] { zip(firstSeconds, secondSeconds).map { $0 - $1 } }
    /// The median of ``differenceSeconds``.
    public var medianDifferenceSeconds: Double { TimingSummary(perCallSeconds: differenceSeconds, callsPerSample: 1).medianSeconds }
    /// The median over sample pairs of first / second.
    public var medianRatio: Double {
        TimingSummary(perCallSeconds: zip(firstSeconds, secondSeconds).map { $0 / $1 }, callsPerSample: 1).medianSeconds
    }
}

/// Times two bodies as `plan` says, alternating their samples (a, b, a, b, …) so that drift in the
/// machine's speed (other processes on shared cores, frequency changes) falls on both alike: what a
/// ratio or a difference of the two should be computed from.
///
/// Each body gets its own calls per sample, grown until a sample lasts ``MeasurementPlan/minimumSampleSeconds``;
/// warm-up calls alternate too. A pair of samples is taken back to back, so a slow spell of the machine
/// cancels out of the pair's difference or ratio (``InterleavedTiming/medianDifferenceSeconds``,
/// ``InterleavedTiming/medianRatio``), where it would not out of the difference of the two medians.
public func measureInterleaved<A, B>(_ plan: MeasurementPlan, _ a: () throws -> A, _ b: () throws -> B) rethrows -> InterleavedTiming {
    for _ in 0..<plan.warmUpCalls {
        blackHole(try a())
        blackHole(try b())
    }
    let (callsA, callsB) = (try callsPerSample(plan, a), try callsPerSample(plan, b))
    var (perCallA, perCallB) = ([Double](), [Double]())
    for _ in 0..<plan.samples {
        perCallA.append(try timeCalls(callsA, a) / Double(callsA))
        perCallB.append(try timeCalls(callsB, b) / Double(callsB))
    }
    return InterleavedTiming(firstSeconds: perCallA, secondSeconds: perCallB, firstCallsPerSample: callsA, secondCallsPerSample: callsB)
}

/// The calls a sample of `body` repeats so that it lasts `plan.minimumSampleSeconds`: the batch grows until
/// one lasts long enough, and the last trial doubles as more warm-up.
private func callsPerSample<Result>(_ plan: MeasurementPlan, _ body: () throws -> Result) rethrows -> Int {
    var calls = 1
    guard plan.minimumSampleSeconds > 0 else { return calls }
    while true {
        let seconds = try timeCalls(calls, body)
        if seconds >= plan.minimumSampleSeconds || calls >= 1 << 30 { return calls }
        let factor = seconds > 0 ? plan.minimumSampleSeconds / seconds * 1.2 : 10
        calls = max(calls * 2, Int((Double(calls) * min(factor, 100)).rounded(.up)))
    }
}

/// Seconds that `calls` calls of `body` take.
private func timeCalls<Result>(_ calls: Int, _ body: () throws -> Result) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<calls { blackHole(try body()) }
    let elapsed = clock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

/// Of `rounds`, the one of median time by `seconds` (the faster of the middle two for an even count);
/// `nil` for none: how a benchmark interleaved with PyTorch keeps one round per side.
public func medianRound<Round>(_ rounds: [Round], seconds: (Round) -> Double) -> Round? {
    let ordered = rounds.sorted { seconds($0) < seconds($1) }
    return ordered.isEmpty ? nil : ordered[(ordered.count - 1) / 2]
}

/// Consumes a value in a way the optimizer cannot see through, so that work whose result is
/// otherwise unused is not eliminated.
@inline(never) @_optimize(none)
public func blackHole<T>(_ value: T) {}
