import Foundation
import SDPA
import SDPATestSupport
import Testing

// Tolerances against PyTorch's float64 math-path references (Fixtures/make_fixtures.py):
// float32 inputs and output within Tolerance.float32; float16 outputs are the float32 result
// rounded once (Tolerance.roundedOnce(to:)).

/// One case of `Fixtures/manifest.json`.
struct FixtureCase: Sendable, CustomTestStringConvertible {
    let name: String
    let layout: String
    let query: String, key: String, value: String, output: String
    let bias: [String: FixtureValue]
    let isCausal: Bool
    let scale: Double?
    let enableGQA: Bool
    let dtype: String

    var testDescription: String { name }

    static let directory: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static let all: [FixtureCase] = FixtureManifest("manifest.json", in: directory).cases.map(FixtureCase.init(manifestEntry:))

    /// The tolerance against the float64 reference for an output of `dtype`.
    static func tolerance(_ dtype: String) -> Tolerance {
        dtype == "float32" ? .float32 : Tolerance.float32.roundedOnce(to: DType(rawValue: dtype) ?? .float32)
    }

    func load(_ file: String) throws -> Tensor {
        try Tensor(contentsOf: FixtureCase.directory.appendingPathComponent(file))
    }

    /// Inputs as the test should pass them: `BLHE` files become non-contiguous `[B, H, L, E]` views.
    func inputs() throws -> (q: Tensor, k: Tensor, v: Tensor) {
        var (q, k, v) = (try load(query), try load(key), try load(value))
        if layout == "BLHE" {
            (q, k, v) = (try q.transposed(1, 2), try k.transposed(1, 2), try v.transposed(1, 2))
            #expect(!q.isContiguous)
        }
        return (q, k, v)
    }

    /// The bias the case describes (`causal` and `alibi` as `bias_manifest.json`'s parts, a `tensor`
    /// as a `TensorBias` of its mask file), or `nil` for none.
    func attnBias(_ shape: AttentionShape) throws -> (any AttnBias)? {
        switch bias["kind"] {
        case .string("causal"), .string("alibi"): return try composedBias([bias], shape)
        case .string("tensor"):
            guard case .string(let file)? = bias["mask"] else { return nil }
            return TensorBias(try load(file))
        default: return nil
        }
    }
}

extension FixtureCase {
    /// A case from its manifest entry: the fields of `manifest.json` (`bias` may be absent: no bias).
    init(manifestEntry c: [String: Any]) {
        self.init(
            name: c["name"] as! String, layout: c["layout"] as! String,
            query: c["query"] as! String, key: c["key"] as! String, value: c["value"] as! String,
            output: c["output"] as! String,
            bias: (c["bias"] as? [String: Any])?.mapValues(FixtureValue.init) ?? [:],
            isCausal: c["isCausal"] as! Bool, scale: (c["scale"] as? NSNumber)?.doubleValue,
            enableGQA: c["enableGQA"] as! Bool, dtype: c["dtype"] as! String)
    }
}

@Suite("PyTorch fixtures")
struct FixtureTests {
    /// A manifest, its exact case count (so that a lost case fails), and the prefix of its files (so
    /// that a file no case names, or a named file that is missing, fails too).
    struct ManifestCount: Sendable, CustomTestStringConvertible {
        let file: String, prefix: String, cases: Int
        var testDescription: String { "\(file): \(cases) cases" }
    }

    static let manifests = [
        ManifestCount(file: "manifest.json", prefix: "", cases: 98),
        ManifestCount(file: "bias_manifest.json", prefix: "bias_", cases: 89),
        ManifestCount(file: "activation_manifest.json", prefix: "act_", cases: 10),
        ManifestCount(file: "tile_manifest.json", prefix: "tile_", cases: TileFixtureCase.expectedCount),
        ManifestCount(file: "grad_manifest.json", prefix: "grad_", cases: GradientFixtureCase.expectedCount),
        ManifestCount(file: "serving_manifest.json", prefix: "serving_", cases: 30),
        ManifestCount(file: "broadcast_manifest.json", prefix: "bcast_", cases: BroadcastFixtureCase.expectedCount),
    ]

    @Test("every manifest has its exact number of cases, and its files are exactly those its cases name", arguments: manifests)
    func manifestAddsUp(_ expected: ManifestCount) {
        let manifest = FixtureManifest(expected.file, in: FixtureCase.directory)
        #expect(manifest.cases.count == expected.cases, "\(expected.file): \(manifest.cases.count) cases")
        let problems = manifest.problems(prefix: expected.prefix, otherPrefixes: Self.manifests.map(\.prefix).filter { $0 != expected.prefix })
        #expect(problems.isEmpty, "\(expected.file): \(problems)")
    }

    @Test("matches PyTorch's float64 math path", arguments: FixtureCase.all)
    func matchesPyTorch(_ fixture: FixtureCase) throws {
        let (q, k, v) = try fixture.inputs()
        let expected = try fixture.load(fixture.output)
        let shape = try AttentionShape(query: q, key: k, value: v, enableGQA: fixture.enableGQA)
        let tolerance = FixtureCase.tolerance(fixture.dtype)
        let bias = try fixture.attnBias(shape)

        let out: Tensor
        if let bias {
            out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: fixture.scale, enableGQA: fixture.enableGQA)
            // The same bias through its own materialized mask must agree: the RFC's two routes.
            let materialized = try scaledDotProductAttention(
                query: q, key: k, value: v, attnMask: TensorBias(try bias.materialize(device: .cpu)),
                scale: fixture.scale, enableGQA: fixture.enableGQA)
            expectClose(materialized, expected, tolerance, "\(fixture.name) materialized", dtype: q.dtype)
        } else {
            out = try scaledDotProductAttention(
                query: q, key: k, value: v, isCausal: fixture.isCausal, scale: fixture.scale, enableGQA: fixture.enableGQA)
        }
        expectClose(out, expected, tolerance, fixture.name, dtype: q.dtype)
    }

    /// The fixtures' inputs in float64 (the values PyTorch's float64 reference took) on the math backend: the
    /// same function to float64's precision, the scale as given included (0.3 rounded to a `Float` would put
    /// the `scale0p3` cases ≈ 1e-8 off). Not the ALiBi cases: ``AlibiBias``'s slopes are `Float`s (the fused
    /// kernels' parameter), which the reference's float64 slopes differ from by up to 2⁻²⁴ relative.
    @Test("float64 inputs match PyTorch's float64 math path to float64 precision",
          arguments: FixtureCase.all.filter { $0.bias["kind"] != .string("alibi") })
    func float64MatchesPyTorch(_ fixture: FixtureCase) throws {
        let (q, k, v) = try fixture.inputs()
        let (q64, k64, v64) = (try q.converted(to: .float64), try k.converted(to: .float64), try v.converted(to: .float64))
        let expected = try fixture.load(fixture.output)
        let shape = try AttentionShape(query: q64, key: k64, value: v64, enableGQA: fixture.enableGQA)
        let out: Tensor
        if let bias = try fixture.attnBias(shape) {
            out = try scaledDotProductAttention(query: q64, key: k64, value: v64, attnMask: bias, scale: fixture.scale, enableGQA: fixture.enableGQA)
        } else {
            out = try scaledDotProductAttention(
                query: q64, key: k64, value: v64, isCausal: fixture.isCausal, scale: fixture.scale, enableGQA: fixture.enableGQA)
        }
        expectClose(out, expected, Tolerance(atol: 1e-12, rtol: 1e-11), "\(fixture.name) float64", dtype: .float64)
    }

    @Test("standard ALiBi slopes match the paper's get_slopes")
    func standardSlopes() throws {
        let data = try Data(contentsOf: FixtureCase.directory.appendingPathComponent("alibi_standard_slopes.json"))
        let table = try JSONSerialization.jsonObject(with: data) as! [String: [Double]]
        #expect(Set(table.keys) == Set((Array(1...16) + [24, 32, 40, 64]).map(String.init)))
        for (n, expected) in table {
            let slopes = AlibiBias.standardSlopes(numHeads: Int(n)!)
            if let failure = closenessFailure(slopes, expected, shape: [expected.count], tolerance: Tolerance(atol: 0, rtol: 1e-14)) {
                Issue.record("n = \(n): \(failure)")
            }
        }
        #expect(AlibiBias.standardSlopes(numHeads: 0).isEmpty)
    }
}
