/// Choosing a backend: why each one cannot run a request, and the request itself.
extension SDPBackend {
    /// Why this backend cannot run `request`, or `nil` when it can.
    func _rejection(for request: _KernelRequest) -> String? {
        switch self {
        case .fused:
            if request.dtype == .float64 {
                return "float64 inputs run on the math backend (the fused kernel accumulates in float32)"
            }
            // Infinite, zero or subnormal as a Float (not normal) where the Double is not zero.
            if let scale = request.options.scale, scale != 0 && !Float(scale).isNormal {
                return "scale \(scale) is outside float32's normal range, in which the fused kernel takes it (the math backend computes in Double)"
            }
            return nil
        case .math:
            return nil
        }
    }
}

/// Runs `body` with only `backends` allowed, the Swift analogue of `torch.nn.attention.sdpa_kernel`.
///
/// ```swift
/// let reference = try withSDPBackends([.math]) {
///     try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(L, S))
/// }
/// ```
/// The restriction is a task-local value: it holds for everything `body` calls, on this thread or in child tasks.
public func withSDPBackends<R>(_ backends: Set<SDPBackend>, _ body: () throws -> R) rethrows -> R {
    try SDPBackend.$_allowedBits.withValue(SDPBackend._bits(backends), operation: body)
}

/// Runs async `body` with only `backends` allowed. See ``withSDPBackends(_:_:)``.
public func withSDPBackends<R>(_ backends: Set<SDPBackend>, _ body: () async throws -> R) async rethrows -> R {
    try await SDPBackend.$_allowedBits.withValue(SDPBackend._bits(backends), operation: body)
}

/// What a kernel must support to run one call: the sizes, the options and the kind of mask.
@usableFromInline
struct _KernelRequest {
    @usableFromInline
    enum Mask {
        case none
        /// A bias evaluated in the kernel from indices (causal, ALiBi, ...).
        case structured
        /// A dense mask read through broadcast strides.
        case dense(dtype: DType)
    }

    @usableFromInline var shape: AttentionShape
    @usableFromInline var dtype: DType
    @usableFromInline var options: AttentionOptions
    @usableFromInline var mask: Mask
    /// Whether the caller wants the log-sum-exp (a kernel that can skips writing it otherwise).
    @usableFromInline var logSumExp: Bool

    @usableFromInline
    init(shape: AttentionShape, dtype: DType, options: AttentionOptions, mask: Mask, logSumExp: Bool = true) {
        (self.shape, self.dtype, self.options, self.mask, self.logSumExp) = (shape, dtype, options, mask, logSumExp)
    }

    /// The first allowed backend, in ``SDPBackend/allCases`` order (fastest first), that supports the request.
    ///
    /// On the hot path of every call: one task-local read, no strings unless a backend is rejected.
    @usableFromInline
    func selectBackend() throws -> SDPBackend {
        let allowed = SDPBackend._allowedBits
        for backend in SDPBackend._preferenceOrder where allowed & backend._bit != 0 && backend._rejection(for: self) == nil {
            return backend
        }
        throw SDPAError.noBackend(
            allowed: SDPBackend.allCases.filter(SDPBackend.allowed.contains),
            reasons: explain().rejected.map { "\($0.key): \($0.value)" }.sorted())
    }

    func explain() -> (backend: SDPBackend?, rejected: [SDPBackend: String]) {
        var chosen: SDPBackend?
        var rejected: [SDPBackend: String] = [:]
        for backend in SDPBackend.allCases {
            if SDPBackend._allowedBits & backend._bit == 0 {
                rejected[backend] = "not allowed by withSDPBackends"
            } else if let reason = backend._rejection(for: self) {
                rejected[backend] = reason
            } else if chosen == nil {
                chosen = backend
            } else {
                rejected[backend] = "\(chosen!) is preferred"
            }
        }
        return (chosen, rejected)
    }
}
