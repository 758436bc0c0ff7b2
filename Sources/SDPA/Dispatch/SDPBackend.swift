/// A kernel family that can run attention, the analogue of `torch.nn.attention.SDPBackend`.
///
/// Backends are tried in declaration order, fastest first.
public enum SDPBackend: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The flash-attention style CPU kernel: tiled, online softmax, float32 accumulation,
    /// biases computed (or dense masks read) inside it, all cores. float32, float16 and bfloat16.
    case fused
    /// The reference path: scores, bias and softmax evaluated element by element in `Double`.
    /// Runs every input, including dropout.
    case math

    public var description: String { rawValue }

    /// `allCases`, computed once: the synthesized `allCases` builds a new array on every access,
    /// and backend selection runs on every call.
    static let _preferenceOrder = SDPBackend.allCases

    /// The backends allowed in the current task (all of them unless ``withSDPBackends(_:_:)`` restricts them).
    @TaskLocal public static var allowed: Set<SDPBackend> = Set(SDPBackend.allCases)

    /// Why this backend cannot run `request`, or `nil` when it can.
    func _rejection(for request: _KernelRequest) -> String? {
        switch self {
        case .fused:
            if request.dtype == .float64 {
                return "float64 inputs run on the math backend (the fused kernel accumulates in float32)"
            }
            if request.options.dropoutP > 0 {
                return "dropout (dropoutP = \(request.options.dropoutP)) runs on the math backend"
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
    try SDPBackend.$allowed.withValue(backends, operation: body)
}

/// Runs async `body` with only `backends` allowed. See ``withSDPBackends(_:_:)``.
public func withSDPBackends<R>(_ backends: Set<SDPBackend>, _ body: () async throws -> R) async rethrows -> R {
    try await SDPBackend.$allowed.withValue(backends, operation: body)
}

/// What a kernel must support to run one call: the sizes, the options and the kind of mask.
struct _KernelRequest {
    enum Mask {
        case none
        /// A bias evaluated in the kernel from indices (causal, ALiBi, ...).
        case structured
        /// A dense mask read through broadcast strides.
        case dense(dtype: DType)
    }

    var shape: AttentionShape
    var dtype: DType
    var options: AttentionOptions
    var mask: Mask

    /// The first allowed backend, in ``SDPBackend/allCases`` order (fastest first), that supports the request.
    ///
    /// On the hot path of every call: one task-local read, no strings unless a backend is rejected.
    func selectBackend() throws -> SDPBackend {
        let allowed = SDPBackend.allowed
        // Usually nothing is restricted: skip hashing each backend into the set.
        let unrestricted = allowed.count == SDPBackend._preferenceOrder.count
        for backend in SDPBackend._preferenceOrder
        where (unrestricted || allowed.contains(backend)) && backend._rejection(for: self) == nil {
            return backend
        }
        throw SDPAError.noBackend(
            allowed: SDPBackend.allCases.filter(allowed.contains),
            reasons: explain().rejected.map { "\($0.key): \($0.value)" }.sorted())
    }

    func explain() -> (backend: SDPBackend?, rejected: [SDPBackend: String]) {
        var chosen: SDPBackend?
        var rejected: [SDPBackend: String] = [:]
        for backend in SDPBackend.allCases {
            if !SDPBackend.allowed.contains(backend) {
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
