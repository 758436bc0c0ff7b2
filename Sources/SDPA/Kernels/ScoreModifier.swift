import CSDPAKernels

/// How a structured bias changes one attention score: the element-wise form of a bias
/// that never needs to exist as an `L x S` tensor.
///
/// Both kernels are generic over it, so each bias is compiled into them (no closure
/// or enum switch per element). The math path calls ``modify(_:batch:head:query:key:)``,
/// the fused path ``classify(batch:head:queries:keys:)`` and ``apply(to:stride:batch:head:queries:keys:)``.
@usableFromInline
protocol _ScoreModifier: Sendable {
    /// The score at `(batch, head, query, key)` after the bias; `-infinity` masks the position.
    func modify<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T

    /// Whether ``modify(_:batch:head:query:key:)`` changes visible scores (`false` for a pure mask),
    /// so that a fully visible tile of a pure mask costs no bias work at all.
    static var changesScores: Bool { get }

    /// How a tile of queries x keys looks under the bias, so the fused kernel can skip
    /// empty tiles and do no mask work on fully visible ones. `.partial` is always correct.
    func classify(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility

    /// Applies the bias to a tile of float32 scores in place: `scores[r * stride + c]` is
    /// query `queries.lowerBound + r`, key `keys.lowerBound + c`. The default calls
    /// ``modify(_:batch:head:query:key:)`` per element; biases override it to hoist per-row work.
    func apply(
        to scores: UnsafeMutablePointer<Float>, stride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>)

    /// Whether the bias reads per-position data that every head shares (a dense mask broadcast over
    /// heads). The fused kernel then hands out the heads of one query block one after another, so
    /// items running side by side read the same mask rows; otherwise the query blocks of one head,
    /// so they read the same K and V.
    var sharesRowsAcrossHeads: Bool { get }

    /// The tile as a plain dense mask, when the bias is nothing more than one (read in place,
    /// contiguous along keys): the `Q·Kᵀ` kernel then applies it in registers as it stores the
    /// scores and takes the row maxima after it, instead of ``apply(to:stride:batch:head:queries:keys:)``
    /// and the softmax each passing over the tile again. `nil` (the default): `apply` runs.
    func tileMask(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _ScoreTileMask?
}

/// A tile of a dense mask as the `Q·Kᵀ` kernel reads it: `rows × cols` elements of `kind` from
/// `base`, `rowStride` elements from one query's row to the next (0: one row for every query).
@usableFromInline
struct _ScoreTileMask {
    @usableFromInline let kind: sdpa_mask_kind
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let rowStride: Int

    @inlinable
    init(kind: sdpa_mask_kind, base: UnsafeRawPointer, rowStride: Int) {
        (self.kind, self.base, self.rowStride) = (kind, base, rowStride)
    }
}

extension _ScoreModifier {
    @inlinable
    var sharesRowsAcrossHeads: Bool { false }

    @inlinable
    func tileMask(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _ScoreTileMask? { nil }

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
}

/// No bias: every position visible, every score unchanged.
@usableFromInline
struct _NoScoreModifier: _ScoreModifier {
    @inlinable init() {}
    @inlinable
    func modify<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T { score }
    @inlinable static var changesScores: Bool { false }
    @inlinable
    func classify(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility { .full }
}
