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

/// The exact GELU in place: `x/2 · (1 + erf(x/√2))`, by the kernel family in use (`sdpa_gelu_f32`: erf
/// from Abramowitz and Stegun 7.1.26, absolute error ≤ 1.5e-7, PyTorch's own vectorized `erf`; for
/// `x < 0` the sum `1 + erf` formed as `erfc`, so large negative inputs lose nothing to cancellation).
@usableFromInline
func _gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
    sdpa_gelu_f32(count, x, x)
}
