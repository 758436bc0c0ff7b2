import CSDPAKernels
import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// `sdpa_qk_tile_masked` applies a dense mask in the `Q·Kᵀ` registers; it must give the bits of the
/// two-pass form (`sdpa_qk_tile`, then the mask tile) and the row maxima of what it stored, for every
/// edge of the register tile, and never read a mask byte outside the tile.
@Suite("Q·Kᵀ tile with a dense mask")
struct MaskedScoreTileTests {
    static let shapes: [(rows: Int, cols: Int)] = [(1, 1), (6, 16), (7, 3), (13, 17), (5, 24), (12, 31), (97, 40), (2, 129)]

    @Test("one pass equals two, bool and float masks, maxima included", arguments: KernelFamily.available)
    func matchesTwoPasses(_ family: KernelFamily) throws {
        try family.expectNoMismatches { try Self.shapes.flatMap { try Self.mismatches(rows: $0.rows, cols: $0.cols) } }
    }

    @Test("what a mask tile holds, read 32 bytes or 8 floats at a time, never past the tile", arguments: KernelFamily.available)
    func visibility(_ family: KernelFamily) throws {
        try family.expectNoMismatches { Self.visibilityMismatches() }
    }

    /// `sdpa_mask_tile_visibility` against a plain loop, on every pattern that sits at an edge of its
    /// vector loops: nothing or everything masked, or a single exception at the first or last position.
    static func visibilityMismatches() -> [String] {
        var log = KernelMismatches()
        let both = SDPA_MASK_SEEN_MASKED | SDPA_MASK_SEEN_VISIBLE
        for (rows, cols) in [(1, 1), (1, 31), (1, 32), (2, 33), (3, 64), (5, 70), (4, 7), (9, 8), (2, 9)] {
            for oneRow in [false, true] {
                let maskRows = oneRow ? 1 : rows, ldm = oneRow ? 0 : cols, n = maskRows * cols
                // (the value everywhere, the exception, where the exception is)
                let patterns: [(Bool, Bool, Int?)] = [(true, true, nil), (false, false, nil),
                                                      (true, false, 0), (true, false, n - 1), (false, true, 0), (false, true, n - 1)]
                for (visible, exceptionVisible, at) in patterns {
                    var expected = 0
                    for i in 0..<n {
                        let v = i == at ? exceptionVisible : visible
                        expected |= v ? SDPA_MASK_SEEN_VISIBLE : SDPA_MASK_SEEN_MASKED
                    }
                    let boolMask = GuardedBytes(count: n), floatMask = GuardedBytes(count: 4 * n)
                    let b = boolMask.bytes.bindMemory(to: UInt8.self, capacity: n)
                    let f = floatMask.bytes.bindMemory(to: Float.self, capacity: n)
                    for i in 0..<n {
                        let v = i == at ? exceptionVisible : visible
                        b[i] = v ? UInt8(1 + i % 200) : 0
                        f[i] = v ? (i % 2 == 0 ? 0 : -1e30) : -.infinity
                    }
                    for (kind, mask) in [(SDPA_MASK_BOOL, UnsafeRawPointer(b)), (SDPA_MASK_F32, UnsafeRawPointer(f))] {
                        let label = "\(rows)×\(cols) ldm \(ldm) \(kind == SDPA_MASK_BOOL ? "bool" : "float") visible \(visible), \(exceptionVisible) at \(at.map(String.init) ?? "-")"
                        let all = Int(sdpa_mask_tile_visibility(kind, Int32(rows), Int32(cols), mask, ldm, Int32(both)))
                        log.expect(all == expected, "\(label): \(all), want \(expected)")
                        let visibleOnly = Int(sdpa_mask_tile_visibility(kind, Int32(rows), Int32(cols), mask, ldm, Int32(SDPA_MASK_SEEN_VISIBLE)))
                        log.expect(visibleOnly & SDPA_MASK_SEEN_VISIBLE == expected & SDPA_MASK_SEEN_VISIBLE,
                                   "\(label), stopping at a visible one: \(visibleOnly), want \(expected)")
                    }
                }
            }
        }
        return log.found
    }

    /// Runs both forms on a `rows × cols` tile and describes every difference.
    static func mismatches(rows: Int, cols: Int) throws -> [String] {
        var log = KernelMismatches()
        let depth = 9
        var q = try Tensor.randomNormal(shape: [rows, depth], seed: 11).scalars
        let kt = try Tensor.randomNormal(shape: [depth, cols], seed: 12).scalars
        q[0] = .nan  // row 0's scores are NaN: masked positions must still be -inf
        for oneRow in [false, true] {  // ldm = cols, or ldm = 0 (one mask row for every query)
            let maskRows = oneRow ? 1 : rows, ldm = oneRow ? 0 : cols
            let boolMask = GuardedBytes(count: maskRows * cols)
            let floatMask = GuardedBytes(count: maskRows * cols * 4)
            let b = boolMask.bytes.bindMemory(to: UInt8.self, capacity: maskRows * cols)
            let f = floatMask.bytes.bindMemory(to: Float.self, capacity: maskRows * cols)
            for i in 0..<(maskRows * cols) {
                b[i] = (i * 7 + 3) % 5 == 0 ? 0 : UInt8(1 + i % 3)  // any nonzero byte attends
                f[i] = (i * 7 + 3) % 5 == 0 ? -.infinity : Float(i % 9) * -0.25
            }
            if oneRow || rows > 2 {  // a fully masked row (all -inf, maximum -inf)
                let r = oneRow ? 0 : 2
                for c in 0..<cols { b[r * cols + c] = 0; f[r * cols + c] = -.infinity }
            }
            for kind in [SDPA_MASK_BOOL, SDPA_MASK_F32] {
                var twoPass = [Float](repeating: 0, count: rows * cols), onePass = twoPass
                var maxima = [Float](repeating: 7, count: rows)
                q.withUnsafeBufferPointer { q in
                    kt.withUnsafeBufferPointer { kt in
                        sdpa_qk_tile(Int32(rows), Int32(cols), Int32(depth), q.baseAddress, depth, kt.baseAddress, cols, 0.3,
                                     &twoPass, cols, nil)
                        if kind == SDPA_MASK_BOOL {
                            sdpa_mask_tile_bool(Int32(rows), Int32(cols), &twoPass, cols, b, ldm)
                        } else {
                            sdpa_add_mask_tile_f32(Int32(rows), Int32(cols), &twoPass, cols, f, ldm)
                        }
                        let mask = kind == SDPA_MASK_BOOL ? UnsafeRawPointer(b) : UnsafeRawPointer(f)
                        sdpa_qk_tile_masked(Int32(rows), Int32(cols), Int32(depth), q.baseAddress, depth, kt.baseAddress, cols, 0.3,
                                            &onePass, cols, kind, mask, ldm, &maxima)
                    }
                }
                let label = "\(rows)×\(cols) \(kind == SDPA_MASK_BOOL ? "bool" : "float") ldm \(ldm)"
                log.expect(onePass.map(\.bitPattern) == twoPass.map(\.bitPattern), "\(label): scores differ")
                for r in 0..<rows {
                    let row = twoPass[r * cols..<(r + 1) * cols].filter { !$0.isNaN }
                    log.expect(maxima[r] == (row.max() ?? -.infinity), "\(label) row \(r): maximum \(maxima[r])")
                }
                let maskedInRowZero = (0..<cols).filter { kind == SDPA_MASK_BOOL ? b[$0] == 0 : f[$0] == -.infinity }
                log.expect(maskedInRowZero.allSatisfy { onePass[$0] == -.infinity }, "\(label): a NaN score was not masked")
            }
        }
        return log.found
    }
}
