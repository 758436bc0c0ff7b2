import CSDPAKernels
import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// `sdpa_qk_tile_direct` (a few query rows against keys as stored, for decoding) against the same
/// products in `Double`, for keys in each element type, head dims off the 8-wide vectors and key
/// counts off the 8-key groups, in every kernel family.
@Suite("Q·Kᵀ tile reading keys as stored")
struct DirectScoreTileTests {
    static let shapes: [(rows: Int, cols: Int, depth: Int)] = [
        (1, 1, 1), (1, 8, 8), (1, 13, 64), (2, 128, 64), (3, 31, 7), (4, 9, 65), (1, 40, 128), (7, 17, 23), (1, 5, 256),
    ]

    @Test("scores and maxima match Double", arguments: KernelFamily.available)
    func matchesDouble(_ family: KernelFamily) throws {
        try family.expectNoMismatches {
            try Self.shapes.flatMap { try Self.mismatches(rows: $0.rows, cols: $0.cols, depth: $0.depth) }
        }
    }

    static func mismatches(rows: Int, cols: Int, depth: Int) throws -> [String] {
        var log = KernelMismatches()
        var q = try Tensor.randomNormal(shape: [rows, depth], seed: 21).scalars
        // Keys with a row stride wider than the head dim, as in a [B, S, H, E] cache viewed per head.
        let ldk = depth + 3
        var keys = try Tensor.randomNormal(shape: [cols, ldk], seed: 22).scalars
        if rows > 1 { q[depth] = .nan }  // row 1 is NaN throughout: its maximum skips it (-inf)
        keys[0] = 1e30  // a large key: finite products, no overflow in float
        let scale: Float = 0.2
        for kind in [SDPA_ELEMENT_F32, SDPA_ELEMENT_F16, SDPA_ELEMENT_BF16] {
            // The keys as the kernel sees them, and the same values back in Float for the reference.
            var bits = [UInt16](repeating: 0, count: keys.count)
            var seen = keys
            if kind == SDPA_ELEMENT_F16 {
                sdpa_convert_f32_to_f16(keys.count, keys, &bits)
                sdpa_convert_f16_to_f32(bits.count, bits, &seen)
            } else if kind == SDPA_ELEMENT_BF16 {
                sdpa_convert_f32_to_bf16(keys.count, keys, &bits)
                sdpa_convert_bf16_to_f32(bits.count, bits, &seen)
            }
            var s = [Float](repeating: 0, count: rows * cols), maxima = [Float](repeating: 7, count: rows)
            if kind == SDPA_ELEMENT_F32 {
                sdpa_qk_tile_direct(Int32(rows), Int32(cols), Int32(depth), q, depth, kind, keys, ldk, scale, &s, cols, &maxima)
            } else {
                sdpa_qk_tile_direct(Int32(rows), Int32(cols), Int32(depth), q, depth, kind, bits, ldk, scale, &s, cols, &maxima)
            }
            let label = "\(rows)×\(cols)×\(depth) kind \(kind.rawValue)"
            var want = [Double](), allowed = [Double]()
            for r in 0..<rows {
                for c in 0..<cols {
                    var sum = 0.0, magnitude = 0.0
                    for e in 0..<depth {
                        let product = Double(q[r * depth + e]) * Double(seen[c * ldk + e])
                        sum += product
                        magnitude += abs(product)
                    }
                    want.append(sum * Double(scale))
                    // float accumulation over `depth` terms: a few ulps of the sum of magnitudes
                    allowed.append(Double(depth + 2) * 0x1p-24 * magnitude * Double(scale))
                }
            }
            // NaN queries give NaN rows; the large key as an infinite float16 gives infinities.
            let got = s.map(Double.init)
            log.expectClose(got, want, shape: [rows, cols], bound: "(depth + 2)·2⁻²⁴·Σ|q·k|", label) { allowed[$0] }
            for r in 0..<rows {
                let row = got[r * cols..<(r + 1) * cols].filter { !$0.isNaN }
                log.expect(Double(maxima[r]) == row.max() ?? -.infinity, "\(label) row \(r): maximum \(maxima[r]), want \(row.max() ?? -.infinity)")
            }
        }
        return log.found
    }
}
