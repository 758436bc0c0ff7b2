/// A brain floating-point number: sign, 8 exponent bits and 7 fraction bits.
///
/// It is the top half of a `Float`, so widening is exact and narrowing rounds
/// to nearest, ties to even (as PyTorch does). NaN stays NaN.
///
/// ```swift
/// let x = BFloat16(1.0 / 3.0)
/// print(Float(x))   // 0.333984375
/// ```
public struct BFloat16: Sendable, Hashable, CustomStringConvertible {
    /// The raw 16 bits.
    public var bitPattern: UInt16

    /// Creates a value from its raw 16 bits.
    @inlinable
    public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// Rounds a `Float` to the nearest `BFloat16`, ties to even.
    @inlinable
    public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            // Keep the sign and force a quiet-NaN payload so truncation cannot produce infinity.
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        } else {
            let roundingBias: UInt32 = 0x7FFF &+ ((bits >> 16) & 1)
            bitPattern = UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
        }
    }

    /// The exact `Float` value.
    @inlinable
    public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    /// The value as its `Float` prints.
    public var description: String { floatValue.description }
}

extension Float {
    /// The exact value of a ``BFloat16``.
    @inlinable
    public init(_ value: BFloat16) { self = value.floatValue }
}
