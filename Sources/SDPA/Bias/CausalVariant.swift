/// Which diagonal a causal mask is aligned to when `L != S`.
///
/// With `L = 3` queries and `S = 4` keys (1 = attend):
///
/// ```
/// upperLeft                lowerRight
/// [[1, 0, 0, 0],           [[1, 1, 0, 0],
///  [1, 1, 0, 0],            [1, 1, 1, 0],
///  [1, 1, 1, 0]]            [1, 1, 1, 1]]
/// ```
///
/// `upperLeft` is `tril(ones(L, S))`, what `isCausal: true` means. `lowerRight`
/// is `tril(ones(L, S), diagonal: S - L)`: the last query sees every key, as when
/// `L` new tokens are decoded against a cache of `S` keys. With `L > S`, its first
/// `L - S` rows see no key at all, and their output is 0.
public enum CausalVariant: String, Sendable, Hashable, CaseIterable {
    /// The diagonal starts at the top-left corner.
    case upperLeft
    /// The diagonal ends at the bottom-right corner.
    case lowerRight

    /// How many keys past its own index query `i` may see: key `j` is visible when `j <= i + offset`.
    @inlinable
    public func diagonalOffset(seqLenQ: Int, seqLenKV: Int) -> Int {
        self == .upperLeft ? 0 : seqLenKV - seqLenQ
    }
}
