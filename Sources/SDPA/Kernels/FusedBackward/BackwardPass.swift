import CSDPAKernels

/// Which scores a tile keeps a copy of, besides P: the scores before the bias (for an element-wise
/// derivative, or a differentiated part that takes the chain: ``_GradientSource``), or after it (soft-capping's
/// derivative is read off the capped scores).
enum _SavedScores { case none, raw, biased }

/// One fused backward call's fixed parts, shared by every thread: the inputs, the schedule, the bias,
/// dropout, where the gradients go, and the loops over an item's key tiles and query tiles.
struct _BackwardPass<Modifier: _DifferentiableScoreModifier, Plan: _ParameterGradientPlan>: @unchecked Sendable {
    let inputs: _BackwardInputs
    let schedule: _BackwardSchedule
    let modifier: Modifier
    let plan: Plan?
    /// The float masks among the bias's parts (``_ParameterGradientPlan/differentiatedMasks``), one target each.
    let maskParts: [any _MaskGradientTarget]
    let buffers: _GradientBuffers
    let dropout: _Dropout?
    let derivative: _ScoreDerivativeTile
    let saves: _SavedScores
    /// The scale, its power of two (taken by the query rows, exactly, as in the forward pass) and the rest.
    let scale: Float, queryScale: Float, scoreScale: Float
    /// Row stride (floats) of the score tiles: a multiple of 16 floats, plus 16 so that a column of
    /// Pᵀ or dSᵀ (read down the rows by the float32 products) does not fall into a few cache sets.
    let lds: Int
    /// The layout of the pass's five products: the forward's for the element kind. bfloat16 pairs on a family with a
    /// bfloat16 dot product, so they run at its rate and `S` has the forward's bits; P and dS are then rounded to
    /// bfloat16 for `dV += Pᵀ·dO`, `dK += dSᵀ·Q` and `dQ += dS·K`, as PyTorch's CPU kernel and FlashAttention-2 round
    /// them (sums in float32).
    let layout: sdpa_operand_layout

    /// `dropout` is the forward's: `options`' for a call of its own, the whole problem's seen from a segment's rows and keys.
    init(
        inputs: _BackwardInputs, schedule: _BackwardSchedule, modifier: Modifier, options: AttentionOptions,
        plan: Plan?, maskParts: [any _MaskGradientTarget], buffers: _GradientBuffers, dropout: _Dropout?
    ) throws {
        (self.inputs, self.schedule, self.modifier, self.plan, self.buffers) = (inputs, schedule, modifier, plan, buffers)
        (self.maskParts, self.dropout) = (maskParts, dropout)
        // A part that takes the chain: the plan's walk turns dS into dL/d(raw scores) itself, from the raw scores.
        let needsRaw = plan?.needsRawScores == true
        derivative = needsRaw ? .none : modifier.scoreDerivativeTile
        saves = needsRaw || derivative == .elementwise ? .raw : derivative == .none ? .none : .biased
        scale = Float(options.resolvedScale(headDim: schedule.shape.headDim))
        (queryScale, scoreScale) = _splitScale(scale)
        lds = (schedule.keyColumns + 15) / 16 * 16 + 16
        layout = sdpa_layout_for(inputs.kind)
    }

    /// Floats of a thread's chain-rule tiles (``_BackwardScratch/chain``): the plan's, for a query tile of `lds` columns.
    var chainFloats: Int { plan?.chainWorkspaceCount(rows: schedule.queryRows, rowStride: lds) ?? 0 }

    /// Runs `item`: its partial dQ rows cleared, then its key tiles in order.
    func run(_ item: _BackwardItem, scratch: _BackwardScratch, parameters: UnsafeMutablePointer<Plan.Gradients>?) {
        buffers.clearPartialRows(of: item)
        var k0 = item.keys.lowerBound
        while k0 < item.keys.upperBound {
            let keys = k0..<Swift.min(k0 + schedule.keyColumns, item.keys.upperBound)
            keyTile(keys, of: item, scratch: scratch, parameters: parameters)
            k0 = keys.upperBound
        }
    }

    /// One key tile against every query tile and query head of the item's group that the bias does
    /// not empty (in that order: heads inside), its dK and dV summed over them and written once.
    func keyTile(_ keys: Range<Int>, of item: _BackwardItem, scratch: _BackwardScratch, parameters: UnsafeMutablePointer<Plan.Gradients>?) {
        let shape = schedule.shape
        let (b, cols, E, Ev, group, Br) = (item.batch, keys.count, shape.headDim, shape.valueHeadDim, shape.groupSize, schedule.queryRows)
        var keyRows: UnsafeRawPointer?, ldk = 0
        for t in 0..<schedule.queryTiles {
            let queries = t * Br..<Swift.min((t + 1) * Br, shape.queryLength)
            for head in item.kvHead * group..<(item.kvHead + 1) * group {
                let visibility = modifier.tileVisibility(batch: b, head: head, queries: queries, keys: keys)
                if visibility == .empty { continue }
                if keyRows == nil {
                    // The tile's first visible unit: K and V read once for all of them.
                    let k = inputs.key.rows(batch: b, head: item.kvHead, first: keys.lowerBound)
                    let v = inputs.value.rows(batch: b, head: item.kvHead, first: keys.lowerBound)
                    // A decoding call's scores read the keys as stored (`directScores`): no `Kᵀ` then.
                    if !schedule.readsKeysDirectly { sdpa_pack_keys(layout, inputs.kind, Int32(cols), Int32(E), k, scratch.keysT) }
                    sdpa_pack_keys(layout, inputs.kind, Int32(cols), Int32(Ev), v, scratch.valuesT)
                    // K as `dQ += dS·K` reads it: rows along the depth, as values are (pairs of keys in bfloat16 pairs).
                    keyRows = sdpa_pack_values(layout, inputs.kind, Int32(cols), Int32(E), k, scratch.keyRows, &ldk)
                    scratch.keyGradients.update(repeating: 0, count: cols * E)
                    scratch.valueGradients.update(repeating: 0, count: cols * Ev)
                }
                unit(head: head, queries: queries, keys: keys, visibility: visibility, of: item, keyRows: keyRows!, ldk: ldk,
                     scratch: scratch, parameters: parameters)
            }
        }
        if keyRows != nil {
            buffers.writeKeyTile(item, firstKey: keys.lowerBound, rows: cols, keys: scratch.keyGradients, values: scratch.valueGradients)
        }
    }

    /// One query tile of one head against the key tile: the tile's P recomputed, its dS, and its
    /// contributions to dV, dK (the key tile's) and dQ (the item's rows), the bias's parameters and
    /// float masks.
    func unit(
        head: Int, queries: Range<Int>, keys: Range<Int>, visibility: TileVisibility, of item: _BackwardItem,
        keyRows: UnsafeRawPointer, ldk: Int, scratch: _BackwardScratch, parameters: UnsafeMutablePointer<Plan.Gradients>?
    ) {
        let shape = schedule.shape
        let (b, rows, cols, E, Ev) = (item.batch, Int32(queries.count), Int32(keys.count), shape.headDim, shape.valueHeadDim)
        let rowIndex = (b * shape.queryHeads + head) * shape.queryLength + queries.lowerBound
        let (s, dp, saved) = (scratch.scores, scratch.scoreGradients, scratch.saved)

        // Q (times the scale's power of two) and dO as the score-shaped products read them; in float32 also the B
        // operands of dK and dV.
        var ldqs = 0, lddos = 0
        let pairs = layout != SDPA_LAYOUT_F32
        let qRows = inputs.query.rows(batch: b, head: head, first: queries.lowerBound)
        let qs = sdpa_prepare_query(layout, inputs.kind, rows, Int32(E), qRows.base, qRows.stride, queryScale,
                                    pairs ? scratch.queryPairs : scratch.queries, &ldqs)!
        let dORows = inputs.gradOutput.rows(batch: b, head: head, first: queries.lowerBound)
        let dOs = sdpa_prepare_query(layout, inputs.kind, rows, Int32(Ev), dORows.base, dORows.stride, 1,
                                     pairs ? scratch.gradOutputPairs : scratch.gradOutput, &lddos)!

        // S, biased as in the forward pass: a dense mask in the Q·Kᵀ registers, any other bias by its tile code;
        // a decoding call's with the forward's own product (keys read as stored) and every bias by its tile code.
        var applyBias = visibility == .partial || Modifier.modifiesScores
        if schedule.readsKeysDirectly {
            directScores(rows: rows, keys: keys, of: item, query: qs, ldq: ldqs, scratch: scratch)
        } else if applyBias, let tileMask = modifier.tileMask(batch: b, head: head, queries: queries, keys: keys) {
            applyBias = false
            sdpa_scores(layout, rows, cols, Int32(E), qs, ldqs, scratch.keysT, scoreScale, s, lds,
                        tileMask.kind, tileMask.base, tileMask.rowStride, nil)
        } else {
            sdpa_scores(layout, rows, cols, Int32(E), qs, ldqs, scratch.keysT, scoreScale, s, lds, SDPA_MASK_NONE, nil, 0, nil)
        }
        if saves == .raw { copyTile(s, to: saved, rows: queries.count, cols: keys.count) }
        if applyBias { modifier.apply(toScores: s, rowStride: lds, batch: b, head: head, queries: queries, keys: keys) }
        if saves == .biased { copyTile(s, to: saved, rows: queries.count, cols: keys.count) }

        // P = exp(S − lse); dP = dO Vᵀ (dropped as P was); dS = P ∘ (dP − D).
        inputs.logSumExp.withUnsafeBufferPointer { sdpa_probabilities_tile(rows, cols, s, lds, $0.baseAddress! + rowIndex) }
        sdpa_scores(layout, rows, cols, Int32(Ev), dOs, lddos, scratch.valuesT, 1, dp, lds, SDPA_MASK_NONE, nil, 0, nil)
        dropout?.apply(toTile: dp, rowStride: lds, batch: b, head: head, queries: queries, keys: keys)
        inputs.rowDeltas.withUnsafeBufferPointer { sdpa_score_gradient_tile(rows, cols, s, lds, dp, lds, $0.baseAddress! + rowIndex) }

        // dS is dL/d(final scores): the bias's parameters and float masks take it through its plan (those after every
        // non-additive part as it is, a float mask alone among them; those between them through the chain, whose walk
        // leaves dS as dL/d(raw scores)).
        if let plan, let parameters {
            plan.accumulate(&parameters.pointee, masks: maskParts, scoreGradients: dp, rawScores: UnsafePointer(saves == .raw ? saved : dp),
                            workspace: scratch.chain, rowStride: lds, batch: b, head: head,
                            queries: queries.shifted(by: modifier.origin.query), keys: keys.shifted(by: modifier.origin.key))
        }
        switch derivative {
        case .none: break
        case .softCap(let cap): _softCapGradientTile(dp, rowStride: lds, cappedScores: saved, rows: queries.count, columns: keys.count, cap: cap)
        case .elementwise:
            modifier.multiplyByScoreDerivative(dp, rowStride: lds, rawScores: saved, batch: b, head: head, queries: queries, keys: keys)
        }
        // dS is now dL/d(raw scores): the additive parts with no non-additive part before them take it.
        if let plan, plan.takesRawScoreGradients, let parameters {
            plan.accumulateRawScoreGradients(&parameters.pointee, masks: maskParts, rawGradients: UnsafePointer(dp), rowStride: lds,
                                             batch: b, head: head, queries: queries.shifted(by: modifier.origin.query),
                                             keys: keys.shifted(by: modifier.origin.key))
        }
        dropout?.apply(toTile: s, rowStride: lds, batch: b, head: head, queries: queries, keys: keys)

        // dV += Pᵀ dO, dK += scale · dSᵀ Q, dQ += scale · dS K.
        let dQ = buffers.queryGradientRows(item, head: head, row: queries.lowerBound)
        guard pairs else {
            // Float32: Pᵀ and dSᵀ read in place; Q prepared with the scale's power of two, so dK takes the rest.
            sdpa_gemm_tile(layout, 1, 1, cols, Int32(Ev), rows, 1, s, lds, dOs, lddos, scratch.valueGradients, Ev)
            sdpa_gemm_tile(layout, 1, 1, cols, Int32(E), rows, scoreScale, dp, lds, qs, ldqs, scratch.keyGradients, E)
            sdpa_gemm_tile(layout, 0, 1, rows, Int32(E), cols, scale, dp, lds, keyRows, ldk, dQ, E)
            return
        }
        // bfloat16 pairs: Pᵀ and dSᵀ rounded as pairs of query rows (the values' layout), against Q and dO as pairs
        // of rows; dS rounded as pairs of keys (the queries' layout), against K as pairs of keys.
        var (ldt, ldb, ldds) = (0, 0, 0)
        let dOValues = sdpa_pack_values(layout, inputs.kind, rows, Int32(Ev), dORows, scratch.gradOutput, &ldb)
        var transposed = sdpa_pack_values(layout, SDPA_ELEMENT_F32, rows, cols, sdpa_rows(base: s, stride: lds, rows: nil),
                                          scratch.transposedPairs, &ldt)
        sdpa_gemm_tile(layout, 1, 1, cols, Int32(Ev), rows, 1, transposed, ldt, dOValues, ldb, scratch.valueGradients, Ev)
        let qValues = sdpa_pack_values(layout, inputs.kind, rows, Int32(E), qRows, scratch.queries, &ldb)
        transposed = sdpa_pack_values(layout, SDPA_ELEMENT_F32, rows, cols, sdpa_rows(base: dp, stride: lds, rows: nil),
                                      scratch.transposedPairs, &ldt)
        sdpa_gemm_tile(layout, 1, 1, cols, Int32(E), rows, scale, transposed, ldt, qValues, ldb, scratch.keyGradients, E)
        let ds = sdpa_prepare_query(layout, SDPA_ELEMENT_F32, rows, cols, dp, lds, 1, scratch.scoreGradientPairs, &ldds)
        sdpa_gemm_tile(layout, 0, 1, rows, Int32(E), cols, scale, ds, ldds, keyRows, ldk, dQ, E)
    }

    /// The scores of a decoding call's unit as its forward pass computed them: the query rows in ``layout``
    /// against the key rows as stored, through the direct reader (whose bits do not depend on the rows stacked with them).
    private func directScores(rows: Int32, keys: Range<Int>, of item: _BackwardItem, query: UnsafeRawPointer, ldq: Int, scratch: _BackwardScratch) {
        let k = inputs.key.rows(batch: item.batch, head: item.kvHead, first: keys.lowerBound)
        sdpa_scores_direct(layout, rows, Int32(keys.count), Int32(schedule.shape.headDim), query, ldq, inputs.kind, k, scoreScale,
                           scratch.scores, lds, nil, sdpa_rows(), 0)
    }

    private func copyTile(_ from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows { (to + r * lds).update(from: from + r * lds, count: cols) }
    }
}
