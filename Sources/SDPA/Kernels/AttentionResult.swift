/// An attention result with the per-row log-sum-exp of the (scaled, biased) scores.
@usableFromInline
struct _AttentionResult {
    /// `[B, H, L, Ev]` (or `[H, L, Ev]`) in the query's dtype.
    @usableFromInline var output: Tensor
    /// `[B, H, L]` (or `[H, L]`) float32; `-inf` for fully masked rows.
    @usableFromInline var logSumExp: Tensor

    @usableFromInline init(output: Tensor, logSumExp: Tensor) {
        self.output = output
        self.logSumExp = logSumExp
    }

    @inlinable var pair: (output: Tensor, logSumExp: Tensor) { (output, logSumExp) }
}
