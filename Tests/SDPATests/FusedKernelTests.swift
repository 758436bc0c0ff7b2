import Foundation
import SDPA
import Testing

// The fused kernel against the float64 math path, per dtype:
// float32 accumulates in float32 over up to ~1000 keys: atol/rtol 1e-5 (the bound).
let fusedFloat32Tolerance = (atol: 1e-5, rtol: 1e-5)
// Half precisions: both paths round the same float inputs; outputs differ by output rounding,
// as PyTorch's CPU SDPA tests allow (fp16 1e-3; bf16 atol 1e-2, rtol 1.6e-2).
let fusedFloat16Tolerance = (atol: 1e-3, rtol: 1e-3)
let fusedBFloat16Tolerance = (atol: 1e-2, rtol: 1.6e-2)

/// The awkward sizes every dimension is swept over.
let awkwardSizes = [1, 7, 15, 63, 64, 65, 127, 513, 1030]

/// One sweep point: sizes, GQA ratio, dtype and bias spelled as data so failures print readably.
struct FusedCase: Sendable, CustomTestStringConvertible {
    var batch = 1, heads = 2, group = 1, L = 17, S = 33, E = 16, Ev = 16
    var dtype: DType = .float32
    var bias = "none"

    var testDescription: String {
        "\(bias) B\(batch) H\(heads)/\(heads / group) L\(L) S\(S) E\(E) Ev\(Ev) \(dtype)"
    }

    func inputs(seed: UInt64 = 1) throws -> (Tensor, Tensor, Tensor) {
        let q = try Tensor.randomNormal(shape: [batch, heads, L, E], seed: seed, dtype: dtype)
        let k = try Tensor.randomNormal(shape: [batch, heads / group, S, E], seed: seed + 1, dtype: dtype)
        let v = try Tensor.randomNormal(shape: [batch, heads / group, S, Ev], seed: seed + 2, dtype: dtype)
        return (q, k, v)
    }

    /// Runs the case with the current backend restriction; returns output and log-sum-exp.
    func run(_ q: Tensor, _ k: Tensor, _ v: Tensor) throws -> (output: Tensor, logSumExp: Tensor) {
        let gqa = group > 1
        switch bias {
        case "none": return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, enableGQA: gqa)
        case "isCausal": return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true, enableGQA: gqa)
        case "causalUpperLeft": return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: causalUpperLeft(L, S), enableGQA: gqa)
        case "causalLowerRight": return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: causalLowerRight(L, S), enableGQA: gqa)
        case "alibi", "alibiUpperLeft", "alibiLowerRight":
            let causal: CausalVariant? = bias == "alibi" ? nil : bias == "alibiUpperLeft" ? .upperLeft : .lowerRight
            let alibi = AlibiBias(numHeads: heads, seqLenQ: L, seqLenKV: S, causal: causal)
            return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: alibi, enableGQA: gqa)
        case "boolMaskLS":
            let mask = try Tensor.randomBools(shape: [L, S], probability: 0.7, seed: 9)
            return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: TensorBias(mask), enableGQA: gqa)
        case "floatMaskB1LS":
            let mask = try Tensor.randomNormal(shape: [batch, 1, L, S], seed: 10)
            return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: TensorBias(mask), enableGQA: gqa)
        case "halfMaskH1S":
            let mask = try Tensor.randomUniform(shape: [heads, 1, S], in: -3...0, seed: 11, dtype: .float16)
            return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: TensorBias(mask), enableGQA: gqa)
        default:
            return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: fusedBias!, enableGQA: gqa)
        }
    }

    /// The issue-5 biases, by name; `nil` for the names `run` handles itself.
    var fusedBias: (any FusedAttnBias)? {
        let blocks = BlockDiagonalBias(queryLengths: [L / 3, 0, L - L / 3], keyLengths: [S / 2, 0, S - S / 2], causal: nil)
        switch bias {
        case "windowCausal": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 5, right: 0)
        case "windowUpperLeft": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 3, right: 2, alignment: .upperLeft)
        case "windowZero": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 0, right: 0)
        case "windowHuge": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 100_000, right: nil)
        case "windowRightOnly": return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: nil, right: 4)
        case "blockDiagonal": return blocks
        case "blockDiagonalCausal":
            return BlockDiagonalBias(queryLengths: blocks.queryLengths, keyLengths: blocks.keyLengths, causal: .lowerRight)
        case "blockDiagonalUpperLeft":
            return BlockDiagonalBias(queryLengths: [L - L / 2, L / 2], keyLengths: [S / 3, S - S / 3], causal: .upperLeft)
        case "keyPadding":
            return KeyPaddingBias(validKeyLengths: (0..<batch).map { [S / 2, S, 0][$0 % 3] }, seqLenKV: S)
        case "softCap": return SoftCapBias(cap: 1.5)
        case "alibiWindowCausal":
            return AlibiBias(numHeads: heads, seqLenQ: L, seqLenKV: S).combined(with: SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 9, right: 0))
        case "softCapPaddingWindow":
            return SoftCapBias(cap: 1.5)
                .combined(with: KeyPaddingBias(validKeyLengths: (0..<batch).map { [S - S / 4, 1][$0 % 2] }, seqLenKV: S))
                .combined(with: SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: 20, right: 3, alignment: .upperLeft))
        default: return nil
        }
    }

    var tolerance: (atol: Double, rtol: Double) {
        switch dtype {
        case .float16: fusedFloat16Tolerance
        case .bfloat16: fusedBFloat16Tolerance
        default: fusedFloat32Tolerance
        }
    }
}

let fusedBiasNames = ["windowCausal", "windowUpperLeft", "windowZero", "windowHuge", "windowRightOnly",
                      "blockDiagonal", "blockDiagonalCausal", "blockDiagonalUpperLeft", "keyPadding", "softCap",
                      "alibiWindowCausal", "softCapPaddingWindow"]
let allBiases = ["none", "isCausal", "causalUpperLeft", "causalLowerRight", "alibi", "alibiUpperLeft",
                 "alibiLowerRight", "boolMaskLS", "floatMaskB1LS", "halfMaskH1S"] + fusedBiasNames

let fusedSweep: [FusedCase] = {
    var cases = [FusedCase]()
    for bias in allBiases {
        for n in awkwardSizes { cases.append(FusedCase(L: n, bias: bias)) }
        for n in awkwardSizes { cases.append(FusedCase(S: n, bias: bias)) }
        for (L, S) in [(65, 15), (7, 127), (513, 64)] { cases.append(FusedCase(L: L, S: S, bias: bias)) }
    }
    for n in awkwardSizes where n <= 256 || n == 513 { cases.append(FusedCase(L: 20, S: 37, E: n, Ev: n)) }
    for (E, Ev) in [(64, 7), (15, 128), (256, 256), (80, 1)] {
        cases.append(FusedCase(L: 30, S: 70, E: E, Ev: Ev, bias: "causalLowerRight"))
    }
    for group in [1, 2, 4, 7] {
        for bias in ["none", "causalLowerRight", "alibiUpperLeft", "boolMaskLS", "keyPadding", "alibiWindowCausal"] {
            cases.append(FusedCase(batch: 2, heads: group == 7 ? 7 : 8, group: group, L: 19, S: 45, bias: bias))
        }
    }
    for dtype in [DType.float16, .bfloat16] {
        for bias in allBiases { cases.append(FusedCase(L: 33, S: 65, E: 24, Ev: 24, dtype: dtype, bias: bias)) }
    }
    // Decoding: query tiles of at most `_FusedTiling.directRows` rows read the keys as stored, in every
    // key dtype, with GQA, a head dim off the 8-wide vectors, and keys split across items.
    for dtype in [DType.float32, .float16, .bfloat16] {
        // one output row's P·V runs in column blocks of 96: a value head dim past one block
        cases.append(FusedCase(batch: 1, heads: 2, L: 1, S: 300, E: 64, Ev: 130, dtype: dtype, bias: "causalLowerRight"))
        // (B · H · L < 16 splits the keys: the last one)
        for (batch, heads, group, L, S) in [(2, 8, 1, 1, 300), (2, 8, 4, 3, 300), (1, 4, 2, 1, 1030)] {
            for bias in ["none", "causalLowerRight", "alibiLowerRight", "boolMaskLS", "keyPadding", "softCap"] {
                cases.append(FusedCase(batch: batch, heads: heads, group: group, L: L, S: S, E: 36, Ev: 20, dtype: dtype, bias: bias))
            }
        }
    }
    return cases.filter { $0.heads % $0.group == 0 }
}()

@Suite("Fused kernel")
struct FusedKernelTests {
    @Test("fused equals math", arguments: fusedSweep)
    func fusedMatchesMath(_ c: FusedCase) throws {
        let (q, k, v) = try c.inputs()
        let fused = try withSDPBackends([.fused]) { try c.run(q, k, v) }
        let math = try withSDPBackends([.math]) { try c.run(q, k, v) }
        #expect(fused.output.dtype == c.dtype)
        expectClose(fused.output, math.output, c.tolerance, "\(c.testDescription) output")
        expectClose(fused.logSumExp, math.logSumExp, (1e-4, 1e-5), "\(c.testDescription) logSumExp")
    }

    @Test("fused equals the bias's own materialized mask", arguments: fusedBiasNames.flatMap { name in
        [FusedCase(batch: 3, L: 70, S: 150, bias: name), FusedCase(batch: 1, L: 150, S: 70, bias: name),
         FusedCase(batch: 2, heads: 4, group: 2, L: 1, S: 300, bias: name)]
    })
    func fusedMatchesMaterialized(_ c: FusedCase) throws {
        let bias = try #require(c.fusedBias)
        let (q, k, v) = try c.inputs()
        let fused = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: c.group > 1)
        guard type(of: bias).isAdditive else {
            // Soft-capping has no mask; the math backend is its reference.
            #expect(throws: SDPAError.self) { try bias.materialize(device: .cpu) }
            let math = try withSDPBackends([.math]) {
                try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: c.group > 1)
            }
            expectClose(fused, math, c.tolerance, c.testDescription)
            return
        }
        let mask = try bias.materialize(device: .cpu)
        #expect(mask.dtype == (type(of: bias).modifiesScores ? .float32 : .bool))
        let materialized = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask), enableGQA: c.group > 1)
        expectClose(fused, materialized, c.tolerance, c.testDescription)
    }

    // Enough (head, query tile) pairs that a work item takes several query tiles (2, 3 or 4 per
    // packed K/V tile), the last item fewer; the sweep above is too small to reach that.
    @Test("fused equals math when a work item spans several query tiles", arguments: [
        // ALiBi lower-right: with L > S upper-left, |i - j| reaches 600 and float32 scores lose 1e-5.
        "none", "causalLowerRight", "alibiLowerRight", "boolMaskLS", "blockDiagonalCausal", "softCapPaddingWindow",
    ].flatMap { bias in
        [FusedCase(batch: 2, heads: 8, group: 2, L: 300, S: 140, bias: bias),
         FusedCase(batch: 1, heads: 8, L: 650, S: 90, E: 8, Ev: 12, bias: bias),
         FusedCase(batch: 1, heads: 6, L: 1030, S: 61, E: 8, Ev: 8, dtype: .bfloat16, bias: bias)]
    })
    func multiTileItemsMatchMath(_ c: FusedCase) throws {
        try fusedMatchesMath(c)
    }

    // Enough work items (16 or more) that the last few split their keys 2–4 ways and merge through
    // the log-sum-exp; in batch 2 key padding leaves no key, so those rows are fully masked.
    static let tailSplitCases = ["none", "causalUpperLeft", "causalLowerRight", "alibiLowerRight", "boolMaskLS",
                                 "keyPadding", "softCapPaddingWindow"].map { bias in
        FusedCase(batch: 3, heads: 4, group: 2, L: 300, S: 1030, E: 8, Ev: 8, bias: bias)
    } + [FusedCase(batch: 1, heads: 8, L: 200, S: 900, E: 80, Ev: 24, dtype: .bfloat16, bias: "causalLowerRight")]

    @Test("fused equals math when the last work items split their keys", arguments: tailSplitCases)
    func tailSplitItemsMatchMath(_ c: FusedCase) throws {
        let shape = AttentionShape(batch: c.batch, queryHeads: c.heads, keyValueHeads: c.heads / c.group,
                                   queryLength: c.L, keyLength: c.S, headDim: c.E, valueHeadDim: c.Ev)
        let tiling = _FusedTiling(shape)
        #expect(tiling.keySplits > 1 && tiling.splitItems > 0, "the case no longer reaches split items")
        try fusedMatchesMath(c)
    }

    @Test("one and two threads give identical bits", arguments: [
        FusedCase(heads: 3, L: 200, S: 301, E: 40, bias: "alibiLowerRight"),
        FusedCase(heads: 1, L: 513, S: 1030, E: 64, bias: "causalLowerRight"),
        FusedCase(batch: 2, heads: 4, group: 2, L: 97, S: 130, E: 16, bias: "floatMaskB1LS"),
        FusedCase(heads: 1, L: 1, S: 1030, E: 64, bias: "none"),
        FusedCase(batch: 2, heads: 8, group: 2, L: 650, S: 200, E: 16, bias: "alibiLowerRight"),
        FusedCase(batch: 3, heads: 4, group: 2, L: 300, S: 1030, E: 8, Ev: 8, bias: "keyPadding"),
    ])
    func threadCountDoesNotChangeBits(_ c: FusedCase) throws {
        let (q, k, v) = try c.inputs()
        let one = try withSDPBackends([.fused]) { try withSDPAThreads(1) { try c.run(q, k, v) } }
        let two = try withSDPBackends([.fused]) { try withSDPAThreads(2) { try c.run(q, k, v) } }
        let five = try withSDPBackends([.fused]) { try withSDPAThreads(5) { try c.run(q, k, v) } }
        #expect(one.output.scalars.map(\.bitPattern) == two.output.scalars.map(\.bitPattern))
        #expect(one.output.scalars.map(\.bitPattern) == five.output.scalars.map(\.bitPattern))
        #expect(one.logSumExp.scalars.map(\.bitPattern) == two.logSumExp.scalars.map(\.bitPattern))
    }

    @Test("fully masked rows give 0 and a log-sum-exp of -inf")
    func fullyMaskedRows() throws {
        // Lower-right with L > S: the first L - S rows see no key.
        let c = FusedCase(L: 70, S: 20, bias: "causalLowerRight")
        let (q, k, v) = try c.inputs()
        let (out, lse) = try withSDPBackends([.fused]) { try c.run(q, k, v) }
        let rows = out.scalars, lses = lse.scalars
        for h in 0..<c.heads {
            for i in 0..<c.L {
                let row = rows[((h * c.L) + i) * c.Ev..<((h * c.L) + i + 1) * c.Ev]
                if i < c.L - c.S {
                    #expect(row.allSatisfy { $0 == 0 }, "row \(i)")
                    #expect(lses[h * c.L + i] == -.infinity)
                } else {
                    #expect(row.contains { $0 != 0 } && row.allSatisfy { $0.isFinite }, "row \(i)")
                }
            }
        }
    }

    @Test("NaN in an unmasked input propagates to exactly its rows")
    func nanPropagates() throws {
        let c = FusedCase(heads: 1, L: 9, S: 140, E: 8, Ev: 8, bias: "causalUpperLeft")
        var (q, k, v) = try c.inputs()
        q[0, 0, 3, 2] = .nan                 // query row 3 only
        k[0, 0, 5, 0] = .nan                 // key 5: visible from rows >= 5
        v[0, 0, 139, 1] = .nan               // key 139: masked for every row of an upper-left L=9 mask
        let (out, _) = try withSDPBackends([.fused]) { try c.run(q, k, v) }
        for i in 0..<c.L {
            let row = out.scalars[i * c.Ev..<(i + 1) * c.Ev]
            if i == 3 || i >= 5 {
                #expect(row.allSatisfy { $0.isNaN }, "row \(i) should be NaN")
            } else {
                #expect(row.allSatisfy { $0.isFinite }, "row \(i) should be finite")
            }
        }
    }

    @Test("partial results over split keys merge through the log-sum-exp")
    func logSumExpMerges() throws {
        let c = FusedCase(heads: 2, L: 11, S: 50, E: 16)
        let (q, k, v) = try c.inputs()
        let whole = try scaledDotProductAttention(query: q, key: k, value: v)
        let split = 23
        let k1 = try Tensor(shape: [1, 2, split, 16], scalars: slice(k, to: 0..<split))
        let v1 = try Tensor(shape: [1, 2, split, 16], scalars: slice(v, to: 0..<split))
        let k2 = try Tensor(shape: [1, 2, 50 - split, 16], scalars: slice(k, to: split..<50))
        let v2 = try Tensor(shape: [1, 2, 50 - split, 16], scalars: slice(v, to: split..<50))
        let (o1, l1) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k1, value: v1)
        let (o2, l2) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k2, value: v2)
        var merged = [Float]()
        for row in 0..<(2 * 11) {
            let (a, b) = (l1.scalars[row], l2.scalars[row])
            let m = max(a, b)
            let lse = m + log(exp(a - m) + exp(b - m))
            for d in 0..<16 {
                merged.append(exp(a - lse) * o1.scalars[row * 16 + d] + exp(b - lse) * o2.scalars[row * 16 + d])
            }
        }
        expectClose(try Tensor(shape: whole.shape, scalars: merged), whole, (1e-5, 1e-5), "merged")
    }

    /// Keys `range` of a `[1, H, S, E]` tensor, row-major.
    func slice(_ t: Tensor, to range: Range<Int>) -> [Float] {
        let (H, S, E) = (t.shape[1], t.shape[2], t.shape[3])
        let all = t.scalars
        var out = [Float]()
        for h in 0..<H {
            for j in range { out += all[((h * S) + j) * E..<((h * S) + j + 1) * E] }
        }
        return out
    }

    @Test("non-contiguous [B, L, H, E] inputs run without a copy and match the contiguous result")
    func transposedInputs() throws {
        let blhe = try Tensor.randomNormal(shape: [2, 37, 4, 32], seed: 3)
        let bshe = try Tensor.randomNormal(shape: [2, 45, 4, 32], seed: 4)
        let (q, k) = (try blhe.transposed(1, 2), try bshe.transposed(1, 2))
        let v = try bshe.transposed(1, 2)
        let viewed = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(37, 45))
        let copied = try scaledDotProductAttention(
            query: q.contiguous(), key: k.contiguous(), value: v.contiguous(), attnMask: causalLowerRight(37, 45))
        #expect(viewed.scalars == copied.scalars)
    }

    @Test("float32 runs fused and float64 or dropout fall back to math, as explained")
    func backendChoice() throws {
        let (q, k, v) = try FusedCase().inputs()
        #expect(try explainSDPA(query: q, key: k, value: v, attnMask: causalLowerRight(17, 33)).backend == .fused)
        let dropout = try explainSDPA(query: q, key: k, value: v, dropoutP: 0.1)
        #expect(dropout.backend == .math)
        #expect(dropout.rejected[.fused]?.contains("dropout") == true)
        let q64 = try q.converted(to: .float64), k64 = try k.converted(to: .float64), v64 = try v.converted(to: .float64)
        #expect(try explainSDPA(query: q64, key: k64, value: v64).backend == .math)
        let restricted = try withSDPBackends([.math]) { try explainSDPA(query: q, key: k, value: v) }
        #expect(restricted.backend == .math)
        #expect(restricted.rejected[.fused] == "not allowed by withSDPBackends")
        #expect(throws: SDPAError.self) {
            try withSDPBackends([.fused]) { try scaledDotProductAttention(query: q64, key: k64, value: v64) }
        }
    }
}
