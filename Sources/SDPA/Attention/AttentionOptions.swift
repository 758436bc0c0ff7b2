/// The settings of one attention call besides its tensors and bias, passed to
/// ``AttnBias/dispatch(query:key:value:attnBias:options:)`` as one value so that adding
/// an option later does not change what conformers implement.
public struct AttentionOptions: Sendable, Hashable {
    /// Multiplies `Q Kᵀ`; `nil` means `1 / sqrt(E)`. A `Double`, as PyTorch's `scale` (a Python float): the
    /// math backend (float64 inputs, or any under `withSDPBackends([.math])`) computes in `Double` with it as
    /// given; the fused kernels (float32, float16, bfloat16) take it rounded to `Float` once, as PyTorch's CPU
    /// kernels do (a scale that is 0, subnormal or infinite only as a `Float` runs on the math backend). NaN and
    /// ±infinity are errors (``validate()``).
    public var scale: Double?
    /// Probability of zeroing each attention weight (kept ones are scaled by `1 / (1 - p)`); `0...1`.
    public var dropoutP: Float
    /// Seed of the counter-based dropout generator: the same seed gives the same output at any
    /// thread count. `nil` draws a fresh seed per call.
    public var dropoutSeed: UInt64?
    /// Grouped-query attention: let `H` be a multiple of `Hkv`, query head `h` using key/value head `h / (H / Hkv)`
    /// (key and value head counts may differ, each dividing `H`).
    /// Without it head counts broadcast as PyTorch's do: equal, or 1 (one key/value head shared by every query head).
    public var enableGQA: Bool
    /// Learned attention sinks (gpt-oss; MLX's `sinks`): one logit per query head, shape `[H]`, any float
    /// dtype. Row `i` of head `h` becomes `exp(s_ij) / (exp(sinks[h]) + Σ_j exp(s_ij))`: the sink joins the
    /// softmax's denominator and contributes to no output; the log-sum-exp includes it, and a fully masked
    /// row gives 0 with a log-sum-exp of `sinks[h]`. `-infinity` means no sink for that head. `nil`: none.
    public var sinks: Tensor?

    /// Options with PyTorch's defaults: scale `1 / sqrt(E)`, no dropout, no GQA, no sinks.
    public init(scale: Double? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false, sinks: Tensor? = nil) {
        self.scale = scale
        self.dropoutP = dropoutP
        self.dropoutSeed = dropoutSeed
        self.enableGQA = enableGQA
        self.sinks = sinks
    }

    /// Options whose scale is given in another floating-point type (a `Float`, as the scale's type was
    /// before it became a `Double`): converted to `Double` (exactly, from a `Float`), otherwise as the initializer
    /// taking a `Double`.
    @_disfavoredOverload @_documentation(visibility: internal)
    public init<Scale: BinaryFloatingPoint>(
        scale: Scale?, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false, sinks: Tensor? = nil
    ) {
        self.init(scale: _widenedScale(scale), dropoutP: dropoutP, dropoutSeed: dropoutSeed, enableGQA: enableGQA, sinks: sinks)
    }

    /// Throws ``SDPAError/invalidArgument(argument:value:reason:)`` for a scale that is NaN or infinite (PyTorch
    /// returns NaN for either), or a dropout probability outside `0...1`.
    @inlinable
    public func validate() throws {
        // Inline, as every call checks: the comparisons, not a call, unless something is wrong.
        if scale?.isFinite ?? true, dropoutP >= 0, dropoutP <= 1 { return }
        try _throwInvalidOption()
    }

    /// The error ``validate()`` throws.
    @usableFromInline
    func _throwInvalidOption() throws {
        if let scale, !scale.isFinite {
            throw SDPAError.invalidArgument(argument: "scale", value: "\(scale)", reason: "the scale must be a finite number (or nil for 1 / sqrt(E))")
        }
        throw SDPAError.invalidArgument(argument: "dropoutP", value: "\(dropoutP)", reason: "a dropout probability must be in 0...1")
    }

    /// ``validate()``, and the sinks against the inputs of `shape`: one logit per query head (`[H]`), a
    /// float dtype, no NaN and no `+infinity`.
    ///
    /// - Throws: ``SDPAError`` naming `sinks` (or `sinks[h]`) and its shape.
    public func validate(for shape: AttentionShape) throws {
        try validate()
        guard let sinks else { return }
        guard sinks.dtype.isFloatingPoint else {
            throw SDPAError.unsupportedDType(argument: "sinks", dtype: sinks.dtype, reason: "sinks are logits: float32, float16, bfloat16 or float64")
        }
        guard sinks.shape == [shape.queryHeads] else {
            throw SDPAError.invalidShape(
                argument: "sinks", shape: sinks.shape,
                reason: "expected [H] = [\(shape.queryHeads)]: one logit per query head (\(shape))")
        }
        if let h = sinks.doubleScalars.firstIndex(where: { $0.isNaN || $0 == .infinity }) {
            throw SDPAError.invalidArgument(
                argument: "sinks[\(h)]", value: "\(sinks.doubleScalars[h])",
                reason: "a sink logit must be finite, or -infinity for no sink")
        }
    }

    /// The scale applied to `Q Kᵀ` for head dimension `headDim`.
    @inlinable
    public func resolvedScale(headDim: Int) -> Double {
        if let scale { return scale }
        return headDim > 0 ? 1 / Double(headDim).squareRoot() : 1
    }

    /// Equal when every setting is; sinks compare by shape, dtype and bits.
    public static func == (a: AttentionOptions, b: AttentionOptions) -> Bool {
        a.scale == b.scale && a.dropoutP == b.dropoutP && a.dropoutSeed == b.dropoutSeed && a.enableGQA == b.enableGQA
            && AttentionOptions.sameSinks(a.sinks, b.sinks)
    }

    /// Hashes what ``==`` compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(scale)
        hasher.combine(dropoutP)
        hasher.combine(dropoutSeed)
        hasher.combine(enableGQA)
        hasher.combine(sinks?.shape)
        hasher.combine(sinks?.dtype)
        hasher.combine(sinks?.doubleScalars.map(\.bitPattern))
    }

    private static func sameSinks(_ a: Tensor?, _ b: Tensor?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return a.shape == b.shape && a.dtype == b.dtype && a.doubleScalars.map(\.bitPattern) == b.doubleScalars.map(\.bitPattern)
    }
}

/// A scale of another floating-point type as the `Double` the entry points take (exactly, from a `Float`).
@usableFromInline
func _widenedScale<Scale: BinaryFloatingPoint>(_ scale: Scale?) -> Double? {
    guard let scale else { return nil }
    return Double(scale)
}
