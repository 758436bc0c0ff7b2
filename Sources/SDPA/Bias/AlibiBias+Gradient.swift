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
            guard let first = queries.first else { return }
            let rows = UnsafeRawPointer(scoreGradients).assumingMemoryBound(to: Float.self)
            gradient[head] -= _distanceWeightedSum(rows, rowStride: rowStride, rows: queries.count, columns: keys.count,
                                                   first: first + offset - keys.lowerBound)
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
