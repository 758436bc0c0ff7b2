/// An attention result with the per-row log-sum-exp of the (scaled, biased) scores.
@usableFromInline
struct _AttentionResult {
    /// `[B, H, L, Ev]` (or `[H, L, Ev]`) in the query's dtype.
    @usableFromInline var output: Tensor
    /// `[B, H, L]` (or `[H, L]`) float32; `-inf` for fully masked rows. `nil` when the caller did not ask
    /// for it (the fused kernel then writes none).
    @usableFromInline var logSumExp: Tensor?

    @usableFromInline init(output: Tensor, logSumExp: Tensor?) {
        self.output = output
        self.logSumExp = logSumExp
    }

    /// The output and the log-sum-exp of a call that asked for it.
    @inlinable var pair: (output: Tensor, logSumExp: Tensor) { (output, logSumExp!) }
}
