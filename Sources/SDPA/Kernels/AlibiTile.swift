import CSDPAKernels

/// `score − slope·|d|` on a `rows × columns` tile of float32 scores in place (row stride `rowStride`), `d = first + r − c`
/// for row `r` and column `c`, `-infinity` where `causal` and `d < 0`: the kernel layer's vectorized ALiBi, the product
/// rounded and then subtracted, so the bits of ``AlibiBias/modifyScore(_:batch:head:query:key:)`` in `Float` (for distances
/// below 2²⁴, exact as floats).
@inlinable
func _alibiTile(_ scores: UnsafeMutablePointer<Float>, rowStride: Int, rows: Int, columns: Int, slope: Float, first: Int, causal: Bool) {
    sdpa_alibi_tile(Int32(rows), Int32(columns), scores, rowStride, slope, first, causal ? 1 : 0)
}

/// `Σ_r Σ_c gradients[r][c]·|first + r − c|` over a `rows × columns` tile (row stride `rowStride`): each row in float32
/// vectors, the rows in `Double` (ALiBi's slope gradient).
@inlinable
func _distanceWeightedSum(_ gradients: UnsafePointer<Float>, rowStride: Int, rows: Int, columns: Int, first: Int) -> Double {
    sdpa_distance_weighted_sum(Int32(rows), Int32(columns), gradients, rowStride, first)
}
