import CSDPAKernels

/// Everything about one fused forward call that is fixed before the first tile: the tiling, the work
/// items for the thread count it runs on, the operand layouts the kernel family chose, the scale split,
/// and the sizes of the scratch tiles and of one item's running state. A class: the call, its split states
/// and every thread's scratch refer to one plan (copying its tilings and item lists cost a tiny call more
/// than its arithmetic).
@usableFromInline
final class _ForwardPlan: Sendable {
    @usableFromInline let shape: AttentionShape
    @usableFromInline let items: _WorkItems
    /// Decoding (a query tile of at most `_FusedTiling.directRows` rows) reads the keys as stored
    /// instead of packing them: packing K for one query row cost more than the product it fed.
    @usableFromInline let readsKeysDirectly: Bool
    /// How the kernel family reads query rows, packed keys and values for this element kind.
    @usableFromInline let queryLayout: sdpa_operand_layout, keyLayout: sdpa_operand_layout, valueLayout: sdpa_operand_layout
    /// The scale's power of two, which the query rows take as they are prepared (exactly), and the
    /// rest, which the scores take: a dot product of large finite inputs whose scaled score is finite
    /// stays finite.
    @usableFromInline let queryScale: Float, scoreScale: Float
    /// Row strides (floats) of the score tile and of the running outputs: multiples of 16 floats.
    @usableFromInline let lds: Int, ldo: Int
    /// Dropout on the weights of each tile after the softmax step, before `P·V`; `nil` for none.
    @usableFromInline let dropout: _Dropout?

    /// Plans for `threads` threads; the bits do not depend on them (``_WorkItems``).
    @inlinable
    init(shape: AttentionShape, kind: sdpa_element_kind, scale: Float, headsFastest: Bool, threads: Int, dropout: _Dropout? = nil) {
        (self.shape, self.dropout) = (shape, dropout)
        let tiling = _FusedTiling(shape)
        let cost = _WorkCost(shape: shape, tiling: tiling, elementBytes: kind == SDPA_ELEMENT_F32 ? 4 : 2)
        items = _WorkItems(shape: shape, tiling: tiling, refinement: _TileRefinement(shape: shape, tiling: tiling, cost: cost),
                           cost: cost, headsFastest: headsFastest, threads: threads)
        readsKeysDirectly = _FusedTiling.readsKeysDirectly(shape)
        let layout = sdpa_layout_for(kind)
        // The direct reader takes query rows in the family's layout (bfloat16 pairs multiply the keys'
        // stored pairs) and reads the values as stored, through the float32 product.
        (queryLayout, keyLayout, valueLayout) = readsKeysDirectly ? (layout, layout, SDPA_LAYOUT_F32) : (layout, layout, layout)
        (queryScale, scoreScale) = _splitScale(scale)
        lds = (tiling.keyColumns + 15) / 16 * 16
        ldo = Swift.max(16, (shape.valueHeadDim + 15) / 16 * 16)
    }

    @inlinable var tiling: _FusedTiling { items.tiling }

    /// Floats of one item's running state: outputs, row maxima and row sums of every unit.
    @inlinable var stateFloats: Int { items.stateRows * (ldo + 2) }

    /// Whether decoding's `P·V` may prefetch the next key tile (``_FusedTiling/prefetchesNextTile``: not on
    /// Intel cores); the scratch holds the next tile's row addresses only then.
    @inlinable var prefetchesNextTile: Bool { readsKeysDirectly && _FusedTiling.prefetchesNextTile }

    /// Rows of the score tile: one query tile, or when decoding every unit's rows stacked.
    @inlinable var scoreRows: Int { readsKeysDirectly ? items.stateRows : tiling.queryRows }

    /// The row stride of prepared query rows stacked for the direct reader, in 32-bit units (floats or
    /// bfloat16 pairs).
    @inlinable var stackedQueryStride: Int {
        sdpa_operand_bytes(queryLayout, SDPA_OPERAND_QUERY, 1, Int32(shape.headDim)) / 4
    }

    /// Bytes of `rows` prepared query rows: a unit's prepared rows start this far into an item's, at its
    /// ``_QueryUnit/stateRow``.
    @inlinable func queryBytes(rows: Int) -> Int {
        sdpa_operand_bytes(queryLayout, SDPA_OPERAND_QUERY, Int32(rows), Int32(shape.headDim))
    }
}

/// `scale` as a power of two, which the query rows take exactly, times the rest (in `[1, 2)` in
/// magnitude), which the scores take: the unscaled dot product is then never larger than the score.
@inlinable
func _splitScale(_ scale: Float) -> (powerOfTwo: Float, rest: Float) {
    guard scale.isFinite, scale != 0 else { return (1, scale) }
    let power = Float(sign: .plus, exponent: scale.exponent, significand: 1)
    return (power, scale / power)
}
