@_spi(Testing) import SDPA
import Testing

/// One attention problem of the fused kernel's sweeps: sizes, GQA ratio, dtype and bias spelled as
/// data, so that a failure prints readably.
public struct FusedCase: Sendable, CustomTestStringConvertible {
    public var batch = 1, heads = 2, group = 1, L = 17, S = 33, E = 16, Ev = 16
    public var dtype: DType = .float32
    public var bias = "none"
    /// Learned attention sinks, one logit per query head (``AttentionOptions/sinks``, float32), or none.
    public var sinks: [Float]?

    public init(batch: Int = 1, heads: Int = 2, group: Int = 1, L: Int = 17, S: Int = 33, E: Int = 16, Ev: Int = 16,
                dtype: DType = .float32, bias: String = "none", sinks: [Float]? = nil) {
        (self.batch, self.heads, self.group, self.L, self.S, self.E, self.Ev) = (batch, heads, group, L, S, E, Ev)
        (self.dtype, self.bias, self.sinks) = (dtype, bias, sinks)
    }

    public var testDescription: String {
        "\(bias) B\(batch) H\(heads)/\(heads / group) L\(L) S\(S) E\(E) Ev\(Ev) \(dtype)" + (sinks == nil ? "" : " sinks")
    }

    /// The case's sinks as the tensor the entry points take.
    public func sinksTensor() throws -> Tensor? {
        try sinks.map { try Tensor(shape: [$0.count], scalars: $0) }
    }

    /// The shape the case runs.
    public var shape: AttentionShape {
        AttentionShape(batch: batch, queryHeads: heads, keyValueHeads: heads / group,
                       queryLength: L, keyLength: S, headDim: E, valueHeadDim: Ev)
    }

    /// Random query, key and value of the case's shape and dtype.
    public func inputs(seed: UInt64 = 1) throws -> (Tensor, Tensor, Tensor) {
        let q = try randn([batch, heads, L, E], seed: seed, dtype: dtype)
        let k = try randn([batch, heads / group, S, E], seed: seed + 1, dtype: dtype)
        let v = try randn([batch, heads / group, S, Ev], seed: seed + 2, dtype: dtype)
        return (q, k, v)
    }

    /// Runs the case with the current backend restriction; returns output and log-sum-exp.
    public func run(_ q: Tensor, _ k: Tensor, _ v: Tensor, dropoutP: Float = 0, dropoutSeed: UInt64? = nil) throws -> (output: Tensor, logSumExp: Tensor) {
        let (gqa, sinks) = (group > 1, try sinksTensor())
        return try call(
            unmasked: { try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: $0, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: gqa, sinks: sinks) },
            masked: { try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: $0, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: gqa, sinks: sinks) })
    }

    /// Runs the case through the entry point that returns the output alone (no log-sum-exp asked for).
    public func runOutput(_ q: Tensor, _ k: Tensor, _ v: Tensor, dropoutP: Float = 0, dropoutSeed: UInt64? = nil) throws -> Tensor {
        let (gqa, sinks) = (group > 1, try sinksTensor())
        return try call(
            unmasked: { try scaledDotProductAttention(query: q, key: k, value: v, isCausal: $0, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: gqa, sinks: sinks) },
            masked: { try scaledDotProductAttention(query: q, key: k, value: v, attnMask: $0, dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: gqa, sinks: sinks) })
    }

    /// An entry point's call for this case: `unmasked` (given `isCausal`) for none and `isCausal`, else `masked`
    /// with the case's bias.
    private func call<R>(unmasked: (Bool) throws -> R, masked: (any AttnBias) throws -> R) throws -> R {
        bias == "none" || bias == "isCausal" ? try unmasked(bias == "isCausal") : try masked(try attnBias())
    }

    /// The backward pass of the case with the current backend restriction, given the forward's output
    /// and log-sum-exp and the output's gradient `dO`.
    public func backward(
        _ q: Tensor, _ k: Tensor, _ v: Tensor, _ dO: Tensor, output: Tensor, logSumExp: Tensor,
        dropoutP: Float = 0, dropoutSeed: UInt64? = nil
    ) throws -> AttentionGradients {
        let (gqa, sinks) = (group > 1, try sinksTensor())
        switch bias {
        case "none", "isCausal":
            return try scaledDotProductAttentionBackward(
                gradOutput: dO, query: q, key: k, value: v, output: output, logSumExp: logSumExp, isCausal: bias == "isCausal",
                dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: gqa, sinks: sinks)
        default:
            return try scaledDotProductAttentionBackward(
                gradOutput: dO, query: q, key: k, value: v, output: output, logSumExp: logSumExp, attnMask: try attnBias(),
                dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: gqa, sinks: sinks)
        }
    }

    /// The case's bias as an ``AttnBias``: its dense masks as ``TensorBias``, the fused ones from
    /// ``fusedBias``. Throws for `none`, `isCausal` (no bias object) and unknown names.
    public func attnBias() throws -> any AttnBias {
        switch bias {
        case "boolMaskLS": return TensorBias(try Tensor.randomBools(shape: [L, S], probability: 0.7, seed: 9))
        case "floatMaskB1LS": return TensorBias(try randn([batch, 1, L, S], seed: 10))
        case "halfMaskH1S": return TensorBias(try Tensor.randomUniform(shape: [heads, 1, S], in: -3...0, seed: 11, dtype: .float16))
        default:
            guard let fused = fusedBias else { throw SDPAError.invalidArgument(argument: "bias", value: bias, reason: "no such sweep bias") }
            return fused
        }
    }

    /// The built-in fused biases of the sweeps, by name; `nil` for the names `run` handles itself.
    public var fusedBias: (any FusedAttnBias)? {
        let blocks = BlockDiagonalBias(queryLengths: [L / 3, 0, L - L / 3], keyLengths: [S / 2, 0, S - S / 2], causal: nil)
        switch bias {
        case "causalUpperLeft": return causalUpperLeft(L, S)
        case "causalLowerRight": return causalLowerRight(L, S)
        case "alibi", "alibiUpperLeft", "alibiLowerRight":
            let causal: CausalVariant? = bias == "alibi" ? nil : bias == "alibiUpperLeft" ? .upperLeft : .lowerRight
            return AlibiBias(numHeads: heads, seqLenQ: L, seqLenKV: S, causal: causal)
        case "windowCausal": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 5, right: 0)
        case "windowUpperLeft": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 3, right: 2, alignment: .upperLeft)
        case "windowZero": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 0, right: 0)
        case "windowHuge": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 100_000, right: nil)
        case "windowRightOnly": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: nil, right: 4)
        case "windowMultiTile": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 200, right: 150, alignment: .upperLeft)
        case "blockDiagonal": return blocks
        case "blockDiagonalCausal":
            return BlockDiagonalBias(queryLengths: blocks.queryLengths, keyLengths: blocks.keyLengths, causal: .lowerRight)
        case "blockDiagonalUpperLeft":
            return BlockDiagonalBias(queryLengths: [L - L / 2, L / 2], keyLengths: [S / 3, S - S / 3], causal: .upperLeft)
        case "packedShort", "packedShortUpperLeft", "packedShortLowerRight":
            let causal: CausalVariant? = bias == "packedShort" ? nil : bias == "packedShortUpperLeft" ? .upperLeft : .lowerRight
            let (queries, keys) = packedLengths(L: L, S: S)
            return BlockDiagonalBias(queryLengths: queries, keyLengths: keys, causal: causal)
        case "packedShortComposed":
            // The packed sequences in the middle of a composition: ALiBi before them, soft-capping and key
            // padding after, every part seen in the whole problem's coordinates by each segment.
            let (queries, keys) = packedLengths(L: L, S: S)
            return AlibiBias(numHeads: heads, seqLenQ: L, seqLenKV: S)
                .combined(with: BlockDiagonalBias(queryLengths: queries, keyLengths: keys, causal: .lowerRight))
                .combined(with: SoftCapBias(cap: 1.5))
                .combined(with: KeyPaddingBias(validKeyLengths: (0..<batch).map { [S - S / 5, S / 2][$0 % 2] }, seqLenKV: S))
        case "keyPadding":
            return KeyPaddingBias(validKeyLengths: (0..<batch).map { [S / 2, S, 0][$0 % 3] }, seqLenKV: S)
        case "softCap": return SoftCapBias(cap: 1.5)
        case "chunkedCausal": return ChunkedCausalBias(seqLenQ: L, seqLenKV: S, chunkSize: 50)
        case "prefixLM": return PrefixLMBias(prefixLengths: (0..<batch).map { [S / 3, 0, S][$0 % 3] }, seqLenQ: L, seqLenKV: S)
        case "sinkTokens": return SinkTokensBias(sinkTokens: 3, window: 40, seqLenQ: L, seqLenKV: S)
        case "alibiWindowCausal":
            return AlibiBias(numHeads: heads, seqLenQ: L, seqLenKV: S).combined(with: SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 9, right: 0))
        case "softCapPaddingWindow":
            return SoftCapBias(cap: 1.5)
                .combined(with: KeyPaddingBias(validKeyLengths: (0..<batch).map { [S - S / 4, 1][$0 % 2] }, seqLenKV: S))
                .combined(with: SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 20, right: 3, alignment: .upperLeft))
        default: return nil
        }
    }

    /// Many short packed sequences filling `L` queries and `S` keys: empty ones, some without keys or
    /// queries, lengths off the tiles, so that the fused kernel runs them as segments once `L` is past a
    /// query tile (``BlockDiagonalBias``).
    public func packedLengths(L: Int, S: Int) -> (queries: [Int], keys: [Int]) {
        let queryPattern = [37, 0, 5, 61, 12, 1, 90, 23, 49], keyPattern = [30, 7, 0, 50, 19, 64, 2, 41, 128, 3]
        var queries = [Int](), left = L
        while left > 0 {
            let n = Swift.min(left, queryPattern[queries.count % queryPattern.count])
            queries.append(n)
            left -= n
        }
        if queries.isEmpty { queries = [0] }
        var keys = [Int]()
        left = S
        for i in 0..<(queries.count - 1) {
            let n = Swift.min(left, keyPattern[i % keyPattern.count])
            keys.append(n)
            left -= n
        }
        keys.append(left)
        return (queries, keys)
    }

    /// The fused kernel against the math backend: float32 accumulation against `Double`, and for
    /// half precisions both results then rounded to the dtype (``Tolerance/bothRounded(to:)``).
    public var tolerance: Tolerance {
        dtype == .float32 ? .float32 : Tolerance.float32.bothRounded(to: dtype)
    }

    /// Runs the case on the fused backend and on the math backend and compares output (dtype,
    /// shape, values) and log-sum-exp.
    public func expectFusedMatchesMath(_ label: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (q, k, v) = try inputs()
        let fused = try withSDPBackends([.fused]) { try run(q, k, v) }
        let math = try withSDPBackends([.math]) { try run(q, k, v) }
        let name = label.isEmpty ? testDescription : "\(testDescription) \(label)"
        let rounds = dtype == .bfloat16 && FusedKernelInstructionSet.multipliesBFloat16Pairs
        let maxAbsValue = v.doubleScalars.map { Swift.abs($0) }.max() ?? 0
        let tolerance = rounds ? self.tolerance.withBFloat16Probabilities(maxAbsValue: maxAbsValue) : self.tolerance
        expectClose(fused.output, math.output, tolerance, "\(name) output", dtype: dtype, sourceLocation: sourceLocation)
        expectClose(fused.logSumExp, math.logSumExp, .logSumExp, "\(name) log-sum-exp", sourceLocation: sourceLocation)
    }
}

/// The awkward sizes every dimension is swept over: off the 6-row and 16-column register tiles, the
/// 8-wide vectors and the 96-row / 128-key tiles, on both sides of them.
public let awkwardSizes = [1, 7, 15, 63, 64, 65, 127, 513, 1030]

/// The built-in fused biases of the sweeps beyond the RFC's.
public let fusedBiasNames = ["windowCausal", "windowUpperLeft", "windowZero", "windowHuge", "windowRightOnly", "windowMultiTile",
                             "blockDiagonal", "blockDiagonalCausal", "blockDiagonalUpperLeft", "keyPadding", "softCap",
                             "alibiWindowCausal", "softCapPaddingWindow", "chunkedCausal", "prefixLM", "sinkTokens",
                             "packedShort", "packedShortUpperLeft", "packedShortLowerRight", "packedShortComposed"]

/// Every bias of the sweeps: none, `isCausal`, the RFC's, dense masks of three dtypes, and the rest.
public let allSweepBiases = ["none", "isCausal", "causalUpperLeft", "causalLowerRight", "alibi", "alibiUpperLeft",
                             "alibiLowerRight", "boolMaskLS", "floatMaskB1LS", "halfMaskH1S"] + fusedBiasNames
