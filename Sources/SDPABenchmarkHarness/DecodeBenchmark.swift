import Foundation
import SDPA

/// Decoding, one new token per sequence per step against a growing KV cache: memory-bound work, timed
/// as `Benchmarks/Decode` and `sdpa bench --decode` run it.
///
/// A workload with `batch == 1` is one sequence of `keyLength` positions held as contiguous tensors,
/// one query row attending to all of them: each call reads K and V once, so its time is set against
/// the time of reading as many bytes (``MemoryBandwidth/ReadPass``), a read pass after each call, and
/// against the machine's read bandwidth measured at start-up (``MemoryBandwidth``).
///
/// A workload with `batch > 1` is continuous batching: `batch` sequences of lengths spread evenly from
/// ``shortestLength`` to `keyLength` (``sequenceLengths(count:longest:)``) live in a ``PagedKVCache``;
/// each of ``steps`` steps appends one token to every sequence and runs one batched attention call
/// over the cache (``PagedKVCache/attention(_:scale:causal:)``), after one untimed step. Its samples are the steps, so the
/// median is the time of one step for the whole batch, and tokens per second `batch / median`; a step
/// reads every sequence's K and V once, so the bytes of a step over the median give its read rate (the
/// bound on tokens per second). With ``bandwidth`` set, each step is followed by a read pass of a mean
/// step's bytes and, as for a single sequence, its time is set against the pass's (the median of the
/// pairs, per byte) and against the start-up bandwidth.
/// `Benchmarks/pytorch_bench.py` runs the same workloads with the same conventions.
public struct DecodeBenchmark: Sendable {
    /// The shortest sequence of a continuous batch.
    public static let shortestLength = 128

    /// How a single-sequence call is timed.
    public var plan: MeasurementPlan
    /// Decode steps of a continuous batch.
    public var steps: Int
    /// The paged cache's block size.
    public var blockSize: Int
    /// The read bandwidth measured once by the caller: when set, single-sequence calls alternate with
    /// read passes of as many bytes, and their times are set against both.
    public var bandwidth: MemoryBandwidth?

    /// A benchmark timing single sequences with `plan` and continuous batches over `steps` steps.
    public init(plan: MeasurementPlan = .kernel, steps: Int = 100, blockSize: Int = 128, bandwidth: MemoryBandwidth? = nil) {
        self.plan = plan
        self.steps = Swift.max(1, steps)
        self.blockSize = blockSize
        self.bandwidth = bandwidth
    }

    /// `count` lengths from ``shortestLength`` (or `longest`, if shorter) to `longest`, evenly spread
    /// (rounded down); `Benchmarks/pytorch_bench.py` spreads them the same way.
    public static func sequenceLengths(count: Int, longest: Int) -> [Int] {
        let shortest = Swift.min(shortestLength, longest)
        guard count > 1 else { return [longest] }
        return (0..<count).map { shortest + (longest - shortest) * $0 / (count - 1) }
    }

    /// One workload measured: the result, and the figures derived from it (times against the
    /// bandwidth, tokens per second), named after the workload's kind and dtype.
    public struct Outcome: Sendable {
        /// The timing, with a note saying what it means.
        public var result: BenchmarkResult
        /// Derived figures, e.g. `single.float32.timeOverReadTime`.
        public var figures: [String: Double]
    }

    /// The figures' prefix for `workload`: `single.float32`, `batching.bfloat16`.
    public static func figurePrefix(_ workload: AttentionWorkload) -> String {
        "\(workload.batch == 1 ? "single" : "batching").\(workload.dtype)"
    }

    /// Measures `workload` with the thread count of the current ``withSDPAThreads(_:_:)`` scope.
    ///
    /// - Throws: ``SDPAError`` for sizes the library rejects (e.g. heads that do not fit `keyValueHeads`).
    public func measure(_ workload: AttentionWorkload) throws -> Outcome {
        workload.batch == 1 ? try singleSequence(workload) : try continuousBatching(workload)
    }

    /// Measures every workload `rounds` times, each round right before PyTorch's `pytorch` times the same
    /// workload, and keeps each side's median round (the faster of the middle two for an even count): a
    /// continuous batch reads gigabytes a step, and a shared host's read bandwidth drifts over minutes,
    /// so the two sides are timed seconds apart rather than one whole report after the other.
    /// `progress` is called before each round with (step, total, label).
    ///
    /// - Throws: ``SDPAError`` from a workload, ``PyTorchCounterpartError`` from PyTorch's process.
    public func measureInterleaved(
        _ workloads: [AttentionWorkload], with pytorch: PyTorchCounterpart, rounds: Int, progress: (Int, Int, String) -> Void
    ) throws -> (ours: [Outcome], pytorch: [BenchmarkResult]) {
        let rounds = Swift.max(1, rounds)
        var ours = [Outcome](), theirs = [BenchmarkResult]()
        for (index, workload) in workloads.enumerated() {
            var ourRounds = [Outcome](), theirRounds = [[BenchmarkResult]]()
            for round in 0..<rounds {
                progress(index * rounds + round, workloads.count * rounds, "\(workload) round \(round + 1) of \(rounds)")
                ourRounds.append(try measure(workload))
                theirRounds.append(try pytorch.measure(workload))
            }
            ours.append(medianRound(ourRounds, seconds: { $0.result.timing?.medianSeconds ?? 0 })!)
            theirs += ThroughputBenchmark.medianRounds(theirRounds)
        }
        return (ours, theirs)
    }

    private func singleSequence(_ w: AttentionWorkload) throws -> Outcome {
        let (q, k, v) = try w.makeInputs()
        let call = { try scaledDotProductAttention(query: q, key: k, value: v, enableGQA: w.keyValueHeads != w.heads) }
        let bytes = Double((k.count + v.count) * k.dtype.byteWidth)
        let prefix = Self.figurePrefix(w)
        let timing: TimingSummary
        var figures = [String: Double](), comparison = ""
        if let bandwidth {
            // Each call is followed by a read pass of as many bytes with the kernel's threads, and the
            // ratio is the median of the pairs': a drift of the machine's bandwidth falls on both
            // sides of a pair, where the start-up figure may be minutes old. One call per sample.
            let pass = MemoryBandwidth.ReadPass(bytes: Int(bytes), threads: SDPAThreads.effectiveCount)
            let pairs = try SDPABenchmarkHarness.measureInterleaved(MeasurementPlan(warmUpCalls: plan.warmUpCalls, samples: plan.samples), call, { pass.run() })
            timing = pairs.first
            let ratio = pairs.medianRatio, read = pairs.second.medianSeconds
            let startUp = timing.medianSeconds / (bytes / bandwidth.bytesPerSecond)
            figures["\(prefix).timeOverReadTime"] = ratio
            figures["\(prefix).interleavedReadGBPerSecond"] = Double(pass.bytes) / read / 1e9
            figures["\(prefix).timeOverStartUpReadTime"] = startUp
            comparison = ", \(MeasurementFormat.fixed(ratio, 2))× the time to read them (median of the pairs of a call and a read pass "
                + "of as many bytes after it, the passes at \(MeasurementFormat.fixed(Double(pass.bytes) / read / 1e9, 1)) GB/s; "
                + "\(MeasurementFormat.fixed(startUp, 2))× at the start-up \(MeasurementFormat.fixed(bandwidth.bytesPerSecond / 1e9, 1)) GB/s)"
        } else {
            timing = try SDPABenchmarkHarness.measure(plan, call)
        }
        let seconds = timing.medianSeconds
        figures["\(prefix).seconds"] = seconds
        figures["\(prefix).readGBPerSecond"] = bytes / seconds / 1e9
        let note = "reads K and V (\(MeasurementFormat.bytes(Int(bytes)))) at \(MeasurementFormat.fixed(bytes / seconds / 1e9, 1)) GB/s" + comparison
        let result = BenchmarkResult(workload: w, path: "contiguous", threads: SDPAThreads.effectiveCount, timing: timing, note: note)
        return Outcome(result: result, figures: figures)
    }

    private func continuousBatching(_ w: AttentionWorkload) throws -> Outcome {
        guard let dtype = w.elementType else {
            throw SDPAError.invalidArgument(argument: "dtype", value: w.dtype, reason: "not a known dtype")
        }
        let lengths = Self.sequenceLengths(count: w.batch, longest: w.keyLength)
        // One untimed step first (caches, page faults, thread start-up), as pytorch_bench.py does.
        let blocks = lengths.map { ($0 + steps + 1 + blockSize - 1) / blockSize }.reduce(0, +)
        let cache = try PagedKVCache(blockCount: blocks, blockSize: blockSize, keyValueHeads: w.keyValueHeads,
                                     headDim: w.headDim, valueHeadDim: w.valueHeadDim, dtype: dtype)
        // The values do not matter to the time: one random chunk fills every prompt, one token every step.
        let chunk = min(1024, w.keyLength)
        let keys = try Tensor.randomNormal(shape: [w.keyValueHeads, chunk, w.headDim], seed: 1, dtype: dtype)
        let values = try Tensor.randomNormal(shape: [w.keyValueHeads, chunk, w.valueHeadDim], seed: 2, dtype: dtype)
        let query = try Tensor.randomNormal(shape: [w.heads, 1, w.headDim], seed: 3, dtype: dtype)
        let (tokenKey, tokenValue) = (try keys.sliced(0..<1, along: 1), try values.sliced(0..<1, along: 1))
        var sequences = [PagedKVCache.SequenceID]()
        for length in lengths {
            let s = cache.addSequence()
            var done = 0
            while done < length {
                let n = Swift.min(chunk, length - done)
                try cache.append(to: s, key: try keys.sliced(0..<n, along: 1), value: try values.sliced(0..<n, along: 1))
                done += n
            }
            sequences.append(s)
        }
        let requests = sequences.map { PagedAttentionQuery(sequence: $0, query: query) }
        // The K and V bytes of step s (1...steps): every sequence holds its prompt and the s + 1 tokens
        // appended since (the untimed step's among them); `bytesPerStep` is their mean over the steps.
        let bytesPerToken = Double(w.keyValueHeads * (w.headDim + w.valueHeadDim) * keys.dtype.byteWidth)
        let prompts = Double(lengths.reduce(0, +))
        func bytes(step: Int) -> Double { (prompts + Double(w.batch * (step + 1))) * bytesPerToken }
        let bytesPerStep = (prompts + Double(w.batch) * (Double(steps + 1) / 2 + 1)) * bytesPerToken
        // With the bandwidth known, each step is followed by a read pass of a mean step's bytes, as a single
        // sequence's calls are: the pair's ratio is free of the host's drift over the steps and since start-up.
        let pass = bandwidth.map { _ in MemoryBandwidth.ReadPass(bytes: Int(bytesPerStep), threads: SDPAThreads.effectiveCount) }
        let clock = ContinuousClock()
        func seconds(since start: ContinuousClock.Instant) -> Double {
            let elapsed = clock.now - start
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }
        var stepSeconds = [Double](), passSeconds = [Double](), ratios = [Double]()
        for step in 0...steps {
            let start = clock.now
            for s in sequences { try cache.append(to: s, key: tokenKey, value: tokenValue) }
            blackHole(try cache.attention(requests))
            let elapsed = seconds(since: start)
            guard step > 0 else { continue }
            stepSeconds.append(elapsed)
            if let pass {
                let read = pass.run()
                passSeconds.append(read)
                ratios.append((elapsed / bytes(step: step)) / (read / Double(pass.bytes)))
            }
        }
        let timing = TimingSummary(perCallSeconds: stepSeconds, callsPerSample: 1)
        let quarter = Swift.max(1, steps / 4)
        let first = TimingSummary(perCallSeconds: Array(stepSeconds.prefix(quarter)), callsPerSample: 1).medianSeconds
        let last = TimingSummary(perCallSeconds: Array(stepSeconds.suffix(quarter)), callsPerSample: 1).medianSeconds
        let prefix = Self.figurePrefix(w), tokensPerSecond = Double(w.batch) / timing.medianSeconds
        let readRate = bytesPerStep / timing.medianSeconds
        var figures = [
            "\(prefix).tokensPerSecond": tokensPerSecond, "\(prefix).stepSeconds": timing.medianSeconds,
            "\(prefix).lastQuarterOverFirstQuarter": last / first, "\(prefix).readGBPerSecond": readRate / 1e9,
        ]
        // A step reads every sequence's K and V once: the machine's bandwidth bounds the tokens per second.
        var roof = ""
        if let bandwidth, let pass {
            let ratio = TimingSummary(perCallSeconds: ratios, callsPerSample: 1).medianSeconds
            let passRate = Double(pass.bytes) / TimingSummary(perCallSeconds: passSeconds, callsPerSample: 1).medianSeconds
            figures["\(prefix).timeOverReadTime"] = ratio
            figures["\(prefix).interleavedReadGBPerSecond"] = passRate / 1e9
            figures["\(prefix).timeOverStartUpReadTime"] = bandwidth.bytesPerSecond / readRate
            roof = ", \(MeasurementFormat.fixed(ratio, 2))× the time to read them (median of the pairs of a step and a read pass "
                + "after it, the passes at \(MeasurementFormat.fixed(passRate / 1e9, 1)) GB/s; "
                + "\(MeasurementFormat.fixed(bandwidth.bytesPerSecond / readRate, 2))× at the start-up "
                + "\(MeasurementFormat.fixed(bandwidth.bytesPerSecond / 1e9, 1)) GB/s)"
        }
        let note = "\(w.batch) sequences of \(lengths.first!)…\(lengths.last!) tokens, \(steps) steps of one token each through the paged "
            + "cache, read in place: \(MeasurementFormat.fixed(tokensPerSecond, 0)) tokens/s; median step of the last quarter "
            + "\(MeasurementFormat.fixed(last / first, 2))× the first's; a step reads K and V (\(MeasurementFormat.bytes(Int(bytesPerStep)))) "
            + "at \(MeasurementFormat.fixed(readRate / 1e9, 1)) GB/s" + roof
        let result = BenchmarkResult(workload: w, path: "paged", threads: SDPAThreads.effectiveCount, timing: timing, note: note)
        return Outcome(result: result, figures: figures)
    }

    /// Figures comparing `results` with PyTorch's (`comparison`): per single-sequence workload its speed-up
    /// (`single.float32.speedupOverPyTorch`), per continuous batch its tokens per second over PyTorch's.
    public static func comparisonFigures(_ results: [BenchmarkResult], comparison: BenchmarkReport?) -> [String: Double] {
        guard let comparison else { return [:] }
        var figures = [String: Double]()
        for r in results {
            guard let ours = r.timing?.medianSeconds, let theirs = comparison.counterpart(of: r)?.timing?.medianSeconds else { continue }
            figures["\(figurePrefix(r.workload)).\(r.workload.batch == 1 ? "speedupOverPyTorch" : "tokensPerSecondOverPyTorch")"] = theirs / ours
        }
        return figures
    }
}
