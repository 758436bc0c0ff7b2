/// The element type of a ``Tensor``.
///
/// Floating-point tensors of every width are read as `Float` by the kernels,
/// which accumulate in `Float` (the fused path) or `Double` (the reference
/// math path). `bool` tensors are attention masks: `true` means "attend".
///
/// See also: ``Tensor/converted(to:)``.
public enum DType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// IEEE 754 binary32.
    case float32
    /// IEEE 754 binary16, stored as Swift's `Float16` where the platform has it.
    case float16
    /// The brain floating-point format: the upper 16 bits of a binary32. See ``BFloat16``.
    case bfloat16
    /// IEEE 754 binary64.
    case float64
    /// One byte per element, 0 or 1.
    case bool

    /// Bytes one element occupies in storage.
    public var byteWidth: Int {
        switch self {
        case .float32: 4
        case .float16, .bfloat16: 2
        case .float64: 8
        case .bool: 1
        }
    }

    /// Whether this is one of the floating-point types.
    public var isFloatingPoint: Bool { self != .bool }

    /// float16 or bfloat16: the dtypes whose values the kernels widen to float32, and whose sums are kept wider.
    var isHalfPrecision: Bool { self == .float16 || self == .bfloat16 }

    /// The dtype's name (`float32`, `bfloat16`, …), as NumPy and PyTorch spell it.
    public var description: String { rawValue }
}
