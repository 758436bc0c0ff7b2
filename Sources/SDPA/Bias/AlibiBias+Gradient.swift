/// ALiBi's slopes are learnable: `dL/dslopes[h] = Σ dL/ds · (−|i + offset − j|)` over the visible
/// positions of head `h`, accumulated in `Double` (``AttentionGradients/alibiSlopes``).
extension AlibiBias: TrainableAttnBias {
    /// One value per head, `dL/dslopes[h]`.
    public typealias ParameterGradient = [Double]

    /// Zeros, one per slope.
    public var zeroParameterGradient: [Double] { [Double](repeating: 0, count: slopes.count) }

    /// `−Σ dL/ds · |i + offset − j|` over the tile, added to the tile's head.
    public func accumulateParameterGradient<T: BinaryFloatingPoint>(
        _ gradient: inout [Double], scoreGradients: UnsafePointer<T>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        guard gradient.indices.contains(head) else { return }
        let offset = diagonalOffset
        if T.self == Float.self {
            // A fused backward pass's float32 tiles: each row summed in float32 vectors, rows in Double.
            let rows = UnsafeRawPointer(scoreGradients).assumingMemoryBound(to: Float.self)
            var total = 0.0
            for (r, i) in queries.enumerated() {
                total += Double(_distanceWeightedSum(rows + r * rowStride, count: keys.count, first: i + offset - keys.lowerBound))
            }
            gradient[head] -= total
            return
        }
        var sum = 0.0
        for (r, i) in queries.enumerated() {
            let row = scoreGradients + r * rowStride
            // distance(c) = i + offset − keys.lowerBound − c
            let first = i + offset - keys.lowerBound
            for c in 0..<keys.count where row[c] != 0 {
                sum += Double(row[c]) * Double((first - c).magnitude)
            }
        }
        gradient[head] -= sum
    }
}

/// `Σ_c row[c] · |first − c|` for `c < count`, in float32, eight lanes at a time.
private func _distanceWeightedSum(_ row: UnsafePointer<Float>, count: Int, first: Int) -> Float {
    let lanes = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7), raw = UnsafeRawPointer(row)
    var sums = SIMD8<Float>(), c = 0
    while c + 8 <= count {
        let distance = SIMD8<Float>(repeating: Float(first - c)) - lanes
        sums += raw.loadUnaligned(fromByteOffset: 4 * c, as: SIMD8<Float>.self) * distance.replacing(with: -distance, where: distance .< 0)
        c += 8
    }
    var sum = sums.sum()
    while c < count {
        sum += row[c] * Float((first - c).magnitude)
        c += 1
    }
    return sum
}
