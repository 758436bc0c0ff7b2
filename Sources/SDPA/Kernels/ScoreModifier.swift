/// How a structured bias changes one attention score: the element-wise form of a bias
/// that never needs to exist as an `L x S` tensor.
///
/// Both kernels are generic over it, so each bias is compiled into them (no closure
/// or enum switch per element), and ``AttnBias/materialize(device:)`` of the built-in
/// biases is this same function evaluated on a grid, so the two cannot disagree.
@usableFromInline
protocol _ScoreModifier: Sendable {
    /// The score at `(batch, head, query, key)` after the bias; `-infinity` masks the position.
    func modify<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T

    /// Whether ``modify(_:batch:head:query:key:)`` changes visible scores (`false` for a pure mask),
    /// so that a fully visible tile of a pure mask costs no bias work at all.
    static var changesScores: Bool { get }

    /// How a tile of queries x keys looks under the bias, so the fused kernel can skip
    /// empty tiles and do no mask work on fully visible ones. `.partial` is always correct.
    func classify(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _TileVisibility

    /// Applies the bias to a tile of float32 scores in place: `scores[r * stride + c]` is
    /// query `queries.lowerBound + r`, key `keys.lowerBound + c`. The default calls
    /// ``modify(_:batch:head:query:key:)`` per element; biases override it to hoist per-row work.
    func apply(
        to scores: UnsafeMutablePointer<Float>, stride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>)
}

/// What a tile of the score matrix holds after the bias.
@usableFromInline
enum _TileVisibility: Sendable {
    /// Every position masked: the tile is skipped.
    case empty
    /// No position masked.
    case full
    /// Some positions masked.
    case partial
}

extension _ScoreModifier {
    @inlinable static var changesScores: Bool { true }

    @inlinable
    func classify(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _TileVisibility { .partial }

    @inlinable
    func apply(
        to scores: UnsafeMutablePointer<Float>, stride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        for (r, i) in queries.enumerated() {
            let row = scores + r * stride
            for (c, j) in keys.enumerated() {
                row[c] = modify(row[c], batch: batch, head: head, query: i, key: j)
            }
        }
    }

    /// The visibility of a tile under a causal mask whose diagonal is shifted by `offset`
    /// (key `j` visible from query `i` when `j <= i + offset`).
    @inlinable
    static func _causalVisibility(queries: Range<Int>, keys: Range<Int>, offset: Int) -> _TileVisibility {
        if queries.isEmpty || keys.isEmpty { return .empty }
        if keys.lowerBound > queries.upperBound - 1 + offset { return .empty }
        if keys.upperBound - 1 <= queries.lowerBound + offset { return .full }
        return .partial
    }
}

/// No bias: every position visible, every score unchanged.
@usableFromInline
struct _NoScoreModifier: _ScoreModifier {
    @inlinable init() {}
    @inlinable
    func modify<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T { score }
    @inlinable static var changesScores: Bool { false }
    @inlinable
    func classify(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _TileVisibility { .full }
}

extension _ScoreModifier {
    /// The boolean mask `[L, S]` of the positions this modifier leaves visible (for head 0, batch 0).
    func _materializeBoolMask(seqLenQ: Int, seqLenKV: Int) -> Tensor {
        var bools = [Bool]()
        bools.reserveCapacity(seqLenQ * seqLenKV)
        for i in 0..<seqLenQ {
            for j in 0..<seqLenKV {
                bools.append(modify(Float(0), batch: 0, head: 0, query: i, key: j) != -.infinity)
            }
        }
        // The count matches the shape by construction.
        return try! Tensor(shape: [seqLenQ, seqLenKV], bools: bools)
    }

    /// The additive float32 mask `[heads, L, S]`: the modifier applied to a zero score.
    func _materializeAdditiveMask(heads: Int, seqLenQ: Int, seqLenKV: Int) -> Tensor {
        var values = [Float]()
        values.reserveCapacity(heads * seqLenQ * seqLenKV)
        for h in 0..<heads {
            for i in 0..<seqLenQ {
                for j in 0..<seqLenKV {
                    values.append(modify(Float(0), batch: 0, head: h, query: i, key: j))
                }
            }
        }
        return try! Tensor(shape: [heads, seqLenQ, seqLenKV], scalars: values)
    }
}
