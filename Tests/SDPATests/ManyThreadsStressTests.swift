import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// The worker pool and the work queue at many more threads than this machine has cores: calls after
/// one another with changing widths (helpers started, parked, woken as a tree, left out of narrower
/// jobs), and two callers at once (one gets the pool, the other GCD). Correctness and bit-identity
/// with one thread, not speed.
@Suite("Many threads")
struct ManyThreadsStressTests {
    /// Prefill with a causal mask (row-cut and grouped items), GQA decoding (split groups merged by
    /// their last finisher), key padding leaving a batch entry without keys, and many one-tile heads
    /// (float16, causal) whose tiles are cut in two: the two pieces of a tile share one item on few
    /// threads, one item each on many.
    static let cases = [
        FusedCase(batch: 2, heads: 8, group: 2, L: 600, S: 600, E: 32, Ev: 32, bias: "causalUpperLeft"),
        FusedCase(batch: 2, heads: 16, group: 4, L: 1, S: 6000, E: 64, Ev: 64, bias: "none"),
        FusedCase(batch: 3, heads: 1, L: 50, S: 4000, E: 64, Ev: 64, bias: "keyPadding"),
        FusedCase(batch: 16, heads: 8, L: 64, S: 64, E: 64, Ev: 64, dtype: .float16, bias: "causalUpperLeft"),
    ]

    @Test("call after call at 64 threads and other widths, each identical to one thread", arguments: cases)
    func callsInARow(_ c: FusedCase) throws {
        let (q, k, v) = try c.inputs()
        let one = try withSDPBackends([.fused]) { try withSDPAThreads(1) { try c.run(q, k, v) } }
        for round in 0..<3 {
            for threads in [64, 3, 64, 128, 17, 64, 2, 256, 64] {
                let many = try withSDPBackends([.fused]) { try withSDPAThreads(threads) { try c.run(q, k, v) } }
                expectIdentical(many.output, one.output, "\(c.testDescription), round \(round), \(threads) threads: output")
                expectIdentical(many.logSumExp, one.logSumExp, "\(c.testDescription), round \(round), \(threads) threads: log-sum-exp")
            }
        }
    }

    @Test("four callers at once, each asking for 64 threads, all identical to one thread")
    func callersAtOnce() throws {
        let c = Self.cases[0], d = Self.cases[1]
        let (q, k, v) = try c.inputs(), (dq, dk, dv) = try d.inputs()
        let one = try withSDPBackends([.fused]) { try withSDPAThreads(1) { try c.run(q, k, v) } }
        let decodeOne = try withSDPBackends([.fused]) { try withSDPAThreads(1) { try d.run(dq, dk, dv) } }
        final class Failures: @unchecked Sendable {
            let lock = NSLock()
            var messages = [String]()
            func add(_ message: String) { lock.withLock { messages.append(message) } }
        }
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for call in 0..<6 {
                do {
                    let decoding = (caller + call) % 2 == 1
                    let (expected, case_) = decoding ? (decodeOne, d) : (one, c)
                    let result = try withSDPBackends([.fused]) {
                        try withSDPAThreads(64) { decoding ? try case_.run(dq, dk, dv) : try case_.run(q, k, v) }
                    }
                    for (name, a, b) in [("output", result.output, expected.output), ("log-sum-exp", result.logSumExp, expected.logSumExp)] {
                        if let failure = identityFailure(a, b) { failures.add("caller \(caller), call \(call), \(case_.testDescription) \(name): \(failure)") }
                    }
                } catch {
                    failures.add("caller \(caller), call \(call): \(error)")
                }
            }
        }
        #expect(failures.messages.isEmpty, "\(failures.messages.joined(separator: "\n"))")
    }

    @Test("the stress cases' items are grouped differently at 2 and 64 threads, so equal bits test that grouping changes none")
    func groupingDiffers() throws {
        let c = Self.cases[0]
        let p = try predictSDPAScaling(shape: c.shape, attnMask: causalUpperLeft(c.L, c.S), enableGQA: true, threads: [2, 64])
        #expect(p[0].workItems != p[1].workItems || p[0].claims != p[1].claims, "\(p[0]) vs \(p[1])")
    }

    @Test("a tile cut in pieces for many threads is one item on one or two: its key tiles packed once, not once a piece")
    func piecesOfOneTileShareAnItem() throws {
        let c = Self.cases[3], tiles = c.batch * c.heads
        let p = try predictSDPAScaling(shape: c.shape, attnMask: causalUpperLeft(c.L, c.S), threads: [1, 2, 64])
        // Cut: at 64 threads some tiles run as two items. Shared: on one thread every tile is one item,
        // on two all but the last few.
        #expect(p[2].workItems > tiles, "\(p[2])")
        #expect(p[0].workItems == tiles, "\(p[0])")
        #expect(p[1].workItems <= tiles + 8, "\(p[1])")
    }
}
