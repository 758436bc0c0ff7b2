import Foundation
import SDPA
import Testing

// Tolerances against PyTorch's float64 math-path references (Fixtures/make_fixtures.py):
// float32 inputs and output, |out - ref| <= atol + rtol * |ref|.
let float32Tolerance = (atol: 1e-5, rtol: 1e-5)
// float16 output (rounding alone is 2^-11 relative), as PyTorch's CPU SDPA tests allow.
let float16Tolerance = (atol: 1e-3, rtol: 1e-3)

/// One case of `Fixtures/manifest.json`.
struct FixtureCase: Sendable, CustomTestStringConvertible {
    let name: String
    let layout: String
    let query: String, key: String, value: String, output: String
    let bias: [String: FixtureValue]
    let isCausal: Bool
    let scale: Float?
    let enableGQA: Bool
    let dtype: String

    var testDescription: String { name }

    static let directory: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static let all: [FixtureCase] = manifestCases("manifest.json").map(FixtureCase.init(manifestEntry:))

    /// The `cases` of a manifest in the fixtures folder; empty when the file is missing (each
    /// fixture suite has a test that counts its cases).
    static func manifestCases(_ file: String) -> [[String: Any]] {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent(file)) else { return [] }
        let json = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        return json["cases"] as! [[String: Any]]
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

    /// The bias the case describes, or `nil` for none.
    func attnBias(queryHeads: Int, seqLenQ: Int, seqLenKV: Int) throws -> (any AttnBias)? {
        func variant(_ v: FixtureValue?) -> CausalVariant? {
            if case .string(let s)? = v { return CausalVariant(rawValue: s)! }
            return nil
        }
        switch bias["kind"] {
        case .string("causal"):
            return CausalBias(variant: variant(bias["variant"])!, seqLenQ: seqLenQ, seqLenKV: seqLenKV)
        case .string("alibi"):
            let slopes: [Float]
            if case .numbers(let given)? = bias["slopes"] { slopes = given.map(Float.init) }
            else { slopes = AlibiBias.standardSlopes(numHeads: queryHeads) }
            return AlibiBias(slopes: slopes, seqLenQ: seqLenQ, seqLenKV: seqLenKV, causal: variant(bias["causal"]))
        case .string("tensor"):
            guard case .string(let file)? = bias["mask"] else { return nil }
            return TensorBias(try load(file))
        default:
            return nil
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
            isCausal: c["isCausal"] as! Bool, scale: (c["scale"] as? NSNumber)?.floatValue,
            enableGQA: c["enableGQA"] as! Bool, dtype: c["dtype"] as! String)
    }
}

/// The JSON values a fixture's bias description holds.
enum FixtureValue: Sendable, Equatable {
    case string(String), numbers([Double]), null
    init(_ any: Any) {
        if let s = any as? String { self = .string(s) }
        else if let a = any as? [NSNumber] { self = .numbers(a.map(\.doubleValue)) }
        else if let n = any as? NSNumber { self = .numbers([n.doubleValue]) }
        else { self = .null }
    }
}

/// Checks `|actual - expected| <= max(atol + rtol * |expected|, floor)` element by element and reports
/// the element that exceeds its bound the most.
func expectClose(
    _ actual: Tensor, _ expected: Tensor, _ tolerance: (atol: Double, rtol: Double), _ label: String,
    floor: Double = 0, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.shape == expected.shape, "\(label): shape", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    let (a, e) = (actual.doubleScalars, expected.doubleScalars)
    var worst = (index: -1, excess: 0.0)
    for i in a.indices {
        let excess = abs(a[i] - e[i]) - max(tolerance.atol + tolerance.rtol * abs(e[i]), floor)
        // (an infinite expected value makes the bound infinite too: infinities must match exactly)
        if excess > worst.excess || a[i].isNaN != e[i].isNaN || (a[i] != e[i] && (a[i].isInfinite || e[i].isInfinite)) {
            worst = (i, max(excess, 1))
        }
    }
    guard worst.index >= 0 else { return }
    var (rest, at) = (worst.index, [Int](repeating: 0, count: expected.shape.count))
    for d in at.indices.reversed() { (at[d], rest) = (rest % expected.shape[d], rest / expected.shape[d]) }
    let (x, y) = (a[worst.index], e[worst.index])
    Issue.record("\(label): element \(worst.index) \(at) is \(x), expected \(y) (|diff| \(abs(x - y)), allowed \(max(tolerance.atol + tolerance.rtol * abs(y), floor)))", sourceLocation: sourceLocation)
}

@Suite("PyTorch fixtures")
struct FixtureTests {
    @Test("the fixtures are present")
    func fixturesPresent() {
        #expect(FixtureCase.all.count >= 90)
    }

    @Test("matches PyTorch's float64 math path", arguments: FixtureCase.all)
    func matchesPyTorch(_ fixture: FixtureCase) throws {
        let (q, k, v) = try fixture.inputs()
        let expected = try fixture.load(fixture.output)
        let shape = try AttentionShape(query: q, key: k, value: v, enableGQA: fixture.enableGQA)
        let tolerance = fixture.dtype == "float16" ? float16Tolerance : float32Tolerance
        let bias = try fixture.attnBias(queryHeads: shape.queryHeads, seqLenQ: shape.queryLength, seqLenKV: shape.keyLength)

        let out: Tensor
        if let bias {
            out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: fixture.scale, enableGQA: fixture.enableGQA)
            // The same bias through its own materialized mask must agree: the RFC's two routes.
            let materialized = try scaledDotProductAttention(
                query: q, key: k, value: v, attnMask: TensorBias(try bias.materialize(device: .cpu)),
                scale: fixture.scale, enableGQA: fixture.enableGQA)
            expectClose(materialized, expected, tolerance, "\(fixture.name) materialized")
        } else {
            out = try scaledDotProductAttention(
                query: q, key: k, value: v, isCausal: fixture.isCausal, scale: fixture.scale, enableGQA: fixture.enableGQA)
        }
        #expect(out.dtype == q.dtype)
        expectClose(out, expected, tolerance, fixture.name)
    }

    @Test("standard ALiBi slopes match the paper's get_slopes")
    func standardSlopes() throws {
        let data = try Data(contentsOf: FixtureCase.directory.appendingPathComponent("alibi_standard_slopes.json"))
        let table = try JSONSerialization.jsonObject(with: data) as! [String: [Double]]
        #expect(table.count >= 16)
        for (n, expected) in table {
            let slopes = AlibiBias.standardSlopes(numHeads: Int(n)!)
            #expect(slopes.count == expected.count, "n = \(n)")
            for (s, e) in zip(slopes, expected) {
                #expect(abs(Double(s) - e) <= 1e-7 * e, "n = \(n): \(s) vs \(e)")
            }
        }
        #expect(AlibiBias.standardSlopes(numHeads: 0).isEmpty)
    }
}
