/// A kernel family that can run attention, the analogue of `torch.nn.attention.SDPBackend`.
///
/// Backends are tried in declaration order, fastest first. Which one runs a call is decided in
/// `Dispatch/` (`_KernelRequest`); the enum lives here, with the shape and the errors, because
/// ``SDPAError/noBackend(allowed:reasons:)`` names backends.
public enum SDPBackend: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The flash-attention style CPU kernel: tiled, online softmax, float32 accumulation,
    /// biases computed (or dense masks read) inside it, all cores. float32, float16 and bfloat16.
    case fused
    /// The reference path: scores, bias and softmax evaluated element by element in `Double`.
    /// Runs every input, including dropout.
    case math

    /// The backend's name, as `withSDPBackends` and `explainSDPA` print it.
    public var description: String { rawValue }

    /// `allCases`, computed once: the synthesized `allCases` builds a new array on every access,
    /// and backend selection runs on every call.
    static let _preferenceOrder = SDPBackend.allCases

    /// The backends allowed in the current task (all of them unless ``withSDPBackends(_:_:)`` restricts them).
    public static var allowed: Set<SDPBackend> { Set(allCases.filter { _allowedBits & $0._bit != 0 }) }

    /// ``allowed`` as bits, the task-local value itself: reading a task-local `Set` costs a retain
    /// and a release, and backend selection reads it on every call.
    @TaskLocal static var _allowedBits: UInt8 = SDPBackend._bits(Set(SDPBackend.allCases))

    /// This backend's bit in ``_allowedBits``.
    var _bit: UInt8 {
        switch self {
        case .fused: 1
        case .math: 2
        }
    }

    /// `backends` as bits of ``_allowedBits``.
    static func _bits(_ backends: Set<SDPBackend>) -> UInt8 { backends.reduce(0) { $0 | $1._bit } }
}
