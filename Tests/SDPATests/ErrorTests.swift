import Foundation
@_spi(Benchmarking) import SDPA
import SDPATestSupport
import Testing

// Tolerances: none. These tests check which error is thrown and what its message
// says, and that inputs are bit-for-bit unchanged afterwards.

// MARK: - helpers (private: the test module is shared with other files)

/// Standard inputs: B=2, H=Hkv=3, L=4, S=5, E=6, Ev=7.
private struct Inputs {
    var q: Tensor, k: Tensor, v: Tensor
    init(b: Int = 2, h: Int = 3, hkv: Int? = nil, l: Int = 4, s: Int = 5, e: Int = 6, ev: Int = 7) throws {
        q = try randn([b, h, l, e], seed: 1)
        k = try randn([b, hkv ?? h, s, e], seed: 2)
        v = try randn([b, hkv ?? h, s, ev], seed: 3)
    }
}

/// "[2, 3, 4, 6]": how a shape appears in messages.
private func s(_ shape: [Int]) -> String { "\(shape)" }

/// The exact bits of every element, and the layout, to detect any change to a caller's tensor.
private struct Snapshot: Equatable {
    var shape: [Int], strides: [Int], dtype: DType, bits: [UInt64]
    init(_ t: Tensor) {
        shape = t.shape
        strides = t.strides
        dtype = t.dtype
        bits = t.doubleScalars.map(\.bitPattern)
    }
}

/// The deprecated raw-tensor overload, wrapped so the call site does not warn.
@available(*, deprecated)
private func rawMaskAttention(_ i: Inputs, mask: Tensor, isCausal: Bool = false, dropoutP: Float = 0) throws -> Tensor {
    try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: mask, isCausal: isCausal, dropoutP: dropoutP)
}

// MARK: - shapes and dtypes of query, key and value

@Suite("Errors: inputs")
struct InputErrorTests {
    /// A query of one dimension; (a rank-2 query is PyTorch's `[L, E]`, broadcast against the key's batch and heads).
    @Test func queryRank() throws {
        let i = try Inputs()
        let q = try randn([6], seed: 9)
        let e = expectSDPAError(mentions: ["query", s([6]), "rank 1", "at least 2 dimensions"]) {
            try scaledDotProductAttention(query: q, key: i.k, value: i.v)
        }
        #expect(e == .rank(argument: "query", shape: [6], expected: "at least 2 dimensions, [..., L, E]"))
        // With enableGQA the heads dimension must exist.
        let q2 = try randn([4, 6], seed: 9)
        let e2 = expectSDPAError(mentions: ["query", s([4, 6]), "enableGQA"]) {
            try scaledDotProductAttention(query: q2, key: i.k, value: i.v, enableGQA: true)
        }
        guard case .rank(argument: "query", shape: [4, 6], _)? = e2 else {
            Issue.record("expected .rank for the query, got \(String(describing: e2))")
            return
        }
    }

    /// Inputs of different ranks broadcast (PyTorch's `matmul` rules): a rank-5 query against rank-4 keys
    /// and values is the rank-4 call with a leading 1; a rank-3 key against a rank-4 query is shared by the batch.
    @Test func differentRanksBroadcast() throws {
        let i = try Inputs()
        let q5 = try randn([1] + i.q.shape, seed: 9)
        let out5 = try scaledDotProductAttention(query: q5, key: i.k, value: i.v)
        expectIdentical(out5, try scaledDotProductAttention(query: try q5.reshaped(i.q.shape), key: i.k, value: i.v).reshaped([1] + [2, 3, 4, 7]), "rank 5 against rank 4")
        let k3 = try randn([3, 5, 6], seed: 10), v3 = try randn([3, 5, 7], seed: 11)
        expectIdentical(try scaledDotProductAttention(query: i.q, key: k3, value: v3),
                        try scaledDotProductAttention(query: i.q, key: try k3.broadcast(to: [2, 3, 5, 6]).contiguous(),
                                                      value: try v3.broadcast(to: [2, 3, 5, 7]).contiguous()), "rank-3 key and value")
    }

    @Test func keyRankOutOfRange() throws {
        let i = try Inputs()
        let k1 = try randn([6], seed: 9)
        let e = expectSDPAError(mentions: ["key", s([6]), "at least 2 dimensions"]) {
            try scaledDotProductAttention(query: i.q, key: k1, value: i.v)
        }
        #expect(e == .rank(argument: "key", shape: [6], expected: "at least 2 dimensions, [..., L, E]"))
    }

    @Test func valueRankOutOfRange() throws {
        let i = try Inputs()
        let v1 = try randn([7], seed: 9)
        let e = expectSDPAError(mentions: ["value", s([7])]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: v1)
        }
        guard case let .rank(argument, shape, _)? = e else {
            Issue.record("expected .rank, got \(String(describing: e))")
            return
        }
        #expect(argument == "value" && shape == [7])
    }

    /// Batch sizes that are neither equal nor 1 do not broadcast.
    @Test func batchMismatch() throws {
        let i = try Inputs()
        let k = try randn([3, 3, 5, 6], seed: 9), v = try randn([3, 3, 5, 7], seed: 10)
        let e = expectSDPAError(mentions: ["key", "query", s(k.shape), s(i.q.shape), "batch", "3 against 2", "dimension -4"]) {
            try scaledDotProductAttention(query: i.q, key: k, value: v)
        }
        guard case let .shapeMismatch(argument, shape, other, otherShape, reason)? = e else {
            Issue.record("expected .shapeMismatch, got \(String(describing: e))")
            return
        }
        #expect(argument == "key" && shape == k.shape && other == "query" && otherShape == i.q.shape)
        #expect(reason.contains("batch"))

        // Only the value's batch differs.
        let v3 = try randn([3, 3, 5, 7], seed: 10)
        let e2 = expectSDPAError(mentions: ["value", s(v3.shape), "batch"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: v3)
        }
        guard case let .shapeMismatch(argument2, _, _, _, _)? = e2 else {
            Issue.record("expected .shapeMismatch, got \(String(describing: e2))")
            return
        }
        #expect(argument2 == "value")
        // A batch of 1 broadcasts; the inputs are not changed.
        let (k1, v1) = (try randn([1, 3, 5, 6], seed: 9), try randn([1, 3, 5, 7], seed: 10))
        let before = (Snapshot(i.q), Snapshot(k1), Snapshot(v1))
        _ = try scaledDotProductAttention(query: i.q, key: k1, value: v1, isCausal: true)
        #expect(Snapshot(i.q) == before.0 && Snapshot(k1) == before.1 && Snapshot(v1) == before.2)
    }

    @Test func headCountMismatchWithoutGQA() throws {
        let i = try Inputs(h: 4, hkv: 2)
        let e = expectSDPAError(mentions: ["query has 4 heads", "key/value have 2", s(i.q.shape), s(i.k.shape), "enableGQA"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v)
        }
        #expect(e == .headCountMismatch(query: i.q.shape, key: i.k.shape, enableGQA: false))
        // The same inputs are fine with GQA.
        #expect(try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, enableGQA: true).shape == [2, 4, 4, 7])
    }

    @Test func gqaNeedsAMultiple() throws {
        let i = try Inputs(h: 5, hkv: 2)
        let e = expectSDPAError(mentions: ["query has 5 heads", "key/value have 2", s(i.q.shape), s(i.k.shape), "multiple"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, enableGQA: true)
        }
        #expect(e == .headCountMismatch(query: i.q.shape, key: i.k.shape, enableGQA: true))

        // Zero key/value heads with query heads is no multiple either.
        let z = try Inputs(h: 2, hkv: 0)
        let e0 = expectSDPAError(mentions: ["query has 2 heads", "key/value have 0"]) {
            try scaledDotProductAttention(query: z.q, key: z.k, value: z.v, enableGQA: true)
        }
        #expect(e0 == .headCountMismatch(query: z.q.shape, key: z.k.shape, enableGQA: true))
    }

    @Test func headDimMismatch() throws {
        let i = try Inputs()
        let k = try randn([2, 3, 5, 8], seed: 9)
        let e = expectSDPAError(mentions: ["key", "query", s(k.shape), s(i.q.shape), "head dimension E"]) {
            try scaledDotProductAttention(query: i.q, key: k, value: i.v)
        }
        guard case let .shapeMismatch(argument, shape, other, otherShape, _)? = e else {
            Issue.record("expected .shapeMismatch, got \(String(describing: e))")
            return
        }
        #expect(argument == "key" && shape == k.shape && other == "query" && otherShape == i.q.shape)
    }

    @Test func keyValueLengthMismatch() throws {
        let i = try Inputs()
        let v = try randn([2, 3, 6, 7], seed: 9)
        let e = expectSDPAError(mentions: ["value", "key", s(v.shape), s(i.k.shape), "sequence length S"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: v)
        }
        guard case let .shapeMismatch(argument, shape, other, otherShape, _)? = e else {
            Issue.record("expected .shapeMismatch, got \(String(describing: e))")
            return
        }
        #expect(argument == "value" && shape == v.shape && other == "key" && otherShape == i.k.shape)
    }

    @Test func keyValueHeadMismatch() throws {
        let i = try Inputs()
        // With enableGQA each count must divide the query's (3): 2 does not.
        let v = try randn([2, 2, 5, 7], seed: 9)
        let e = expectSDPAError(mentions: ["value", "query", s(v.shape), s(i.q.shape), "heads"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: v, enableGQA: true)
        }
        guard case let .shapeMismatch(argument, shape, other, otherShape, _)? = e else {
            Issue.record("expected .shapeMismatch, got \(String(describing: e))")
            return
        }
        #expect(argument == "value" && shape == v.shape && other == "query" && otherShape == i.q.shape)
        // Without it the heads broadcast: 2 against 3 does not.
        let e2 = expectSDPAError(mentions: ["value", s(v.shape), "heads do not broadcast"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: v)
        }
        guard case .shapeMismatch(argument: "value", _, _, _, _)? = e2 else {
            Issue.record("expected .shapeMismatch for the value, got \(String(describing: e2))")
            return
        }
    }

    @Test func dtypeMismatch() throws {
        let i = try Inputs()
        let k16 = try i.k.converted(to: .float16)
        let e = expectSDPAError(mentions: ["query", "key", "value", "float32", "float16"]) {
            try scaledDotProductAttention(query: i.q, key: k16, value: i.v)
        }
        #expect(e == .dtypeMismatch(query: .float32, key: .float16, value: .float32))

        let v64 = try i.v.converted(to: .float64)
        let e2 = expectSDPAError(mentions: ["float64"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: v64, attnMask: causalUpperLeft(4, 5))
        }
        #expect(e2 == .dtypeMismatch(query: .float32, key: .float32, value: .float64))
    }

    @Test func boolQuery() throws {
        let i = try Inputs()
        let (q, k, v) = try (i.q.converted(to: .bool), i.k.converted(to: .bool), i.v.converted(to: .bool))
        let e = expectSDPAError(mentions: ["query", "bool"]) {
            try scaledDotProductAttention(query: q, key: k, value: v)
        }
        #expect(e == .unsupportedDType(argument: "query", dtype: .bool, reason: "attention needs float32, float16, bfloat16 or float64 inputs"))
        // Only the query is bool: that is a dtype mismatch first.
        let e2 = expectSDPAError(mentions: ["bool"]) { try scaledDotProductAttention(query: q, key: i.k, value: i.v) }
        #expect(e2 == .dtypeMismatch(query: .bool, key: .float32, value: .float32))
    }

    @Test func threeDimensionalMismatchNamesTheGivenShapes() throws {
        let q = try randn([3, 4, 6], seed: 1), k = try randn([3, 5, 6], seed: 2), v = try randn([3, 4, 7], seed: 3)
        let e = expectSDPAError(mentions: [s([3, 4, 7]), s([3, 5, 6])]) {
            try scaledDotProductAttention(query: q, key: k, value: v)
        }
        guard case let .shapeMismatch(_, shape, _, otherShape, _)? = e else {
            Issue.record("expected .shapeMismatch, got \(String(describing: e))")
            return
        }
        #expect(shape == [3, 4, 7] && otherShape == [3, 5, 6], "3-D shapes are reported as given, without the implied batch")
    }
}

// MARK: - masks and biases

@Suite("Errors: masks, biases and options")
struct BiasErrorTests {
    @Test func maskNotBroadcastable() throws {
        let i = try Inputs()
        let mask = try Tensor(zeros: [3, 5], dtype: .bool)   // H where L belongs
        let expected = SDPAError.maskNotBroadcastable(mask: [3, 5], target: [2, 3, 4, 5])
        let mentions = ["attnMask", s([3, 5]), s([2, 3, 4, 5])]
        let e1 = expectSDPAError(mentions: mentions) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(mask))
        }
        #expect(e1 == expected)
        let e2 = expectSDPAError(mentions: mentions) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(mask) as any AttnBias)
        }
        #expect(e2 == expected)
        let floatMask = try Tensor(zeros: [2, 2, 4, 5])
        let e3 = expectSDPAError(mentions: [s([2, 2, 4, 5])]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(floatMask))
        }
        #expect(e3 == .maskNotBroadcastable(mask: [2, 2, 4, 5], target: [2, 3, 4, 5]))
    }

    /// Every mask shape of rank 0 to 5 built from sizes 1, the matching size and a wrong one:
    /// the entry point accepts exactly the masks of at most four dimensions (PyTorch 2.15 rejects a
    /// fifth, also of size 1) that `Tensor.broadcastStrides(to:)` can broadcast to the scores (the
    /// per-call check is written separately, without allocations).
    @Test(arguments: [4, 3]) func maskBroadcastRuleSweep(inputRank: Int) throws {
        let i = try Inputs(b: inputRank == 4 ? 2 : 1)
        let (q, k, v) = inputRank == 4 ? (i.q, i.k, i.v)
            : try (i.q.reshaped([3, 4, 6]), i.k.reshaped([3, 5, 6]), i.v.reshaped([3, 5, 7]))
        let scores = inputRank == 4 ? [2, 3, 4, 5] : [3, 4, 5]
        var shapes: [[Int]] = [[]]
        for _ in 0..<5 {
            shapes += shapes.filter { $0.count == shapes.last!.count }.flatMap { shape in
                let n = shape.count  // the new leading dimension, counted from the right
                let matching = n < scores.count ? scores[scores.count - 1 - n] : 2
                return [1, matching, 7].map { [$0] + shape }
            }
        }
        #expect(shapes.count == 1 + 3 + 9 + 27 + 81 + 243)
        for shape in shapes {
            let mask = try Tensor(zeros: shape, dtype: .bool)
            // PyTorch's rule: at most four mask dimensions, whatever their sizes.
            let fits = shape.count <= 4 && mask.broadcastStrides(to: scores) != nil
            do {
                let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
                #expect(fits, "mask \(shape) was accepted for scores \(scores)")
                #expect(out.shape == scores.dropLast() + [7])
            } catch let error as SDPAError {
                #expect(!fits, "mask \(shape) was rejected for scores \(scores): \(error)")
                #expect(error == (shape.count > 4
                    ? .rank(argument: "attnMask", shape: shape,
                            expected: "at most 4 dimensions, broadcast to the attention scores' shape \(scores)")
                    : .maskNotBroadcastable(mask: shape, target: scores)))
            }
        }
    }

    /// A fifth mask dimension is an error naming the mask, even of size 1 and for 3-D inputs, as in PyTorch.
    @Test func maskOfFiveDimensions() throws {
        let i = try Inputs()
        for shape in [[1, 1, 1, 4, 5], [1, 2, 3, 4, 5]] {
            let mask = try Tensor(zeros: shape, dtype: .bool)
            let e = expectSDPAError(mentions: ["attnMask", s(shape), "at most 4", s([2, 3, 4, 5])]) {
                try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(mask))
            }
            #expect(e == .rank(argument: "attnMask", shape: shape,
                               expected: "at most 4 dimensions, broadcast to the attention scores' shape [2, 3, 4, 5]"))
        }
        let q = try i.q.reshaped([6, 4, 6]), k = try i.k.reshaped([6, 5, 6]), v = try i.v.reshaped([6, 5, 7])
        let mask = try Tensor(zeros: [1, 1, 6, 4, 5], dtype: .bool)
        #expect(throws: SDPAError.rank(argument: "attnMask", shape: [1, 1, 6, 4, 5],
                                       expected: "at most 4 dimensions, broadcast to the attention scores' shape [6, 4, 5]")) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
        }
        // A 4-D mask with the implied batch of 3-D inputs stays accepted.
        let out = try scaledDotProductAttention(query: q, key: k, value: v,
                                                attnMask: TensorBias(Tensor(zeros: [1, 6, 4, 5], dtype: .bool)))
        #expect(out.shape == [6, 4, 7])
    }

    @available(*, deprecated)
    @Test func maskNotBroadcastableDeprecatedOverload() throws {
        let i = try Inputs()
        let mask = try Tensor(zeros: [4, 6], dtype: .bool)
        let e = expectSDPAError(mentions: ["attnMask", s([4, 6]), s([2, 3, 4, 5])]) {
            try rawMaskAttention(i, mask: mask)
        }
        #expect(e == .maskNotBroadcastable(mask: [4, 6], target: [2, 3, 4, 5]))
    }

    @Test func maskForThreeDimensionalInputs() throws {
        let q = try randn([3, 4, 6], seed: 1), k = try randn([3, 5, 6], seed: 2), v = try randn([3, 5, 7], seed: 3)
        let mask = try Tensor(zeros: [2, 1, 4, 5], dtype: .bool)
        let e = expectSDPAError(mentions: [s([2, 1, 4, 5]), s([3, 4, 5])]) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
        }
        #expect(e == .maskNotBroadcastable(mask: [2, 1, 4, 5], target: [3, 4, 5]))
    }

    /// The forward calls with `scale` and `dropoutP`, through every route and form that checks its options.
    private func forwardCalls(_ i: Inputs, scale: Double? = nil, dropoutP: Float = 0) throws -> [(String, () throws -> Any)] {
        let mask = try Tensor(zeros: [4, 5], dtype: .bool)
        let options = AttentionOptions(scale: scale, dropoutP: dropoutP)
        return [
            ("no mask", { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, scale: scale, dropoutP: dropoutP) }),
            ("isCausal", { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, isCausal: true, scale: scale, dropoutP: dropoutP) }),
            ("TensorBias", {
                try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(mask), scale: scale, dropoutP: dropoutP)
            }),
            ("CausalBias", {
                try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: causalLowerRight(4, 5), scale: scale, dropoutP: dropoutP)
            }),
            ("AlibiBias", {
                try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: AlibiBias(numHeads: 3, seqLenQ: 4, seqLenKV: 5) as any AttnBias,
                                              scale: scale, dropoutP: dropoutP)
            }),
            ("with log-sum-exp", {
                try scaledDotProductAttentionWithLogSumExp(query: i.q, key: i.k, value: i.v, attnMask: causalLowerRight(4, 5), scale: scale,
                                                           dropoutP: dropoutP)
            }),
            ("math", {
                try withSDPBackends([.math]) { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, scale: scale, dropoutP: dropoutP) }
            }),
            ("explainSDPA", { try explainSDPA(query: i.q, key: i.k, value: i.v, scale: scale, dropoutP: dropoutP) }),
            ("_PreparedAttention", { try _PreparedAttention(query: i.q, key: i.k, value: i.v, attnMask: causalLowerRight(4, 5), options: options) }),
        ]
    }

    @Test(arguments: [Float(-0.1), 1.5, .nan, .infinity])
    func dropoutOutOfRange(p: Float) throws {
        for (name, call) in try forwardCalls(try Inputs(), dropoutP: p) {
            let e = expectSDPAError(mentions: ["dropoutP", "\(p)", "0...1"], { _ = try call() })
            #expect(e == .invalidArgument(argument: "dropoutP", value: "\(p)", reason: "a dropout probability must be in 0...1"), "\(name)")
        }
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func scaleNotFinite(scale: Double) throws {
        let i = try Inputs()
        let calls = try forwardCalls(i, scale: scale) + [
            ("paged, no entries", { try PagedKVCache(blockCount: 1, blockSize: 4, keyValueHeads: 3, headDim: 6).attention([], scale: scale) }),
            ("backward", {
                let out = try scaledDotProductAttentionWithLogSumExp(query: i.q, key: i.k, value: i.v)
                return try scaledDotProductAttentionBackward(
                    gradOutput: out.output, query: i.q, key: i.k, value: i.v, output: out.output, logSumExp: out.logSumExp, scale: scale)
            }),
        ]
        for (name, call) in calls {
            let e = expectSDPAError(mentions: ["scale", "\(scale)"], { _ = try call() })
            #expect(e == .invalidArgument(argument: "scale", value: "\(scale)", reason: "the scale must be a finite number (or nil for 1 / sqrt(E))"),
                    "\(name)")
        }
    }

    /// With a bad scale and a bias that does not fit, the call and `explainSDPA` name the same one first: the scale.
    @Test func theOptionsAreCheckedFirst() throws {
        let i = try Inputs()   // L = 4, S = 5
        let scale = Double.nan, expected = SDPAError.invalidArgument(
            argument: "scale", value: "nan", reason: "the scale must be a finite number (or nil for 1 / sqrt(E))")
        let biases: [any AttnBias] = [TensorBias(try Tensor(zeros: [3, 9], dtype: .bool)), causalLowerRight(7, 5),
                                      AlibiBias(numHeads: 2, seqLenQ: 4, seqLenKV: 5)]
        for bias in biases {
            #expect(throws: expected, "\(type(of: bias))") { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: bias, scale: scale) }
            #expect(throws: expected, "\(type(of: bias)), explained") { try explainSDPA(query: i.q, key: i.k, value: i.v, attnMask: bias, scale: scale) }
        }
    }

    /// A finite `Double` scale that the fused kernels' `Float` would make infinite, zero or subnormal runs on the math
    /// backend, which computes with it in `Double`, rather than giving NaN or another scale's result.
    @Test(arguments: [1e39, -1e39, 1e-50, 1e-40])
    func scaleOutsideFloatRunsOnTheMathBackend(scale: Double) throws {
        let i = try Inputs()
        let explanation = try explainSDPA(query: i.q, key: i.k, value: i.v, scale: scale)
        #expect(explanation.backend == .math)
        #expect(explanation.rejected[.fused]?.contains("outside float32's normal range") == true, "\(explanation.rejected)")
        let out = try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, scale: scale)
        let math = try withSDPBackends([.math]) { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, scale: scale) }
        #expect(out.scalars.allSatisfy { $0.isFinite })
        expectIdentical(out, math)
        #expect(try explainSDPA(query: i.q, key: i.k, value: i.v, scale: 1e-30).backend == .fused, "a normal float32 scale stays fused")
    }

    @Test func dropoutBoundsAreAccepted() throws {
        let i = try Inputs()
        #expect(try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, dropoutP: 0).shape == [2, 3, 4, 7])
        #expect(try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, dropoutP: 1, dropoutSeed: 1).shape == [2, 3, 4, 7])
    }

    @Test(arguments: CausalVariant.allCases)
    func causalBiasWrongLengths(variant: CausalVariant) throws {
        let i = try Inputs()   // L = 4, S = 5
        let wrongQ = CausalBias(variant: variant, seqLenQ: 3, seqLenKV: 5)
        let e1 = expectSDPAError(mentions: ["CausalBias.seqLenQ", "3", "4", "L=4", "S=5"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: wrongQ)
        }
        guard case let .biasMismatch(bias, parameter, expected, actual, _)? = e1 else {
            Issue.record("expected .biasMismatch, got \(String(describing: e1))")
            return
        }
        #expect(bias == "CausalBias" && parameter == "seqLenQ" && expected == 4 && actual == 3)

        let wrongKV = CausalBias(variant: variant, seqLenQ: 4, seqLenKV: 9)
        let e2 = expectSDPAError(mentions: ["CausalBias.seqLenKV", "9", "S=5"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: wrongKV as any AttnBias)
        }
        guard case let .biasMismatch(_, parameter2, expected2, actual2, _)? = e2 else {
            Issue.record("expected .biasMismatch, got \(String(describing: e2))")
            return
        }
        #expect(parameter2 == "seqLenKV" && expected2 == 5 && actual2 == 9)
    }

    @Test func causalBiasNegativeLengths() throws {
        let i = try Inputs()
        for (bias, name, value) in [(causalUpperLeft(-1, 5), "CausalBias.seqLenQ", -1), (causalLowerRight(4, -2), "CausalBias.seqLenKV", -2)] {
            let e = expectSDPAError(mentions: [name, "\(value)", "negative"]) {
                try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: bias)
            }
            #expect(e == .invalidArgument(argument: name, value: "\(value)", reason: "a sequence length cannot be negative"))
            // materialize refuses too, naming the bias and the negative length.
            let m = expectSDPAError(mentions: ["CausalBias", "\(value)", "negative"]) { try bias.materialize(device: .cpu) }
            #expect(m != nil)
        }
    }

    @Test func alibiWrongSlopeCount() throws {
        let i = try Inputs()   // H = 3
        let bias = AlibiBias(slopes: [0.5, 0.25], seqLenQ: 4, seqLenKV: 5)
        let e = expectSDPAError(mentions: ["AlibiBias.slopes.count", "2", "3", "H=3"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: bias)
        }
        guard case let .biasMismatch(name, parameter, expected, actual, _)? = e else {
            Issue.record("expected .biasMismatch, got \(String(describing: e))")
            return
        }
        #expect(name == "AlibiBias" && parameter == "slopes.count" && expected == 3 && actual == 2)

        // With GQA the slopes are per query head, not per key/value head.
        let g = try Inputs(h: 4, hkv: 2)
        let e2 = expectSDPAError(mentions: ["slopes.count"]) {
            try scaledDotProductAttention(query: g.q, key: g.k, value: g.v, attnMask: AlibiBias(numHeads: 2, seqLenQ: 4, seqLenKV: 5), enableGQA: true)
        }
        guard case .biasMismatch(_, "slopes.count", 4, 2, _)? = e2 else {
            Issue.record("expected .biasMismatch of slopes.count 4 vs 2, got \(String(describing: e2))")
            return
        }
    }

    @Test func alibiWrongLengths() throws {
        let i = try Inputs()
        let e1 = expectSDPAError(mentions: ["AlibiBias.seqLenQ", "L=4"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 5, causal: .upperLeft))
        }
        guard case .biasMismatch("AlibiBias", "seqLenQ", 4, 5, _)? = e1 else {
            Issue.record("expected AlibiBias.seqLenQ mismatch, got \(String(describing: e1))")
            return
        }
        let e2 = expectSDPAError(mentions: ["AlibiBias.seqLenKV", "S=5"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: AlibiBias(numHeads: 3, seqLenQ: 4, seqLenKV: 4) as any AttnBias)
        }
        guard case .biasMismatch("AlibiBias", "seqLenKV", 5, 4, _)? = e2 else {
            Issue.record("expected AlibiBias.seqLenKV mismatch, got \(String(describing: e2))")
            return
        }
        let e3 = expectSDPAError(mentions: ["AlibiBias.seqLenKV", "-1", "negative"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: AlibiBias(numHeads: 3, seqLenQ: 4, seqLenKV: -1))
        }
        #expect(e3 == .invalidArgument(argument: "AlibiBias.seqLenKV", value: "-1", reason: "a sequence length cannot be negative"))
    }

    @Test func alibiNonFiniteSlope() throws {
        let i = try Inputs()
        let bias = AlibiBias(slopes: [0.5, .nan, 0.125], seqLenQ: 4, seqLenKV: 5)
        let e = expectSDPAError(mentions: ["AlibiBias.slopes[1]", "nan", "finite"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: bias)
        }
        #expect(e == .invalidArgument(argument: "AlibiBias.slopes[1]", value: "nan",
                                      reason: "slopes must be finite, and within float32's range (±3.4e38)"))
        #expect(throws: SDPAError.self) { try bias.materialize(device: .cpu) }
        let inf = AlibiBias(slopes: [0.5, 0.25, -.infinity], seqLenQ: 4, seqLenKV: 5)
        let e2 = expectSDPAError(mentions: ["AlibiBias.slopes[2]", "-inf"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: inf as any AttnBias)
        }
        guard case .invalidArgument("AlibiBias.slopes[2]", _, _)? = e2 else {
            Issue.record("expected .invalidArgument for slopes[2], got \(String(describing: e2))")
            return
        }
        // Finite as a Double but not once the float32 kernels round it.
        let huge = AlibiBias(slopes: [0.5, 0.25, 1e39], seqLenQ: 4, seqLenKV: 5)
        _ = expectSDPAError(mentions: ["AlibiBias.slopes[2]", "1e+39", "float32"]) {
            try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: huge)
        }
    }

    @Test func isCausalWithABias() throws {
        let i = try Inputs()
        let mask = try Tensor(zeros: [4, 5], dtype: .bool)
        let cases: [(String, () throws -> Tensor)] = [
            ("TensorBias", { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(mask), isCausal: true) }),
            ("CausalBias", { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: causalUpperLeft(4, 5), isCausal: true) }),
            ("AlibiBias", {
                try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: AlibiBias(numHeads: 3, seqLenQ: 4, seqLenKV: 5), isCausal: true)
            }),
            ("CausalBias", {
                try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: causalLowerRight(4, 5) as any AttnBias, isCausal: true)
            }),
        ]
        for (name, call) in cases {
            let e = expectSDPAError(mentions: [name, "should not be used with isCausal"], call)
            #expect(e == .causalWithBias(bias: name))
        }
    }

    @available(*, deprecated)
    @Test func isCausalWithTheDeprecatedOverload() throws {
        let i = try Inputs()
        let e = expectSDPAError(mentions: ["should not be used with isCausal"]) {
            try rawMaskAttention(i, mask: try Tensor(zeros: [4, 5], dtype: .bool), isCausal: true)
        }
        #expect(e == .causalWithBias(bias: "TensorBias"))
    }

    @Test func noBackendAllowed() throws {
        let i = try Inputs()
        let calls: [() throws -> Tensor] = [
            { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v) },
            { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, isCausal: true) },
            { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(try Tensor(zeros: [5]))) },
            { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: causalLowerRight(4, 5)) },
            { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: AlibiBias(numHeads: 3, seqLenQ: 4, seqLenKV: 5) as any AttnBias) },
        ]
        // Every backend is named, each with the same reason, sorted.
        let everyBackendRejected = SDPBackend.allCases.map { "\($0): not allowed by withSDPBackends" }.sorted()
        for call in calls {
            let e = withSDPBackends([]) {
                expectSDPAError(mentions: ["no allowed backend", "math", "not allowed by withSDPBackends"], call)
            }
            #expect(e == .noBackend(allowed: [], reasons: everyBackendRejected))
        }
        // Outside the restriction the same call runs again.
        #expect(try scaledDotProductAttention(query: i.q, key: i.k, value: i.v).shape == [2, 3, 4, 7])
        #expect(SDPBackend.allowed == Set(SDPBackend.allCases))
    }

    @Test func allowedBackendsFollowNestedScopes() throws {
        #expect(SDPBackend.allowed == [.fused, .math])
        withSDPBackends([.math]) {
            #expect(SDPBackend.allowed == [.math])
            withSDPBackends([.fused]) { #expect(SDPBackend.allowed == [.fused]) }
            withSDPBackends([]) { #expect(SDPBackend.allowed.isEmpty) }
            #expect(SDPBackend.allowed == [.math])
        }
        #expect(SDPBackend.allowed == [.fused, .math])
    }

    /// The lengths are checked once, when the bias is built, and the error is thrown by every call.
    @Test func blockDiagonalLengthErrorsOnEveryCall() throws {
        let i = try Inputs(l: 5, s: 5)
        let bias = BlockDiagonalBias(queryLengths: [2, 3], keyLengths: [6, -1])
        let expected = SDPAError.invalidArgument(
            argument: "BlockDiagonalBias.keyLengths[1]", value: "-1", reason: "a sequence length cannot be negative")
        for _ in 0..<2 {
            let e = expectSDPAError(mentions: ["keyLengths[1]", "-1"]) {
                try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: bias)
            }
            #expect(e == expected)
        }
        #expect(throws: expected) { try bias.materialize(device: .cpu) }
        // Equal lengths make equal biases, however they were spelled.
        #expect(BlockDiagonalBias(queryLengths: [2, 3]) == BlockDiagonalBias(queryLengths: [2, 3], keyLengths: [2, 3]))
        #expect(BlockDiagonalBias(queryLengths: [2, 3]).hashValue == BlockDiagonalBias(queryLengths: [2, 3], keyLengths: [2, 3]).hashValue)
        #expect(BlockDiagonalBias(queryLengths: [2, 3]) != BlockDiagonalBias(queryLengths: [2, 3], causal: .upperLeft))
        #expect(BlockDiagonalBias(queryLengths: [2, 3]) != BlockDiagonalBias(queryLengths: [3, 2]))
    }

    @Test func noBackendAllowedInAsyncScope() async throws {
        let i = try Inputs()
        let e = await withSDPBackends([]) { () async -> SDPAError? in
            await Task { expectSDPAError { try scaledDotProductAttention(query: i.q, key: i.k, value: i.v) } }.value
        }
        #expect(e == .noBackend(allowed: [], reasons: SDPBackend.allCases.map { "\($0): not allowed by withSDPBackends" }.sorted()))
    }

    @Test func noAllowedBackendSupportsTheInputs() throws {
        // Only the fused backend allowed, with float64 inputs it does not take.
        let i = try Inputs()
        let (q, k, v) = try (i.q.converted(to: .float64), i.k.converted(to: .float64), i.v.converted(to: .float64))
        let e = withSDPBackends([.fused]) {
            expectSDPAError(mentions: ["no allowed backend", "fused", "float64"]) {
                try scaledDotProductAttention(query: q, key: k, value: v)
            }
        }
        guard case let .noBackend(allowed, reasons)? = e else {
            Issue.record("expected .noBackend, got \(String(describing: e))")
            return
        }
        #expect(allowed == [.fused])
        #expect(reasons.contains { $0.hasPrefix("fused: ") && $0.contains("float64") })
        #expect(reasons.contains("math: not allowed by withSDPBackends"))
    }

    @Test func inputErrorsComeBeforeBackendSelection() throws {
        let i = try Inputs()
        let k = try randn([2, 3, 5, 8], seed: 9)
        let e = withSDPBackends([]) { expectSDPAError { try scaledDotProductAttention(query: i.q, key: k, value: i.v) } }
        guard case .shapeMismatch? = e else {
            Issue.record("expected .shapeMismatch, got \(String(describing: e))")
            return
        }
    }
}

// MARK: - inputs are never modified

@Suite("Errors: inputs are left unchanged")
struct InputsUnchangedTests {
    @available(*, deprecated)
    @Test func failingAndSucceedingCallsDoNotModifyArguments() throws {
        let i = try Inputs()
        let boolMask = try Tensor.randomBools(shape: [2, 1, 4, 5], probability: 0.7, seed: 4)
        let floatMask = try Tensor.randomNormal(shape: [4, 5], seed: 5)
        let badMask = try Tensor.randomNormal(shape: [3, 5], seed: 6)
        let blhe = try randn([2, 4, 3, 6], seed: 7).transposed(1, 2)   // a non-contiguous query view
        let before = [i.q, i.k, i.v, boolMask, floatMask, badMask, blhe].map(Snapshot.init)
        let alibi = AlibiBias(numHeads: 3, seqLenQ: 4, seqLenKV: 5, causal: .lowerRight)

        // Failing calls.
        _ = try? scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(badMask))
        _ = try? rawMaskAttention(i, mask: badMask)
        _ = try? scaledDotProductAttention(query: i.q, key: i.k, value: i.v, dropoutP: 2)
        _ = try? scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(floatMask), isCausal: true)
        _ = try? scaledDotProductAttention(query: i.q, key: i.v, value: i.k)
        _ = try? scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: AlibiBias(numHeads: 2, seqLenQ: 4, seqLenKV: 5))
        _ = try? withSDPBackends([]) { try scaledDotProductAttention(query: blhe, key: i.k, value: i.v, attnMask: TensorBias(boolMask)) }

        // Succeeding calls, including dropout and a view as the query.
        _ = try scaledDotProductAttention(query: i.q, key: i.k, value: i.v)
        _ = try scaledDotProductAttention(query: blhe, key: i.k, value: i.v, isCausal: true, scale: 0.3)
        _ = try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(boolMask), dropoutP: 0.5, dropoutSeed: 1)
        _ = try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: TensorBias(floatMask) as any AttnBias)
        _ = try rawMaskAttention(i, mask: floatMask)
        _ = try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: alibi)
        _ = try scaledDotProductAttention(query: i.q, key: i.k, value: i.v, attnMask: causalLowerRight(4, 5))

        let after = [i.q, i.k, i.v, boolMask, floatMask, badMask, blhe].map(Snapshot.init)
        #expect(after == before)
    }

    @Test func theResultDoesNotAliasTheInputs() throws {
        let i = try Inputs(e: 7, ev: 7)
        let before = Snapshot(i.q)
        var out = try scaledDotProductAttention(query: i.q, key: i.k, value: i.v)
        out[0, 0, 0, 0] = 1000
        #expect(Snapshot(i.q) == before)
        #expect(out.isContiguous)
        #expect(out.dtype == .float32)
    }
}
