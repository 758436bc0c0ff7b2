import CSDPAKernels

/// What the scaling model predicts for the fused kernel on one problem at one thread count: the
/// driver's own work items at that count, their tiles after tile skipping, and a deterministic
/// simulation of the worker pool running them (see ``predictSDPAScaling(shape:dtype:attnMask:isCausal:enableGQA:threads:)``).
///
/// Times are modeled seconds of one core of the development machine (RFC.md, "Many-core decomposition");
/// their ratios — ``speedup``, ``efficiency`` — are what the model is for: what the work decomposition
/// allows on identical cores that never wait for memory. A real many-core run falls short of it by what
/// the memory system and the machine's other load take.
public struct SDPAScalingPrediction: Sendable, Hashable, CustomStringConvertible {
    /// The thread count asked for.
    public var threads: Int
    /// Threads the call would run on: ``threads``, capped by ``claims`` and by 256.
    public var threadsUsed: Int
    /// Work items at this thread count (a split item counted once per split), of them split, and the
    /// claims the work queue hands them out in.
    public var workItems: Int, splitItems: Int, claims: Int
    /// (query head, key tile) pairs of the items, and those not skipped by the bias's tile classification.
    public var tiles: Int, visibleTiles: Int
    /// Modeled seconds: all the work at this thread count, the same call on one thread (its own items),
    /// the largest item, and the simulated critical path.
    public var work: Double, oneThread: Double, largestItem: Double, criticalPath: Double

    /// The modeled time on one thread over the critical path.
    public var speedup: Double { criticalPath > 0 ? oneThread / criticalPath : 1 }

    /// ``speedup`` per thread asked for.
    public var efficiency: Double { speedup / Double(threads) }

    /// One line: threads, items, critical path, speedup and efficiency.
    public var description: String {
        func time(_ seconds: Double) -> String {
            seconds >= 1 ? "\(rounded(seconds, 3)) s" : seconds >= 1e-3 ? "\(rounded(seconds * 1e3, 3)) ms" : "\(rounded(seconds * 1e6, 1)) µs"
        }
        return "\(threads) threads: \(workItems) items (\(splitItems) split) in \(claims) claims, "
            + "critical path \(time(criticalPath)) of \(time(oneThread)) on one thread, "
            + "speedup \(rounded(speedup, 2))x (\(rounded(100 * efficiency, 1)) %)"
    }

    private func rounded(_ value: Double, _ digits: Int) -> String {
        let scale = (0..<digits).reduce(1.0) { product, _ in product * 10 }
        return "\((value * scale).rounded() / scale)"
    }
}

/// The scaling model's predictions for the fused kernel running `modifier` on `shape` in `dtype`, one per
/// thread count (see ``predictSDPAScaling(shape:dtype:attnMask:isCausal:enableGQA:threads:)``, which
/// routes the bias to its modifier).
func _predictScaling<Modifier: _ScoreModifier>(
    shape: AttentionShape, dtype: DType, modifier: Modifier, threads: [Int]
) -> [SDPAScalingPrediction] {
    guard shape.batch * shape.queryHeads * shape.queryLength > 0 else {
        return threads.map { SDPAScalingPrediction(threads: $0, threadsUsed: 1, workItems: 0, splitItems: 0, claims: 0, tiles: 0,
                                                   visibleTiles: 0, work: 0, oneThread: 0, largestItem: 0, criticalPath: 0) }
    }
    let kind = dtype._elementKind
    let one = _ModeledCall(shape: shape, kind: kind, modifier: modifier, threads: 1)
    return threads.map { count in
        let call = count == 1 ? one : _ModeledCall(shape: shape, kind: kind, modifier: modifier, threads: count)
        return SDPAScalingPrediction(
            threads: count, threadsUsed: call.threads, workItems: call.items.count, splitItems: call.splitItems,
            claims: call.claims, tiles: call.tiles, visibleTiles: call.visibleTiles, work: call.work * 1e-9,
            oneThread: one.simulation.criticalPath * 1e-9, largestItem: (call.items.map(\.cost).max() ?? 0) * 1e-9,
            criticalPath: call.simulation.criticalPath * 1e-9)
    }
}
