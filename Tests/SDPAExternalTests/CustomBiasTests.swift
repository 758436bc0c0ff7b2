// User-defined attention biases, written as a client of the library would: only the public API.
import Foundation
import SDPA
import SDPATestSupport
import Testing

// Tolerances: a custom bias that materializes the same mask as a TensorBias runs the same
// masked path, so most comparisons are exact. The one check against a different kernel
// (PrefixLM with P = 0 vs the structured causal kernel) uses torch.testing's float32 defaults.
private let referenceTolerance = Tolerance(atol: 1e-5, rtol: 1.3e-6)

// MARK: - (a) materialize-only bias

// The bias types are private and prefixed "User" so they cannot collide with the library's
// own (SDPA has KeyPaddingBias and SlidingWindowBias built in) or with other files of this
// test target: they are what a user would write in their own module.

/// A prefix-LM mask: every query sees the first `prefixLength` keys, and after that
/// attends causally (upper-left, key `j` visible to query `i` when `j <= i`).
/// Implements only `materialize(device:)` and `needsMaterialization` (= true), plus a `validate`.
private struct UserPrefixLMBias: AttnBias {
    var prefixLength: Int
    var seqLenQ: Int
    var seqLenKV: Int

    var needsMaterialization: Bool { true }

    func materialize(device: Device) throws -> Tensor {
        try Tensor(shape: [seqLenQ, seqLenKV], bools: (0..<seqLenQ * seqLenKV).map { n in
            let (i, j) = (n / seqLenKV, n % seqLenKV)
            return j < prefixLength || j <= i
        })
    }

    func validate(for shape: AttentionShape) throws {
        if seqLenQ != shape.queryLength {
            throw SDPAError.biasMismatch(bias: "UserPrefixLMBias", parameter: "seqLenQ", expected: shape.queryLength,
                                         actual: seqLenQ, inputs: "\(shape)")
        }
    }
}

// MARK: - (b) bias relying on the default dispatch

/// Key padding: batch `b` has `lengths[b]` real keys, the rest are padding. Materializes a
/// `[B, 1, 1, S]` mask; `needsMaterialization` is false, so the call goes through the
/// protocol's default `dispatch`, which materializes it anyway.
private struct UserPaddingMaskBias: AttnBias {
    var lengths: [Int]
    var seqLenKV: Int

    var needsMaterialization: Bool { false }

    func materialize(device: Device) throws -> Tensor {
        try Tensor(shape: [lengths.count, 1, 1, seqLenKV], bools: lengths.flatMap { n in (0..<seqLenKV).map { $0 < n } })
    }
}

// MARK: - (c) bias with its own dispatch

/// Records calls from concurrently running tests (each bias value owns one log).
private final class UserDispatchLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [AttentionOptions] = []

    func record(_ options: AttentionOptions) {
        lock.lock()
        defer { lock.unlock() }
        entries.append(options)
    }

    var calls: [AttentionOptions] {
        lock.lock()
        defer { lock.unlock() }
        return entries
    }
}

/// Attends to a sliding window of `window` keys ending at the query (lower-right aligned),
/// with a `dispatch` of its own that records the call and delegates to a TensorBias.
private struct UserRecordingWindowBias: AttnBias {
    var window: Int
    var seqLenQ: Int
    var seqLenKV: Int
    var log = UserDispatchLog()

    var needsMaterialization: Bool { false }

    func materialize(device: Device) throws -> Tensor {
        let offset = seqLenKV - seqLenQ
        return try Tensor(shape: [seqLenQ, seqLenKV], bools: (0..<seqLenQ * seqLenKV).map { n in
            let (i, j) = (n / seqLenKV, n % seqLenKV)
            return j <= i + offset && j > i + offset - window
        })
    }

    static func dispatch(
        query: Tensor, key: Tensor, value: Tensor, attnBias: UserRecordingWindowBias, options: AttentionOptions
    ) throws -> Tensor {
        attnBias.log.record(options)
        return try scaledDotProductAttention(
            query: query, key: key, value: value, attnMask: TensorBias(attnBias.materialize(device: .cpu)),
            scale: options.scale, dropoutP: options.dropoutP, dropoutSeed: options.dropoutSeed, enableGQA: options.enableGQA,
            sinks: options.sinks)
    }
}

// MARK: - helpers

/// Calls through the existential, as code holding a heterogeneous list of biases would.
private func existentialCall(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ bias: any AttnBias, scale: Float? = nil,
                             dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false) throws -> Tensor {
    try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: scale,
                                  dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA)
}

// MARK: - tests

@Suite("Custom biases: materialize only (PrefixLM)")
struct PrefixLMBiasTests {
    @Test func maskPattern() throws {
        let mask = try UserPrefixLMBias(prefixLength: 2, seqLenQ: 4, seqLenKV: 5).materialize(device: .cpu)
        #expect(mask.shape == [4, 5])
        #expect(mask.bools == [
            true, true, false, false, false,
            true, true, false, false, false,
            true, true, true, false, false,
            true, true, true, true, false,
        ])
    }

    @Test(arguments: [(4, 5, 2), (5, 5, 3), (6, 3, 1), (3, 7, 0), (3, 7, 7)])
    func genericAndExistentialMatchTensorBias(L: Int, S: Int, P: Int) throws {
        let q = try randn([2, 3, L, 4], seed: 1), k = try randn([2, 3, S, 4], seed: 2), v = try randn([2, 3, S, 5], seed: 3)
        let bias = UserPrefixLMBias(prefixLength: P, seqLenQ: L, seqLenKV: S)
        let expected = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(bias.materialize(device: .cpu)), scale: 0.5)
        let generic = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: 0.5)
        expectIdentical(generic, expected, "generic L=\(L) S=\(S) P=\(P)")
        expectIdentical(try existentialCall(q, k, v, bias, scale: 0.5), expected, "existential L=\(L) S=\(S) P=\(P)")
        #expect(generic.shape == [2, 3, L, 5])
    }

    @Test func prefixChangesTheResultAndZeroPrefixIsCausal() throws {
        let q = try randn([1, 2, 4, 3], seed: 4), k = try randn([1, 2, 6, 3], seed: 5), v = try randn([1, 2, 6, 3], seed: 6)
        let causal = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalUpperLeft(4, 6))
        let noPrefix = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: UserPrefixLMBias(prefixLength: 0, seqLenQ: 4, seqLenKV: 6))
        expectClose(noPrefix, causal, referenceTolerance, "prefix 0 vs causal")
        let prefix = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: UserPrefixLMBias(prefixLength: 3, seqLenQ: 4, seqLenKV: 6))
        #expect(zip(prefix.scalars, causal.scalars).contains { abs($0 - $1) > 1e-3 })
        // The last query sees keys 0...3 either way (3 <= 3): its rows agree.
        #expect(Array(prefix.scalars[9..<12]) == Array(noPrefix.scalars[9..<12]))
    }

    @Test func worksWithGQAAnd3DInputs() throws {
        let q = try randn([4, 3, 2], seed: 7), k = try randn([2, 5, 2], seed: 8), v = try randn([2, 5, 3], seed: 9)
        let bias = UserPrefixLMBias(prefixLength: 2, seqLenQ: 3, seqLenKV: 5)
        let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: true)
        #expect(out.shape == [4, 3, 3])
        expectIdentical(out, try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(bias.materialize(device: .cpu)), enableGQA: true))
        expectIdentical(out, try existentialCall(q, k, v, bias, enableGQA: true))
    }

    @Test func itsValidateRunsOnTheMaterializedPath() throws {
        let q = try randn([1, 1, 4, 3], seed: 10), k = try randn([1, 1, 5, 3], seed: 11), v = try randn([1, 1, 5, 3], seed: 12)
        let bias = UserPrefixLMBias(prefixLength: 1, seqLenQ: 3, seqLenKV: 5)
        let expected = SDPAError.biasMismatch(bias: "UserPrefixLMBias", parameter: "seqLenQ", expected: 4, actual: 3,
                                              inputs: "B=1 H=1 Hkv=1 L=4 S=5 E=3 Ev=3")
        #expect(throws: expected) { try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias) }
        #expect(throws: expected) { try existentialCall(q, k, v, bias) }
        #expect(throws: SDPAError.causalWithBias(bias: "UserPrefixLMBias")) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, isCausal: true)
        }
    }
}

@Suite("Custom biases: default dispatch (key padding)")
struct PaddingMaskBiasTests {
    @Test func genericAndExistentialMatchTensorBias() throws {
        let q = try randn([3, 2, 4, 6], seed: 20), k = try randn([3, 2, 5, 6], seed: 21), v = try randn([3, 2, 5, 2], seed: 22)
        let bias = UserPaddingMaskBias(lengths: [5, 2, 0], seqLenKV: 5)
        let mask = try bias.materialize(device: .cpu)
        #expect(mask.shape == [3, 1, 1, 5])
        let expected = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
        let generic = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
        expectIdentical(generic, expected, "generic")
        expectIdentical(try existentialCall(q, k, v, bias), expected, "existential")
        // Batch 2 has no real keys: zeros, not NaN.
        #expect(generic.scalars[(2 * 2 * 4 * 2)...].allSatisfy { $0 == 0 })
        #expect(generic.scalars.allSatisfy { !$0.isNaN })
    }

    @Test func optionsReachTheDefaultDispatch() throws {
        let q = try randn([2, 4, 3, 5], seed: 23), k = try randn([2, 2, 6, 5], seed: 24), v = try randn([2, 2, 6, 5], seed: 25)
        let bias = UserPaddingMaskBias(lengths: [4, 6], seqLenKV: 6)
        let mask = TensorBias(try bias.materialize(device: .cpu))
        let expected = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: mask, scale: 0.3, dropoutP: 0.2, dropoutSeed: 77, enableGQA: true)
        expectIdentical(try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: 0.3, dropoutP: 0.2, dropoutSeed: 77, enableGQA: true),
                        expected)
        expectIdentical(try existentialCall(q, k, v, bias, scale: 0.3, dropoutP: 0.2, dropoutSeed: 77, enableGQA: true), expected)
    }

    @Test func aMaskOfTheWrongBatchIsReported() throws {
        let q = try randn([2, 1, 3, 4], seed: 26), k = try randn([2, 1, 5, 4], seed: 27), v = try randn([2, 1, 5, 4], seed: 28)
        let bias = UserPaddingMaskBias(lengths: [1, 2, 3], seqLenKV: 5)
        let expected = SDPAError.maskNotBroadcastable(mask: [3, 1, 1, 5], target: [2, 1, 3, 5])
        #expect(throws: expected) { try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias) }
        #expect(throws: expected) { try existentialCall(q, k, v, bias) }
        #expect(throws: SDPAError.invalidArgument(argument: "dropoutP", value: "2.0", reason: "a dropout probability must be in 0...1")) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: UserPaddingMaskBias(lengths: [1, 2], seqLenKV: 5), dropoutP: 2)
        }
    }
}

@Suite("Custom biases: own dispatch (sliding window)")
struct RecordingWindowBiasTests {
    @Test func maskPattern() throws {
        let mask = try UserRecordingWindowBias(window: 2, seqLenQ: 3, seqLenKV: 5).materialize(device: .cpu)
        #expect(mask.bools == [
            false, true, true, false, false,
            false, false, true, true, false,
            false, false, false, true, true,
        ])
    }

    @Test func itsDispatchIsUsedAndMatchesTensorBias() throws {
        let q = try randn([2, 3, 4, 5], seed: 30), k = try randn([2, 3, 6, 5], seed: 31), v = try randn([2, 3, 6, 4], seed: 32)
        let bias = UserRecordingWindowBias(window: 3, seqLenQ: 4, seqLenKV: 6)
        let expected = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(bias.materialize(device: .cpu)))
        #expect(bias.log.calls.isEmpty)

        let generic = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
        #expect(bias.log.calls.count == 1, "the generic call went through UserRecordingWindowBias.dispatch")
        expectIdentical(generic, expected, "generic")

        let existential = try existentialCall(q, k, v, bias)
        #expect(bias.log.calls.count == 2, "the existential call went through UserRecordingWindowBias.dispatch")
        expectIdentical(existential, expected, "existential")

        // Calling the static requirement directly is the same thing.
        expectIdentical(try UserRecordingWindowBias.dispatch(query: q, key: k, value: v, attnBias: bias, options: AttentionOptions()), expected)
        #expect(bias.log.calls.count == 3)
    }

    @Test func itsDispatchReceivesTheOptions() throws {
        let q = try randn([1, 4, 3, 5], seed: 33), k = try randn([1, 2, 5, 5], seed: 34), v = try randn([1, 2, 5, 5], seed: 35)
        let bias = UserRecordingWindowBias(window: 2, seqLenQ: 3, seqLenKV: 5)
        let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: 0.25, dropoutP: 0.1, dropoutSeed: 5, enableGQA: true)
        #expect(bias.log.calls == [AttentionOptions(scale: 0.25, dropoutP: 0.1, dropoutSeed: 5, enableGQA: true)])
        expectIdentical(out, try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(bias.materialize(device: .cpu)),
                                                           scale: 0.25, dropoutP: 0.1, dropoutSeed: 5, enableGQA: true))
        _ = try existentialCall(q, k, v, bias, enableGQA: true)
        #expect(bias.log.calls.last == AttentionOptions(enableGQA: true))
        // The sinks reach the dispatch in its options, from the generic and the existential entry points.
        let sinks = try Tensor(shape: [4], scalars: [Float(0.5), -1, 2, -3])
        let sunk = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, enableGQA: true, sinks: sinks)
        #expect(bias.log.calls.last == AttentionOptions(enableGQA: true, sinks: sinks))
        _ = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias as any AttnBias, enableGQA: true, sinks: sinks)
        #expect(bias.log.calls.last == AttentionOptions(enableGQA: true, sinks: sinks))
        expectIdentical(sunk, try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(bias.materialize(device: .cpu)),
                                                            enableGQA: true, sinks: sinks))
    }

    @Test func isCausalIsRejectedBeforeDispatch() throws {
        let q = try randn([1, 1, 2, 3], seed: 36), k = try randn([1, 1, 2, 3], seed: 37), v = try randn([1, 1, 2, 3], seed: 38)
        let bias = UserRecordingWindowBias(window: 1, seqLenQ: 2, seqLenKV: 2)
        #expect(throws: SDPAError.causalWithBias(bias: "UserRecordingWindowBias")) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, isCausal: true)
        }
        #expect(throws: SDPAError.causalWithBias(bias: "UserRecordingWindowBias")) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias as any AttnBias, isCausal: true)
        }
        #expect(bias.log.calls.isEmpty)
    }
}

@Suite("Custom biases: a heterogeneous list")
struct HeterogeneousBiasTests {
    @Test func everyBiasThroughOneExistentialCallSite() throws {
        let (L, S) = (4, 6)
        let q = try randn([2, 2, L, 3], seed: 40), k = try randn([2, 2, S, 3], seed: 41), v = try randn([2, 2, S, 3], seed: 42)
        let window = UserRecordingWindowBias(window: 3, seqLenQ: L, seqLenKV: S)
        let biases: [any AttnBias] = [
            UserPrefixLMBias(prefixLength: 2, seqLenQ: L, seqLenKV: S),
            UserPaddingMaskBias(lengths: [6, 3], seqLenKV: S),
            window,
            causalLowerRight(L, S),
            AlibiBias(numHeads: 2, seqLenQ: L, seqLenKV: S, causal: .upperLeft),
        ]
        for bias in biases {
            let out = try existentialCall(q, k, v, bias)
            // Built-in biases run their own kernels, so compare within float32 tolerance.
            let dense = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(bias.materialize(device: .cpu)))
            expectClose(out, dense, referenceTolerance, "\(type(of: bias))")
        }
        #expect(window.log.calls.count == 1)
    }
}
