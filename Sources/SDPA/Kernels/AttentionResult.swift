/// An attention result with the per-row log-sum-exp of the (scaled, biased) scores.
///
/// The log-sum-exp is kept as its storage, not as a second ``Tensor``: a result of one tensor and one
/// reference is small enough for the optimizer to hand its output on through the returns of a call without
/// copying it (with two tensors, each `.output` taken from a returned result was a copy of the output and a
/// release of the whole: three retains and three releases a call).
@usableFromInline
struct _AttentionResult {
    /// `[B, H, L, Ev]` (or `[H, L, Ev]`) in the query's dtype.
    @usableFromInline var output: Tensor
    /// The log-sum-exp's elements: `[B, H, L]` (or `[H, L]`, the output's shape without its last dimension)
    /// contiguous float32; `nil` when the caller did not ask for it (the fused kernel then writes none).
    @usableFromInline let logSumExpStorage: _TensorStorage?

    /// A result of `output` and `logSumExp`, which must be contiguous float32 of the output's shape without its
    /// last dimension (what every kernel allocates).
    @usableFromInline init(output: Tensor, logSumExp: Tensor?) {
        if let logSumExp {
            precondition(
                logSumExp.dtype == .float32 && logSumExp._offset == 0 && logSumExp.isContiguous
                    && logSumExp.shape.elementsEqual(output.shape.dropLast()),
                "a log-sum-exp is contiguous float32 in the output's shape without its last dimension")
        }
        self.output = output
        self.logSumExpStorage = logSumExp?._storage
    }

    /// `[B, H, L]` (or `[H, L]`) float32; `-inf` for fully masked rows. `nil` when the caller did not ask for it.
    @inlinable var logSumExp: Tensor? {
        logSumExpStorage.map {
            let shape = Array(output.shape.dropLast())
            return Tensor(_storage: $0, dtype: .float32, shape: shape, strides: Tensor.contiguousStrides(for: shape), offset: 0)
        }
    }

    /// The output and the log-sum-exp of a call that asked for it.
    @inlinable var pair: (output: Tensor, logSumExp: Tensor) { (output, logSumExp!) }
}
