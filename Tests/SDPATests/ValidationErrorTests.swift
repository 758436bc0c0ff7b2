import Foundation
@_spi(Benchmarking) import SDPA
import SDPATestSupport
import Testing

// Every throw site of the biases beyond the RFC, of packing, slicing and concatenation, of
// materialize, of explainSDPA and of the prepared call: the error thrown, exactly. Tolerances: none.

/// Inputs B=2, H=Hkv=3, L=4, S=5, E=6, Ev=7.
private func inputs(l: Int = 4, s: Int = 5) throws -> (Tensor, Tensor, Tensor) {
    try randomAttentionInputs(2, 3, l, s, 6, ev: 7)
}

/// The error `body` throws through the entry point, the existential entry point and `explainSDPA`,
/// which must all be `expected`.
private func expectEveryRouteThrows<Bias: AttnBias>(
    _ expected: SDPAError, _ bias: Bias, l: Int = 4, s: Int = 5, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let (q, k, v) = try inputs(l: l, s: s)
    #expect(throws: expected, "generic", sourceLocation: sourceLocation) {
        try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
    }
    #expect(throws: expected, "existential", sourceLocation: sourceLocation) {
        try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias as any AttnBias)
    }
    #expect(throws: expected, "with log-sum-exp", sourceLocation: sourceLocation) {
        try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias)
    }
    #expect(throws: expected, "explainSDPA", sourceLocation: sourceLocation) {
        try explainSDPA(query: q, key: k, value: v, attnMask: bias)
    }
    #expect(throws: expected, "_PreparedAttention", sourceLocation: sourceLocation) {
        try _PreparedAttention(query: q, key: k, value: v, attnMask: bias, options: AttentionOptions())
    }
    if let fused = bias as? any FusedAttnBias {
        #expect(throws: expected, "_PreparedAttention(fusedBias:)", sourceLocation: sourceLocation) {
            try _PreparedAttention(query: q, key: k, value: v, fusedBias: fused, options: AttentionOptions())
        }
    }
}

private func lengths(_ name: String, _ value: Int, _ reason: String = "a sequence length cannot be negative") -> SDPAError {
    .invalidArgument(argument: name, value: "\(value)", reason: reason)
}

@Suite("Errors: bias parameters")
struct BiasParameterErrorTests {
    @Test func keyPadding() throws {
        try expectEveryRouteThrows(.biasMismatch(bias: "KeyPaddingBias", parameter: "validKeyLengths.count", expected: 2, actual: 3,
                                                 inputs: "one length per batch entry; B=2 H=3 Hkv=3 L=4 S=5 E=6 Ev=7"),
                                   KeyPaddingBias(validKeyLengths: [1, 2, 3], seqLenKV: 5))
        try expectEveryRouteThrows(lengths("KeyPaddingBias.seqLenKV", -1), KeyPaddingBias(validKeyLengths: [0, 0], seqLenKV: -1))
        for bad in [-1, 6] {
            let bias = KeyPaddingBias(validKeyLengths: [2, bad], seqLenKV: 5)
            let error = lengths("KeyPaddingBias.validKeyLengths[1]", bad, "a valid key length must be in 0...5 (seqLenKV)")
            try expectEveryRouteThrows(error, bias)
            #expect(throws: error) { try bias.materialize(device: .cpu) }
        }
        try expectEveryRouteThrows(.biasMismatch(bias: "KeyPaddingBias", parameter: "seqLenKV", expected: 5, actual: 6,
                                                 inputs: "key length S; B=2 H=3 Hkv=3 L=4 S=5 E=6 Ev=7"),
                                   KeyPaddingBias(validKeyLengths: [2, 6], seqLenKV: 6))
    }

    @Test func slidingWindow() throws {
        try expectEveryRouteThrows(lengths("SlidingWindowBias.seqLenQ", -4), SlidingWindowBias(seqLenQ: -4, seqLenKV: 5, left: 1))
        try expectEveryRouteThrows(lengths("SlidingWindowBias.seqLenKV", -5), SlidingWindowBias(seqLenQ: 4, seqLenKV: -5, left: 1))
        let unbounded = "a window size cannot be negative; use nil for an unbounded side"
        let left = SlidingWindowBias(seqLenQ: 4, seqLenKV: 5, left: -1)
        try expectEveryRouteThrows(lengths("SlidingWindowBias.left", -1, unbounded), left)
        #expect(throws: lengths("SlidingWindowBias.left", -1, unbounded)) { try left.materialize(device: .cpu) }
        try expectEveryRouteThrows(lengths("SlidingWindowBias.right", -2, unbounded), SlidingWindowBias(seqLenQ: 4, seqLenKV: 5, left: nil, right: -2))
        try expectEveryRouteThrows(.biasMismatch(bias: "SlidingWindowBias", parameter: "seqLenQ", expected: 4, actual: 5,
                                                 inputs: "query length L; B=2 H=3 Hkv=3 L=4 S=5 E=6 Ev=7"),
                                   SlidingWindowBias(seqLenQ: 5, seqLenKV: 5, left: 1))
        // nil on both sides is a valid (unbounded) window.
        let (q, k, v) = try inputs()
        let open = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: SlidingWindowBias(seqLenQ: 4, seqLenKV: 5, left: nil, right: nil))
        expectIdentical(open, try scaledDotProductAttention(query: q, key: k, value: v))
    }

    @Test(arguments: [Float(0), -1, .nan, .infinity, -.infinity])
    func softCap(cap: Float) throws {
        let bias = SoftCapBias(cap: cap)
        try expectEveryRouteThrows(.invalidArgument(argument: "SoftCapBias.cap", value: "\(cap)", reason: "the cap must be positive and finite"), bias)
        // A composition checks its parts.
        try expectEveryRouteThrows(.invalidArgument(argument: "SoftCapBias.cap", value: "\(cap)", reason: "the cap must be positive and finite"),
                                   causalLowerRight(4, 5).combined(with: bias))
    }

    @Test func softCapHasNoMaterializedForm() {
        #expect(throws: SDPAError.invalidArgument(
            argument: "attnMask", value: "SoftCapBias",
            reason: "this bias changes scores non-additively (e.g. soft-capping), so no mask can stand for it; check it against withSDPBackends([.math]) instead")) {
            try SoftCapBias(cap: 30).materialize(device: .cpu)
        }
    }

    @Test func blockDiagonal() throws {
        let counts = BlockDiagonalBias(queryLengths: [2, 2], keyLengths: [5])
        let countError = SDPAError.invalidArgument(argument: "BlockDiagonalBias.keyLengths", value: "[5]",
                                                   reason: "there are 2 query lengths but 1 key lengths; give one of each per sequence")
        try expectEveryRouteThrows(countError, counts)
        #expect(throws: countError) { try counts.materialize(device: .cpu) }
        try expectEveryRouteThrows(lengths("BlockDiagonalBias.queryLengths[0]", -1), BlockDiagonalBias(queryLengths: [-1, 5], keyLengths: [2, 3]))
        // Lengths that do not sum to L, or to S.
        try expectEveryRouteThrows(.biasMismatch(bias: "BlockDiagonalBias", parameter: "seqLenQ", expected: 4, actual: 5,
                                                 inputs: "query length L; B=2 H=3 Hkv=3 L=4 S=5 E=6 Ev=7"),
                                   BlockDiagonalBias(queryLengths: [2, 3], keyLengths: [2, 3]))
        try expectEveryRouteThrows(.biasMismatch(bias: "BlockDiagonalBias", parameter: "seqLenKV", expected: 5, actual: 6,
                                                 inputs: "key length S; B=2 H=3 Hkv=3 L=4 S=5 E=6 Ev=7"),
                                   BlockDiagonalBias(queryLengths: [2, 2], keyLengths: [3, 3]))
    }

    @Test func alibiAndCausalInsideACompositionAreChecked() throws {
        try expectEveryRouteThrows(lengths("CausalBias.seqLenQ", -1),
                                   AlibiBias(numHeads: 3, seqLenQ: 4, seqLenKV: 5).combined(with: causalUpperLeft(-1, 5)))
        try expectEveryRouteThrows(.biasMismatch(bias: "AlibiBias", parameter: "slopes.count", expected: 3, actual: 2,
                                                 inputs: "one slope per query head; B=2 H=3 Hkv=3 L=4 S=5 E=6 Ev=7"),
                                   causalUpperLeft(4, 5).combined(with: AlibiBias(numHeads: 2, seqLenQ: 4, seqLenKV: 5)))
    }
}

/// A user's mask with no `validate(for:)` of its own, built for `queries` × `keys` positions.
private struct FixedLengthsMask: FusedAttnBias {
    var queries: Int, keys: Int
    static var modifiesScores: Bool { false }
    var materializedShape: [Int] { [queries, keys] }
    func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { key <= query }
}

@Suite("Errors: a user's fused bias built for other inputs")
struct FusedBiasShapeErrorTests {
    /// Its `materializedShape` is checked on every route, as the materialized mask would be: a bias built for other
    /// lengths is an error whether or not it is materialized.
    @Test func otherLengthsAreAnErrorOnEveryRoute() throws {
        try expectEveryRouteThrows(.maskNotBroadcastable(mask: [6, 5], target: [2, 3, 4, 5]), FixedLengthsMask(queries: 6, keys: 5))
        try expectEveryRouteThrows(.maskNotBroadcastable(mask: [4, 9], target: [2, 3, 4, 5]),
                                   FixedLengthsMask(queries: 4, keys: 9).combined(with: causalUpperLeft(4, 5)))
        let (q, k, v) = try inputs(l: 4, s: 5)
        let expected = SDPAError.maskNotBroadcastable(mask: [6, 5], target: [2, 3, 4, 5])
        #expect(throws: expected, "backward") {
            try scaledDotProductAttentionBackward(gradOutput: try randn([2, 3, 4, 7], seed: 9), query: q, key: k, value: v,
                                                  output: try randn([2, 3, 4, 7], seed: 10), logSumExp: try randn([2, 3, 4], seed: 11),
                                                  attnMask: FixedLengthsMask(queries: 6, keys: 5))
        }
        // Paged: each entry's bias is checked against that entry's lengths (here 1 query row, 3 keys).
        let cache = try PagedKVCache(blockCount: 2, blockSize: 4, keyValueHeads: 3, headDim: 6, valueHeadDim: 7)
        let sequence = cache.addSequence()
        try cache.append(to: sequence, key: try randn([3, 3, 6], seed: 12), value: try randn([3, 3, 7], seed: 13))
        let entry = [PagedAttentionQuery(sequence: sequence, query: try randn([3, 1, 6], seed: 14))]
        #expect(throws: SDPAError.maskNotBroadcastable(mask: [1, 5], target: [3, 1, 3]), "paged") {
            try cache.attention(entry) { _ in FixedLengthsMask(queries: 1, keys: 5) }
        }
        #expect(try cache.attention(entry) { s in FixedLengthsMask(queries: s.queryLength, keys: s.keyLength) }[0].shape == [3, 1, 7])
        for bias in [FixedLengthsMask(queries: 4, keys: 5), FixedLengthsMask(queries: 1, keys: 5), FixedLengthsMask(queries: 4, keys: 1)] {
            let fused = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
            #expect(fused.shape == [2, 3, 4, 7], "\(bias.materializedShape) broadcasts")
        }
    }
}

/// A user bias whose `materializedShape` is not a mask's.
private struct BadShapeBias: FusedAttnBias {
    var materializedShape: [Int]
    static var modifiesScores: Bool { false }
    func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { true }
}

@Suite("Errors: materialize, packing, slicing and concatenation")
struct TensorAssemblyErrorTests {
    @Test(arguments: [[5], [1, 1, 1, 4, 5], [4, -5]])
    func materializedShapeMustBeAMask(shape: [Int]) {
        let bias = BadShapeBias(materializedShape: shape)
        #expect(throws: SDPAError.self) { try bias.materialize(device: .cpu) }
        do {
            _ = try bias.materialize(device: .cpu)
        } catch let error as SDPAError {
            guard case let .invalidShape(argument, thrownShape, _) = error else {
                Issue.record("expected .invalidShape, got \(error)")
                return
            }
            #expect(argument == "BadShapeBias.materializedShape" && thrownShape == shape)
        } catch {
            Issue.record("expected an SDPAError, got \(error)")
        }
    }

    @Test func packAndUnpack() throws {
        let a = try randn([3, 2, 4], seed: 1), b = try randn([2, 2, 4], seed: 2)
        #expect(throws: SDPAError.rank(argument: "sequences[1]", shape: [2, 8], expected: "rank 3 [L_i, H, E]")) {
            try BlockDiagonalBias.pack([a, try b.reshaped([2, 8])])
        }
        #expect(throws: SDPAError.invalidArgument(argument: "tensors", value: "[]", reason: "nothing to concatenate")) {
            try BlockDiagonalBias.pack([])
        }
        let otherHeads = try randn([2, 4, 2], seed: 3)
        #expect(throws: SDPAError.shapeMismatch(argument: "tensors[1]", shape: [2, 4, 2], other: "tensors[0]", otherShape: [3, 2, 4],
                                                reason: "all dimensions but 0 must agree")) {
            try BlockDiagonalBias.pack([a, otherHeads])
        }
        #expect(throws: SDPAError.unsupportedDType(argument: "tensors[1]", dtype: .float16, reason: "tensors[0] has dtype float32; all must agree")) {
            try BlockDiagonalBias.pack([a, b.converted(to: .float16)])
        }
        let (packed, bias) = try BlockDiagonalBias.packing(queries: [a, b])
        #expect(packed.shape == [1, 2, 5, 4])
        for wrong in [[2, 2, 5, 4], [1, 2, 4, 4], [2, 5, 4]] {
            #expect(throws: SDPAError.shapeMismatch(argument: "output", shape: wrong, other: "BlockDiagonalBias.queryLengths", otherShape: [3, 2],
                                                    reason: "expected [1, H, 5, Ev]: the packed output of this bias")) {
                try bias.unpack(try Tensor(zeros: wrong))
            }
        }
        // And the round trip that works.
        let parts = try bias.unpack(packed)
        expectIdentical(parts[0], a)
        expectIdentical(parts[1], b)
    }

    @Test func slicing() throws {
        let t = try randn([2, 3, 4], seed: 4)
        for (range, axis) in [(0..<1, 3), (0..<1, -4)] {
            #expect(throws: SDPAError.invalidAxes(argument: "sliced(\(range), along: \(axis))", axes: [axis], shape: [2, 3, 4])) {
                try t.sliced(range, along: axis)
            }
        }
        for (range, axis, size) in [(0..<3, 0, 2), (2..<5, 2, 4), (3..<9, -1, 4), (-1..<1, 1, 3)] {
            #expect(throws: SDPAError.invalidArgument(
                argument: "range", value: "\(range)",
                reason: "must lie within 0..<\(size), dimension \(axis) of a tensor of shape [2, 3, 4]")) {
                try t.sliced(range, along: axis)
            }
        }
        #expect(try t.sliced(1..<3, along: -1).shape == [2, 3, 2])
        #expect(try t.sliced(2..<2, along: 1).shape == [2, 0, 4])
    }

    @Test func broadcasting() throws {
        let mask = try Tensor(zeros: [3, 1, 5], dtype: .bool)
        for target in [[3, 4, 4], [5], [2, 3, 1]] {
            #expect(throws: SDPAError.maskNotBroadcastable(mask: [3, 1, 5], target: target)) { try mask.broadcast(to: target) }
        }
        #expect(try mask.broadcast(to: [2, 3, 4, 5]).shape == [2, 3, 4, 5])
    }

    @Test func concatenation() throws {
        let a = try randn([2, 3], seed: 5), b = try randn([4, 3], seed: 6)
        #expect(throws: SDPAError.invalidArgument(argument: "tensors", value: "[]", reason: "nothing to concatenate")) {
            try Tensor.concatenated([], along: 0)
        }
        for axis in [2, -3] {
            #expect(throws: SDPAError.invalidAxes(argument: "concatenated(along: \(axis))", axes: [axis], shape: [2, 3])) {
                try Tensor.concatenated([a, b], along: axis)
            }
        }
        #expect(throws: SDPAError.shapeMismatch(argument: "tensors[1]", shape: [4, 3], other: "tensors[0]", otherShape: [2, 3],
                                                reason: "all dimensions but 1 must agree")) {
            try Tensor.concatenated([a, b], along: 1)
        }
        #expect(throws: SDPAError.shapeMismatch(argument: "tensors[1]", shape: [3], other: "tensors[0]", otherShape: [2, 3],
                                                reason: "all dimensions but 0 must agree")) {
            try Tensor.concatenated([a, try randn([3], seed: 7)], along: 0)
        }
        #expect(throws: SDPAError.unsupportedDType(argument: "tensors[1]", dtype: .bfloat16, reason: "tensors[0] has dtype float32; all must agree")) {
            try Tensor.concatenated([a, b.converted(to: .bfloat16)], along: 0)
        }
        let joined = try Tensor.concatenated([a, b], along: -2)
        #expect(joined.shape == [6, 3])
        #expect(joined.scalars == a.scalars + b.scalars)
    }
}

/// A bias with its own dispatch, which refuses every call.
private struct RefusingDispatchBias: AttnBias {
    static let refusal = SDPAError.invalidArgument(argument: "RefusingDispatchBias", value: "any", reason: "this dispatch refuses")
    var needsMaterialization: Bool { false }
    func materialize(device: Device) throws -> Tensor { throw Self.refusal }
    static func dispatch(query: Tensor, key: Tensor, value: Tensor, attnBias: Self, options: AttentionOptions) throws -> Tensor {
        throw refusal
    }
}

@Suite("Errors: explainSDPA and the prepared call")
struct PreparedAndExplainedErrorTests {
    @Test func preparedCallChecksEverythingUpFront() throws {
        let (q, k, v) = try inputs()
        #expect(throws: SDPAError.invalidArgument(argument: "dropoutP", value: "2.0", reason: "a dropout probability must be in 0...1")) {
            try _PreparedAttention(query: q, key: k, value: v, attnMask: nil as CausalBias?, options: AttentionOptions(dropoutP: 2))
        }
        let k8 = try randn([2, 3, 5, 8], seed: 9)
        #expect(throws: SDPAError.shapeMismatch(argument: "key", shape: [2, 3, 5, 8], other: "query", otherShape: [2, 3, 4, 6],
                                                reason: "query and key must have the same head dimension E")) {
            try _PreparedAttention(query: q, key: k8, value: v, attnMask: nil as CausalBias?, options: AttentionOptions())
        }
        #expect(throws: SDPAError.causalWithBias(bias: "CausalBias")) {
            try _PreparedAttention(query: q, key: k, value: v, attnMask: causalLowerRight(4, 5), isCausal: true, options: AttentionOptions())
        }
        #expect(throws: SDPAError.noBackend(allowed: [], reasons: SDPBackend.allCases.map { "\($0): not allowed by withSDPBackends" }.sorted())) {
            try withSDPBackends([]) { try _PreparedAttention(query: q, key: k, value: v, attnMask: nil as CausalBias?, options: AttentionOptions()) }
        }
        // A mask that does not broadcast, found when the dense mask is prepared.
        #expect(throws: SDPAError.maskNotBroadcastable(mask: [3, 5], target: [2, 3, 4, 5])) {
            try _PreparedAttention(query: q, key: k, value: v, attnMask: TensorBias(try Tensor(zeros: [3, 5], dtype: .bool)), options: AttentionOptions())
        }
        #expect(throws: SDPAError.shapeMismatch(argument: "key", shape: [2, 3, 5, 8], other: "query", otherShape: [2, 3, 4, 6],
                                                reason: "query and key must have the same head dimension E")) {
            try _PreparedAttention(query: q, key: k8, value: v, fusedBias: causalLowerRight(4, 5), options: AttentionOptions())
        }
        #expect(throws: SDPAError.invalidArgument(argument: "dropoutP", value: "2.0", reason: "a dropout probability must be in 0...1")) {
            try _PreparedAttention(query: q, key: k, value: v, fusedBias: causalLowerRight(4, 5), options: AttentionOptions(dropoutP: 2))
        }
        // What it runs is what the entry point runs, whichever init prepared it.
        let prepared = try _PreparedAttention(query: q, key: k, value: v, attnMask: causalLowerRight(4, 5), options: AttentionOptions())
        expectIdentical(try prepared.run(), try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(4, 5)))
        let alibi = AlibiBias(slopes: [0.5, 0.25, 0.125], seqLenQ: 4, seqLenKV: 5, causal: .lowerRight)
        let typed = try _PreparedAttention(query: q, key: k, value: v, fusedBias: alibi, options: AttentionOptions(scale: 0.3))
        expectIdentical(try typed.run(), try scaledDotProductAttention(query: q, key: k, value: v, attnMask: alibi, scale: 0.3))
    }

    @Test func aCustomDispatchErrorReachesTheCaller() throws {
        let (q, k, v) = try inputs()
        #expect(throws: RefusingDispatchBias.refusal) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: RefusingDispatchBias())
        }
        // The prepared call used to answer with the query instead of the error.
        let prepared = try _PreparedAttention(query: q, key: k, value: v, attnMask: RefusingDispatchBias(), options: AttentionOptions())
        #expect(throws: RefusingDispatchBias.refusal) { try prepared.run() }
        // explainSDPA says a custom dispatch chooses for itself.
        let explanation = try explainSDPA(query: q, key: k, value: v, attnMask: RefusingDispatchBias())
        #expect(explanation.backend == nil && explanation.route.contains("custom dispatch"))
    }

    @Test func isCausalWithABiasOnTheLogSumExpEntryPoint() throws {
        let (q, k, v) = try inputs()
        #expect(throws: SDPAError.causalWithBias(bias: "AlibiBias")) {
            try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: AlibiBias(numHeads: 3, seqLenQ: 4, seqLenKV: 5), isCausal: true)
        }
        #expect(throws: SDPAError.causalWithBias(bias: "TensorBias")) {
            try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: TensorBias(try Tensor(zeros: [4, 5])) as any AttnBias, isCausal: true)
        }
    }

    @Test func explainThrowsWhatTheCallWould() throws {
        let (q, k, v) = try inputs()
        #expect(throws: SDPAError.invalidArgument(argument: "dropoutP", value: "-0.5", reason: "a dropout probability must be in 0...1")) {
            try explainSDPA(query: q, key: k, value: v, dropoutP: -0.5)
        }
        #expect(throws: SDPAError.causalWithBias(bias: "TensorBias")) {
            try explainSDPA(query: q, key: k, value: v, attnMask: TensorBias(try Tensor(zeros: [4, 5], dtype: .bool)), isCausal: true)
        }
        #expect(throws: SDPAError.maskNotBroadcastable(mask: [3, 5], target: [2, 3, 4, 5])) {
            try explainSDPA(query: q, key: k, value: v, attnMask: TensorBias(try Tensor(zeros: [3, 5], dtype: .bool)))
        }
        #expect(throws: SDPAError.dtypeMismatch(query: .float32, key: .float16, value: .float32)) {
            try explainSDPA(query: q, key: k.converted(to: .float16), value: v)
        }
        // With no backend allowed it explains rather than throws.
        let none = try withSDPBackends([]) { try explainSDPA(query: q, key: k, value: v) }
        #expect(none.backend == nil && none.rejected.count == SDPBackend.allCases.count)
    }
}
