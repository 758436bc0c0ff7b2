import CSDPAKernels

/// `cap * tanh(score / cap)` on a `rows x columns` tile of float32 scores in place (row stride
/// `rowStride`), masked (`-infinity`) scores left masked: the kernel layer's vectorized soft-capping,
/// for biases, which never call the C target themselves.
@inlinable
func _softCapTile(_ scores: UnsafeMutablePointer<Float>, rowStride: Int, rows: Int, columns: Int, cap: Float) {
    sdpa_softcap_tile(Int32(rows), Int32(columns), scores, rowStride, cap)
}
