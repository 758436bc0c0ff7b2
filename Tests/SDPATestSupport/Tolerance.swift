import SDPA

/// How far a result may be from its reference, element by element: `|actual − expected| ≤ atol + rtol·|expected|`.
///
/// The half-precision tolerances are not chosen but derived, from the float32 one and the rounding
/// the suite proves elsewhere (`reducedPrecisionOutputIsTheRoundedFloat32Output`: a float16 or
/// bfloat16 output is the float32 result rounded once, to nearest).
public struct Tolerance: Sendable, Equatable, CustomStringConvertible {
    /// The absolute part.
    public var atol: Double
    /// The part relative to the reference.
    public var rtol: Double

    /// A tolerance of `atol + rtol·|expected|`.
    public init(atol: Double, rtol: Double) {
        self.atol = atol
        self.rtol = rtol
    }

    /// The bound for one reference value.
    public func allowed(for expected: Double) -> Double { atol + rtol * Swift.abs(expected) }

    public var description: String { "atol \(atol), rtol \(rtol)" }

    /// float32 attention (float32 accumulation over up to ~1000 keys) against a float64 reference,
    /// and the fused kernel against the math backend in float32.
    public static let float32 = Tolerance(atol: 1e-5, rtol: 1e-5)

    /// A float32 log-sum-exp: `m + log(l)` with `l` a float32 sum of up to ~1600 terms, each exp
    /// within 2 ulp: `l` is within `n·2⁻²⁴` relative, so its log within ~1e-4 absolute.
    public static let logSumExp = Tolerance(atol: 1e-4, rtol: 1e-5)

    /// The unit roundoff `u` of `dtype` (half the spacing at 1): rounding to nearest changes a
    /// normal value `x` by at most `u·|x|`.
    public static func unitRoundoff(_ dtype: DType) -> Double {
        switch dtype {
        case .float16: 0x1p-11
        case .bfloat16: 0x1p-8
        case .float64: 0x1p-53
        default: 0x1p-24
        }
    }

    /// Half the spacing of `dtype`'s subnormals: the absolute error of rounding a tiny value.
    static func subnormalRoundoff(_ dtype: DType) -> Double {
        switch dtype {
        case .float16: 0x1p-25
        case .float64: 0x1p-1074
        default: 0x1p-150  // float32 and bfloat16 share the exponent range
        }
    }

    /// A result within `self` of an unrounded reference `r`, then rounded once to `dtype` (a fused
    /// output against a PyTorch float64 reference): `|round(a) − r| ≤ u·|a| + |a − r|`, with
    /// `|a| ≤ |r| + δ`, so `atol·(1 + u)` and `rtol·(1 + u) + u` (plus a subnormal's rounding).
    public func roundedOnce(to dtype: DType) -> Tolerance {
        let u = Self.unitRoundoff(dtype)
        return Tolerance(atol: atol * (1 + u) + Self.subnormalRoundoff(dtype), rtol: rtol * (1 + u) + u)
    }

    /// `self` widened for probabilities rounded to bfloat16 before `P·V` (a family multiplying
    /// bfloat16 pairs): each `p` within `u·p`, and the row sum taken from the unrounded ones, so an
    /// output moves by at most `2u·Σ p|v| / Σ p ≤ 2u·max|v|`.
    public func withBFloat16Probabilities(maxAbsValue: Double) -> Tolerance {
        Tolerance(atol: atol + 2 * Self.unitRoundoff(.bfloat16) * maxAbsValue, rtol: rtol)
    }

    /// Two results within `self` of each other, each then rounded once to `dtype` (the fused kernel
    /// against the math backend on half-precision inputs): they may round to neighbours, so
    /// `|round(a) − round(b)| ≤ u·|a| + |a − b| + u·|b|`, measured against the rounded `b`.
    public func bothRounded(to dtype: DType) -> Tolerance {
        let u = Self.unitRoundoff(dtype), grow = (1 + u) * (1 + u)
        return Tolerance(atol: atol * grow + 2 * Self.subnormalRoundoff(dtype), rtol: (rtol + 2 * u) * grow)
    }
}
