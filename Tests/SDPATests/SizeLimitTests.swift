import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

// Sizes near and past Int.max, and allocations no machine can make, as a user reaches them: each is
// an SDPAError naming the argument, never a trap, an abort or a heap overflow. None of these tests
// allocates more than a few hundred megabytes: a request past the machine's memory is refused
// before anything is allocated. Tolerances: none (outputs are compared bit for bit).

// MARK: - helpers (private: the test module is shared with other files)

/// Whether `error` is `.allocationFailed` for exactly `byteCount` bytes.
private func isAllocationFailure(_ error: SDPAError?, byteCount: Int) -> Bool {
    guard case let .allocationFailed(_, bytes, _)? = error else { return false }
    return bytes == byteCount
}

/// Whether `error` is `.invalidShape`.
private func isInvalidShape(_ error: SDPAError?) -> Bool {
    guard case .invalidShape? = error else { return false }
    return true
}

private func bits(_ t: Tensor) -> [UInt64] { t.doubleScalars.map(\.bitPattern) }

// MARK: - tensors

@Suite("Tensor sizes past Int and past memory")
struct TensorSizeLimitTests {
    /// A zero-element shape whose other dimensions multiply past Int.max: the element count is 0, but
    /// the strides (and every view's offsets) would overflow.
    @Test func zeroElementShapeWhoseStridesOverflow() {
        let error = expectSDPAError(mentions: ["shape", "strides overflow Int"]) { try Tensor(zeros: [0, 1 << 32, 1 << 32, 4]) }
        #expect(isInvalidShape(error))
        expectSDPAError(mentions: ["strides in bytes overflow"]) { try Tensor(zeros: [0, 1 << 62], dtype: .float32) }
        // The same element span as bytes fits for bool.
        #expect(throws: Never.self) { try Tensor(zeros: [0, 1 << 62], dtype: .bool) }
    }

    /// The element count fits Int, the byte count does not.
    @Test func elementCountFitsButByteCountDoesNot() {
        let error = expectSDPAError(mentions: ["[2305843009213693952]", "float32", "bytes"]) { try Tensor(zeros: [1 << 61]) }
        #expect(isInvalidShape(error))
        expectSDPAError(mentions: ["float64"]) { try Tensor(shape: [1 << 61], scalars: [Double]()) }
        expectSDPAError(mentions: ["overflows Int"]) { try Tensor(zeros: [1 << 32, 1 << 32]) }
    }

    /// More than this machine has: refused before anything is allocated, naming the tensor and the bytes.
    @Test func allocationsPastMemoryAreErrors() {
        let zeros = expectSDPAError(mentions: ["Tensor(zeros:) [1099511627776] float32", "4398046511104 bytes (4 TiB)", "memory"]) {
            try Tensor(zeros: [1 << 40])
        }
        #expect(isAllocationFailure(zeros, byteCount: 1 << 42))
        let normal = expectSDPAError(mentions: ["Tensor.randomNormal", "4 TiB"]) { try Tensor.randomNormal(shape: [1 << 40], seed: 1) }
        #expect(isAllocationFailure(normal, byteCount: 1 << 42))
        let uniform = expectSDPAError(mentions: ["Tensor.randomUniform", "float16"]) {
            try Tensor.randomUniform(shape: [1 << 40], seed: 1, dtype: .float16)
        }
        #expect(isAllocationFailure(uniform, byteCount: 1 << 41))
        let bools = expectSDPAError(mentions: ["Tensor.randomBools"]) { try Tensor.randomBools(shape: [1 << 20, 1 << 20], seed: 1) }
        #expect(isAllocationFailure(bools, byteCount: 1 << 40))
        #expect(Tensor.maximumByteCount > 0 && Tensor.maximumByteCount < 1 << 40)
    }

    /// `randomNormal(shape: [Int.max])` used to write past its buffer; every random constructor now checks first.
    @Test func randomTensorsOfIntMaxElements() {
        #expect(isInvalidShape(expectSDPAError(mentions: ["bytes"]) { try Tensor.randomNormal(shape: [Int.max], seed: 1) }))
        #expect(isInvalidShape(expectSDPAError(mentions: ["bytes"]) { try Tensor.randomUniform(shape: [Int.max], seed: 1) }))
        #expect(isInvalidShape(expectSDPAError(mentions: ["overflows"]) { try Tensor.randomBools(shape: [Int.max, 2], seed: 1) }))
        // Int.max bools fit Int as bytes, not memory.
        #expect(isAllocationFailure(expectSDPAError(mentions: []) { try Tensor.randomBools(shape: [Int.max], seed: 1) }, byteCount: Int.max))
    }

    /// The one allocation point handles a refusal by the system (`malloc` returning NULL) as an error too.
    @Test func aRefusedAllocationIsAnError() {
        let error = expectSDPAError(mentions: ["the system could not provide"]) {
            try _allocationProbe(byteCount: 1 << 60, limit: .max)
        }
        #expect(isAllocationFailure(error, byteCount: 1 << 60))
    }

    /// A view may be broadcast far past memory (it copies nothing); copying it is then an error, and a
    /// target whose sizes overflow is refused.
    @Test func broadcastViewsAndTheirCopies() throws {
        let one = try Tensor(shape: [1], scalars: [3] as [Float])
        let huge = try one.broadcast(to: [1 << 20, 1 << 20, 1 << 20])
        #expect(huge.count == 1 << 60)
        #expect(isAllocationFailure(expectSDPAError(mentions: ["contiguous copy"]) { try huge.contiguous() }, byteCount: 1 << 62))
        #expect(isInvalidShape(expectSDPAError(mentions: ["converted(to: float64)", "bytes"]) { try huge.converted(to: .float64) }))
        #expect(isInvalidShape(expectSDPAError(mentions: ["broadcast target"]) { try one.broadcast(to: [1 << 32, 1 << 32]) }))
        #expect(isInvalidShape(expectSDPAError(mentions: ["negative"]) { try one.broadcast(to: [-1]) }))
    }

    /// Reshapes and concatenations whose sizes overflow are reshape and shape errors.
    @Test func reshapeAndConcatenationOverflow() throws {
        let t = try Tensor(zeros: [4])
        expectSDPAError(mentions: ["cannot reshape"]) { try t.reshaped([1 << 62, 4, -1]) }
        expectSDPAError(mentions: ["cannot reshape"]) { try t.reshaped([1 << 32, 1 << 32, 0, 4]) }
        let empty = try Tensor(zeros: [1 << 62, 0], dtype: .bool)
        expectSDPAError(mentions: ["sum past Int.max"]) { try Tensor.concatenated([empty, empty], along: 0) }
    }

    /// A tensor from a formula: the same elements as the array initializer, rounded the same way.
    @Test func tensorFromAFormula() throws {
        let t = try Tensor(shape: [3, 5], dtype: .float16) { n in Double(n) / 3 }
        #expect(bits(t) == bits(try Tensor(shape: [3, 5], scalars: (0..<15).map { Double($0) / 3 }, dtype: .float16)))
        let mask = try Tensor(shape: [2, 3], dtype: .bool) { n in n % 2 == 0 ? 1 : 0 }
        #expect(mask.bools == [true, false, true, false, true, false])
        struct Stop: Error {}
        #expect(throws: Stop.self) { try Tensor(shape: [4]) { n in if n == 2 { throw Stop() }; return 0 } }
    }

    /// Random tensors keep their values: filled a block at a time, the elements are those of one formula.
    @Test func randomTensorsAreTheSameAcrossBlocks() throws {
        let long = try Tensor.randomNormal(shape: [10_000], seed: 7)
        let short = try Tensor.randomNormal(shape: [5_000], seed: 7)
        #expect(Array(long.scalars.prefix(5_000)) == short.scalars)
        #expect(try Tensor.randomUniform(shape: [9_000], seed: 3).scalars.allSatisfy { (0...1).contains($0) })
    }

    /// A header too long for version 1's two-byte length is written as version 2, and reads back.
    @Test func aHeaderPast65535BytesIsWrittenAsVersion2() throws {
        let shape = [Int](repeating: 1, count: 25_000) + [2]
        let data = try Tensor(shape: shape, scalars: [1.5, -2] as [Float]).npyData()
        #expect(Array(data.prefix(8)) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0])
        let back = try Tensor(npyData: data)
        #expect(back.shape == shape && back.scalars == [1.5, -2])
    }
}

// MARK: - attention

@Suite("Attention sizes past Int and past memory")
struct AttentionSizeLimitTests {
    /// Zero-element inputs whose log-sum-exp `[B, H, L]` would need more bytes than Int counts.
    @Test func logSumExpOfZeroElementInputs() throws {
        let q = try Tensor(zeros: [1, 1 << 31, (1 << 31) - 1, 0], dtype: .float16)
        let kv = try Tensor(zeros: [1, 1 << 31, 0, 0], dtype: .float16)
        let error = expectSDPAError(mentions: ["query", "log-sum-exp", "bytes"]) {
            try scaledDotProductAttention(query: q, key: kv, value: kv)
        }
        #expect(isInvalidShape(error))
    }

    /// `B·H·L·S` past Int.max: every index the kernels compute would overflow.
    @Test func scoreCountPastInt() throws {
        let q = try Tensor(zeros: [1, 1, 1 << 32, 0], dtype: .float16)
        let kv = try Tensor(zeros: [1, 1, 1 << 32, 0], dtype: .float16)
        expectSDPAError(mentions: ["attention scores", "B·H·L·S"]) { try scaledDotProductAttention(query: q, key: kv, value: kv) }
        expectSDPAError(mentions: ["attention scores"]) { try explainSDPA(query: q, key: kv, value: kv) }
    }

    /// An output whose size overflows, and one that fits Int but not memory, on both backends.
    @Test func outputPastIntAndPastMemory() throws {
        let q = try Tensor(zeros: [1, 1, 1 << 40, 0], dtype: .float16)
        let k = try Tensor(zeros: [1, 1, 0, 0], dtype: .float16)
        expectSDPAError(mentions: ["output", "bytes"]) {
            try scaledDotProductAttention(query: q, key: k, value: try Tensor(zeros: [1, 1, 0, 1 << 40], dtype: .float16))
        }
        let q2 = try Tensor(zeros: [1, 1, 1 << 20, 0], dtype: .float16)
        let v2 = try Tensor(zeros: [1, 1, 0, 1 << 20], dtype: .float16)
        for backend in SDPBackend.allCases {
            let error = expectSDPAError(mentions: ["output", "2 TiB"]) {
                try withSDPBackends([backend]) { try scaledDotProductAttention(query: q2, key: k, value: v2) }
            }
            #expect(isAllocationFailure(error, byteCount: 1 << 41), "\(backend)")
        }
    }

    /// A head dimension so large that the fused kernel's packed key tile would not fit in memory.
    @Test func fusedScratchPastMemory() throws {
        // A packed key tile takes 64 float32 columns per row of E (E > 64): past memory, with inputs of
        // 1/25 of it. Five query rows: decoding (up to four) reads the keys as stored and packs none.
        let e = Tensor.maximumByteCount / 256 + 64
        let q = try Tensor(zeros: [1, 1, 5, e], dtype: .float16)
        let k = try Tensor(zeros: [1, 1, 1, e], dtype: .float16)
        let v = try Tensor(zeros: [1, 1, 1, 1], dtype: .float16)
        let error = expectSDPAError(mentions: ["fused kernel's scratch", "E = \(e)"]) {
            try scaledDotProductAttention(query: q, key: k, value: v)
        }
        guard case .allocationFailed? = error else { Issue.record("expected allocationFailed, got \(String(describing: error))"); return }
    }

    /// Explaining sizes no machine holds allocates nothing and names the fused backend; sizes past Int are errors.
    @Test func explainingAShapeAllocatesNothing() throws {
        let shape = AttentionShape(batch: 1, queryHeads: 64, keyValueHeads: 64, queryLength: 1 << 20, keyLength: 1 << 20,
                                   headDim: 128, valueHeadDim: 128)
        let explanation = try explainSDPA(shape: shape, dtype: .float32, attnMask: causalLowerRight(1 << 20, 1 << 20))
        #expect(explanation.backend == .fused)
        #expect(explanation.route.contains("CausalBias.dispatch"))
        #expect(try explainSDPA(shape: shape, dtype: .float64).backend == .math)
        let tooLarge = AttentionShape(batch: 1, queryHeads: 1, keyValueHeads: 1, queryLength: 1, keyLength: 1,
                                      headDim: .max, valueHeadDim: .max)
        expectSDPAError(mentions: ["query", "bytes"]) { try explainSDPA(shape: tooLarge) }
        var gqa = shape
        gqa.keyValueHeads = 8
        expectSDPAError(mentions: ["enableGQA"]) { try explainSDPA(shape: gqa) }
        #expect(try explainSDPA(shape: gqa, enableGQA: true).backend == .fused)
        var negative = shape
        negative.queryLength = -1
        expectSDPAError(mentions: ["query", "negative"]) { try explainSDPA(shape: negative) }
        var rank5 = shape
        rank5.rank = 5
        expectSDPAError(mentions: ["rank"]) { try explainSDPA(shape: rank5) }
        expectSDPAError(mentions: ["query", "float32, float16"]) { try explainSDPA(shape: shape, dtype: .bool) }
    }
}

// MARK: - biases

@Suite("Bias parameters near Int.max")
struct BiasSizeLimitTests {
    /// Lengths whose prefix sums pass Int.max: `init` builds nothing proportional to them, and every use
    /// reports the sum.
    @Test func blockDiagonalLengthsSummingPastInt() throws {
        let bias = BlockDiagonalBias(queryLengths: [Int.max, 1], keyLengths: [7, 0])
        let q = try Tensor.randomNormal(shape: [1, 1, 8, 4], seed: 1), k = try Tensor.randomNormal(shape: [1, 1, 7, 4], seed: 2)
        expectSDPAError(mentions: ["BlockDiagonalBias.queryLengths", "sum past Int.max"]) {
            try scaledDotProductAttention(query: q, key: k, value: k, attnMask: bias)
        }
        expectSDPAError(mentions: ["sum past Int.max"]) { try bias.materialize(device: .cpu) }
        expectSDPAError(mentions: ["sum past Int.max"]) { try explainSDPA(query: q, key: k, value: k, attnMask: bias) }
        // Lengths this machine could never hold cost nothing to describe: the tables are per sequence.
        let vast = BlockDiagonalBias(queryLengths: [1 << 40, 1 << 40])
        #expect(vast.seqLenQ == 1 << 41)
        expectSDPAError(mentions: ["seqLenQ"]) { try scaledDotProductAttention(query: q, key: k, value: k, attnMask: vast) }
    }

    /// Block-diagonal attention still matches its materialized mask, empty sequences included (the
    /// sequence of each index is now found by binary search over the prefix sums). The sequences run as
    /// calls of their own (segments), with other tiles than the masked call's: the same values, not the
    /// same bits.
    @Test func blockDiagonalMatchesItsMask() throws {
        for causal in [nil, CausalVariant.upperLeft, .lowerRight] {
            let bias = BlockDiagonalBias(queryLengths: [3, 0, 140, 1, 0, 60], keyLengths: [5, 2, 130, 0, 3, 61], causal: causal)
            let q = try Tensor.randomNormal(shape: [1, 2, 204, 16], seed: 1)
            let k = try Tensor.randomNormal(shape: [1, 2, 201, 16], seed: 2), v = try Tensor.randomNormal(shape: [1, 2, 201, 8], seed: 3)
            let fused = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
            let masked = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(try bias.materialize(device: .cpu)))
            expectClose(fused, masked, .float32, "causal: \(String(describing: causal))")
        }
    }

    /// A window side of Int.max (or one that reaches past either end) sees every key on that side:
    /// the same bits as an unbounded side, where it used to trap on a worker thread.
    @Test func slidingWindowSidesNearIntMax() throws {
        let q = try Tensor.randomNormal(shape: [1, 2, 40, 8], seed: 1)
        let k = try Tensor.randomNormal(shape: [1, 2, 300, 8], seed: 2), v = try Tensor.randomNormal(shape: [1, 2, 300, 8], seed: 3)
        for alignment in CausalVariant.allCases {
            for (huge, unbounded) in [
                ((1, Int.max), (1, nil)), ((Int.max, 0), (nil, 0)), ((Int.max, Int.max), (nil, nil)),
                ((Int.max - 1, Int.max / 2 + 3), (nil, nil)), ((Int.max, 5), (nil, 5)),
            ] as [((Int?, Int?), (Int?, Int?))] {
                func run(_ left: Int?, _ right: Int?) throws -> Tensor {
                    let bias = SlidingWindowBias(seqLenQ: 40, seqLenKV: 300, left: left, right: right, alignment: alignment)
                    return try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
                }
                let label = "\(huge) vs \(unbounded), \(alignment)"
                #expect(bits(try run(huge.0, huge.1)) == bits(try run(unbounded.0, unbounded.1)), "\(label)")
                let hugeMask = try SlidingWindowBias(seqLenQ: 40, seqLenKV: 300, left: huge.0, right: huge.1, alignment: alignment)
                    .materialize(device: .cpu)
                let unboundedMask = try SlidingWindowBias(seqLenQ: 40, seqLenKV: 300, left: unbounded.0, right: unbounded.1, alignment: alignment)
                    .materialize(device: .cpu)
                #expect(hugeMask.bools == unboundedMask.bools, "\(label)")
            }
        }
    }

    /// A window that reaches past every key is the same as none at all.
    @Test func anUnboundedWindowIsNoMask() throws {
        let q = try Tensor.randomNormal(shape: [2, 3, 17, 8], seed: 4)
        let k = try Tensor.randomNormal(shape: [2, 3, 23, 8], seed: 5), v = try Tensor.randomNormal(shape: [2, 3, 23, 8], seed: 6)
        let window = SlidingWindowBias(seqLenQ: 17, seqLenKV: 23, left: Int.max, right: Int.max)
        #expect(try window.materialize(device: .cpu).bools.allSatisfy { $0 })
        let plain = try scaledDotProductAttention(query: q, key: k, value: v)
        let windowed = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: window)
        // Every tile is fully visible, so the pure mask does no work: the bits of no mask at all.
        #expect(bits(windowed) == bits(plain))
    }

    /// The causal tile classification any custom bias may call takes any diagonal offset.
    @Test func causalTileClassificationWithExtremeOffsets() {
        let (queries, keys) = (0..<64, 1_000..<1_128)
        #expect(TileVisibility.causal(queries: queries, keys: keys, diagonalOffset: .max) == .full)
        #expect(TileVisibility.causal(queries: queries, keys: keys, diagonalOffset: .min) == .empty)
        #expect(TileVisibility.causal(queries: (Int.max - 10)..<Int.max, keys: keys, diagonalOffset: 5) == .full)
        #expect(TileVisibility.causal(queries: queries, keys: keys, diagonalOffset: 1_000) == .partial)
        #expect(Tensor.contiguousStrides(for: [1 << 40, 1 << 40, 1 << 40]) == [.max, 1 << 40, 1])
    }

    /// ALiBi's standard slopes for counts whose doubling would overflow the search are computed, not trapped on.
    @Test func standardSlopesCountsAreExact() {
        #expect(AlibiBias.standardSlopes(numHeads: 12).count == 12)
        #expect(AlibiBias.standardSlopes(numHeads: 0) == [])
        #expect(AlibiBias.standardSlopes(numHeads: -5) == [])
        let six = AlibiBias.standardSlopes(numHeads: 6)
        let four = AlibiBias.standardSlopes(numHeads: 4), eight = AlibiBias.standardSlopes(numHeads: 8)
        #expect(six == four + [eight[0], eight[2]])
    }
}
