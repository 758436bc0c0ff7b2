import Foundation
import SDPA
import SDPATestSupport
import Testing

/// One case of `Fixtures/serving_manifest.json` (`make_serving_fixtures.py`): chunked causal, prefix-LM and
/// sink-token masks, alone and composed, and learned attention sinks, against PyTorch in float64.
struct ServingFixtureCase: Sendable, CustomTestStringConvertible {
    let name: String
    let query: String, key: String, value: String, output: String, logSumExp: String
    let sinks: String?
    let scale: Double?
    let enableGQA: Bool
    let parts: [[String: FixtureValue]]

    var testDescription: String { name }

    static let all: [ServingFixtureCase] = FixtureManifest("serving_manifest.json", in: FixtureCase.directory).cases.map { c in
        ServingFixtureCase(
            name: c["name"] as! String, query: c["query"] as! String, key: c["key"] as! String, value: c["value"] as! String,
            output: c["output"] as! String, logSumExp: c["logSumExp"] as! String, sinks: c["sinks"] as? String,
            scale: (c["scale"] as? NSNumber)?.doubleValue, enableGQA: c["enableGQA"] as! Bool,
            parts: (c["biases"] as! [[String: Any]]).map { $0.mapValues(FixtureValue.init) })
    }

    func load(_ file: String) throws -> Tensor { try Tensor(contentsOf: FixtureCase.directory.appendingPathComponent(file)) }

    /// The parts composed; a window open on both sides (no mask) when there are none, so that every case
    /// reaches a bias type's dispatch, the one route that takes ``AttentionOptions/sinks`` today.
    func bias(_ shape: AttentionShape) throws -> any FusedAttnBias {
        parts.isEmpty ? SlidingWindowBias(seqLenQ: shape.queryLength, seqLenKV: shape.keyLength, left: nil, right: nil)
            : try composedBias(parts, shape)
    }
}

/// `B.dispatchWithLogSumExp` for a bias whose type is known only at run time.
func dispatchWithLogSumExp<B: FusedAttnBias>(
    _ bias: B, _ q: Tensor, _ k: Tensor, _ v: Tensor, _ options: AttentionOptions
) throws -> (output: Tensor, logSumExp: Tensor) {
    try B.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: bias, options: options)
}

@Suite("PyTorch fixtures: serving biases and attention sinks")
struct ServingFixtureTests {
    @Test("output and log-sum-exp match PyTorch's float64 reference", arguments: ServingFixtureCase.all)
    func matchesPyTorch(_ fixture: ServingFixtureCase) throws {
        let (q, k, v) = (try fixture.load(fixture.query), try fixture.load(fixture.key), try fixture.load(fixture.value))
        let (expected, expectedLSE) = (try fixture.load(fixture.output), try fixture.load(fixture.logSumExp))
        let shape = try AttentionShape(query: q, key: k, value: v, enableGQA: fixture.enableGQA)
        let bias = try fixture.bias(shape)
        let options = AttentionOptions(scale: fixture.scale, enableGQA: fixture.enableGQA, sinks: try fixture.sinks.map(fixture.load))
        // Both backends, sinks or not.
        let backends: [Set<SDPBackend>] = [[.fused], [.math]]
        for allowed in backends {
            let (out, lse) = try withSDPBackends(allowed) { try dispatchWithLogSumExp(bias, q, k, v, options) }
            expectClose(out, expected, .float32, "\(fixture.name) \(allowed.map(\.rawValue).sorted()) output", dtype: .float32)
            expectClose(lse, expectedLSE, .logSumExp, "\(fixture.name) \(allowed.map(\.rawValue).sorted()) log-sum-exp", dtype: .float32)
        }
        // An additive bias also runs through its materialized mask, the RFC's other route.
        if hasAdditiveForm(bias) {
            let mask = TensorBias(try bias.materialize(device: .cpu))
            let (out, lse) = try TensorBias.dispatchWithLogSumExp(query: q, key: k, value: v, attnBias: mask, options: options)
            expectClose(out, expected, .float32, "\(fixture.name) materialized output", dtype: .float32)
            expectClose(lse, expectedLSE, .logSumExp, "\(fixture.name) materialized log-sum-exp", dtype: .float32)
        }
    }

    @Test("the manifest covers every serving part, and sinks with and without fully masked rows")
    func coversTheParts() {
        let kinds = Set(ServingFixtureCase.all.flatMap { $0.parts.compactMap { if case .string(let k)? = $0["kind"] { k } else { nil } } })
        #expect(kinds.isSuperset(of: ["chunkedCausal", "prefixLM", "sinkTokens"]), "\(kinds)")
        #expect(ServingFixtureCase.all.filter { $0.sinks != nil }.count >= 6)
    }
}

/// Whether `bias` has a materialized mask (soft-capping has none).
private func hasAdditiveForm(_ bias: any FusedAttnBias) -> Bool {
    func additive<B: FusedAttnBias>(_ b: B) -> Bool { B.isAdditive }
    return additive(bias)
}
