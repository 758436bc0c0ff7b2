import SDPA
import SDPATestSupport
import Testing

/// `scaledDotProductAttention` does not ask for the log-sum-exp, so the fused kernel writes none (a tiny
/// call felt its tensor): what it returns must still be the output of the log-sum-exp variant.
@Suite("Calls that do not ask for the log-sum-exp")
struct OutputOnlyTests {
    static let cases = allSweepBiases.map { FusedCase(heads: 2, L: 70, S: 70, E: 16, bias: $0) } + [
        FusedCase(heads: 8, group: 4, L: 1, S: 300, E: 32, bias: "keyPadding"),
        FusedCase(batch: 2, heads: 4, group: 2, L: 130, S: 260, E: 24, dtype: .bfloat16, bias: "alibiLowerRight"),
        FusedCase(heads: 2, L: 700, S: 700, E: 16, bias: "packedShortComposed"),
    ]

    @Test("give the log-sum-exp variant's output bit for bit, with and without dropout, on either backend", arguments: cases)
    func sameOutput(_ c: FusedCase) throws {
        let (q, k, v) = try c.inputs()
        for backend in [SDPBackend.fused, .math] where backend == .fused || c.L * c.S <= 70 * 70 {
            try withSDPBackends([backend]) {
                expectIdentical(try c.runOutput(q, k, v), try c.run(q, k, v).output, "\(c.testDescription), \(backend)")
                expectIdentical(try c.runOutput(q, k, v, dropoutP: 0.25, dropoutSeed: 7),
                                try c.run(q, k, v, dropoutP: 0.25, dropoutSeed: 7).output, "\(c.testDescription), \(backend), dropout")
            }
        }
    }
}
