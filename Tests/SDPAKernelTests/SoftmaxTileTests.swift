import CSDPAKernels
import Foundation
@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// The online-softmax micro-kernel on its own, against the same step in `Double`: the exponential
/// over its whole argument range, masked and NaN scores, and the running state across two tiles,
/// on every kernel family this processor runs.
@Suite("Online softmax tile")
struct SoftmaxTileTests {
    /// How a family computes exp(s − m). Vector families take it as 2^(s·log2e − M) with
    /// M = m·log2e rounded to `Float` once per row (that rounding scales a whole row alike and cancels
    /// in the normalization, so it is part of the definition, not an error); the portable loops as
    /// exp(s − m). A family passes if its results fit one of the two definitions in every tile.
    enum Exponential: CaseIterable {
        case direct, base2

        /// exp(s − m) as this definition computes it, in `Double`.
        func callAsFunction(_ s: Float, minus m: Float) -> Double {
            switch self {
            case .direct: return Foundation.exp(Double(s) - Double(m))
            case .base2:
                let log2e = Float(1.44269504088896341)
                return Foundation.exp2(Double(s) * Double(log2e) - Double(m * log2e))
            }
        }

        /// The factor earlier tiles' terms are rescaled by when a row's maximum moves from `mOld` to
        /// `m`: 2^(M(mOld) − M(m)) in the base-2 form, so that those terms meet this tile's at the same M.
        func rescaling(from mOld: Float, to m: Float) -> Double {
            switch self {
            case .direct: return Foundation.exp(Double(mOld) - Double(m))
            case .base2:
                let log2e = Float(1.44269504088896341)
                return Foundation.exp2(Double(mOld * log2e) - Double(m * log2e))
            }
        }
    }

    /// 67 rows cross the 64-row chunk and the 8-row groups; 203 columns reach the 16-, 8- and 3-wide loops.
    static let (rows, cols, dv) = (67, 203, 5)

    /// Row `r`'s scores in tile `t`: spread from the row's maximum down past the underflow of `exp`,
    /// with `-inf` (masked) scattered in, a fully masked row and a row holding a NaN.
    static func score(tile t: Int, row r: Int, col c: Int) -> Float {
        if r == 3 { return -.infinity }
        if r == 5 && t == 1 && c == 17 { return .nan }
        if (c * 7 + r) % 11 == 0 { return -.infinity }
        let top = Float(t) * 1.5 + Float(r % 5) - 2  // the second tile raises most rows' maxima
        return top - Float((c * 37 + r * 5) % cols) * (95 / Float(cols))
    }

    @Test("p, row sums, maxima and the output's rescaling match Double over two tiles", arguments: KernelFamily.available)
    func twoTiles(_ family: KernelFamily) throws {
        let attempts = try family.run { Exponential.allCases.map { Self.mismatches($0) } }
        let report = "\(family.name): exp(s - m): \(attempts[0].count) mismatches, first: \(attempts[0].prefix(3)); "
            + "2^(s log2e - M): \(attempts[1].count), first: \(attempts[1].prefix(3))"
        #expect(attempts.contains { $0.isEmpty }, "\(report)")
    }

    /// Runs two tiles through `sdpa_softmax_tile` and describes every value off its expectation.
    static func mismatches(_ exponential: Exponential) -> [String] {
        var log = KernelMismatches()
        let (rows, cols, dv) = (Self.rows, Self.cols, Self.dv)
        var rowMax = [Float](repeating: -.infinity, count: rows), rowSum = [Float](repeating: 0, count: rows)
        var o = [Float](repeating: 0, count: rows * dv)
        var expectedMax = [Double](repeating: -.infinity, count: rows), expectedSum = [Double](repeating: 0, count: rows)
        for t in 0..<2 {
            var s = (0..<rows * cols).map { Self.score(tile: t, row: $0 / cols, col: $0 % cols) }
            let scores = s
            // The first tile hands its maxima over, the second lets the kernel find them.
            let tileMax: [Float]? = t == 0
                ? (0..<rows).map { r in scores[r * cols..<(r + 1) * cols].filter { !$0.isNaN }.max()! } : nil
            // After the first tile the output rows hold 1 (as if Σ p·v had been added), so the second
            // tile's rescaling leaves alpha in them.
            if t == 1 { o = [Float](repeating: 1, count: rows * dv) }
            s.withUnsafeMutableBufferPointer { s in
                rowMax.withUnsafeMutableBufferPointer { m in
                    rowSum.withUnsafeMutableBufferPointer { l in
                        o.withUnsafeMutableBufferPointer { o in
                            if let tileMax {
                                tileMax.withUnsafeBufferPointer {
                                    sdpa_softmax_tile(Int32(rows), Int32(cols), s.baseAddress, cols, $0.baseAddress,
                                                      m.baseAddress, l.baseAddress, o.baseAddress, dv, Int32(dv))
                                }
                            } else {
                                sdpa_softmax_tile(Int32(rows), Int32(cols), s.baseAddress, cols, nil,
                                                  m.baseAddress, l.baseAddress, o.baseAddress, dv, Int32(dv))
                            }
                        }
                    }
                }
            }
            for r in 0..<rows {
                let row = scores[r * cols..<(r + 1) * cols].map(Double.init)
                let mOld = expectedMax[r]
                let mNew = Swift.max(mOld, row.filter { !$0.isNaN }.max()!)
                let mUse = mNew == -.infinity ? 0 : mNew
                let alpha = mOld == -.infinity ? 0 : exponential.rescaling(from: Float(mOld), to: Float(mUse))
                var sum = 0.0
                for c in 0..<cols {
                    let x = row[c] - mUse, p = Double(s[r * cols + c])
                    let want = x.isNaN ? .nan : exponential(scores[r * cols + c], minus: Float(mUse))
                    sum += want
                    if x.isNaN {
                        log.expect(p.isNaN, "tile \(t) row \(r) col \(c): p = \(p) for a NaN score")
                    } else if want < 0x1p-126 {
                        // exp(-inf) is exactly 0; below FLT_MIN the kernel may flush to 0
                        log.expect(p == 0 || (p > 0 && p < 0x1p-126), "tile \(t) row \(r) col \(c): p = \(p), exp = \(want)")
                        if x == -.infinity { log.expect(p == 0, "tile \(t) row \(r) col \(c): masked score gave \(p)") }
                    } else {
                        // the kernel rounds its argument (s·log2e − M, or s − m) once: up to |x|·6e-8 relative,
                        // on top of the polynomial's 1.1e-7
                        let tolerance = 1.5e-7 + 6e-8 * abs(x)
                        log.expect(abs(p - want) <= tolerance * want,
                                   "tile \(t) row \(r) col \(c): p = \(p), exp(\(x)) = \(want), rel \(abs(p - want) / want)")
                    }
                }
                expectedSum[r] = expectedSum[r] * alpha + sum
                expectedMax[r] = mNew
                log.expect(Double(rowMax[r]) == mNew, "tile \(t) row \(r): rowMax \(rowMax[r]), want \(mNew)")
                let l = Double(rowSum[r])
                if expectedSum[r].isNaN {
                    log.expect(l.isNaN, "tile \(t) row \(r): rowSum \(l) for a row with a NaN score")
                } else {
                    log.expect(abs(l - expectedSum[r]) <= 2e-6 * expectedSum[r], "tile \(t) row \(r): rowSum \(l), want \(expectedSum[r])")
                }
                if t == 1 {
                    for d in 0..<dv {
                        let got = Double(o[r * dv + d])
                        if mOld == -.infinity {
                            log.expect(got == 1, "row \(r): no earlier contribution, the output must be left alone (\(got))")
                        } else {
                            log.expect(abs(got - alpha) <= 4e-7 * alpha + 1e-30, "row \(r) d \(d): o = \(got), alpha = \(alpha)")
                        }
                    }
                }
            }
        }
        return log.found
    }
}
