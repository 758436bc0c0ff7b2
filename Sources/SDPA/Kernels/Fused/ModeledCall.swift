import CSDPAKernels

/// One fused call as the scaling model sees it: the driver's own work items at a thread count (the same
/// ``_ForwardPlan``), each costed tile by tile after tile skipping — every (query unit, key tile) the
/// kernel would classify, classified by the bias's own ``_ScoreModifier/tileVisibility(batch:head:queries:keys:)``
/// through the modifier the kernel is specialised with — and the pool's schedule simulated. A problem the
/// driver runs as segments (``_Segmentation``) is modeled as it runs: one job of the segments' calls.
struct _ModeledCall {
    /// Threads the call would run on: the count asked for, capped by the claims and ``_maximumThreads``.
    let threads: Int
    let items: [_ScheduleSimulation.Item]
    /// (query unit, key tile) pairs of the items, and those the kernel computes (not skipped).
    let tiles: Int, visibleTiles: Int
    /// Split items, and the claims the work queue hands out.
    let splitItems: Int, claims: Int
    let simulation: _ScheduleSimulation

    init<Modifier: _ScoreModifier>(shape: AttentionShape, kind: sdpa_element_kind, modifier: Modifier, threads: Int) {
        if let segmentation = _Segmentation(shape: shape, modifier: modifier, options: AttentionOptions()) {
            let calls = segmentation.segments.filter { !$0.queries.isEmpty }.map { (_Segmentation.shape(of: $0, in: shape), $0.modifier) }
            self.init(calls: calls, kind: kind, threads: threads)
        } else {
            self.init(calls: [(shape, modifier)], kind: kind, threads: threads)
        }
    }

    /// The calls of one job (``_runFusedCalls``: the calls with the most work first, claims call by call).
    init<Modifier: _ScoreModifier>(calls: [(shape: AttentionShape, modifier: Modifier)], kind: sdpa_element_kind, threads: Int) {
        let planned = Swift.min(Swift.max(1, threads), _maximumThreads)
        let work = { (shape: AttentionShape) in shape.batch * shape.queryHeads * shape.queryLength * Swift.max(1, shape.keyLength) }
        let order = calls.indices.sorted { (work(calls[$0].shape), $1) > (work(calls[$1].shape), $0) }
        var claims = [Range<Int>](), merges = [Double](), splits = [Int]()
        var items = [_ScheduleSimulation.Item](), tiles = 0, visibleTiles = 0, splitItems = 0
        for index in order {
            let (shape, modifier) = calls[index]
            let plan = _ForwardPlan(shape: shape, kind: kind, scale: 1, headsFastest: modifier.sharesRowsAcrossHeads, threads: planned)
            let (firstItem, firstGroup) = (items.count, merges.count)
            Self.model(plan: plan, modifier: modifier, kind: kind, items: &items, tiles: &tiles, visibleTiles: &visibleTiles,
                       merges: &merges, splits: &splits)
            claims += (0..<plan.items.claims).map { plan.items.items(ofClaim: $0) }.map { $0.shifted(by: firstItem) }
            for n in firstItem..<items.count where items[n].splitGroup >= 0 { items[n].splitGroup += firstGroup }
            splitItems += plan.items.splitItems
        }
        (self.items, self.tiles, self.visibleTiles, self.splitItems, self.claims) = (items, tiles, visibleTiles, splitItems, claims.count)
        self.threads = Swift.min(planned, Swift.max(1, claims.count))
        simulation = _ScheduleSimulation(items: items, claims: claims, merges: merges, splits: splits, threads: self.threads)
    }

    /// Appends the items of one call's `plan` (their split groups numbered from 0 within the call) and
    /// their groups' merges.
    private static func model<Modifier: _ScoreModifier>(
        plan: _ForwardPlan, modifier: Modifier, kind: sdpa_element_kind, items: inout [_ScheduleSimulation.Item],
        tiles: inout Int, visibleTiles: inout Int, merges allMerges: inout [Double], splits allSplits: inout [Int]
    ) {
        let work = plan.items, shape = plan.shape
        let cost = _WorkCost(shape: shape, tiling: plan.tiling, elementBytes: kind == SDPA_ELEMENT_F32 ? 4 : 2)
        var units = [_QueryUnit](repeating: _QueryUnit(), count: work.maxUnits)
        var pieces = [_Piece](repeating: _Piece(), count: work.maxPieces)
        var merges = [Double](repeating: 0, count: work.splitGroups), splits = [Int](repeating: 0, count: work.splitGroups)
        items.reserveCapacity(items.count + work.count)
        for index in 0..<work.count {
            let item = work.item(index)
            let count = units.withUnsafeMutableBufferPointer { units in
                pieces.withUnsafeMutableBufferPointer { work.units(of: item, into: units, pieces: $0) }
            }
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
        allMerges += merges
        allSplits += splits
    }

    /// Modeled nanoseconds of all the items and merges: the call on one core.
    var work: Double { simulation.busy.reduce(0, +) }
}
