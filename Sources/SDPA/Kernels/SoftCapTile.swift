import CSDPAKernels

/// `cap * tanh(score / cap)` on a `rows x columns` tile of float32 scores in place (row stride
/// `rowStride`), masked (`-infinity`) scores left masked: the kernel layer's vectorized soft-capping,
/// for biases, which never call the C target themselves.
@inlinable
func _softCapTile(_ scores: UnsafeMutablePointer<Float>, rowStride: Int, rows: Int, columns: Int, cap: Float) {
    sdpa_softcap_tile(Int32(rows), Int32(columns), scores, rowStride, cap)
}

/// `gradients *= 1 − (y / cap)²` on a `rows x columns` tile (row stride `rowStride` for both), `y` the capped
/// scores (`cappedScores`): soft-capping's derivative, vectorized; 0 where `y` is masked (`-infinity`).
@inlinable
func _softCapGradientTile(
    _ gradients: UnsafeMutablePointer<Float>, rowStride: Int, cappedScores: UnsafePointer<Float>, rows: Int, columns: Int, cap: Float
) {
    sdpa_softcap_gradient_tile(Int32(rows), Int32(columns), gradients, rowStride, cappedScores, rowStride, cap)
}
