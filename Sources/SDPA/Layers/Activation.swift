import CSDPAKernels

/// The element-wise function a ``Linear`` layer applies to its output, fused into the matrix product
/// (applied to each block of the output while it is still in cache).
public enum Activation: String, Sendable, Hashable, CaseIterable {
    /// `x`.
    case identity
    /// The exact GELU of BERT and PyTorch's `nn.GELU()` (`approximate='none'`): `x · Φ(x) = x/2 · (1 + erf(x/√2))`.
    case gelu
    /// `max(x, 0)`.
    case relu

    /// Applies the activation to `count` floats in place.
    @usableFromInline
    func _apply(_ x: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .identity: return
        case .relu: for i in 0..<count where x[i] < 0 { x[i] = 0 }
        case .gelu: _gelu(x, count: count)
        }
    }
}

/// The exact GELU in place, 8 lanes at a time: `x/2 · (1 + erf(x/√2))` with erf from Abramowitz and
/// Stegun 7.1.26 (absolute error ≤ 1.5e-7, PyTorch's own vectorized `erf`) and `exp` from the kernels.
///
/// For `z = x/√2 < 0` the sum `1 + erf(z)` is formed directly as `erfc(|z|) = P(t) · exp(−z²)` rather
/// than as `1 − (1 − P(t) exp(−z²))`, so large negative inputs lose nothing to cancellation.
@usableFromInline
func _gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { buffer in
        let e = buffer.baseAddress!
        var start = 0
        while start < count {
            let n = Swift.min(256, count - start)
            let chunk = x + start
            for i in 0..<n { e[i] = -0.5 * chunk[i] * chunk[i] }
            sdpa_exp_f32(n, e, e)
            var i = 0
            while i + 8 <= n {
                let v = UnsafeRawPointer(chunk + i).loadUnaligned(as: SIMD8<Float>.self)
                let ev = UnsafeRawPointer(e + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(chunk + i).storeBytes(of: _geluLanes(v, expMinusSquare: ev), as: SIMD8<Float>.self)
                i += 8
            }
            if i < n {
                var v = SIMD8<Float>(repeating: 0), ev = SIMD8<Float>(repeating: 0)
                for j in 0..<(n - i) { (v[j], ev[j]) = (chunk[i + j], e[i + j]) }
                let r = _geluLanes(v, expMinusSquare: ev)
                for j in 0..<(n - i) { chunk[i + j] = r[j] }
            }
            start += n
        }
    }
}

/// GELU of 8 lanes given `exp(−x²/2)` of each.
@inlinable
func _geluLanes(_ x: SIMD8<Float>, expMinusSquare e: SIMD8<Float>) -> SIMD8<Float> {
    let z = (x * Float(0.5).squareRoot()).replacing(with: -x * Float(0.5).squareRoot(), where: x .< 0)  // |x| / √2
    let t = 1 / (1 + 0.3275911 * z)
    var p = SIMD8<Float>(repeating: 1.061405429)
    p = p * t - 1.453152027
    p = p * t + 1.421413741
    p = p * t - 0.284496736
    p = p * t + 0.254829592
    let erfc = p * t * e                                  // erfc(|x|/√2)
    let onePlusErf = (2 - erfc).replacing(with: erfc, where: x .< 0)
    // NaN passes through (x · anything); ±inf give inf and 0 (e is 0 there, erfc 0).
    let result = 0.5 * x * onePlusErf
    return result.replacing(with: 0, where: x .== -.infinity)
}
