import Foundation
import SDPA
import SDPATestSupport
import Testing

/// One case of `Fixtures/bias_manifest.json`: the biases beyond the RFC (windows, packed sequences,
/// key padding, soft-capping) and their compositions, against PyTorch's float64 math path.
struct BiasFixtureCase: Sendable, CustomTestStringConvertible {
    let name: String
    let layout: String
    let query: String, key: String, value: String, output: String
    let scale: Double?
    let enableGQA: Bool
    let parts: [[String: FixtureValue]]

    var testDescription: String { name }

    static let all: [BiasFixtureCase] = FixtureManifest("bias_manifest.json", in: FixtureCase.directory).cases.map { c in
        BiasFixtureCase(
            name: c["name"] as! String, layout: c["layout"] as! String,
            query: c["query"] as! String, key: c["key"] as! String, value: c["value"] as! String,
            output: c["output"] as! String, scale: (c["scale"] as? NSNumber)?.doubleValue,
            enableGQA: c["enableGQA"] as! Bool,
            parts: (c["biases"] as! [[String: Any]]).map { $0.mapValues(FixtureValue.init) })
    }

    /// The same loading conventions as the RFC fixtures.
    var files: FixtureCase {
        FixtureCase(name: name, layout: layout, query: query, key: key, value: value, output: output,
                    bias: [:], isCausal: false, scale: scale, enableGQA: enableGQA, dtype: "float32")
    }

    /// The parts, composed left to right into one fused bias.
    func bias(_ shape: AttentionShape) throws -> any FusedAttnBias {
        try composedBias(parts, shape)
    }
}

@Suite("PyTorch fixtures: biases beyond the RFC")
struct BiasFixtureTests {
    @Test("fused matches PyTorch's float64 math path", arguments: BiasFixtureCase.all)
    func matchesPyTorch(_ fixture: BiasFixtureCase) throws {
        let (q, k, v) = try fixture.files.inputs()
        let expected = try fixture.files.load(fixture.output)
        let shape = try AttentionShape(query: q, key: k, value: v, enableGQA: fixture.enableGQA)
        let bias = try fixture.bias(shape)
        let fused = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: fixture.scale, enableGQA: fixture.enableGQA)
        expectClose(fused, expected, .float32, "\(fixture.name) fused", dtype: q.dtype)
        let math = try withSDPBackends([.math]) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: fixture.scale, enableGQA: fixture.enableGQA)
        }
        expectClose(math, expected, .float32, "\(fixture.name) math", dtype: q.dtype)
    }
}
