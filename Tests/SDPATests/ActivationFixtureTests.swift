import Foundation
import SDPA
import SDPATestSupport
import Testing

/// One case of `Fixtures/activation_manifest.json` (`Fixtures/make_activation_fixtures.py`): transformer-like
/// activations (GPT-2-like channel scales, massive-activation channels with scores in the hundreds,
/// near-uniform attention, value outliers) against PyTorch's float64 math path.
///
/// On scores in the hundreds no float32 attention reaches 1e-5 against float64 (a float32 score of ~400
/// carries ~2e-5 of rounding error), so each case carries PyTorch's own float32 error on the same inputs.
struct ActivationFixtureCase: Sendable, CustomTestStringConvertible {
    /// The files, `bias` and `isCausal`, read as the RFC fixtures are.
    let files: FixtureCase
    /// The soft-cap case's parts, in `bias_manifest.json`'s form; `nil` when the case has a `bias`.
    let parts: [[String: FixtureValue]]?
    let logSumExp: String
    let fullyMaskedRows: Int
    /// max |PyTorch float32 - float64 reference| on the same inputs and mask (float32 cases).
    let torchFloat32MaxAbsError: Double?
    /// The same for PyTorch's float32 log-sum-exp, where its kernel returns one.
    let torchFloat32LogSumExpMaxAbsError: Double?

    var testDescription: String { files.name }

    static let all: [ActivationFixtureCase] = FixtureManifest("activation_manifest.json", in: FixtureCase.directory).cases.map { c in
        ActivationFixtureCase(
            files: FixtureCase(manifestEntry: c),
            parts: (c["biases"] as? [[String: Any]])?.map { $0.mapValues(FixtureValue.init) },
            logSumExp: c["logSumExp"] as! String,
            fullyMaskedRows: c["fullyMaskedRows"] as! Int,
            torchFloat32MaxAbsError: (c["torchFloat32MaxAbsError"] as? NSNumber)?.doubleValue,
            torchFloat32LogSumExpMaxAbsError: (c["torchFloat32LogSumExpMaxAbsError"] as? NSNumber)?.doubleValue)
    }

    /// Runs the case on the fused kernel with its bias: parts composed as in `BiasFixtureTests`,
    /// otherwise the RFC fixtures' bias types (or `isCausal`).
    func run(_ q: Tensor, _ k: Tensor, _ v: Tensor) throws -> (output: Tensor, logSumExp: Tensor) {
        let f = files
        let shape = try AttentionShape(query: q, key: k, value: v, enableGQA: f.enableGQA)
        return try withSDPBackends([.fused]) { () throws -> (output: Tensor, logSumExp: Tensor) in
            if let parts {
                let composed = try composedBias(parts, shape)
                return try scaledDotProductAttentionWithLogSumExp(
                    query: q, key: k, value: v, attnMask: composed, scale: f.scale, enableGQA: f.enableGQA)
            }
            if let bias = try f.attnBias(shape) {
                return try scaledDotProductAttentionWithLogSumExp(
                    query: q, key: k, value: v, attnMask: bias, scale: f.scale, enableGQA: f.enableGQA)
            }
            return try scaledDotProductAttentionWithLogSumExp(
                query: q, key: k, value: v, isCausal: f.isCausal, scale: f.scale, enableGQA: f.enableGQA)
        }
    }
}

@Suite("PyTorch fixtures: transformer-like activations")
struct ActivationFixtureTests {
    /// float32: within 1e-5 + 1e-5 |ref| or twice PyTorch's own float32 error on the case, whichever is larger;
    /// float16: the float32 tolerance with the output's rounding (`Tolerance.roundedOnce(to:)`). Fully masked rows: exactly 0, log-sum-exp -inf.
    @Test("fused kernel is no worse than twice PyTorch's float32", arguments: ActivationFixtureCase.all)
    func matchesReference(_ fixture: ActivationFixtureCase) throws {
        let name = fixture.files.name
        let (q, k, v) = try fixture.files.inputs()
        let expected = try fixture.files.load(fixture.files.output)
        let expectedLSE = try fixture.files.load(fixture.logSumExp)
        let (out, lse) = try fixture.run(q, k, v)

        if fixture.files.dtype == "float16" {
            expectClose(out, expected, FixtureCase.tolerance("float16"), name, dtype: q.dtype)
        } else {
            let torchError = try #require(fixture.torchFloat32MaxAbsError, "\(name): no torchFloat32MaxAbsError")
            expectClose(out, expected, .float32, name, dtype: q.dtype, floor: 2 * torchError)
        }
        expectClose(lse, expectedLSE, .float32, "\(name) log-sum-exp", dtype: .float32,
                    floor: 2 * (fixture.torchFloat32LogSumExpMaxAbsError ?? 0))

        // Rows that see no key: exactly 0 and -inf (the tolerance above would let a tiny value through).
        let (rows, lses, refLSEs) = (out.doubleScalars, lse.doubleScalars, expectedLSE.doubleScalars)
        let width = expected.shape.last!
        var masked = 0
        for r in refLSEs.indices where refLSEs[r] == -.infinity {
            masked += 1
            let row = rows[r * width..<(r + 1) * width]
            if let j = row.firstIndex(where: { $0 != 0 }) {
                Issue.record("\(name): fully masked row \(r) has element \(j - r * width) = \(row[j]), expected exactly 0")
            }
            #expect(lses[r] == -.infinity, "\(name): fully masked row \(r) has log-sum-exp \(lses[r]), expected -inf")
        }
        #expect(masked == fixture.fullyMaskedRows, "\(name): \(masked) fully masked rows in the reference")
    }
}
