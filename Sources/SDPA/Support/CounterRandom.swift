/// A counter-based random generator: the value at counter `n` is a pure function
/// of `(seed, n)`, so results do not depend on which thread draws which number
/// or in what order (dropout and seeded tensors are reproducible at any thread count).
@usableFromInline
struct _CounterRandom: Sendable {
    @usableFromInline let seed: UInt64

    @inlinable init(seed: UInt64) { self.seed = seed }

    /// SplitMix64's finalizer applied to the seeded counter.
    @inlinable
    func bits(_ counter: UInt64) -> UInt64 {
        var z = seed &+ (counter &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in `[0, 1)` with 53 random bits.
    @inlinable
    func unit(_ counter: UInt64) -> Double {
        Double(bits(counter) >> 11) * 0x1p-53
    }
}
