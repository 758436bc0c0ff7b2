import CSDPAKernels

/// How a bias looks to the kernels: ``FusedAttnBias``'s vocabulary (``modifiesScores``,
/// ``tileVisibility(batch:head:queries:keys:)``, ``apply(toScores:rowStride:batch:head:queries:keys:)``),
/// plus the biased score of one position for the `Double` reference path, and what only a kernel asks:
/// whether the bias is a dense mask it can read in the `Q·Kᵀ` registers, and whether its rows are
/// shared by every head.
///
/// Both kernels are generic over it, so each bias is compiled into them (no closure or enum switch per
/// element). Conformers: every ``FusedAttnBias`` (through `_FusedBiasKernel`), a dense mask
/// (`_DenseMask`), and no bias (`_NoScoreModifier`).
@usableFromInline
protocol _ScoreModifier: Sendable {
    /// The score at `(batch, head, query, key)` after the bias: `-infinity` where the position is
    /// masked, the modified score otherwise.
    func biasedScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T

    /// Whether visible scores change (`false` for a pure mask, whose fully visible tiles then cost no
    /// bias work at all).
    static var modifiesScores: Bool { get }

    /// How a tile of queries x keys looks under the bias: `.empty` and `.full` exact, `.partial`
    /// always correct.
    func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility

    /// Applies the bias to a tile of float32 scores in place: `scores[r * rowStride + c]` is query
    /// `queries.lowerBound + r`, key `keys.lowerBound + c`.
    func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>)

    /// Whether the bias reads per-position data that every head shares (a dense mask broadcast over
    /// heads). The fused kernel then hands out the heads of one query block one after another, so
    /// items running side by side read the same mask rows; otherwise the query blocks of one head,
    /// so they read the same K and V.
    var sharesRowsAcrossHeads: Bool { get }

    /// The tile as a plain dense mask, when the bias is nothing more than one (read in place,
    /// contiguous along keys): the `Q·Kᵀ` kernel then applies it in registers as it stores the
    /// scores and takes the row maxima after it. `nil` (the default): `apply` runs.
    func tileMask(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _ScoreTileMask?

    /// The problem as independent segments, when the bias makes it one (packed sequences): consecutive
    /// runs of query rows, in order and covering every row, each seeing keys of its own run only, with the
    /// bias seen from the segment's first row and key. A segment holds whole sequences, several short ones while
    /// their query rows fit in `groupingRows` (evaluated only by a bias that cuts: it costs a tiling).
    /// `nil` (the default): the bias does not cut the problem.
    func segments(groupingRows: @autoclosure () -> Int) -> [_Segment<Self>]?
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
    func segments(groupingRows: @autoclosure () -> Int) -> [_Segment<Self>]? { nil }
}

/// No bias: every position visible, every score unchanged.
@usableFromInline
struct _NoScoreModifier: _ScoreModifier {
    @inlinable init() {}
    @inlinable
    func biasedScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T { score }
    @inlinable static var modifiesScores: Bool { false }
    @inlinable
    func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility { .full }
    /// Nothing to apply (and never called: every tile is fully visible and no score changes).
    @inlinable
    func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {}
}
