import CSDPAKernels
import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// The element-wise micro-kernels against their definitions, on every kernel family: the four
/// converters (every half-precision bit pattern, and float32 values at, beside and between the
/// rounding ties), the exponential over its whole range, GELU, the dense-mask tiles, ALiBi and soft-capping.
@Suite("Converters, exp, GELU, mask, ALiBi and soft-cap tiles")
struct ElementwiseTileTests {
    /// Every 16-bit pattern, then 7 more so the length is off every vector width.
    static let halfPatterns: [UInt16] = (0...UInt16.max).map { $0 } + [0, 1, 0x3C00, 0x7C00, 0xFC00, 0x7E00, 0x8001]

    @Test("float16 and bfloat16 widen to float32 exactly, every bit pattern", arguments: KernelFamily.available)
    func widening(_ family: KernelFamily) throws {
        let bits = Self.halfPatterns
        var fromHalf = [Float](repeating: 1, count: bits.count), fromBFloat = fromHalf
        try family.run {
            sdpa_convert_f16_to_f32(bits.count, bits, &fromHalf)
            sdpa_convert_bf16_to_f32(bits.count, bits, &fromBFloat)
        }
        let halfWrong = bits.indices.filter { i in
            let want = Float(Float16(bitPattern: bits[i]))
            return want.isNaN ? !(fromHalf[i].isNaN && fromHalf[i].sign == want.sign) : fromHalf[i].bitPattern != want.bitPattern
        }
        let halfExamples = halfWrong.prefix(3).map { "\(String(bits[$0], radix: 16)) -> \(fromHalf[$0])" }
        #expect(halfWrong.isEmpty, "\(family.name): \(halfWrong.count) float16 patterns widen wrongly, e.g. \(halfExamples)")
        let bfloatWrong = bits.indices.filter { fromBFloat[$0].bitPattern != UInt32(bits[$0]) << 16 }
        #expect(bfloatWrong.isEmpty, "\(family.name): bfloat16 \(bfloatWrong.prefix(3).map { String(bits[$0], radix: 16) }) widen wrongly")
    }

    /// Float32 values around every representable half: the value itself, the ties between
    /// neighbours, just above and below them, the bottom and top of each float32 run; and the
    /// overflow edges and specials.
    static func roundingInputs(shift: Int) -> [Float] {
        var values = [Float]()
        let step = UInt64(1) << shift
        for high in stride(from: UInt64(0), to: 1 << 32, by: Int(step)) {
            for offset in [0, 1, step / 2 - 1, step / 2, step / 2 + 1, step - 1] { values.append(Float(bitPattern: UInt32(high + offset))) }
        }
        return values + [65504, 65519.99, 65520, 65536, 1e6, 3.4e38, .infinity, -.infinity, 0x1p-24, 0x1p-25, 3 * 0x1p-25, 0x1p-26, -0.0,
                         .nan, -.nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFF80_0001)]
    }

    @Test("float32 rounds to float16 and bfloat16 to nearest even; overflow gives inf; NaN stays NaN", arguments: KernelFamily.available)
    func narrowing(_ family: KernelFamily) throws {
        // Float16 spacing starts at 2^13 float32 ulps; every 2^13-th pattern and its neighbours reach
        // each of its ties (not every half: 2^19 × 6 values are plenty).
        let toHalf = Self.roundingInputs(shift: 13), toBFloat = Self.roundingInputs(shift: 16)
        var half = [UInt16](repeating: 0xAAAA, count: toHalf.count), bfloat = [UInt16](repeating: 0xAAAA, count: toBFloat.count)
        try family.run {
            sdpa_convert_f32_to_f16(toHalf.count, toHalf, &half)
            sdpa_convert_f32_to_bf16(toBFloat.count, toBFloat, &bfloat)
        }
        func nanKept(_ x: Float, _ bits: UInt16, quietBit: UInt16, exponent: UInt16) -> Bool {
            bits & exponent == exponent && bits & quietBit != 0 && (bits >> 15 == 1) == (x.sign == .minus)
        }
        let halfWrong = toHalf.indices.filter { i in
            let x = toHalf[i]
            return x.isNaN ? !nanKept(x, half[i], quietBit: 0x0200, exponent: 0x7C00) : half[i] != Float16(x).bitPattern
        }
        let halfExamples = halfWrong.prefix(3).map { "\(toHalf[$0]) -> \(String(half[$0], radix: 16))" }
        #expect(halfWrong.isEmpty, "\(family.name): \(halfWrong.count) float16 roundings wrong, e.g. \(halfExamples)")
        let bfloatWrong = toBFloat.indices.filter { i in
            let x = toBFloat[i], b = x.bitPattern
            return x.isNaN ? !nanKept(x, bfloat[i], quietBit: 0x0040, exponent: 0x7F80)
                : bfloat[i] != UInt16((UInt64(b) + 0x7FFF + UInt64((b >> 16) & 1)) >> 16)
        }
        let bfloatExamples = bfloatWrong.prefix(3).map { "\(toBFloat[$0]) -> \(String(bfloat[$0], radix: 16))" }
        #expect(bfloatWrong.isEmpty, "\(family.name): \(bfloatWrong.count) bfloat16 roundings wrong, e.g. \(bfloatExamples)")
        // n = 0 writes nothing.
        var untouched: [UInt16] = [7]
        try family.run { sdpa_convert_f32_to_f16(0, [1], &untouched) }
        #expect(untouched == [7])
    }

    @Test("sdpa_exp_f32 within 2 ulps of exp over its whole range, specials exact", arguments: KernelFamily.available)
    func exponential(_ family: KernelFamily) throws {
        var x = stride(from: -104.0, through: 90.0, by: 0.003).map { Float($0) }
        x += [-.infinity, .infinity, .nan, 0, -0.0, 88.72, 88.73, -87.33, -87.68, -87.7, -103.97, 1e-8, -1e-8, 0x1p-149]
        var y = [Float](repeating: 7, count: x.count)
        var inPlace = x
        try family.run {
            sdpa_exp_f32(x.count, x, &y)
            sdpa_exp_f32(inPlace.count, inPlace, &inPlace)
        }
        var log = KernelMismatches()
        log.expect(inPlace.map(\.bitPattern) == y.map(\.bitPattern), "in place differs from out of place")
        var normal = [Int]()
        for i in x.indices {
            let want = Foundation.exp(Double(x[i])), got = Double(y[i])
            if x[i].isNaN { log.expect(got.isNaN, "exp(nan) = \(got)") }
            else if want > Double(Float.greatestFiniteMagnitude) { log.expect(got == .infinity, "exp(\(x[i])) = \(got), want inf") }
            else if want < 0x1p-126 {
                // Below FLT_MIN: 0 or a subnormal no larger than the true value's float neighbourhood; -inf exactly 0.
                log.expect(got >= 0 && got < 0x1p-126 && (x[i] != -.infinity || got.bitPattern == 0), "exp(\(x[i])) = \(got), want \(want)")
            } else { normal.append(i) }
        }
        log.expectClose(normal.map { Double(y[$0]) }, normal.map { Foundation.exp(Double(x[$0])) }, shape: [normal.count], bound: "2 ulps",
                        "exp") { 2 * floatULP(Foundation.exp(Double(x[normal[$0]]))) }
        log.expect(y[x.firstIndex(of: 0)!] == 1, "exp(0) must be exactly 1")
        #expect(log.found.isEmpty, "\(family.name): \(log.summary)")
    }

    @Test("sdpa_gelu_f32 within 2e-7 |x| of x/2 (1 + erf(x/sqrt 2)), specials exact, every tail length", arguments: KernelFamily.available)
    func gelu(_ family: KernelFamily) throws {
        let x: [Float] = (0..<4001).map { -10 + Float($0) * 0.005 }
            + [0, -0.0, 1e-30, -1e-30, 30, -30, 1e30, -1e30, .infinity, -.infinity, .nan, 0x1p-149]
        var y = [Float](repeating: 7, count: x.count), inPlace = x
        // Every count up to two vectors (tails of each length), then the whole array, out of place and in place.
        var tails = [[Float]]()
        try family.run {
            for n in 0...33 {
                var out = [Float](repeating: 7, count: 34)
                sdpa_gelu_f32(n, Array(x[1990..<2024]), &out)
                tails.append(out)
            }
            sdpa_gelu_f32(x.count, x, &y)
            sdpa_gelu_f32(inPlace.count, inPlace, &inPlace)
        }
        var log = KernelMismatches()
        log.expect(inPlace.map(\.bitPattern) == y.map(\.bitPattern), "in place differs from out of place")
        for (n, out) in tails.enumerated() {
            log.expect(out.prefix(n).map(\.bitPattern) == y[1990..<(1990 + n)].map(\.bitPattern) && out.dropFirst(n).allSatisfy { $0 == 7 },
                       "\(n) elements: not the whole array's values, or wrote past them")
        }
        for (v, got) in zip(x, y) {
            let want = Double(v) * 0.5 * (1 + erf(Double(v) / 2.0.squareRoot()))
            if v.isNaN { log.expect(got.isNaN, "gelu(nan) = \(got)"); continue }
            if v == -.infinity { log.expect(got == 0, "gelu(-inf) = \(got), want 0"); continue }
            if v == .infinity { log.expect(got == .infinity, "gelu(inf) = \(got), want inf"); continue }
            let error = abs(Double(got) - want), bound = 2e-7 * abs(Double(v)) + 1e-7 * abs(want) + 1e-38
            log.expect(error <= bound, "gelu(\(v)) = \(got), want \(want)")
        }
        #expect(log.found.isEmpty, "\(family.name): \(log.summary)")
    }

    /// Scores with every special a tile can hold, and masks with every kind of entry.
    static func maskCase(rows: Int, cols: Int, ldm: Int) -> (scores: StridedMatrix, bools: [UInt8], floats: [Float]) {
        let specials: [Float] = [.nan, -0.0, .infinity, -.infinity, 0x1p-133, -3.5]
        let scores = StridedMatrix(rows: rows, columns: cols, gap: 5) { (r: Int, c: Int) -> Float in
            (r * cols + c) % 13 == 0 ? specials[(r + c) % specials.count] : Float((r * 17 + c * 5) % 23) / 4 - 2
        }
        let maskRows = ldm == 0 ? 1 : rows
        let count = maskRows * Swift.max(ldm, cols)
        let bools = (0..<count).map { (i: Int) -> UInt8 in (i * 7 + 3) % 5 == 0 ? 0 : UInt8(1 + i % 200) }
        let floatEntries: [Float] = [-.infinity, 0, -1.25, 3, .nan, .infinity, -1e30]
        let floats = (0..<count).map { (i: Int) -> Float in i % 11 == 0 ? floatEntries[i % floatEntries.count] : Float(i % 9) * -0.5 }
        return (scores, bools, floats)
    }

    @Test("sdpa_mask_tile_bool and sdpa_add_mask_tile_f32 follow their definitions, bit for bit", arguments: KernelFamily.available)
    func masks(_ family: KernelFamily) throws {
        var log = KernelMismatches()
        for (rows, cols) in [(1, 1), (3, 8), (5, 17), (9, 33), (2, 130), (7, 0)] {
            for ldm in [0, cols, cols + 4] {
                var (bool, bools, floats) = Self.maskCase(rows: rows, cols: cols, ldm: ldm)
                var added = bool
                let before = bool
                try family.run {
                    sdpa_mask_tile_bool(Int32(rows), Int32(cols), &bool.storage, bool.stride, bools, ldm)
                    sdpa_add_mask_tile_f32(Int32(rows), Int32(cols), &added.storage, added.stride, floats, ldm)
                }
                let label = "\(rows)×\(cols) ldm \(ldm)"
                for r in 0..<rows {
                    for c in 0..<cols {
                        let s = before[r, c], m = floats[r * ldm + c]
                        let wantBool: Float = bools[r * ldm + c] != 0 ? s : -.infinity
                        let wantAdded: Float = m == -.infinity ? -.infinity : s + m
                        log.expect(bool[r, c].bitPattern == wantBool.bitPattern, "\(label) bool [\(r), \(c)]: \(bool[r, c]), want \(wantBool)")
                        log.expect(wantAdded.isNaN ? added[r, c].isNaN : added[r, c].bitPattern == wantAdded.bitPattern,
                                   "\(label) float [\(r), \(c)]: \(s) + \(m) gave \(added[r, c]), want \(wantAdded)")
                    }
                }
                log.expect(bool.paddingIsUntouched && added.paddingIsUntouched, "\(label): wrote outside the tile")
            }
        }
        #expect(log.found.isEmpty, "\(family.name): \(log.summary)")
    }

    @Test("sdpa_softcap_tile: cap·tanh(s/cap) within 4 ulps; -inf, NaN, +inf and -0 kept as defined", arguments: KernelFamily.available)
    func softCap(_ family: KernelFamily) throws {
        var log = KernelMismatches()
        // Scores across the small-|u| polynomial, the exp branch, its clamp and saturation.
        let ramp = stride(from: -700.0, through: 700.0, by: 0.37).map { Float($0) } + [0.001, -0.001, 1e-30, 0x1p-140]
        let specials: [Float] = [-.infinity, .nan, .infinity, -0.0, 0]
        for cap: Float in [1, 5, 30, 50, 0.3, Float(exp(-10.0)), Float(exp(10.0))] {
            let values = (ramp.map { $0 * Swift.max(1, cap / 50) } + specials)
            let cols = 37, rows = (values.count + cols - 1) / cols
            var s = StridedMatrix(rows: rows, columns: cols, gap: 3) { r, c in r * cols + c < values.count ? values[r * cols + c] : 0 }
            let before = s
            try family.run { sdpa_softcap_tile(Int32(rows), Int32(cols), &s.storage, s.stride, cap) }
            var got = [Double](), want = [Double]()
            for r in 0..<rows {
                for c in 0..<cols {
                    let x = before[r, c]
                    switch x {
                    case -.infinity: log.expect(s[r, c] == -.infinity, "cap \(cap): a masked score became \(s[r, c])")
                    case .infinity: log.expect(s[r, c] == cap, "cap \(cap): +inf became \(s[r, c]), want the cap")
                    case _ where x.isNaN: log.expect(s[r, c].isNaN, "cap \(cap): NaN became \(s[r, c])")
                    case 0 where x.sign == .minus: log.expect(s[r, c].bitPattern == x.bitPattern, "cap \(cap): -0 became \(s[r, c])")
                    default:
                        got.append(Double(s[r, c]))
                        want.append(Double(cap) * Foundation.tanh(Double(x) / Double(cap)))
                    }
                }
            }
            log.expectClose(got, want, shape: [got.count], bound: "4 ulps", "cap \(cap)") { 4 * floatULP(want[$0]) }
            log.expect(s.paddingIsUntouched, "cap \(cap): wrote outside the tile")
        }
        #expect(log.found.isEmpty, "\(family.name): \(log.summary)")
    }

    @Test("AlibiBias on a tile (sdpa_alibi_tile) has modifyScore's bits, -inf past a causal diagonal; its gradient sum follows its definition",
          arguments: KernelFamily.available)
    func alibi(_ family: KernelFamily) throws {
        var log = KernelMismatches()
        // Tiles off every vector width, the diagonal inside, before and after them, both causal variants and none.
        for (L, S, queries, keys) in [(5, 9, 0..<5, 0..<9), (40, 300, 7..<33, 130..<275), (300, 40, 200..<290, 3..<40), (1, 8192, 0..<1, 8000..<8192)] {
            for causal: CausalVariant? in [nil, .upperLeft, .lowerRight] {
                let bias = AlibiBias(slopes: [0.37, 0x1p-3, 1e-3], seqLenQ: L, seqLenKV: S, causal: causal)
                let (rows, cols) = (queries.count, keys.count)
                var s = StridedMatrix(rows: rows, columns: cols, gap: 3) { r, c in (r * 7 + c) % 13 == 5 ? .nan : Float((r * 31 + c * 17) % 97) / 7 - 6 }
                let before = s
                let head = (L + S) % 3
                try family.run {
                    s.storage.withUnsafeMutableBufferPointer {
                        bias.apply(toScores: $0.baseAddress!, rowStride: s.stride, batch: 0, head: head, queries: queries, keys: keys)
                    }
                }
                let label = "L \(L) S \(S) \(causal.map { "\($0)" } ?? "no causal") tile \(queries) × \(keys)"
                for r in 0..<rows {
                    for c in 0..<cols {
                        let (i, j) = (queries.lowerBound + r, keys.lowerBound + c)
                        let want = bias.isVisible(batch: 0, head: head, query: i, key: j)
                            ? bias.modifyScore(before[r, c], batch: 0, head: head, query: i, key: j) : -Float.infinity
                        log.expect(want.isNaN ? s[r, c].isNaN : s[r, c].bitPattern == want.bitPattern, "\(label) [\(i), \(j)]: \(s[r, c]), want \(want)")
                    }
                }
                log.expect(s.paddingIsUntouched, "\(label): wrote outside the tile")
                // Σ g·|i + offset − j| against Double, each row's float32 sum within its length's rounding.
                let g = StridedMatrix(rows: rows, columns: cols, gap: 5) { r, c in Float((r * 13 + c * 29) % 41) / 20 - 1 }
                let first = queries.lowerBound + (causal == .upperLeft ? 0 : S - L) - keys.lowerBound
                let got = try family.run {
                    g.storage.withUnsafeBufferPointer { sdpa_distance_weighted_sum(Int32(rows), Int32(cols), $0.baseAddress!, g.stride, first) }
                }
                var want = 0.0, magnitude = 0.0
                for r in 0..<rows {
                    for c in 0..<cols {
                        want += Double(g[r, c]) * Double((first + r - c).magnitude)
                        magnitude += Swift.abs(Double(g[r, c])) * Double((first + r - c).magnitude)
                    }
                }
                log.expect(Swift.abs(got - want) <= Double(cols + 4) * 0x1p-24 * magnitude, "\(label) distance-weighted sum \(got), want \(want)")
            }
        }
        #expect(log.found.isEmpty, "\(family.name): \(log.summary)")
    }
}
