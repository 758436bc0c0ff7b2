import Foundation
import SDPA
import Testing

/// One case of `Fixtures/bias_manifest.json`: the biases beyond the RFC (windows, packed sequences,
/// key padding, soft-capping) and their compositions, against PyTorch's float64 math path.
struct BiasFixtureCase: Sendable, CustomTestStringConvertible {
    let name: String
    let layout: String
    let query: String, key: String, value: String, output: String
    let scale: Float?
    let enableGQA: Bool
    let parts: [[String: FixtureValue]]

    var testDescription: String { name }

    static let all: [BiasFixtureCase] = FixtureCase.manifestCases("bias_manifest.json").map { c in
        BiasFixtureCase(
            name: c["name"] as! String, layout: c["layout"] as! String,
            query: c["query"] as! String, key: c["key"] as! String, value: c["value"] as! String,
            output: c["output"] as! String, scale: (c["scale"] as? NSNumber)?.floatValue,
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
        try BiasFixtureCase.composedBias(parts, shape)
    }

    /// Manifest bias parts (`bias_manifest.json`'s `biases`), composed left to right into one fused bias.
    static func composedBias(_ parts: [[String: FixtureValue]], _ shape: AttentionShape) throws -> any FusedAttnBias {
        let (L, S) = (shape.queryLength, shape.keyLength)
        func int(_ v: FixtureValue?) -> Int? {
            if case .numbers(let n)? = v, n.count == 1 { return Int(n[0]) }
            return nil
        }
        func ints(_ v: FixtureValue?) -> [Int] {
            if case .numbers(let n)? = v { return n.map { Int($0) } }
            return []
        }
        func variant(_ v: FixtureValue?) -> CausalVariant? {
            if case .string(let s)? = v { return CausalVariant(rawValue: s) }
            return nil
        }
        let biases: [any FusedAttnBias] = try parts.map { part in
            switch part["kind"] {
            case .string("window"):
                return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: int(part["left"]), right: int(part["right"]),
                                         alignment: variant(part["alignment"]) ?? .lowerRight)
            case .string("causal"):
                return CausalBias(variant: variant(part["variant"])!, seqLenQ: L, seqLenKV: S)
            case .string("alibi"):
                let slopes: [Float]
                if case .numbers(let s)? = part["slopes"] { slopes = s.map(Float.init) } else { slopes = AlibiBias.standardSlopes(numHeads: shape.queryHeads) }
                return AlibiBias(slopes: slopes, seqLenQ: L, seqLenKV: S, causal: variant(part["causal"]))
            case .string("blockDiagonal"):
                return BlockDiagonalBias(queryLengths: ints(part["queryLengths"]), keyLengths: ints(part["keyLengths"]), causal: variant(part["causal"]))
            case .string("keyPadding"):
                return KeyPaddingBias(validKeyLengths: ints(part["lengths"]), seqLenKV: S)
            case .string("softCap"):
                guard case .numbers(let cap)? = part["cap"] else { throw SDPAError.invalidArgument(argument: "cap", value: "?", reason: "missing") }
                return SoftCapBias(cap: Float(cap[0]))
            default:
                throw SDPAError.invalidArgument(argument: "kind", value: "\(String(describing: part["kind"]))", reason: "unknown bias part")
            }
        }
        return biases.dropFirst().reduce(biases[0]) { combine($0, $1) }
    }
}

/// Composes two existential fused biases by opening both.
func combine(_ a: any FusedAttnBias, _ b: any FusedAttnBias) -> any FusedAttnBias {
    func open<A: FusedAttnBias>(_ a: A) -> any FusedAttnBias {
        func inner<B: FusedAttnBias>(_ b: B) -> any FusedAttnBias { a.combined(with: b) }
        return inner(b)
    }
    return open(a)
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
        expectClose(fused, expected, float32Tolerance, "\(fixture.name) fused")
        let math = try withSDPBackends([.math]) {
            try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias, scale: fixture.scale, enableGQA: fixture.enableGQA)
        }
        expectClose(math, expected, float32Tolerance, "\(fixture.name) math")
    }

    @Test("the fixtures are present")
    func fixturesPresent() {
        #expect(BiasFixtureCase.all.count >= 20)
    }
}
