import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

// The sweep of the fused kernel against the math backend runs per kernel family in
// SDPAKernelTests (FusedSweepTests); these are the fused kernel's other properties.
@Suite("Fused kernel")
struct FusedKernelTests {
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

    /// Sized so that every call has several work items at each thread count: tiles cut into pieces of
    /// fewer rows, keys split and merged (GQA decoding, rows fully masked by key padding), a dense mask
    /// handed out heads first, several pieces sharing one item.
    static let threadCases = [
        FusedCase(heads: 3, L: 200, S: 301, E: 40, bias: "alibiLowerRight"),
        FusedCase(heads: 1, L: 513, S: 1030, E: 64, bias: "causalLowerRight"),
        FusedCase(batch: 2, heads: 4, group: 2, L: 97, S: 130, E: 16, bias: "floatMaskB1LS"),
        FusedCase(heads: 1, L: 1, S: 8000, E: 64, bias: "none"),
        FusedCase(batch: 2, heads: 8, group: 2, L: 650, S: 200, E: 16, bias: "alibiLowerRight"),
        FusedCase(batch: 3, heads: 4, group: 2, L: 300, S: 1030, E: 8, Ev: 8, bias: "keyPadding"),
        FusedCase(heads: 2, L: 400, S: 400, E: 128, Ev: 128, bias: "causalUpperLeft"),
        FusedCase(batch: 3, heads: 1, L: 50, S: 4000, E: 64, Ev: 64, bias: "keyPadding"),
        FusedCase(heads: 8, group: 4, L: 1, S: 4000, E: 64, Ev: 64, bias: "none"),
        FusedCase(batch: 2, heads: 4, L: 300, S: 500, E: 32, bias: "boolMaskLS"),
    ]

    @Test("one, two, seven and 64 threads give identical bits, and the runs on several threads used several", arguments: threadCases)
    func threadCountDoesNotChangeBits(_ c: FusedCase) throws {
        let (q, k, v) = try c.inputs()
        func run(threads: Int) throws -> (output: Tensor, logSumExp: Tensor, workers: Int) {
            let (result, workers) = try SDPAWorkerCount.counting {
                try withSDPBackends([.fused]) { try withSDPAThreads(threads) { try c.run(q, k, v) } }
            }
            return (result.output, result.logSumExp, workers)
        }
        let one = try run(threads: 1)
        #expect(one.workers == 1, "a one-thread call took work on \(one.workers) threads")
        for threads in [2, 7, 64] {
            // On a busy machine a helper may arrive after the caller has emptied the queue: a few
            // tries (each checked bit for bit) show that the threads do share the call.
            var most = 0
            for _ in 0..<8 where most < 2 {
                let many = try run(threads: threads)
                expectIdentical(many.output, one.output, "\(c.testDescription), \(threads) threads: output")
                expectIdentical(many.logSumExp, one.logSumExp, "\(c.testDescription), \(threads) threads: log-sum-exp")
                #expect(many.workers <= threads)
                most = max(most, many.workers)
            }
            #expect(most > 1, "\(c.testDescription): no \(threads)-thread call took work on more than one thread, so equal bits prove nothing")
        }
    }

    @Test("withSDPAThreads clamps counts below 1 to one thread")
    func threadCountIsClamped() throws {
        let c = Self.threadCases[1]
        let (q, k, v) = try c.inputs()
        let one = try withSDPAThreads(1) { try c.run(q, k, v) }
        for threads in [0, -3] {
            #expect(withSDPAThreads(threads) { SDPAThreads.count } == 1)
            #expect(withSDPAThreads(threads) { SDPAThreads.effectiveCount } == 1)
            let (clamped, workers) = try SDPAWorkerCount.counting { try withSDPAThreads(threads) { try c.run(q, k, v) } }
            #expect(workers == 1, "withSDPAThreads(\(threads)) took work on \(workers) threads")
            expectIdentical(clamped.output, one.output, "withSDPAThreads(\(threads))")
        }
        #expect(SDPAThreads.count == nil && SDPAThreads.effectiveCount == ProcessInfo.processInfo.activeProcessorCount)
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
        let (k1, v1) = (try k.sliced(0..<split, along: 2), try v.sliced(0..<split, along: 2))
        let (k2, v2) = (try k.sliced(split..<50, along: 2), try v.sliced(split..<50, along: 2))
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
        expectClose(try Tensor(shape: whole.shape, scalars: merged), whole, .float32, "merged")
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
        expectIdentical(viewed, copied, "[B, L, H, E] views")
    }

    @Test("float32 runs fused (dropout included) and float64 falls back to math, as explained")
    func backendChoice() throws {
        let (q, k, v) = try FusedCase().inputs()
        #expect(try explainSDPA(query: q, key: k, value: v, attnMask: causalLowerRight(17, 33)).backend == .fused)
        let dropout = try explainSDPA(query: q, key: k, value: v, dropoutP: 0.1)
        #expect(dropout.backend == .fused)
        #expect(dropout.rejected[.fused] == nil)
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
