import CSDPAKernels
import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// The tile products and the packing that feeds them, against `Double` (or exactly, where the
/// operation is a copy), on every kernel family: sizes on both sides of the 6×16 register tile and
/// the 8-wide vectors, row strides wider than the rows, and nothing written outside a tile.
@Suite("Q·Kᵀ, P·V, Kᵀ packing and normalization tiles")
struct ProductTileTests {
    /// (rows, columns, depth): register-tile edges, one and many tiles, head dims up to 256, depth 0.
    static let shapes: [(rows: Int, cols: Int, depth: Int)] = [
        (1, 1, 1), (6, 16, 8), (7, 17, 9), (5, 3, 64), (13, 33, 65), (97, 130, 16), (2, 129, 128), (12, 31, 256), (4, 5, 0), (0, 4, 3),
    ]

    @Test("sdpa_qk_tile: scaled Q·Kᵀ and the rows' maxima match Double", arguments: KernelFamily.available)
    func scores(_ family: KernelFamily) throws {
        try family.expectNoMismatches { try Self.shapes.flatMap { try Self.scoreMismatches($0.rows, $0.cols, $0.depth) } }
    }

    static func scoreMismatches(_ rows: Int, _ cols: Int, _ depth: Int) throws -> [String] {
        var log = KernelMismatches()
        let q0 = try randn([rows, depth], seed: 31).scalars, k0 = try randn([cols, depth], seed: 32).scalars
        var q = StridedMatrix(rows: rows, columns: depth) { q0[$0 * depth + $1] }
        if rows > 2, depth > 0 { q.storage[2 * q.stride] = .nan }  // row 2 is NaN: its maximum skips it
        let kt = StridedMatrix(rows: depth, columns: cols, gap: 5) { k0[$1 * depth + $0] }
        let scale: Float = 0.37
        for withMaxima in [true, false] {
            var s = StridedMatrix(rows: rows, columns: cols, gap: 7)
            var maxima = [Float](repeating: 7, count: rows + 1)
            let label = "\(rows)×\(cols)×\(depth)\(withMaxima ? "" : " no maxima")"
            if withMaxima {
                sdpa_qk_tile(Int32(rows), Int32(cols), Int32(depth), q.storage, q.stride, kt.storage, kt.stride, scale, &s.storage, s.stride, &maxima)
            } else {
                sdpa_qk_tile(Int32(rows), Int32(cols), Int32(depth), q.storage, q.stride, kt.storage, kt.stride, scale, &s.storage, s.stride, nil)
            }
            var want = [Double](), allowed = [Double]()
            for r in 0..<rows {
                for c in 0..<cols {
                    let products = (0..<depth).map { Double(q[r, $0]) * Double(kt[$0, c]) }
                    want.append(products.reduce(0, +) * Double(scale))
                    allowed.append(Double(depth + 2) * 0x1p-24 * products.map(abs).reduce(0, +) * Double(scale))
                }
            }
            log.expectClose(s.values, want, shape: [rows, cols], bound: "(depth + 2)·2⁻²⁴·Σ|q·k|", label) { allowed[$0] }
            log.expect(s.paddingIsUntouched, "\(label): wrote outside the score tile")
            guard withMaxima else { continue }
            for r in 0..<rows {
                let row = (0..<cols).map { s[r, $0] }.filter { !$0.isNaN }
                log.expect(maxima[r] == row.max() ?? -.infinity, "\(label) row \(r): maximum \(maxima[r]), want \(row.max() ?? -.infinity)")
            }
            log.expect(maxima[rows] == 7, "\(label): wrote a maximum past the last row")
        }
        return log.found
    }

    /// (rows, keys, value head dim): edges of the register tile, one output row past a 96-column
    /// block, Ev 256, no keys.
    static let valueShapes: [(rows: Int, cols: Int, dv: Int)] = [
        (1, 1, 1), (6, 16, 16), (7, 13, 5), (67, 130, 96), (3, 200, 130), (1, 300, 97), (5, 9, 256), (2, 0, 5), (0, 3, 4),
    ]

    @Test("sdpa_pv_tile: O += P·V matches Double and accumulates", arguments: KernelFamily.available)
    func values(_ family: KernelFamily) throws {
        try family.expectNoMismatches { try Self.valueShapes.flatMap { try Self.valueMismatches($0.rows, $0.cols, $0.dv) } }
    }

    static func valueMismatches(_ rows: Int, _ cols: Int, _ dv: Int) throws -> [String] {
        var log = KernelMismatches()
        let v0 = try randn([cols, dv], seed: 41).scalars, o0 = try randn([rows, dv], seed: 42).scalars
        // Probabilities in [0, 1] with exact zeros, as a softmax tile holds them.
        let p = StridedMatrix(rows: rows, columns: cols) { r, c in (r * 7 + c * 3) % 5 == 0 ? 0 : Float((r * 31 + c * 17) % 101) / 100 }
        let v = StridedMatrix(rows: cols, columns: dv, gap: 2) { v0[$0 * dv + $1] }
        var o = StridedMatrix(rows: rows, columns: dv, gap: 4) { o0[$0 * dv + $1] }
        let before = o
        sdpa_pv_tile(Int32(rows), Int32(cols), Int32(dv), p.storage, p.stride, v.storage, v.stride, &o.storage, o.stride)
        var want = [Double](), allowed = [Double]()
        for r in 0..<rows {
            for d in 0..<dv {
                let products = (0..<cols).map { Double(p[r, $0]) * Double(v[$0, d]) }
                want.append(Double(before[r, d]) + products.reduce(0, +))
                allowed.append(Double(cols + 2) * 0x1p-24 * (abs(Double(before[r, d])) + products.map(abs).reduce(0, +)))
            }
        }
        let label = "\(rows)×\(cols)×\(dv)"
        log.expectClose(o.values, want, shape: [rows, dv], bound: "(keys + 2)·2⁻²⁴·(|o| + Σ|p·v|)", label) { allowed[$0] }
        log.expect(o.paddingIsUntouched, "\(label): wrote outside the output tile")
        return log.found
    }

    /// Key tiles: (keys, head dim) on both sides of the 8×8 transposes, 128 and 64 keys, E to 256.
    static let packShapes: [(cols: Int, depth: Int)] = [(1, 1), (8, 8), (7, 9), (128, 64), (64, 128), (33, 256), (130, 17), (0, 5), (5, 0)]

    @Test("sdpa_pack_kt_f32/f16/bf16: Kᵀ exactly, half precisions widened exactly", arguments: KernelFamily.available)
    func packing(_ family: KernelFamily) throws {
        try family.expectNoMismatches { try Self.packShapes.flatMap { try Self.packMismatches($0.cols, $0.depth) } }
    }

    static func packMismatches(_ cols: Int, _ depth: Int) throws -> [String] {
        var log = KernelMismatches()
        let ldk = depth + 5
        var keys = try randn([cols, ldk], seed: 51).scalars.map { $0 * 1000 }
        // Special values in every kind: NaN, infinities, -0, a float32 subnormal, a float16 subnormal.
        for (i, x) in [Float.nan, .infinity, -.infinity, -0.0, 0x1p-133, 3e-6].enumerated() where i < keys.count { keys[i * 7 % keys.count] = x }
        let halfBits = keys.map { Float16($0).bitPattern }
        let bfloatBits = keys.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }  // any bits: a bf16 is its top half
        for kind in ["f32", "f16", "bf16"] {
            var kt = StridedMatrix(rows: depth, columns: cols, gap: 9)
            switch kind {
            case "f32": sdpa_pack_kt_f32(Int32(cols), Int32(depth), keys, ldk, &kt.storage, kt.stride)
            case "f16": sdpa_pack_kt_f16(Int32(cols), Int32(depth), halfBits, ldk, &kt.storage, kt.stride)
            default: sdpa_pack_kt_bf16(Int32(cols), Int32(depth), bfloatBits, ldk, &kt.storage, kt.stride)
            }
            let label = "\(cols)×\(depth) \(kind)"
            var wrong = 0
            for e in 0..<depth {
                for c in 0..<cols {
                    let i = c * ldk + e
                    let want: Float = kind == "f32" ? keys[i]
                        : kind == "f16" ? Float(Float16(bitPattern: halfBits[i])) : Float(bitPattern: UInt32(bfloatBits[i]) << 16)
                    // Exact: the same bits (any NaN for a NaN).
                    if !(want.isNaN ? kt[e, c].isNaN : kt[e, c].bitPattern == want.bitPattern) {
                        if wrong == 0 { log.expect(false, "\(label): Kᵀ[\(e), \(c)] = \(kt[e, c]), want \(want)") }
                        wrong += 1
                    }
                }
            }
            log.expect(wrong == 0, "\(label): \(wrong) elements differ")
            log.expect(kt.paddingIsUntouched, "\(label): wrote outside Kᵀ")
        }
        return log.found
    }

    @Test("sdpa_normalize_tile: each row times 1/rowSum into the destination's kind, rows without keys +0", arguments: KernelFamily.available)
    func normalization(_ family: KernelFamily) throws {
        try family.expectNoMismatches {
            try [(1, 1), (6, 16), (7, 5), (67, 130), (3, 256), (0, 4), (4, 0)].flatMap { try Self.normalizeMismatches($0.0, $0.1) }
        }
    }

    static func normalizeMismatches(_ rows: Int, _ dv: Int) throws -> [String] {
        var log = KernelMismatches()
        let o0 = try randn([rows, dv], seed: 61).scalars
        var o = StridedMatrix(rows: rows, columns: dv, gap: 5) { o0[$0 * dv + $1] * 40 }
        let before = o
        // Sums as online softmax leaves them (>= 1 for a row that saw a key), one row with none (0).
        var rowSum = (0..<rows).map { Float(1 + ($0 * 37) % 500) / 3 }
        if rows > 3 { rowSum[3] = 0 }
        // Out of place first (float32, then the half kinds): the source must stay as it was.
        var copy = StridedMatrix(rows: rows, columns: dv, gap: 2)
        sdpa_normalize_tile(Int32(rows), Int32(dv), o.storage, o.stride, rowSum, SDPA_ELEMENT_F32, &copy.storage, copy.stride)
        var halves = [(SDPA_ELEMENT_F16, [UInt16]()), (SDPA_ELEMENT_BF16, [UInt16]())]
        let halfStride = dv + 3, halfSentinel: UInt16 = 0xA5A5
        for i in halves.indices {
            halves[i].1 = [UInt16](repeating: halfSentinel, count: Swift.max(1, rows * halfStride + 3))
            sdpa_normalize_tile(Int32(rows), Int32(dv), o.storage, o.stride, rowSum, halves[i].0, &halves[i].1, halfStride)
        }
        let label = "\(rows)×\(dv)"
        log.expect(o.storage.map(\.bitPattern) == before.storage.map(\.bitPattern), "\(label): changed the source rows")
        let stride = o.stride
        o.storage.withUnsafeMutableBufferPointer {
            sdpa_normalize_tile(Int32(rows), Int32(dv), $0.baseAddress, stride, rowSum, SDPA_ELEMENT_F32, $0.baseAddress, stride)
        }
        let want = (0..<rows).flatMap { r in (0..<dv).map { rowSum[r] == 0 ? 0 : Double(before[r, $0]) / Double(rowSum[r]) } }
        // 1/l rounded, then the product rounded: within 2 ulps of o/l.
        log.expectClose(o.values, want, shape: [rows, dv], bound: "2 ulps", label) { 2 * floatULP(want[$0]) }
        if rows > 3 { log.expect((0..<dv).allSatisfy { o[3, $0] == 0 && o[3, $0].sign == .plus }, "\(label): a row with no key must be +0") }
        log.expect(o.paddingIsUntouched, "\(label): wrote outside the output tile")
        log.expect(copy.values.map { $0.bitPattern } == o.values.map { $0.bitPattern }, "\(label): out of place differs from in place")
        log.expect(copy.paddingIsUntouched, "\(label): wrote outside the destination")
        // The half kinds: the float32 result rounded once, as the converters round it.
        for (kind, got) in halves {
            var converted = [UInt16](repeating: 0, count: Swift.max(1, dv))
            for r in 0..<rows {
                let row = Array(o.storage[(r * o.stride)..<(r * o.stride + dv)])
                if kind == SDPA_ELEMENT_F16 { sdpa_convert_f32_to_f16(dv, row, &converted) } else { sdpa_convert_f32_to_bf16(dv, row, &converted) }
                log.expect(Array(got[(r * halfStride)..<(r * halfStride + dv)]) == Array(converted.prefix(dv)),
                           "\(label): kind \(kind.rawValue) row \(r) is not the float32 result rounded")
            }
            log.expect(got.indices.allSatisfy { i in (i / halfStride < rows && i % halfStride < dv) || got[i] == halfSentinel },
                       "\(label): kind \(kind.rawValue) wrote outside the destination")
        }
        return log.found
    }
}
