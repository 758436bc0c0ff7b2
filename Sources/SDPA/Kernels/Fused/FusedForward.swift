import CSDPAKernels

/// The flash-attention forward kernel: query tiles against key/value tiles with an online softmax,
/// float32 accumulation, each output row written once.
///
/// Generic over the bias, so each bias type gets its own specialization: empty tiles are skipped,
/// fully visible tiles of pure masks do no bias work, partial ones call the bias's tile `apply`.
/// Work items (`_WorkItems`) are consecutive pieces of query tiles of one (batch, key/value head), for
/// every query head of its GQA group; each key tile is packed once for all of them. Keys and values
/// come from a `_KeyValueSource`. Extra memory is per thread, O(tile), plus the split items' states,
/// all allocated before the threads start, so that memory the system cannot give is an error. The output
/// comes in the query's dtype, or in `outputDType` (the backward pass's float32 recomputation).
@inlinable
func _fusedAttention<Modifier: _ScoreModifier>(
    query: Tensor, key: Tensor, value: Tensor, shape: AttentionShape, modifier: Modifier, options: AttentionOptions,
    logSumExp: Bool = true, outputDType: DType? = nil
) throws -> _AttentionResult {
    if let segmentation = _Segmentation(shape: shape, modifier: modifier, options: options) {
        return try segmentation.run(query: query, key: key, value: value, options: options, logSumExp: logSumExp, outputDType: outputDType)
    }
    return try _fusedAttention(query: query, keysAndValues: try _TensorKeyValues(key: key, value: value), shape: shape,
                        modifier: modifier, options: options, logSumExp: logSumExp, outputDType: outputDType)
}

/// ``_fusedAttention(query:key:value:shape:modifier:options:logSumExp:outputDType:)`` reading keys and values from `source`.
@inlinable
func _fusedAttention<Modifier: _ScoreModifier, Source: _KeyValueSource>(
    query: Tensor, keysAndValues source: Source, shape: AttentionShape, modifier: Modifier, options: AttentionOptions,
    logSumExp: Bool = true, outputDType: DType? = nil
) throws -> _AttentionResult {
    let call = try _FusedCall(query: query, keysAndValues: source, shape: shape, modifier: modifier, options: options,
                              dropout: _Dropout(options, shape: shape), logSumExp: logSumExp, outputDType: outputDType)
    try _runFusedCalls([call])
    return call.writer.result
}

/// Runs `calls` as one parallel job: the threads take claims of every call from one queue, the calls
/// with the most work first, so a batch of small calls (a decoding step over many sequences) wakes the
/// threads once and ends balanced. Each call's bits are those it gives alone. A job on one thread takes
/// its claims in order without a queue, and a one-call job builds no order: a tiny call feels each
/// allocation.
@inlinable
func _runFusedCalls<Modifier: _ScoreModifier, Source: _KeyValueSource>(_ calls: [_FusedCall<Modifier, Source>]) throws {
    let job: [_FusedCall<Modifier, Source>]
    if calls.count == 1 {
        guard calls[0].plan != nil else { return }
        job = calls
    } else {
        job = calls.indices.filter { calls[$0].plan != nil }.sorted { (calls[$0].work, $1) > (calls[$1].work, $0) }.map { calls[$0] }
        guard !job.isEmpty else { return }
    }
    var (count, mostUnits, mostPieces, planned) = (0, 0, 0, 1)
    for call in job {
        let items = call.plan!.items
        (count, mostUnits, mostPieces) = (count + items.claims, Swift.max(mostUnits, items.maxUnits), Swift.max(mostPieces, items.maxPieces))
        planned = Swift.max(planned, call.plannedThreads)
    }
    let (maxUnits, maxPieces) = (mostUnits, mostPieces)
    let threads = Swift.min(planned, count)
    // A closure, not `\.scratchLayout`: a key path into a generic class is built at run time on every call (the
    // type's metadata demangled), 2 µs of a tiny call's 5 with a composed bias.
    let scratchSlots = try _FusedScratchSlots(layouts: job.lazy.map { $0.scratchLayout }, shape: job[0].plan!.shape, threads: threads)
    let claims = _Claims(count: count, threads: threads)
    _parallelFor(threads) { run in
        withUnsafeTemporaryAllocation(of: _QueryUnit.self, capacity: maxUnits) { units in
            withUnsafeTemporaryAllocation(of: _Piece.self, capacity: maxPieces) { pieces in
                units.initialize(repeating: _QueryUnit())
                pieces.initialize(repeating: _Piece())
                // Claims come in increasing order: the calls' positions only move forward. Call `position`
                // has the job's claims `first..<end`.
                var (position, first, end) = (0, 0, job[0].plan!.items.claims)
                var taken = 0, scratch: _FusedScratch?
                while let claim = claims.next(taken: &taken) {
                    while claim >= end { (position, first, scratch) = (position + 1, end, nil); end += job[position].plan!.items.claims }
                    if scratch == nil { scratch = scratchSlots.slot(run, layout: job[position].scratchLayout!, plan: job[position].plan!) }
                    job[position].run(claim: claim - first, scratch: scratch!, units: units, pieces: pieces)
                }
            }
        }
    }
    scratchSlots.recycle()
}

/// One fused call's parts that every thread of its job reads: the plan, the inputs, the split items'
/// partial states and the output. A class: the call is handed around (into the job's list, to each
/// thread) by one reference, not by copying each of the references it holds (a tiny call felt those).
@usableFromInline
final class _FusedCall<Modifier: _ScoreModifier, Source: _KeyValueSource>: @unchecked Sendable {
    /// `nil` when the call has no output rows.
    @usableFromInline let plan: _ForwardPlan?
    /// Where a thread's scratch tiles lie for this plan; `nil` without a plan, or when the tiles' sizes
    /// overflow (the scratch's allocation then fails with an error).
    @usableFromInline let scratchLayout: _FusedScratch.Layout?
    @usableFromInline let query: _InputView?
    @usableFromInline let source: Source
    @usableFromInline let modifier: Modifier
    @usableFromInline let partials: _SplitPartials?
    @usableFromInline let writer: _OutputWriter
    /// The call's size, which orders the calls of a job: query rows x keys x query heads.
    @usableFromInline let work: Int
    /// The threads in effect when the call was planned (``SDPAThreads/effectiveCount``, at most ``_maximumThreads``):
    /// a job runs on the most any of its calls planned for (all are planned in the same task), so the task-local is
    /// read once per call, not again when the job starts.
    @usableFromInline let plannedThreads: Int

    /// Plans the call for the thread count in effect (its bits do not depend on it); it writes through
    /// `writer` (a segment's rows of a packed result), or into a result of its own (with the log-sum-exp
    /// when `logSumExp` asks for it, in `outputDType` if given), and applies `dropout` (`options`' for a call of its own, the whole
    /// problem's seen from a segment's rows and keys).
    @inlinable
    init(
        query: borrowing Tensor, keysAndValues source: Source, shape: AttentionShape, modifier: Modifier, options: AttentionOptions,
        writer: _OutputWriter? = nil, dropout: _Dropout?, logSumExp: Bool = true, outputDType: DType? = nil
    ) throws {
        (self.source, self.modifier) = (source, modifier)
        self.writer = try writer
            ?? _OutputWriter(shape: shape, dtype: query.dtype, outputDType: outputDType, sinks: options.sinks, logSumExp: logSumExp)
        let rows = shape.batch * shape.queryHeads * shape.queryLength
        work = rows.multipliedReportingOverflow(by: Swift.max(1, shape.keyLength)).partialValue
        let planned = Swift.min(SDPAThreads.effectiveCount, _maximumThreads)
        plannedThreads = planned
        guard rows > 0 else { (plan, scratchLayout, self.query, partials) = (nil, nil, nil, nil); return }
        let plan = _ForwardPlan(shape: shape, kind: source.kind, scale: Float(options.resolvedScale(headDim: shape.headDim)),
                                headsFastest: modifier.sharesRowsAcrossHeads, threads: planned, dropout: dropout)
        (self.plan, scratchLayout) = (plan, _FusedScratch.Layout(plan: plan))
        (self.query, partials) = (try _InputView(query), try _SplitPartials(plan: plan))
    }

    /// The items of claim `claim`, each into its state and then the output (a split item's through the
    /// merge of its group).
    @inlinable
    func run(claim: Int, scratch: _FusedScratch, units: UnsafeMutableBufferPointer<_QueryUnit>,
             pieces: UnsafeMutableBufferPointer<_Piece>) {
        let (plan, q, partials) = (self.plan!, query!, partials!)
        for index in plan.items.items(ofClaim: claim) {
            let item = plan.items.item(index)
            let state = item.split == nil ? _RowState(scratch.state!, plan: plan) : partials.state(partial: item.partial)
            let unitCount = plan.items.units(of: item, into: units, pieces: pieces)
            _forwardItem(item, units: units, count: unitCount, query: q, source: source, modifier: modifier,
                         plan: plan, scratch: scratch, state: state)
            if item.split == nil {
                for u in 0..<unitCount { writer.write(batch: item.batch, unit: units[u], state: state) }
            } else {
                partials.finish(item, units: units, count: unitCount, into: writer)
            }
        }
    }
}

/// One work item: its query rows prepared, then every key tile of its range, into `state`.
@inlinable
func _forwardItem<Modifier: _ScoreModifier, Source: _KeyValueSource>(
    _ item: _WorkItem, units: UnsafeMutableBufferPointer<_QueryUnit>, count unitCount: Int, query q: _InputView, source: Source,
    modifier: Modifier, plan: _ForwardPlan, scratch: _FusedScratch, state: _RowState
) {
    let E = plan.shape.headDim
    for u in 0..<unitCount {
        var ld = 0
        let rows = q.rows(batch: item.batch, head: units[u].head, first: units[u].firstRow)
        let own = scratch.queries + plan.queryBytes(rows: units[u].stateRow)
        var prepared = sdpa_prepare_query(plan.queryLayout, q.kind, Int32(units[u].rows), Int32(E), rows.base, rows.stride,
                                          plan.queryScale, own, &ld)
        let stride = plan.stackedQueryStride
        if plan.readsKeysDirectly && (prepared != UnsafeRawPointer(own) || ld != stride) {
            // Decoding stacks the group's query rows in one tile (rows `stride` 32-bit units apart), so
            // that one pass over each key and value tile serves every head of the group.
            for r in 0..<units[u].rows {
                (own.assumingMemoryBound(to: UInt32.self) + r * stride)
                    .update(from: prepared!.assumingMemoryBound(to: UInt32.self) + r * ld, count: stride)
            }
            (prepared, ld) = (UnsafeRawPointer(own), stride)
        }
        units[u].query = prepared
        units[u].ldq = ld
    }
    state.reset(rows: unitCount > 0 ? units[unitCount - 1].stateEnd : 0)
    var k0 = item.keys.lowerBound
    while k0 < item.keys.upperBound {
        let keys = k0..<Swift.min(k0 + plan.tiling.keyColumns, item.keys.upperBound)
        _forwardKeyTile(keys, of: item, units: units, count: unitCount, source: source, modifier: modifier,
                        plan: plan, scratch: scratch, state: state)
        k0 = keys.upperBound
    }
}

/// One key tile against every unit of an item: the tile classified per unit and skipped where empty,
/// keys and values packed once, then per unit `Q·Kᵀ` (the bias applied in the registers when it is a
/// dense mask, by its `apply` otherwise), an online-softmax step and `P·V`.
@inlinable
func _forwardKeyTile<Modifier: _ScoreModifier, Source: _KeyValueSource>(
    _ keys: Range<Int>, of item: _WorkItem, units: UnsafeMutableBufferPointer<_QueryUnit>, count unitCount: Int, source: Source,
    modifier: Modifier, plan: _ForwardPlan, scratch: _FusedScratch, state: _RowState
) {
    let (b, cols, E, Ev) = (item.batch, keys.count, plan.shape.headDim, plan.shape.valueHeadDim)
    var anyVisible = false, anyPartial = false
    for u in 0..<unitCount {
        let visibility = modifier.tileVisibility(batch: b, head: units[u].head, queries: units[u].queries, keys: keys)
        units[u].visibility = visibility
        anyVisible = anyVisible || visibility != .empty
        anyPartial = anyPartial || visibility == .partial
    }
    if !anyVisible { return }
    if plan.readsKeysDirectly {
        return _decodeKeyTile(keys, of: item, units: units, count: unitCount, anyPartial: anyPartial, source: source,
                              modifier: modifier, plan: plan, scratch: scratch, state: state)
    }

    let keyRows = source.keys(batch: b, kvHead: item.kvHead, rows: keys, addresses: scratch.keyAddresses)
    sdpa_pack_keys(plan.keyLayout, source.kind, Int32(cols), Int32(E), keyRows, scratch.keys)
    let valueRows = source.values(batch: b, kvHead: item.kvHead, rows: keys, addresses: scratch.valueAddresses)
    var ldv = 0
    let values = sdpa_pack_values(plan.valueLayout, source.kind, Int32(cols), Int32(Ev), valueRows, scratch.values, &ldv)
    // A masked key's probability is exactly 0, but 0 · NaN is NaN: a partial tile whose values hold NaN
    // or infinity takes the exact path, so a masked key never reaches the output.
    let exactValues = anyPartial && _containsNonFinite(source.kind, rows: valueRows, count: cols, columns: Ev)

    let (scores, lds, tileMax) = (scratch.scores, plan.lds, scratch.tileMax)
    for u in 0..<unitCount where units[u].visibility != .empty {
        let unit = units[u], rows = Int32(unit.rows)
        // Row maxima come from the Q·Kᵀ registers unless the bias changes the scores after; a dense mask
        // goes on in the Q·Kᵀ registers, and the maxima are taken after it.
        let biased = unit.visibility == .partial || Modifier.modifiesScores
        let mask = biased ? modifier.tileMask(batch: b, head: unit.head, queries: unit.queries, keys: keys) : nil
        let applyBias = biased && mask == nil
        let o = state.output(row: unit.stateRow)
        if !applyBias && plan.dropout == nil && !(exactValues && unit.visibility == .partial) {
            // The whole step in one call, a few rows at a time, so they stay in L1 between its products.
            sdpa_attend(plan.keyLayout, rows, Int32(cols), Int32(E), Int32(Ev), unit.query, unit.ldq, scratch.keys,
                        plan.scoreScale, mask?.kind ?? SDPA_MASK_NONE, mask?.base, mask?.rowStride ?? 0, values, ldv,
                        scores, lds, tileMax, state.rowMax(row: unit.stateRow), state.rowSum(row: unit.stateRow), o, state.ldo)
            continue
        }
        let maxima = applyBias ? nil : tileMax
        sdpa_scores(plan.keyLayout, rows, Int32(cols), Int32(E), unit.query, unit.ldq, scratch.keys, plan.scoreScale,
                    scores, lds, mask?.kind ?? SDPA_MASK_NONE, mask?.base, mask?.rowStride ?? 0, maxima)
        if applyBias {
            modifier.apply(toScores: scores, rowStride: lds, batch: b, head: unit.head, queries: unit.queries, keys: keys)
        }
        sdpa_softmax_tile(rows, Int32(cols), scores, lds, maxima, state.rowMax(row: unit.stateRow), state.rowSum(row: unit.stateRow),
                          o, state.ldo, Int32(Ev))
        plan.dropout?.apply(toTile: scores, rowStride: lds, batch: b, head: unit.head, queries: unit.queries, keys: keys)
        if exactValues && unit.visibility == .partial {
            _accumulateVisible(rows: unit.rows, keys: cols, Ev, scores, lds, source.kind, valueRows, o, state.ldo,
                               values: scratch.finiteValues)
        } else {
            sdpa_accumulate(plan.valueLayout, rows, Int32(cols), Int32(Ev), scores, lds, values, ldv, o, state.ldo)
        }
    }
}

/// One key tile of a decoding item (query tiles of at most `_FusedTiling.directRows` rows): the keys read
/// as stored, and the query rows of every head of the GQA group stacked into one tile, so each key and
/// value row is read once for the whole group. Each head keeps its own bias, softmax state and output
/// rows; the products give the bits the head-by-head ones would.
@inlinable
func _decodeKeyTile<Modifier: _ScoreModifier, Source: _KeyValueSource>(
    _ keys: Range<Int>, of item: _WorkItem, units: UnsafeMutableBufferPointer<_QueryUnit>, count unitCount: Int, anyPartial: Bool,
    source: Source,
    modifier: Modifier, plan: _ForwardPlan, scratch: _FusedScratch, state: _RowState
) {
    let (b, cols, E, Ev) = (item.batch, keys.count, plan.shape.headDim, plan.shape.valueHeadDim)
    let (scores, lds, tileMax) = (scratch.scores, plan.lds, scratch.tileMax)
    // Units hold `unitRows` rows each (L), stacked at their state rows in the prepared queries, the scores and
    // the outputs alike.
    let unitRows = state.unitRows, rows = units[unitCount - 1].stateEnd
    let keyRows = source.keys(batch: b, kvHead: item.kvHead, rows: keys, addresses: scratch.keyAddresses)
    let valueRows = source.values(batch: b, kvHead: item.kvHead, rows: keys, addresses: scratch.valueAddresses)
    // The value rows are prefetched while the keys are read (short ones whole, long ones a line per key line).
    sdpa_scores_direct(plan.queryLayout, Int32(rows), Int32(cols), Int32(E), units[0].query, plan.stackedQueryStride,
                       source.kind, keyRows, plan.scoreScale, scores, lds, tileMax, valueRows, Int32(Ev))
    // So are the next tile's keys and values during this tile's P·V, which reads its values from cache, where the
    // CPU gains by it (AMD's cores; an Intel core's few L1 miss buffers fill with the burst and stall P·V). One
    // row's P·V is too short to hide those reads behind (RFC.md, "The fused kernel" and its metrics).
    let following = keys.upperBound..<Swift.min(keys.upperBound + plan.tiling.keyColumns, item.keys.upperBound)
    var next = sdpa_next_tile()
    if rows > 1 && plan.prefetchesNextTile && !following.isEmpty {
        next = sdpa_next_tile(
            keys: source.keys(batch: b, kvHead: item.kvHead, rows: following, addresses: scratch.nextKeyAddresses),
            values: source.values(batch: b, kvHead: item.kvHead, rows: following, addresses: scratch.nextValueAddresses),
            count: Int32(following.count), depth: Int32(E))
    }

    // With no bias work on any head, the stacked rows take one softmax step, not one call per head
    // (their row states and outputs are stacked alike, and the softmax works row by row: the same bits).
    var noBiasWork = !Modifier.modifiesScores
    for u in 0..<unitCount where units[u].visibility != .full || units[u].rows != unitRows { noBiasWork = false }
    if noBiasWork {
        sdpa_softmax_tile(Int32(rows), Int32(cols), scores, lds, tileMax, state.rowMax(row: 0), state.rowSum(row: 0),
                          state.output(row: 0), state.ldo, Int32(Ev))
        for u in 0..<unitCount {
            plan.dropout?.apply(toTile: scores + units[u].stateRow * lds, rowStride: lds, batch: b, head: units[u].head,
                                queries: units[u].queries, keys: keys)
        }
        sdpa_accumulate_direct(Int32(rows), Int32(cols), Int32(Ev), scores, lds, source.kind, valueRows, state.output(row: 0),
                               state.ldo, &next)
        return
    }
    let exactValues = anyPartial && _containsNonFinite(source.kind, rows: valueRows, count: cols, columns: Ev)
    var allVisible = true
    for u in 0..<unitCount {
        let unit = units[u]
        guard unit.visibility != .empty else { allVisible = false; continue }
        let tile = scores + unit.stateRow * lds
        let biased = unit.visibility == .partial || Modifier.modifiesScores
        if biased {
            modifier.apply(toScores: tile, rowStride: lds, batch: b, head: unit.head, queries: unit.queries, keys: keys)
        }
        sdpa_softmax_tile(Int32(unit.rows), Int32(cols), tile, lds, biased ? nil : tileMax + unit.stateRow,
                          state.rowMax(row: unit.stateRow), state.rowSum(row: unit.stateRow), state.output(row: unit.stateRow),
                          state.ldo, Int32(Ev))
        plan.dropout?.apply(toTile: tile, rowStride: lds, batch: b, head: unit.head, queries: unit.queries, keys: keys)
    }
    if allVisible && !exactValues {
        sdpa_accumulate_direct(Int32(rows), Int32(cols), Int32(Ev), scores, lds, source.kind, valueRows, state.output(row: 0),
                               state.ldo, &next)
        return
    }
    for u in 0..<unitCount where units[u].visibility != .empty {
        let tile = scores + units[u].stateRow * lds, o = state.output(row: units[u].stateRow)
        if exactValues && units[u].visibility == .partial {
            _accumulateVisible(rows: units[u].rows, keys: cols, Ev, tile, lds, source.kind, valueRows, o, state.ldo,
                               values: scratch.finiteValues)
        } else {
            // one unit's P·V prefetches the next tile; the others find it on its way
            sdpa_accumulate_direct(Int32(units[u].rows), Int32(cols), Int32(Ev), tile, lds, source.kind, valueRows, o,
                                   state.ldo, &next)
            next.count = 0
        }
    }
}
