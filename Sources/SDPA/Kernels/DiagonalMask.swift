import CSDPAKernels

/// A tile crossed by a diagonal (key column `c` visible from tile row `r` when `c − r ≤ d`) as a bool
/// mask the `Q·Kᵀ` kernel reads in place, with no mask tensor: one strip of bytes, ones then zeros,
/// read with a row stride of −1, so each row starts a byte earlier than the row above and its visible run
/// ends one column later, as the diagonal does. The strip is made once and never freed.
@usableFromInline
enum _DiagonalMask {
    /// Ones at strip positions `0..<half`, zeros at `half..<2 * half`: any tile of up to `half` rows and
    /// columns together reads inside it.
    @usableFromInline static let half = 512
    /// Bytes before and after the strip that a row's last, partial vector may load (and ignore).
    @usableFromInline static let margin = 64

    @usableFromInline nonisolated(unsafe) static let strip: UnsafeRawPointer = {
        let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * half + 2 * margin)
        bytes.initialize(repeating: 1, count: margin + half)
        (bytes + margin + half).initialize(repeating: 0, count: half + margin)
        return UnsafeRawPointer(bytes + margin)
    }()

    /// The mask of a `rows × cols` tile whose row `r` sees columns `c ≤ r + lastVisibleColumn` (the
    /// first row's last visible column; negative when it sees none), or `nil` when the tile is too large
    /// for the strip.
    @inlinable
    static func tile(rows: Int, cols: Int, lastVisibleColumn d: Int) -> _ScoreTileMask? {
        // Row r reads strip[start − r + c], which is 1 exactly when c − r ≤ half − 1 − start = d.
        let start = half - 1 - d
        guard rows > 0, cols > 0, start - (rows - 1) >= 0, start + cols <= 2 * half else { return nil }
        return _ScoreTileMask(kind: SDPA_MASK_BOOL, base: strip + start, rowStride: -1)
    }
}
