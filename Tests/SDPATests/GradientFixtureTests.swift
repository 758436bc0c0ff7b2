import Foundation
import SDPA
import SDPATestSupport
import Testing

/// One case of `Fixtures/grad_manifest.json` (`Fixtures/make_grad_fixtures.py`): PyTorch's float64
/// autograd gradients of attention for every built-in bias and compositions, float and bool masks of
/// every broadcast shape, ALiBi slopes, GQA, Ev ≠ E, decoding, 3-D and strided inputs, dropout with the
/// package's generator, sizes across the fused kernel's tiles, learned attention sinks (their gradient too), and
/// float masks composed with other parts (the gradient that reaches the mask's part).
struct GradientFixtureCase: Sendable, CustomTestStringConvertible {
    /// The input files, `bias` (a `TensorBias` mask), `isCausal`, scale and GQA, read as the RFC fixtures are.
    let files: FixtureCase
    let parts: [[String: FixtureValue]]
    let gradOutput: String
    let gradQuery: String, gradKey: String, gradValue: String
    let gradMask: String?
    let alibiSlopesGradient: [[Double]]
    let dropout: (p: Float, seed: UInt64)?
    /// The forward's float64 output, for the dropout cases.
    let output: String?
    let fullyMaskedRows: Int
    /// The sink cases' file of `H` float32 logits and PyTorch's float64 `dL/dsinks`.
    let sinks: String?, sinksGradient: [Double]?
    /// With parts, the mask (`files.bias`) is composed with them as part number `maskPart`.
    let maskPart: Int?

    var testDescription: String { files.name }

    static let expectedCount = 58

    static let all: [GradientFixtureCase] = FixtureManifest("grad_manifest.json", in: FixtureCase.directory).cases.map { c in
        let dropout = c["dropout"] as? [String: Any]
        return GradientFixtureCase(
            files: FixtureCase(
                name: c["name"] as! String, layout: c["layout"] as! String,
                query: c["query"] as! String, key: c["key"] as! String, value: c["value"] as! String, output: "",
                bias: (c["bias"] as? [String: Any])?.mapValues(FixtureValue.init) ?? [:],
                isCausal: c["isCausal"] as! Bool, scale: (c["scale"] as? NSNumber)?.doubleValue,
                enableGQA: c["enableGQA"] as! Bool, dtype: c["dtype"] as! String),
            parts: (c["biases"] as? [[String: Any]] ?? []).map { $0.mapValues(FixtureValue.init) },
            gradOutput: c["gradOutput"] as! String,
            gradQuery: c["gradQuery"] as! String, gradKey: c["gradKey"] as! String, gradValue: c["gradValue"] as! String,
            gradMask: c["gradMask"] as? String,
            alibiSlopesGradient: (c["alibiSlopesGradient"] as? [[NSNumber]] ?? []).map { $0.map(\.doubleValue) },
            dropout: dropout.map { ((($0["p"] as! NSNumber).floatValue), ($0["seed"] as! NSNumber).uint64Value) },
            output: c["output"] as? String,
            fullyMaskedRows: c["fullyMaskedRows"] as! Int,
            sinks: c["sinks"] as? String, sinksGradient: (c["sinksGradient"] as? [NSNumber])?.map(\.doubleValue),
            maskPart: c["maskPart"] as? Int)
    }

    /// The bias the case describes: its parts composed (its mask among them as a `TensorBias`), its mask alone, or `nil`.
    func bias(_ shape: AttentionShape) throws -> (any AttnBias)? {
        guard !parts.isEmpty else { return try files.attnBias(shape) }
        guard let maskPart else { return try composedBias(parts, shape) }
        return try composedBias(parts, shape, inserting: try files.attnBias(shape) as? TensorBias, at: maskPart)
    }

    /// The output's gradient as the test passes it: `BLHE` files viewed as `[B, H, L, Ev]`, as the inputs.
    func loadGradOutput() throws -> Tensor {
        let dO = try files.load(gradOutput)
        return files.layout == "BLHE" ? try dO.transposed(1, 2) : dO
    }

    /// The forward pass and the backward pass the case describes, on inputs `q`, `k`, `v` and `dO`.
    func gradients(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ dO: Tensor) throws -> (output: Tensor, gradients: AttentionGradients) {
        let f = files
        let shape = try AttentionShape(query: q, key: k, value: v, enableGQA: f.enableGQA)
        let (p, seed) = (dropout?.p ?? 0, dropout?.seed)
        let sinks = try self.sinks.map(f.load)
        if let bias = try bias(shape) {
            let (out, lse) = try scaledDotProductAttentionWithLogSumExp(
                query: q, key: k, value: v, attnMask: bias, scale: f.scale, dropoutP: p, dropoutSeed: seed, enableGQA: f.enableGQA,
                sinks: sinks)
            return (out, try scaledDotProductAttentionBackward(
                gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: bias,
                scale: f.scale, dropoutP: p, dropoutSeed: seed, enableGQA: f.enableGQA, sinks: sinks))
        }
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(
            query: q, key: k, value: v, isCausal: f.isCausal, scale: f.scale, dropoutP: p, dropoutSeed: seed, enableGQA: f.enableGQA,
            sinks: sinks)
        return (out, try scaledDotProductAttentionBackward(
            gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, isCausal: f.isCausal,
            scale: f.scale, dropoutP: p, dropoutSeed: seed, enableGQA: f.enableGQA, sinks: sinks))
    }
}

@Suite("PyTorch fixtures: gradients (float64 autograd)")
struct GradientFixtureTests {
    /// The math backward pass computes in `Double` and rounds once: float32 gradients are the float64
    /// reference rounded (to 2⁻²⁴ relative), plus what summing in another order leaves (well under 1e-12
    /// for these magnitudes).
    static let float32 = Tolerance(atol: 1e-12, rtol: 0).roundedOnce(to: .float32)
    /// float64 inputs: the same sums in another order, and nothing rounded to a narrower type.
    static let float64 = Tolerance(atol: 1e-12, rtol: 1e-11)

    /// The fused backward pass: float32 tiles (accumulation over up to ~300 keys or rows) against the
    /// float64 reference: PyTorch's own float32 gradients are within ~2e-6 on these cases; soft-capping's
    /// derivative, `1 − tanh²` of float32 scores, adds up to ~3e-6 (the largest seen, 2.9e-6).
    static let fused = Tolerance(atol: 4e-6, rtol: 4e-6)

    @Test("the math backward pass matches PyTorch's float64 autograd, float32 and float64 inputs", arguments: GradientFixtureCase.all)
    func matchesPyTorch(_ fixture: GradientFixtureCase) throws {
        try withSDPBackends([.math]) { try Self.check(fixture, fused: false) }
    }

    @Test("the fused backward pass matches PyTorch's float64 autograd, float32 inputs", arguments: GradientFixtureCase.all)
    func fusedMatchesPyTorch(_ fixture: GradientFixtureCase) throws {
        try withSDPBackends([.fused]) { try Self.check(fixture, fused: true) }
    }

    /// Gradients (and the dropout cases' outputs) against the fixture's, on the allowed backend:
    /// float32 and float64 inputs on the math one, float32 on the fused one.
    static func check(_ fixture: GradientFixtureCase, fused: Bool) throws {
        let name = fixture.files.name
        let (q, k, v) = try fixture.files.inputs()
        let dO = try fixture.loadGradOutput()
        let expected = (try fixture.files.load(fixture.gradQuery), try fixture.files.load(fixture.gradKey), try fixture.files.load(fixture.gradValue))
        for dtype in fused ? [DType.float32] : [.float32, .float64] {
            let tolerance = fused ? Self.fused : dtype == .float32 ? Self.float32 : Self.float64
            let inputs = dtype == .float32 ? (q, k, v, dO) : (try q.converted(to: dtype), try k.converted(to: dtype), try v.converted(to: dtype), try dO.converted(to: dtype))
            let (output, grads) = try fixture.gradients(inputs.0, inputs.1, inputs.2, inputs.3)
            #expect(grads.query.shape == q.shape && grads.key.shape == k.shape && grads.value.shape == v.shape, "\(name)")
            expectClose(grads.query, expected.0, tolerance, "\(name) \(dtype) dQ", dtype: dtype)
            expectClose(grads.key, expected.1, tolerance, "\(name) \(dtype) dK", dtype: dtype)
            expectClose(grads.value, expected.2, tolerance, "\(name) \(dtype) dV", dtype: dtype)
            if let file = fixture.gradMask {
                let mask = try fixture.files.load(file)
                let got = try #require(grads.attnMask, "\(name): a float mask has a gradient")
                #expect(got.dtype == .float32, "\(name): the mask's gradient has the mask's dtype")
                expectClose(got, mask, fused ? Self.fused : Self.float32, "\(name) \(dtype) dMask", dtype: .float32)
                #expect(grads.attnMaskParts.keys.sorted() == [fixture.maskPart ?? 0], "\(name): the mask's gradient by its part")
            } else {
                #expect(grads.attnMask == nil && grads.attnMaskParts.isEmpty, "\(name): only a float mask has a gradient")
            }
            #expect(grads.biasParameters.count == fixture.alibiSlopesGradient.count, "\(name): one gradient per ALiBi part")
            for (got, want) in zip(grads.biasParameters, fixture.alibiSlopesGradient) {
                #expect(ObjectIdentifier(got.biasType) == ObjectIdentifier(AlibiBias.self))
                expectClose(try #require(got.value as? [Double]), want, fused ? Tolerance(atol: 1e-4, rtol: 1e-5) : Tolerance(atol: 1e-11, rtol: 1e-11),
                            "\(name) \(dtype) dSlopes")
            }
            if let file = fixture.output {
                expectClose(output, try fixture.files.load(file), dtype == .float32 ? .float32 : Self.float64, "\(name) \(dtype) dropout output", dtype: dtype)
            }
            if let want = fixture.sinksGradient {
                let got = try #require(grads.sinks, "\(name): sinks have a gradient")
                #expect(got.dtype == .float32 && got.shape == [want.count], "\(name): dL/dsinks in the sinks' shape and dtype")
                // The fused pass sums float32 rows' D (each a few ulp off) over up to B·L = 262 rows.
                expectClose(got, want, fused ? Tolerance(atol: 2e-6, rtol: 1e-5) : Self.float32, "\(name) \(dtype) dSinks")
            } else {
                #expect(grads.sinks == nil, "\(name): no sinks, no sink gradient")
            }
        }
    }

    @Test("rows that see no key (or one: its weight is 1 whatever the scores) give exactly zero dQ, as in PyTorch",
          arguments: GradientFixtureCase.all.filter { $0.fullyMaskedRows > 0 })
    func fullyMaskedRows(_ fixture: GradientFixtureCase) throws {
        let (q, k, v) = try fixture.files.inputs()
        let grads = try withSDPBackends([.math]) { try fixture.gradients(q, k, v, try fixture.loadGradOutput()).gradients }
        let zero = { (t: Tensor) in t.doubleScalars.chunked(q.shape.last!).map { $0.allSatisfy { $0 == 0 } } }
        let (ours, reference) = (zero(grads.query), zero(try fixture.files.load(fixture.gradQuery)))
        #expect(ours == reference, "\(fixture.files.name): zero rows of dQ at \(ours.indices.filter { ours[$0] })")
        #expect(ours.filter { $0 }.count >= fixture.fullyMaskedRows)
        for g in [grads.query, grads.key, grads.value] { #expect(!g.doubleScalars.contains { $0.isNaN }) }
    }

    @Test("the fused pass: rows that see no key give exactly zero dQ; rows that see one, zero up to float32 rounding",
          arguments: GradientFixtureCase.all.filter { $0.fullyMaskedRows > 0 })
    func fusedFullyMaskedRows(_ fixture: GradientFixtureCase) throws {
        let (q, k, v) = try fixture.files.inputs()
        let dO = try fixture.loadGradOutput()
        let shape = try AttentionShape(query: q, key: k, value: v, enableGQA: fixture.files.enableGQA)
        let (p, seed) = (fixture.dropout?.p ?? 0, fixture.dropout?.seed)
        let lse: Tensor
        if let bias = try fixture.bias(shape) {
            lse = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias, scale: fixture.files.scale,
                                                             dropoutP: p, dropoutSeed: seed, enableGQA: fixture.files.enableGQA).logSumExp
        } else {
            lse = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: fixture.files.isCausal, scale: fixture.files.scale,
                                                             dropoutP: p, dropoutSeed: seed, enableGQA: fixture.files.enableGQA).logSumExp
        }
        let grads = try withSDPBackends([.fused]) { try fixture.gradients(q, k, v, dO).gradients }
        let rows = grads.query.doubleScalars.chunked(q.shape.last!)
        let reference = try fixture.files.load(fixture.gradQuery).doubleScalars.chunked(q.shape.last!)
        for (n, (ours, theirs)) in zip(rows, reference).enumerated() where theirs.allSatisfy({ $0 == 0 }) {
            if lse.doubleScalars[n] == -.infinity {
                #expect(ours.allSatisfy { $0 == 0 }, "\(fixture.files.name): row \(n) sees no key: \(ours)")
            } else {
                #expect(ours.allSatisfy { Swift.abs($0) <= 1e-5 }, "\(fixture.files.name): row \(n) sees one key: \(ours)")
            }
        }
        for g in [grads.query, grads.key, grads.value] { #expect(!g.doubleScalars.contains { $0.isNaN }) }
    }
}

extension Array {
    /// Consecutive slices of `size` elements.
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: Swift.max(1, size)).map { self[$0..<Swift.min(count, $0 + size)] }
    }
}
