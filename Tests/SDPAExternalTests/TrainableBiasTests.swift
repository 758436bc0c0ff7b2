import SDPA
import SDPATestSupport
import Testing

// A user's biases with learnable parameters, written from outside the module as a user would: the
// backward pass hands them their score gradients (TrainableAttnBias) and their parameters' gradients
// must match central differences of the loss in Double.

/// T5's relative-position bias: one learned scalar per head and distance bucket (T5 buckets
/// logarithmically; `min(|j − i|, buckets − 1)` keeps the test readable).
struct T5RelativePositionBias: TrainableAttnBias {
    var table: [Double]  // [H, buckets]
    var buckets: Int, seqLenQ: Int, seqLenKV: Int

    var materializedShape: [Int] { [table.count / buckets, seqLenQ, seqLenKV] }
    func bucket(_ query: Int, _ key: Int) -> Int { Swift.min(buckets - 1, abs(key - query)) }

    func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        score + T(table[head * buckets + bucket(query, key)])
    }

    var zeroParameterGradient: [Double] { [Double](repeating: 0, count: table.count) }

    func accumulateParameterGradient<T: BinaryFloatingPoint>(
        _ gradient: inout [Double], scoreGradients: UnsafePointer<T>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        for (r, i) in queries.enumerated() {
            for (c, j) in keys.enumerated() {
                gradient[head * buckets + bucket(i, j)] += Double(scoreGradients[r * rowStride + c])
            }
        }
    }
}

/// A learned temperature per head, `score · t[h]`: not additive, so its derivative comes from the
/// protocol's default (a central difference) unless written out, and its gradient is `Σ dL/ds · score`.
struct HeadTemperatureBias: TrainableAttnBias {
    var temperatures: [Double]
    var exactDerivative: Bool

    static var isAdditive: Bool { false }
    var materializedShape: [Int] { [1, 1] }

    func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        score * T(temperatures[head])
    }

    func modifyScoreDerivative<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        exactDerivative ? T(temperatures[head]) : defaultDerivative(score, batch: batch, head: head, query: query, key: key)
    }

    var zeroParameterGradient: [Double] { [Double](repeating: 0, count: temperatures.count) }

    /// Its gradient is `Σ dL/ds · score`, and a tile carries `dL/ds` alone: the test hands the bias the
    /// scores before it, `[B, H, L, S]`.
    var inputs: [Double] = []
    var seqLenQ = 0, seqLenKV = 0

    func accumulateParameterGradient<T: BinaryFloatingPoint>(
        _ gradient: inout [Double], scoreGradients: UnsafePointer<T>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        for (r, i) in queries.enumerated() {
            for (c, j) in keys.enumerated() {
                let raw = inputs[((batch * temperatures.count + head) * seqLenQ + i) * seqLenKV + j]
                gradient[head] += Double(scoreGradients[r * rowStride + c]) * raw
            }
        }
    }
}

extension FusedAttnBias {
    /// The protocol's default derivative, for a conformer that overrides it.
    func defaultDerivative<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        let s = Double(score), step = 0x1p-17 * Swift.max(1, s.magnitude)
        let rise = modifyScore(s + step, batch: batch, head: head, query: query, key: key) - modifyScore(s - step, batch: batch, head: head, query: query, key: key)
        return T(rise / (2 * step))
    }
}

/// `Σ dO ∘ attention` in Double (math backend).
private func loss(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ dO: Tensor, _ bias: some AttnBias) throws -> Double {
    let out = try withSDPBackends([.math]) { try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias) }
    return zip(out.doubleScalars, dO.doubleScalars).reduce(0) { $0 + $1.0 * $1.1 }
}

private func backward(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ dO: Tensor, _ bias: some AttnBias) throws -> AttentionGradients {
    let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias)
    return try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: bias)
}

/// Central differences of the loss in each parameter, `rebuild(parameters)` giving the bias.
private func parameterDifferences(
    _ parameters: [Double], step h: Double = 1e-6, q: Tensor, k: Tensor, v: Tensor, dO: Tensor, _ rebuild: ([Double]) -> any AttnBias
) throws -> [Double] {
    return try parameters.indices.map { n in
        var up = parameters, down = parameters
        up[n] += h
        down[n] -= h
        return (try loss(q, k, v, dO, rebuild(up)) - loss(q, k, v, dO, rebuild(down))) / (2 * h)
    }
}

@Suite("Trainable biases: a user's parameters get their gradients")
struct TrainableBiasTests {
    let inputs = Result { () -> (Tensor, Tensor, Tensor, Tensor) in
        let (q, k, v) = try randomAttentionInputs(2, 2, 5, 7, 4, ev: 3, seed: 400, dtype: .float64)
        return (q, k, v, try randn([2, 2, 5, 3], seed: 401, dtype: .float64))
    }
    static let table = (0..<8).map { Double($0 % 5) * 0.3 - 0.5 }

    func t5(_ table: [Double]) -> T5RelativePositionBias {
        T5RelativePositionBias(table: table, buckets: 4, seqLenQ: 5, seqLenKV: 7)
    }

    @Test("a T5 relative-position table's gradient matches central differences in Double, alone and composed")
    func relativePositionTable() throws {
        let (q, k, v, dO) = try inputs.get()
        let causal = causalLowerRight(5, 7)
        // Alone; with a mask; and before soft-capping, whose derivative the table's gradient passes through.
        let cases: [(String, ([Double]) -> any FusedAttnBias)] = [
            ("alone", { self.t5($0) }),
            ("+ causal", { self.t5($0).combined(with: causal) }),
            ("+ soft-cap 1.5 + causal", { self.t5($0).combined(with: SoftCapBias(cap: 1.5)).combined(with: causal) }),
        ]
        for (label, make) in cases {
            let grads = try backward(q, k, v, dO, make(Self.table))
            let analytic = try #require(grads.parameterGradient(of: T5RelativePositionBias.self), "\(label)")
            let numeric = try parameterDifferences(Self.table, q: q, k: k, v: v, dO: dO) { make($0) }
            expectClose(analytic, numeric, Tolerance(atol: 1e-8, rtol: 1e-7), "\(label): dTable")
            #expect(grads.biasParameters.count == 1 && grads.biasParameters[0].part == 0, "\(label)")
            #expect(grads.alibiSlopes == nil)
        }
    }

    @Test("ALiBi and a T5 table in one composition: both gradients, in order of the parts")
    func twoTrainableParts() throws {
        let (q, k, v, dO) = try inputs.get()
        let slopes: [Float] = [0.5, -0.25]
        let bias = SoftCapBias(cap: 3).combined(with: AlibiBias(slopes: slopes, seqLenQ: 5, seqLenKV: 7)).combined(with: t5(Self.table))
        let grads = try backward(q, k, v, dO, bias)
        #expect(grads.biasParameters.map(\.part) == [1, 2])
        #expect(grads.biasParameters.map { "\($0.biasType)" } == ["AlibiBias", "T5RelativePositionBias"])
        // The slopes are Float: a step they hold exactly.
        let numeric = try parameterDifferences(slopes.map(Double.init), step: 0x1p-14, q: q, k: k, v: v, dO: dO) {
            SoftCapBias(cap: 3).combined(with: AlibiBias(slopes: $0.map(Float.init), seqLenQ: 5, seqLenKV: 7)).combined(with: self.t5(Self.table))
        }
        expectClose(try #require(grads.alibiSlopes), numeric, Tolerance(atol: 1e-8, rtol: 1e-7), "dSlopes")
        let table = try parameterDifferences(Self.table, q: q, k: k, v: v, dO: dO) {
            SoftCapBias(cap: 3).combined(with: AlibiBias(slopes: slopes, seqLenQ: 5, seqLenKV: 7)).combined(with: self.t5($0))
        }
        expectClose(try #require(grads.parameterGradient(of: T5RelativePositionBias.self)), table, Tolerance(atol: 1e-8, rtol: 1e-7), "dTable")
    }

    @Test("a non-additive bias: the default derivative (a central difference) and an exact one agree with finite differences")
    func nonAdditiveBias() throws {
        let (q, k, v, dO) = try inputs.get()
        let temperatures = [1.3, 0.6]
        let scale = 1 / 2.0  // 1 / sqrt(E)
        // The scores before the bias, for the temperature's own gradient.
        let qs = q.doubleScalars, ks = k.doubleScalars
        let raw = (0..<2 * 2 * 5 * 7).map { n -> Double in
            let (bh, i, j) = (n / 35, n / 7 % 5, n % 7)
            return (0..<4).reduce(0.0) { $0 + qs[(bh * 5 + i) * 4 + $1] * ks[(bh * 7 + j) * 4 + $1] } * scale
        }
        func bias(_ t: [Double], exact: Bool) -> HeadTemperatureBias {
            HeadTemperatureBias(temperatures: t, exactDerivative: exact, inputs: raw, seqLenQ: 5, seqLenKV: 7)
        }
        let exact = try backward(q, k, v, dO, bias(temperatures, exact: true))
        let byDefault = try backward(q, k, v, dO, bias(temperatures, exact: false))
        let tolerance = Tolerance(atol: 1e-8, rtol: 1e-7)
        expectClose(byDefault.query, exact.query, tolerance, "dQ, default derivative against exact")
        expectClose(byDefault.key, exact.key, tolerance, "dK, default derivative against exact")
        let numeric = try parameterDifferences(temperatures, q: q, k: k, v: v, dO: dO) { bias($0, exact: true) }
        expectClose(try #require(exact.parameterGradient(of: HeadTemperatureBias.self)), numeric, tolerance, "dTemperatures")
        // Before soft-capping: the temperature's gradient is dL/d(its output), the cap's derivative in it but not its own.
        for backend in [SDPBackend.math, .fused] {
            let capped = { (t: [Double]) in bias(t, exact: true).combined(with: SoftCapBias(cap: 2)) }
            // The fused pass runs float32 (the temperature's inputs stay the float64 scores: float32's rounding in the tolerance).
            let dtype: DType = backend == .math ? .float64 : .float32
            let (q32, k32, v32, dO32) = (try q.converted(to: dtype), try k.converted(to: dtype), try v.converted(to: dtype), try dO.converted(to: dtype))
            let grads = try withSDPBackends([backend]) { try backward(q32, k32, v32, dO32, capped(temperatures)) }
            let differences = try parameterDifferences(temperatures, q: q, k: k, v: v, dO: dO) { capped($0) }
            expectClose(try #require(grads.parameterGradient(of: HeadTemperatureBias.self)), differences,
                        backend == .math ? tolerance : Tolerance(atol: 1e-5, rtol: 1e-4), "\(backend): dTemperatures before soft-capping")
        }
        // dQ against central differences of the loss in q itself.
        let h = 1e-6
        var values = q.doubleScalars
        let dq = try (0..<values.count).map { n -> Double in
            values[n] += h
            let up = try loss(try Tensor(shape: q.shape, scalars: values), k, v, dO, bias(temperatures, exact: true))
            values[n] -= 2 * h
            let down = try loss(try Tensor(shape: q.shape, scalars: values), k, v, dO, bias(temperatures, exact: true))
            values[n] += h
            return (up - down) / (2 * h)
        }
        expectClose(exact.query.doubleScalars, dq, tolerance, "dQ against finite differences")
    }

    @Test("the fused backward pass hands the hook float32 tiles: the table's gradient is the math one's, bit-identical on 1, 2 and 7 threads")
    func fusedTiles() throws {
        let (L, S) = (70, 300)  // several query tiles, three key tiles
        let (q, k, v) = try randomAttentionInputs(2, 2, L, S, 16, ev: 8, seed: 410)
        let dO = try randn([2, 2, L, 8], seed: 411)
        let bias = T5RelativePositionBias(table: Self.table, buckets: 4, seqLenQ: L, seqLenKV: S)
            .combined(with: SoftCapBias(cap: 2)).combined(with: causalLowerRight(L, S))
        let math = try withSDPBackends([.math]) { try backward(q, k, v, dO, bias) }
        let runs = try [1, 2, 7].map { n in try withSDPAThreads(n) { try withSDPBackends([.fused]) { try backward(q, k, v, dO, bias) } } }
        let table = try #require(runs[0].parameterGradient(of: T5RelativePositionBias.self))
        // Sums of up to L·S float32 score gradients per entry, each within ~1e-7 of the Double one.
        expectClose(table, try #require(math.parameterGradient(of: T5RelativePositionBias.self)), Tolerance(atol: 1e-4, rtol: 1e-4), "dTable")
        expectClose(runs[0].query, math.query, Tolerance(atol: 2e-5, rtol: 2e-5), "dQ")
        for run in runs.dropFirst() {
            #expect(run.parameterGradient(of: T5RelativePositionBias.self) == table)
            expectIdentical(run.key, runs[0].key)
        }
    }

    @Test("the parameter gradient is bit-identical at any thread count")
    func threadCounts() throws {
        let (q, k, v, dO) = try inputs.get()
        let bias = t5(Self.table).combined(with: SoftCapBias(cap: 2))
        let one = try withSDPAThreads(1) { try backward(q, k, v, dO, bias) }
        let three = try withSDPAThreads(3) { try backward(q, k, v, dO, bias) }
        #expect(one.parameterGradient(of: T5RelativePositionBias.self) == three.parameterGradient(of: T5RelativePositionBias.self))
        expectIdentical(one.query, three.query)
    }
}
