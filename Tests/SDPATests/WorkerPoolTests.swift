import Foundation
@_spi(Testing) import SDPA
import Testing

/// The helper threads that stay awake between calls: many callers at once (one gets the pool, the
/// others GCD), calls back to back (helpers arriving late to a job, or early to the next), decoding
/// shapes with their merge step: every result must carry the bits of a one-thread run.
@Suite("Worker pool")
struct WorkerPoolTests {
    static let cases = [
        FusedCase(heads: 8, L: 64, S: 64, E: 64, bias: "none"),
        FusedCase(batch: 2, heads: 4, group: 2, L: 1, S: 700, E: 32, bias: "keyPadding"),
        FusedCase(heads: 2, L: 150, S: 90, E: 24, bias: "boolMaskLS"),
    ]

    @Test("calls back to back and from eight tasks at once give the bits of one thread")
    func concurrentAndBackToBack() async throws {
        var expected: [[UInt32]] = []
        for c in Self.cases {
            let (q, k, v) = try c.inputs()
            expected.append(try withSDPBackends([.fused]) { try withSDPAThreads(1) { try c.run(q, k, v) } }.output.scalars.map(\.bitPattern))
        }
        let reference = expected
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for call in 0..<60 {
                        let n = (task + call) % Self.cases.count, c = Self.cases[n]
                        let (q, k, v) = try c.inputs()
                        let out = try withSDPBackends([.fused]) { try withSDPAThreads(2) { try c.run(q, k, v) } }
                        if out.output.scalars.map(\.bitPattern) != reference[n] { wrong += 1 }
                    }
                    return wrong
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }
}
