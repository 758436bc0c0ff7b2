import CSDPAKernels
import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// The tiles of the backward pass against `Double` on every kernel family: the general tile product
/// (transposed A, accumulating, scaled), the weights from the log-sum-exp, D, dS, the soft-cap
/// derivative, and dropout bit for bit against the library's own decision.
@Suite("Backward tiles: GEMM, probabilities, D, dS, soft-cap derivative, dropout")
struct BackwardTileTests {
    /// (m, n, k): register-tile edges, one and many panels, depth 0, an empty product.
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (6, 16, 8), (7, 17, 9), (13, 33, 65), (96, 64, 128), (2, 129, 31), (5, 4, 0), (0, 4, 3), (64, 72, 96),
    ]

    @Test("sdpa_gemm_tile: C = alpha·op(A)·B and C += alpha·op(A)·B, A as stored or transposed", arguments: KernelFamily.available)
    func product(_ family: KernelFamily) throws {
        try family.expectNoMismatches { try Self.productMismatches(pairs: false) }
    }

    @Test("sdpa_gemm_tile in bfloat16 pairs: float32 A and B rounded by sdpa_prepare_query / sdpa_pack_values, A as stored or transposed",
          arguments: KernelFamily.available)
    func pairsProduct(_ family: KernelFamily) throws {
        let pairs = try family.run { sdpa_layout_for(SDPA_ELEMENT_BF16) == SDPA_LAYOUT_BF16_PAIRS }
        guard pairs else { try Test.cancel("kernel family \(family.name) skipped: it has no bfloat16 dot product (bfloat16 widens to float32)") }
        try family.expectNoMismatches { try Self.productMismatches(pairs: true) }
    }

    static func productMismatches(pairs: Bool) throws -> [String] {
        try shapes.flatMap { shape in
            try [(false, false), (true, false), (false, true), (true, true)].flatMap { transposed, accumulate in
                try productMismatches(shape.m, shape.n, shape.k, transposed: transposed, accumulate: accumulate, pairs: pairs)
            }
        }
    }

    /// float32 → bfloat16 → float32, nearest even, from the two neighbours compared in `Double` (finite inputs).
    static func bfloat16Rounded(_ x: Float) -> Float {
        let low = Float(bitPattern: x.bitPattern & 0xFFFF_0000), high = Float(bitPattern: (x.bitPattern & 0xFFFF_0000) &+ 0x1_0000)
        let (dl, dh) = (abs(Double(low) - Double(x)), abs(Double(high) - Double(x)))
        return dl < dh || (dl == dh && low.bitPattern & 0x1_0000 == 0) ? low : high
    }

    /// In bfloat16 pairs A and B go through the packing calls (kind float32, so rounded) and the reference takes the
    /// rounded values: the products are exact, the sums float32 as in float32.
    static func productMismatches(_ m: Int, _ n: Int, _ k: Int, transposed: Bool, accumulate: Bool, pairs: Bool) throws -> [String] {
        var log = KernelMismatches()
        let a0 = try randn([m, k], seed: 501).scalars, b0 = try randn([k, n], seed: 502).scalars, c0 = try randn([m, n], seed: 503).scalars
        // op(A)[i][e] = a0[i * k + e], stored as is or transposed (k × m).
        let a = transposed ? StridedMatrix(rows: k, columns: m, gap: 3) { a0[$1 * k + $0] } : StridedMatrix(rows: m, columns: k, gap: 3) { a0[$0 * k + $1] }
        let b = StridedMatrix(rows: k, columns: n, gap: 5) { b0[$0 * n + $1] }
        var c = StridedMatrix(rows: m, columns: n, gap: 2) { c0[$0 * n + $1] }
        let alpha: Float = accumulate ? -0.6 : 0.37
        let layout = pairs ? SDPA_LAYOUT_BF16_PAIRS : SDPA_LAYOUT_F32
        let aBytes = transposed ? sdpa_operand_bytes(layout, SDPA_OPERAND_VALUES, Int32(k), Int32(m)) : sdpa_operand_bytes(layout, SDPA_OPERAND_QUERY, Int32(m), Int32(k))
        var aPairs = [UInt32](repeating: 0, count: aBytes / 4 + 1)
        var bPairs = [UInt32](repeating: 0, count: sdpa_operand_bytes(layout, SDPA_OPERAND_VALUES, Int32(k), Int32(n)) / 4 + 1)
        a.storage.withUnsafeBufferPointer { aStored in
            b.storage.withUnsafeBufferPointer { bStored in
                aPairs.withUnsafeMutableBytes { aOut in
                    bPairs.withUnsafeMutableBytes { bOut in
                        var (pa, lda, pb, ldb) = (UnsafeRawPointer(aStored.baseAddress), a.stride, UnsafeRawPointer(bStored.baseAddress), b.stride)
                        if pairs {
                            let aRows = sdpa_rows(base: aStored.baseAddress, stride: a.stride, rows: nil)
                            pa = transposed
                                ? sdpa_pack_values(layout, SDPA_ELEMENT_F32, Int32(k), Int32(m), aRows, aOut.baseAddress, &lda)
                                : sdpa_prepare_query(layout, SDPA_ELEMENT_F32, Int32(m), Int32(k), aStored.baseAddress, a.stride, 1, aOut.baseAddress, &lda)
                            pb = sdpa_pack_values(layout, SDPA_ELEMENT_F32, Int32(k), Int32(n), sdpa_rows(base: bStored.baseAddress, stride: b.stride, rows: nil),
                                                  bOut.baseAddress, &ldb)
                        }
                        sdpa_gemm_tile(layout, transposed ? 1 : 0, accumulate ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, pa, lda, pb, ldb, &c.storage, c.stride)
                    }
                }
            }
        }
        let operand = { (x: Float) in Double(pairs ? bfloat16Rounded(x) : x) }
        var want = [Double](), allowed = [Double]()
        for i in 0..<m {
            for j in 0..<n {
                let products = (0..<k).map { operand(a0[i * k + $0]) * operand(b[$0, j]) }
                let before = accumulate ? Double(c0[i * n + j]) : 0
                want.append(before + Double(alpha) * products.reduce(0, +))
                allowed.append(Double(k + 2) * 0x1p-24 * (abs(Double(alpha)) * products.map(abs).reduce(0, +) + abs(before)))
            }
        }
        let label = "\(pairs ? "pairs " : "")\(m)×\(n)×\(k)\(transposed ? " Aᵀ" : "")\(accumulate ? " +=" : "")"
        log.expectClose(c.values, want, shape: [m, n], bound: "(k + 2)·2⁻²⁴·(|alpha|·Σ|a·b| + |c|), a and b as multiplied", label) { allowed[$0] }
        log.expect(c.paddingIsUntouched, "\(label): wrote outside C")
        return log.found
    }

    @Test("sdpa_probabilities_tile: exp(s − lse) per row; masked scores and rows that saw no key give 0", arguments: KernelFamily.available)
    func probabilities(_ family: KernelFamily) throws {
        try family.expectNoMismatches {
            var log = KernelMismatches()
            for (rows, cols) in [(1, 1), (3, 8), (7, 17), (40, 130), (5, 0)] {
                var s = StridedMatrix(rows: rows, columns: cols, gap: 3) { r, c in
                    (r * 13 + c * 7) % 9 == 0 ? -.infinity : Float((r * 37 + c * 11) % 61) / 3 - 15
                }
                if rows > 2, cols > 3 { s.storage[2 * s.stride + 3] = .nan }
                // Each row's log-sum-exp; row 1 saw no key.
                let lse = (0..<rows).map { r -> Float in
                    if r == 1 { return -.infinity }
                    let row = (0..<cols).map { Double(s[r, $0]) }.filter { $0 != -.infinity && !$0.isNaN }
                    guard let top = row.max() else { return -.infinity }
                    return Float(top + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - top) }))
                }
                let before = s
                sdpa_probabilities_tile(Int32(rows), Int32(cols), &s.storage, s.stride, lse)
                for r in 0..<rows {
                    for c in 0..<cols {
                        let (x, got) = (before[r, c], s[r, c])
                        if lse[r] == -.infinity || x == -.infinity {
                            log.expect(got.bitPattern == 0, "\(rows)×\(cols) [\(r), \(c)]: \(got), want 0")
                        } else if x.isNaN {
                            log.expect(got.isNaN, "\(rows)×\(cols) [\(r), \(c)]: NaN gave \(got)")
                        } else {
                            let argument = Double(x - lse[r]), want = Foundation.exp(argument)
                            log.expect(abs(Double(got) - want) <= 3 * floatULP(want) + 1e-45, "\(rows)×\(cols) [\(r), \(c)]: exp(\(argument)) = \(got), want \(want)")
                        }
                    }
                }
                log.expect(s.paddingIsUntouched, "\(rows)×\(cols): wrote outside the tile")
            }
            return log.found
        }
    }

    @Test("sdpa_row_dot: D = rowsum(dO ∘ O) matches Double", arguments: KernelFamily.available)
    func rowDot(_ family: KernelFamily) throws {
        try family.expectNoMismatches {
            var log = KernelMismatches()
            for (rows, cols) in [(1, 1), (4, 7), (9, 16), (17, 33), (3, 256), (2, 0)] {
                let a0 = try randn([rows, cols], seed: 511).scalars, b0 = try randn([rows, cols], seed: 512).scalars
                let a = StridedMatrix(rows: rows, columns: cols, gap: 1) { a0[$0 * cols + $1] }
                let b = StridedMatrix(rows: rows, columns: cols, gap: 6) { b0[$0 * cols + $1] }
                var d = [Float](repeating: 7, count: rows + 1)
                sdpa_row_dot(Int32(rows), Int32(cols), a.storage, a.stride, b.storage, b.stride, &d)
                let products = (0..<rows).map { r in (0..<cols).map { Double(a[r, $0]) * Double(b[r, $0]) } }
                log.expectClose(d.prefix(rows).map(Double.init), products.map { $0.reduce(0, +) }, shape: [rows], bound: "(cols + 2)·2⁻²⁴·Σ|a·b|",
                                "\(rows)×\(cols)") { Double(cols + 2) * 0x1p-24 * products[$0].map(abs).reduce(0, +) }
                log.expect(d[rows] == 7, "\(rows)×\(cols): wrote past the rows")
            }
            return log.found
        }
    }

    @Test("sdpa_score_gradient_tile: dS = P ∘ (dP − D), exactly 0 where P is 0 (NaN there or not)", arguments: KernelFamily.available)
    func scoreGradient(_ family: KernelFamily) throws {
        try family.expectNoMismatches {
            var log = KernelMismatches()
            for (rows, cols) in [(1, 1), (5, 9), (8, 16), (13, 131), (3, 0)] {
                let p = StridedMatrix(rows: rows, columns: cols) { r, c in (r + 2 * c) % 4 == 0 ? 0 : Float((r * 29 + c * 13) % 97) / 97 }
                var dp = StridedMatrix(rows: rows, columns: cols, gap: 4) { r, c in
                    p[r, c] == 0 && c % 3 == 0 ? .nan : Float((r * 17 + c * 5) % 23) / 4 - 3
                }
                let d = (0..<rows).map { Float($0 % 5) * 0.7 - 1.1 }
                let before = dp
                sdpa_score_gradient_tile(Int32(rows), Int32(cols), p.storage, p.stride, &dp.storage, dp.stride, d)
                var want = [Double](), allowed = [Double]()
                for r in 0..<rows {
                    for c in 0..<cols {
                        let (pp, x) = (Double(p[r, c]), Double(before[r, c]))
                        want.append(pp == 0 ? 0 : pp * (x - Double(d[r])))
                        allowed.append(pp == 0 ? 0 : 2 * 0x1p-24 * pp * (abs(x) + abs(Double(d[r]))))
                    }
                }
                log.expectClose(dp.values, want, shape: [rows, cols], bound: "2 roundings", "\(rows)×\(cols)") { allowed[$0] }
                log.expect(dp.paddingIsUntouched, "\(rows)×\(cols): wrote outside the tile")
            }
            return log.found
        }
    }

    @Test("sdpa_softcap_gradient_tile: g·(1 − (y/cap)²) from the capped scores; masked positions give 0", arguments: KernelFamily.available)
    func softCapGradient(_ family: KernelFamily) throws {
        try family.expectNoMismatches {
            var log = KernelMismatches()
            for cap: Float in [0.7, 5, 50] {
                let (rows, cols) = (9, 37)
                let capped = StridedMatrix(rows: rows, columns: cols) { r, c in
                    (r * cols + c) % 11 == 4 ? -.infinity : Float(Double(cap) * Foundation.tanh(Double((r * 31 + c * 7) % 41 - 20) / 4))
                }
                var g = StridedMatrix(rows: rows, columns: cols, gap: 2) { r, c in Float((r * 3 + c) % 13) / 6 - 1 }
                let before = g
                sdpa_softcap_gradient_tile(Int32(rows), Int32(cols), &g.storage, g.stride, capped.storage, capped.stride, cap)
                var want = [Double](), allowed = [Double]()
                for r in 0..<rows {
                    for c in 0..<cols {
                        let (y, x) = (Double(capped[r, c]), Double(before[r, c]))
                        let u = y / Double(cap)
                        want.append(y == -.infinity ? 0 : x * (1 - u * u))
                        // u carries one rounding, the factor two more: a few ulps of 1, times |g|.
                        allowed.append(y == -.infinity ? 0 : 6 * 0x1p-24 * abs(x))
                    }
                }
                log.expectClose(g.values, want, shape: [rows, cols], bound: "6·2⁻²⁴·|g|", "cap \(cap)") { allowed[$0] }
                log.expect(g.paddingIsUntouched, "cap \(cap): wrote outside the tile")
            }
            return log.found
        }
    }

    @Test("sdpa_dropout_tile drops exactly what the forward and backward passes drop, and scales the rest", arguments: KernelFamily.available)
    func dropout(_ family: KernelFamily) throws {
        try family.expectNoMismatches {
            var log = KernelMismatches()
            let shape = AttentionShape(batch: 2, queryHeads: 3, keyValueHeads: 3, queryLength: 37, keyLength: 150, headDim: 8, valueHeadDim: 8)
            for (p, seed) in [(Float(0), UInt64(1)), (0.1, 2), (0.3, 0xDEAD_BEEF), (0.5, .max), (0.9, 5), (1, 6)] {
                // A tile of rows 5..<30, keys 17..<140 of batch 1, head 2: the library's counters.
                let (b, h, queries, keys) = (1, 2, 5..<30, 17..<140)
                var tile = StridedMatrix(rows: queries.count, columns: keys.count, gap: 3) { r, c in (r + c) % 7 == 2 ? .nan : Float(r * 3 + c) / 64 }
                let before = tile
                let first = DropoutDecision.drops(seed: seed, probability: p, shape: shape, batch: b, head: h, query: queries.lowerBound, key: keys.lowerBound)
                sdpa_dropout_tile(Int32(queries.count), Int32(keys.count), &tile.storage, tile.stride, p, seed, first.counter, UInt64(shape.keyLength))
                let keep = p >= 1 ? 0 : Float(1 / (1 - Double(p)))
                var dropped = 0
                for (r, i) in queries.enumerated() {
                    for (c, j) in keys.enumerated() {
                        let decision = DropoutDecision.drops(seed: seed, probability: p, shape: shape, batch: b, head: h, query: i, key: j)
                        let want: Float = decision.dropped ? 0 : before[r, c] * keep
                        dropped += decision.dropped ? 1 : 0
                        log.expect(tile[r, c].bitPattern == want.bitPattern || (want.isNaN && tile[r, c].isNaN),
                                   "p \(p) seed \(seed) [\(i), \(j)]: \(tile[r, c]), want \(want)")
                    }
                }
                // The drop rate: within 6 standard deviations of p.
                let n = Double(queries.count * keys.count), sd = (n * Double(p) * Double(1 - p)).squareRoot()
                log.expect(abs(Double(dropped) - n * Double(p)) <= 6 * sd, "p \(p): dropped \(dropped) of \(Int(n))")
                log.expect(tile.paddingIsUntouched, "p \(p): wrote outside the tile")
            }
            return log.found
        }
    }
}
