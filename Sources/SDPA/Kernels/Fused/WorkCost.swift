/// What the fused kernel's work costs, in modeled nanoseconds of one core: how the work is cut into
/// items (``_TileRefinement``, ``_WorkItems``) and what the scaling model (``_ScheduleSimulation``)
/// predicts both rest on it.
///
/// The weights are one core of this project's development VM (AMD EPYC, AVX-512, float32), rounded:
/// `Q·Kᵀ` and `P·V` near 100 GFLOP/s, the online softmax about 0.19 ns per score, packing a key tile
/// 0.1 ns per element, a decoding step's key and value rows read from memory at 20 GB/s per core, and
/// fixed costs per (query unit, key tile) and per item. Only their ratios matter to the decomposition
/// and to a predicted speedup; RFC.md ("Many-core decomposition") has how they compare with measured runs.
@usableFromInline
package struct _WorkCost: Sendable {
    /// Nanoseconds per floating-point operation of the two products.
    @usableFromInline static var perFlop: Double { 0.01 }
    /// Per score: the online-softmax step.
    @usableFromInline static var perScore: Double { 0.19 }
    /// Per score of a partially visible tile, or of a bias that changes scores: the bias's own work.
    @usableFromInline static var perBiasedScore: Double { 0.1 }
    /// Per query unit and key tile that runs: classifying the tile and the three kernel calls.
    @usableFromInline static var perUnitTile: Double { 150 }
    /// Per element of a key tile packed for the product.
    @usableFromInline static var perPackedElement: Double { 0.1 }
    /// Per byte of key and value rows read as stored (decoding): memory-bound.
    @usableFromInline static var perDirectByte: Double { 0.05 }
    /// Per work item: claiming it, its units, its state reset.
    @usableFromInline static var perItem: Double { 300 }
    /// Per query element prepared, per state float reset, per output element written.
    @usableFromInline static var perPreparedElement: Double { 0.1 }
    @usableFromInline static var perStateFloat: Double { 0.1 }
    @usableFromInline static var perWrittenElement: Double { 0.3 }
    /// Per state float of each further split merged through the log-sum-exp.
    @usableFromInline static var perMergedFloat: Double { 0.5 }

    @usableFromInline let shape: AttentionShape
    @usableFromInline let tiling: _FusedTiling
    /// Bytes per key or value element (the direct path's reads).
    @usableFromInline let elementBytes: Int

    @inlinable
    package init(shape: AttentionShape, tiling: _FusedTiling, elementBytes: Int) {
        (self.shape, self.tiling, self.elementBytes) = (shape, tiling, elementBytes)
    }

    /// Whether the keys are read as stored (decoding) rather than packed.
    @inlinable var readsKeysDirectly: Bool { _FusedTiling.readsKeysDirectly(shape) }

    /// One query unit (one head's `rows`) against one key tile of `columns` keys that `visibility`
    /// leaves to compute; 0 for an empty tile.
    @inlinable
    func unitTile(rows: Int, columns: Int, visibility: TileVisibility, modifiesScores: Bool) -> Double {
        if visibility == .empty { return 0 }
        let scores = Double(rows * columns)
        let biased = visibility == .partial || modifiesScores ? scores * Self.perBiasedScore : 0
        return Self.perUnitTile + 2 * scores * Double(shape.headDim + shape.valueHeadDim) * Self.perFlop
            + scores * Self.perScore + biased
    }

    /// A key tile of `columns` keys read for an item, once for all its units: packed, or read as stored.
    @inlinable
    func keyTile(columns: Int) -> Double {
        readsKeysDirectly
            ? Double(columns * (shape.headDim + shape.valueHeadDim) * elementBytes) * Self.perDirectByte
            : Double(columns * shape.headDim) * Self.perPackedElement
    }

    /// An item's fixed work for `units` query units of `rows` rows in all: claiming it, preparing the
    /// query rows, resetting the state.
    @inlinable
    func itemSetup(units: Int, rows: Int) -> Double {
        Self.perItem + Double(rows * shape.headDim) * Self.perPreparedElement
            + Double(units * tiling.queryRows * (shape.valueHeadDim + 2)) * Self.perStateFloat
    }

    /// Writing `rows` finished rows (normalized, converted, with their log-sum-exp).
    @inlinable
    func write(rows: Int) -> Double { Double(rows * shape.valueHeadDim) * Self.perWrittenElement }

    /// Merging `splits` partial states of `rows` rows in split order, then writing them.
    @inlinable
    func merge(rows: Int, splits: Int) -> Double {
        Double((splits - 1) * rows * (shape.valueHeadDim + 2)) * Self.perMergedFloat + write(rows: rows)
    }

    /// A piece of `rows` query rows (for every head of the GQA group) against `keyTiles` whole key tiles,
    /// every tile fully visible: the cost the decomposition plans with, before any bias is known.
    @inlinable
    func piece(rows: Int, keyTiles: Int) -> Double {
        let group = shape.groupSize, columns = tiling.keyColumns
        let perKeyTile = Double(group) * unitTile(rows: rows, columns: columns, visibility: .full, modifiesScores: false)
            + keyTile(columns: columns)
        return Double(keyTiles) * perKeyTile + itemSetup(units: group, rows: group * rows) + write(rows: group * rows)
    }

    /// What cutting a piece of `rows` rows into one more piece adds: a unit's fixed cost per key tile,
    /// for every head of the group, over `keyTiles` tiles.
    @inlinable
    func extraPiece(keyTiles: Int) -> Double { Double(shape.groupSize * keyTiles) * Self.perUnitTile }

    /// What running a piece of `rows` rows as one more key split adds: another item's setup, and the
    /// merge of one more partial state.
    @inlinable
    func extraSplit(rows: Int) -> Double {
        let rows = shape.groupSize * rows
        return itemSetup(units: shape.groupSize, rows: rows) + Double(rows * (shape.valueHeadDim + 2)) * Self.perMergedFloat
    }
}
