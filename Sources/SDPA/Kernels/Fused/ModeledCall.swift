import CSDPAKernels

/// One fused call as the scaling model sees it: the driver's own work items at a thread count (the same
/// ``_ForwardPlan``), each costed tile by tile after tile skipping — every (query unit, key tile) the
/// kernel would classify, classified by the bias's own ``_ScoreModifier/tileVisibility(batch:head:queries:keys:)``
/// through the modifier the kernel is specialised with — and the pool's schedule simulated.
struct _ModeledCall {
    let plan: _ForwardPlan
    /// Threads the call would run on: the count asked for, capped by the claims and ``_maximumThreads``.
    let threads: Int
    var items = [_ScheduleSimulation.Item]()
    /// (query unit, key tile) pairs of the items, and those the kernel computes (not skipped).
    var tiles = 0, visibleTiles = 0
    let simulation: _ScheduleSimulation

    init<Modifier: _ScoreModifier>(shape: AttentionShape, kind: sdpa_element_kind, modifier: Modifier, threads: Int) {
        let planned = Swift.min(Swift.max(1, threads), _maximumThreads)
        plan = _ForwardPlan(shape: shape, kind: kind, scale: 1, headsFastest: modifier.sharesRowsAcrossHeads, threads: planned)
        let work = plan.items
        self.threads = Swift.min(planned, work.claims)
        let cost = _WorkCost(shape: shape, tiling: plan.tiling, elementBytes: kind == SDPA_ELEMENT_F32 ? 4 : 2)
        var units = [_QueryUnit](repeating: _QueryUnit(), count: work.maxUnits)
        var pieces = [_Piece](repeating: _Piece(), count: work.maxPieces)
        var merges = [Double](repeating: 0, count: work.splitGroups), splits = [Int](repeating: 0, count: work.splitGroups)
        items.reserveCapacity(work.count)
        for index in 0..<work.count {
            let item = work.item(index)
            let count = work.units(of: item, into: &units, pieces: &pieces)
            var rows = 0
            for u in 0..<count { rows += units[u].rows }
            var itemCost = cost.itemSetup(units: count, rows: rows)
            var k0 = item.keys.lowerBound
            while k0 < item.keys.upperBound {
                let keys = k0..<Swift.min(k0 + plan.tiling.keyColumns, item.keys.upperBound)
                var anyVisible = false
                for u in 0..<count {
                    let visibility = modifier.tileVisibility(batch: item.batch, head: units[u].head, queries: units[u].queries, keys: keys)
                    itemCost += cost.unitTile(rows: units[u].rows, columns: keys.count, visibility: visibility,
                                              modifiesScores: Modifier.modifiesScores)
                    tiles += 1
                    if visibility != .empty { (anyVisible, visibleTiles) = (true, visibleTiles + 1) }
                }
                if anyVisible { itemCost += cost.keyTile(columns: keys.count) }
                k0 = keys.upperBound
            }
            if item.split == nil {
                itemCost += cost.write(rows: rows)
            } else {
                (merges[item.splitGroup], splits[item.splitGroup]) = (cost.merge(rows: rows, splits: item.splits), item.splits)
            }
            items.append(_ScheduleSimulation.Item(cost: itemCost, splitGroup: item.split == nil ? -1 : item.splitGroup))
        }
        let claims = (0..<work.claims).map { work.items(ofClaim: $0) }
        simulation = _ScheduleSimulation(items: items, claims: claims, merges: merges, splits: splits, threads: self.threads)
    }

    /// Modeled nanoseconds of all the items and merges: the call on one core.
    var work: Double { simulation.busy.reduce(0, +) }
}
