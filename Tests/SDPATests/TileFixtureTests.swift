import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// One case of `Fixtures/tile_manifest.json` (`Fixtures/make_tile_fixtures.py`): L and S from 129 to
/// 700, across the fused kernel's query and key tiles, for every built-in bias and compositions, in
/// float32, float16 and bfloat16, against PyTorch's float64 reference.
struct TileFixtureCase: Sendable, CustomTestStringConvertible {
    /// The files, `bias` (a `TensorBias` mask), `isCausal` and `dtype`, read as the RFC fixtures are.
    let files: FixtureCase
    /// The bias parts, composed left to right (none: no bias).
    let parts: [[String: FixtureValue]]
    let logSumExp: String
    let fullyMaskedRows: Int
    /// PyTorch's own max |error| at the case's dtype: the bound for a kernel family that, as PyTorch's
    /// flash kernel does, rounds the probabilities to bfloat16 for `P·V`.
    let torchMaxAbsError: Double

    var testDescription: String { files.name }

    /// The number of cases the generator writes: 25 biases and compositions × 3 dtypes.
    static let expectedCount = 75

    static let all: [TileFixtureCase] = FixtureManifest("tile_manifest.json", in: FixtureCase.directory).cases.map { c in
        TileFixtureCase(
            files: FixtureCase(manifestEntry: c),
            parts: (c["biases"] as? [[String: Any]] ?? []).map { $0.mapValues(FixtureValue.init) },
            logSumExp: c["logSumExp"] as! String,
            fullyMaskedRows: c["fullyMaskedRows"] as! Int,
            torchMaxAbsError: (c["torchMaxAbsError"] as? NSNumber)?.doubleValue ?? .nan)
    }

    var dtype: DType { DType(rawValue: files.dtype)! }

    /// The inputs in the case's dtype: bfloat16 values are stored widened to float32, exactly.
    func inputs() throws -> (Tensor, Tensor, Tensor) {
        let (q, k, v) = try files.inputs()
        guard dtype == .bfloat16 else { return (q, k, v) }
        let narrowed = try (q.converted(to: .bfloat16), k.converted(to: .bfloat16), v.converted(to: .bfloat16))
        for (stored, bf16) in [(q, narrowed.0), (k, narrowed.1), (v, narrowed.2)] {
            expectIdentical(try bf16.converted(to: .float32), stored, "\(files.name): the stored values are bfloat16 values")
        }
        return narrowed
    }

    /// The call the case describes, under the current backend, thread and family choices.
    func run(_ q: Tensor, _ k: Tensor, _ v: Tensor) throws -> (output: Tensor, logSumExp: Tensor) {
        let f = files
        let shape = try AttentionShape(query: q, key: k, value: v, enableGQA: f.enableGQA)
        if !parts.isEmpty {
            return try scaledDotProductAttentionWithLogSumExp(
                query: q, key: k, value: v, attnMask: try composedBias(parts, shape), scale: f.scale, enableGQA: f.enableGQA)
        }
        if let bias = try f.attnBias(shape) {
            return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, scale: f.scale, enableGQA: f.enableGQA)
        }
        return try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: f.isCausal, scale: f.scale, enableGQA: f.enableGQA)
    }
}

@Suite("PyTorch fixtures: across query and key tiles")
struct TileFixtureTests {
    /// Float32 accumulation, then (half precisions) one rounding of the output.
    static func tolerance(_ dtype: DType) -> Tolerance {
        dtype == .float32 ? .float32 : Tolerance.float32.roundedOnce(to: dtype)
    }

    @Test("fused (every kernel family, one thread and the default count) and math match PyTorch's float64", arguments: TileFixtureCase.all)
    func matchesPyTorch(_ fixture: TileFixtureCase) throws {
        let name = fixture.files.name
        let (q, k, v) = try fixture.inputs()
        let expected = try fixture.files.load(fixture.files.output)
        let expectedLSE = try fixture.files.load(fixture.logSumExp)
        let tolerance = Self.tolerance(fixture.dtype)

        var runs = [(String, (output: Tensor, logSumExp: Tensor), roundsProbabilities: Bool)]()
        for family in KernelFamily.available {
            let rounds = try family.run { FusedKernelInstructionSet.multipliesBFloat16Pairs }
            runs.append(("fused, \(family.name)", try family.run { try withSDPAThreads(1) { try withSDPBackends([.fused]) { try fixture.run(q, k, v) } } },
                         rounds && fixture.dtype == .bfloat16))
        }
        let processRounds = FusedKernelInstructionSet.multipliesBFloat16Pairs && fixture.dtype == .bfloat16
        runs.append(("fused, default threads", try withSDPBackends([.fused]) { try fixture.run(q, k, v) }, processRounds))
        runs.append(("math", try withSDPBackends([.math]) { try fixture.run(q, k, v) }, false))
        for (label, result, roundsProbabilities) in runs {
            if roundsProbabilities {
                // P rounded to bfloat16 for P·V (bfloat16 dot products), as PyTorch's flash kernel does:
                // an error of Σ p·|v|·2^-8 per element, not one rounding of the output; held to 1.5 times
                // PyTorch's own worst error on the same inputs (both round the same quantities, to
                // neighbouring bfloat16 values here and there: measured 1.0–1.26 times).
                let errors = zip(result.output.doubleScalars, expected.doubleScalars).map { abs($0 - $1) }
                let worst = errors.contains(where: \.isNaN) ? .nan : errors.max() ?? 0
                #expect(result.output.shape == expected.shape && worst <= 1.5 * fixture.torchMaxAbsError,
                        "\(name) \(label): max |error| \(worst), PyTorch's own \(fixture.torchMaxAbsError)")
            } else {
                expectClose(result.output, expected, tolerance, "\(name) \(label)", dtype: fixture.dtype)
            }
            expectClose(result.logSumExp, expectedLSE, .logSumExp, "\(name) \(label) log-sum-exp", dtype: .float32)
            // Rows that see no key: exactly 0 and -inf (a tolerance would let a tiny value through).
            let (rows, lses, reference) = (result.output.doubleScalars, result.logSumExp.doubleScalars, expectedLSE.doubleScalars)
            let width = expected.shape.last!
            let masked = reference.indices.filter { reference[$0] == -.infinity }
            #expect(masked.count == fixture.fullyMaskedRows, "\(name): the reference has \(masked.count) fully masked rows")
            let wrong = masked.filter { r in lses[r] != -.infinity || rows[r * width..<(r + 1) * width].contains { $0 != 0 } }
            #expect(wrong.isEmpty, "\(name) \(label): fully masked rows \(wrong.prefix(5)) are not exactly 0 with a log-sum-exp of -inf")
        }
        // The default thread count gives the bits of the process's family on one thread.
        let processFamily = try #require(KernelFamily.available.firstIndex { $0.name == FusedKernelInstructionSet.current })
        expectIdentical(runs[KernelFamily.available.count].1.output, runs[processFamily].1.output, "\(name): threads change the bits")
    }
}
