/// The settings of one attention call besides its tensors and bias, passed to
/// ``AttnBias/dispatch(query:key:value:attnBias:options:)`` as one value so that adding
/// an option later does not change what conformers implement.
public struct AttentionOptions: Sendable, Hashable {
    /// Multiplies `Q Kᵀ`; `nil` means `1 / sqrt(E)`.
    public var scale: Float?
    /// Probability of zeroing each attention weight (kept ones are scaled by `1 / (1 - p)`); `0...1`.
    public var dropoutP: Float
    /// Seed of the counter-based dropout generator: the same seed gives the same output at any
    /// thread count. `nil` draws a fresh seed per call.
    public var dropoutSeed: UInt64?
    /// Grouped-query attention: let `H` be a multiple of `Hkv`, query head `h` using key/value head `h / (H / Hkv)`.
    public var enableGQA: Bool

    /// Options with PyTorch's defaults: scale `1 / sqrt(E)`, no dropout, no GQA.
    public init(scale: Float? = nil, dropoutP: Float = 0, dropoutSeed: UInt64? = nil, enableGQA: Bool = false) {
        self.scale = scale
        self.dropoutP = dropoutP
        self.dropoutSeed = dropoutSeed
        self.enableGQA = enableGQA
    }

    /// Throws ``SDPAError/invalidArgument(argument:value:reason:)`` for a dropout probability outside `0...1`.
    public func validate() throws {
        guard dropoutP >= 0, dropoutP <= 1 else {
            throw SDPAError.invalidArgument(argument: "dropoutP", value: "\(dropoutP)", reason: "a dropout probability must be in 0...1")
        }
    }

    /// The scale applied to `Q Kᵀ` for head dimension `headDim`.
    @inlinable
    public func resolvedScale(headDim: Int) -> Double {
        if let scale { return Double(scale) }
        return headDim > 0 ? 1 / Double(headDim).squareRoot() : 1
    }
}
