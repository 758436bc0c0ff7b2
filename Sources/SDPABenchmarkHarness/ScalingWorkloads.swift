import SDPA

/// The standard workloads of the scaling model (issue 20) and its targets, shared by the `ThreadScaling`
/// benchmark and the tests that hold the decomposition to them.
public enum ScalingWorkloads {
    /// Thread counts the benchmark models.
    public static let threadCounts = [1, 2, 8, 16, 32, 64, 128]

    /// Lengths around 1024 that sum to 8192 (`BiasScaling`'s packed sequences), scaled to `length`.
    public static func packedLengths(total length: Int) -> [Int] {
        let lengths = [832, 1216, 960, 1088, 1152, 896, 1024, 1024].map { $0 * length / 8192 }
        return lengths.dropLast() + [length - lengths.dropLast().reduce(0, +)]
    }

    /// Prefill at B=1, H=8, E=64, L=S=`length`: no mask, causal, ALiBi, a window of 256 and 8 packed
    /// causal sequences.
    public static func prefill(length: Int) -> [AttentionWorkload] {
        let spellings = ["none", "causal-upper-left", "alibi", "window:256",
                         "block-diagonal-causal:" + packedLengths(total: length).map(String.init).joined(separator: ",")]
        return spellings.map { spelling in
            AttentionWorkload(batch: 1, heads: 8, queryLength: length, keyLength: length, headDim: 64, bias: try! BiasKind.parse(spelling))
        }
    }

    /// One decoding step (L=1) of `batch` sequences, GQA 32/8, E=128, against `length` cached keys.
    public static func decode(batch: Int, length: Int) -> AttentionWorkload {
        var workload = AttentionWorkload(batch: batch, heads: 32, queryLength: 1, keyLength: length, headDim: 128, bias: BiasKind.named("none")!)
        workload.keyValueHeads = 8
        return workload
    }

    /// The workloads: prefill at L=S=2048 and 8192, one decoding sequence and a batch of 16 at
    /// S=8192; with `quick` the lengths are a quarter.
    public static func standard(quick: Bool = false) -> [AttentionWorkload] {
        let scale = quick ? 4 : 1
        return prefill(length: 2048 / scale) + prefill(length: 8192 / scale)
            + [decode(batch: 1, length: 8192 / scale), decode(batch: 16, length: 8192 / scale)]
    }

    /// The speedup the decomposition must allow `workload` at `threads` threads, if the issue sets one
    /// (only the full-size ``standard(quick:)`` workloads have targets): 48x at 64 threads for prefill,
    /// 32x for a single decoding sequence, 90x at 128 threads for prefill at L=S=8192.
    public static func target(_ workload: AttentionWorkload, threads: Int) -> Double? {
        guard standard().contains(workload) else { return nil }
        let isDecode = workload.queryLength == 1
        switch threads {
        case 64: return isDecode ? (workload.batch == 1 ? 32 : nil) : 48
        case 128: return !isDecode && workload.queryLength >= 8192 ? 90 : nil
        default: return nil
        }
    }

    /// The scaling model's predictions for `workload` at `threads` (``predictSDPAScaling(shape:dtype:attnMask:isCausal:enableGQA:threads:)``).
    ///
    /// - Throws: ``SDPAError`` for a workload the library rejects.
    public static func predictions(_ workload: AttentionWorkload, threads: [Int]) throws -> [SDPAScalingPrediction] {
        let shape = AttentionShape(batch: workload.batch, queryHeads: workload.heads, keyValueHeads: workload.keyValueHeads,
                                   queryLength: workload.queryLength, keyLength: workload.keyLength,
                                   headDim: workload.headDim, valueHeadDim: workload.valueHeadDim)
        return try predictSDPAScaling(shape: shape, dtype: workload.elementType ?? .float32, attnMask: workload.makeBias(),
                                      enableGQA: workload.keyValueHeads != workload.heads, threads: threads)
    }
}
