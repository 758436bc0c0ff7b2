import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// The helper threads that stay awake between calls: many callers at once (one gets the pool, the
/// others GCD), calls back to back (helpers arriving late to a job, or early to the next), decoding
/// shapes with their merge step: every result must carry the bits of a one-thread run, and some of
/// the calls must have shared their work between threads.
@Suite("Worker pool")
struct WorkerPoolTests {
    static let cases = [
        FusedCase(heads: 8, L: 64, S: 64, E: 64, bias: "none"),
        FusedCase(batch: 2, heads: 4, group: 2, L: 1, S: 700, E: 32, bias: "keyPadding"),
        FusedCase(heads: 2, L: 150, S: 90, E: 24, bias: "boolMaskLS"),
    ]

    @Test("calls back to back and from eight tasks at once give the bits of one thread")
    func concurrentAndBackToBack() async throws {
        var expected: [Tensor] = []
        for c in Self.cases {
            let (q, k, v) = try c.inputs()
            expected.append(try withSDPBackends([.fused]) { try withSDPAThreads(1) { try c.run(q, k, v) } }.output)
        }
        let reference = expected
        let (wrong, mostWorkers) = try await withThrowingTaskGroup(of: (wrong: Int, workers: Int).self) { group in
            for task in 0..<8 {
                group.addTask {
                    var (wrong, most) = (0, 0)
                    for call in 0..<60 {
                        let n = (task + call) % Self.cases.count, c = Self.cases[n]
                        let (q, k, v) = try c.inputs()
                        let (out, workers) = try SDPAWorkerCount.counting {
                            try withSDPBackends([.fused]) { try withSDPAThreads(2) { try c.run(q, k, v) } }
                        }
                        if identityFailure(out.output, reference[n]) != nil { wrong += 1 }
                        most = max(most, workers)
                    }
                    return (wrong, most)
                }
            }
            return try await group.reduce((0, 0)) { ($0.0 + $1.wrong, max($0.1, $1.workers)) }
        }
        #expect(wrong == 0, "\(wrong) of 480 calls differ from one thread's bits")
        #expect(mostWorkers == 2, "no call of 480 took work on two threads (most: \(mostWorkers))")
    }

    /// `SDPAThreads.helperSpin`: clamped to 0…1 s; `.zero` lets the first helper sleep right after a call (a smoke
    /// check: the default 200 µs would too), a long spin keeps it awake (the default would have it asleep by the
    /// time we look). Other suites' calls may wake it meanwhile: each check waits for a moment that fits.
    @Test func helperSpinIsSettable() throws {
        let initial = SDPAThreads.helperSpin
        defer { SDPAThreads.helperSpin = initial }
        SDPAThreads.helperSpin = .microseconds(150)
        // Where the helpers are GCD's (Apple systems before macOS 15) there is nothing to set.
        guard SDPAThreads.helperSpin != .zero else { return }
        #expect(SDPAThreads.helperSpin == .microseconds(150))
        SDPAThreads.helperSpin = .seconds(-1)
        #expect(SDPAThreads.helperSpin == .zero)
        SDPAThreads.helperSpin = .milliseconds(-1)
        #expect(SDPAThreads.helperSpin == .zero)
        SDPAThreads.helperSpin = .seconds(5)
        #expect(SDPAThreads.helperSpin == .seconds(1))
        guard ProcessInfo.processInfo.activeProcessorCount >= 2 else { return } // helpers never spin here
        let c = Self.cases[0]
        let (q, k, v) = try c.inputs()
        func call() throws { _ = try withSDPBackends([.fused]) { try withSDPAThreads(2) { try c.run(q, k, v) } } }
        /// Whether `condition` holds at some check within `seconds`.
        func eventually(within seconds: Double, _ condition: () -> Bool) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            repeat { if condition() { return true }; usleep(1000) } while Date() < end
            return false
        }
        SDPAThreads.helperSpin = .zero
        try call()
        #expect(eventually(within: 5) { SDPAThreads._firstHelperIsAsleep }, "the first helper did not sleep with no spin")
        SDPAThreads.helperSpin = .milliseconds(500)
        var awake = false
        for _ in 0..<20 where !awake {
            try call()
            usleep(20_000)
            // 20 ms after the call: past the default spin, well within this one.
            awake = !SDPAThreads._firstHelperIsAsleep
        }
        #expect(awake, "the first helper slept within 20 ms of a 500 ms spin")
    }
}
