/// A fused bias with learnable parameters of its own: the backward pass hands it the gradient of
/// its scores tile by tile, and it accumulates the gradient of its parameters, with no SIMD code.
///
/// ``scaledDotProductAttentionBackward(gradOutput:query:key:value:output:logSumExp:attnMask:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// calls ``accumulateParameterGradient(_:scoreGradients:rowStride:batch:head:queries:keys:)`` with
/// `dL/ds` for the scores `s` this bias outputs (after ``modifyScore(_:batch:head:query:key:)``; in a
/// ``BiasComposition``, what the later parts make of them is already accounted for), 0 at masked
/// positions. For an additive bias `s = score + b(θ)`, `dL/dθ = Σ dL/ds · ∂b/∂θ`.
///
/// Determinism: the tiles are split into partial gradients by the shape alone, never by the thread
/// count. Each partial starts as ``zeroParameterGradient``, receives its tiles one after another in a
/// fixed order (partials may run on different threads at once, each on its own value), and the
/// partials are then merged in a fixed order with ``mergeParameterGradient(_:_:)``. As long as these
/// methods depend on their arguments alone, the gradient is bit-identical at any thread count.
///
/// A T5-style relative-position bias (a learned scalar per head and distance bucket):
///
/// ```swift
/// struct RelativePositionBias: TrainableAttnBias {
///     var table: [Double], buckets: Int, seqLenQ: Int, seqLenKV: Int   // [H, buckets]
///     var materializedShape: [Int] { [table.count / buckets, seqLenQ, seqLenKV] }
///     func bucket(_ query: Int, _ key: Int) -> Int { Swift.min(buckets - 1, abs(key - query)) }
///     func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
///         score + T(table[head * buckets + bucket(query, key)])
///     }
///     var zeroParameterGradient: [Double] { [Double](repeating: 0, count: table.count) }
///     func accumulateParameterGradient<T: BinaryFloatingPoint>(
///         _ gradient: inout [Double], scoreGradients: UnsafePointer<T>, rowStride: Int,
///         batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
///     ) {
///         for (r, i) in queries.enumerated() {
///             for (c, j) in keys.enumerated() {
///                 gradient[head * buckets + bucket(i, j)] += Double(scoreGradients[r * rowStride + c])
///             }
///         }
///     }
/// }
/// let grads = try scaledDotProductAttentionBackward(gradOutput: dOut, query: q, key: k, value: v,
///                                                   output: out, logSumExp: lse, attnMask: bias)
/// let dTable = grads.parameterGradient(of: RelativePositionBias.self)   // [Double]?
/// ```
///
/// See also: ``AttentionGradients/biasParameters``, ``AlibiBias`` (its slopes are trained this way).
public protocol TrainableAttnBias: FusedAttnBias {
    /// The gradient of the parameters, and the running sum it is accumulated in (choose `Double`
    /// for sums over many tiles).
    associatedtype ParameterGradient: Sendable

    /// The gradient before any tile: where each partial sum starts.
    var zeroParameterGradient: ParameterGradient { get }

    /// Adds the contribution of one tile to `gradient`.
    ///
    /// - Parameters:
    ///   - scoreGradients: `dL/ds` at query `queries.lowerBound + r`, key `keys.lowerBound + c` in
    ///     `scoreGradients[r * rowStride + c]`; 0 where the position is masked. `Double` from the math
    ///     backend, `Float` from a fused one: write the method generic, as ``modifyScore(_:batch:head:query:key:)``.
    ///   - batch, head: the tile's batch and query head.
    func accumulateParameterGradient<T: BinaryFloatingPoint>(
        _ gradient: inout ParameterGradient, scoreGradients: UnsafePointer<T>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>)

    /// Adds `other`, a partial gradient over other tiles, into `gradient`. The default, for `[Double]`,
    /// adds element by element.
    func mergeParameterGradient(_ gradient: inout ParameterGradient, _ other: ParameterGradient)
}

extension TrainableAttnBias where ParameterGradient == [Double] {
    /// Element-wise sum (the arrays have the same length: both started as ``zeroParameterGradient``).
    public func mergeParameterGradient(_ gradient: inout [Double], _ other: [Double]) {
        for n in 0..<Swift.min(gradient.count, other.count) { gradient[n] += other[n] }
    }
}
