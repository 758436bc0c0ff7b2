/// A deterministic simulation of the worker pool running one fused call: `threads` threads take the
/// claims in the work queue's order, each the moment it is free (the earliest free thread first, ties to
/// the lowest index), run their items one after another, and the thread that finishes a split group's
/// last split merges the group. What a perfectly punctual pool on identical cores would do: no waking,
/// no memory contention, so its speedup is what the decomposition allows, an upper bound on a real run.
@usableFromInline
package struct _ScheduleSimulation: Sendable {
    /// One work item as the simulation sees it: its modeled cost, and for a split item its group
    /// (`-1` for an item run whole).
    @usableFromInline
    package struct Item: Sendable {
        package var cost: Double
        package var splitGroup: Int
        @usableFromInline package init(cost: Double, splitGroup: Int) { (self.cost, self.splitGroup) = (cost, splitGroup) }
    }

    /// When the last thread finishes: the call's critical path.
    package let criticalPath: Double
    /// Each thread's busy time.
    package let busy: [Double]

    /// Runs `items` (in hand-out order), claimed as `claims` gives them, on `threads` threads; a split
    /// group of `splits[g]` items ends with `merges[g]` of work on the thread that finishes it.
    @usableFromInline
    package init(items: [Item], claims: [Range<Int>], merges: [Double], splits: [Int], threads: Int) {
        let threads = Swift.max(1, threads)
        var free = [Double](repeating: 0, count: threads), busy = free
        // Each split group's splits done so far, and the latest finish among them (and whose).
        var done = [Int](repeating: 0, count: merges.count)
        var latest = [(time: Double, thread: Int)](repeating: (-.infinity, 0), count: merges.count)
        for claim in claims {
            var thread = 0
            for t in 1..<threads where free[t] < free[thread] { thread = t }
            for index in claim {
                let item = items[index]
                free[thread] += item.cost
                busy[thread] += item.cost
                let group = item.splitGroup
                guard group >= 0 else { continue }
                done[group] += 1
                if free[thread] >= latest[group].time { latest[group] = (free[thread], thread) }
                if done[group] == splits[group] {
                    // The last finisher is busy until then: no claim after this one has gone out yet.
                    let merger = latest[group].thread
                    free[merger] += merges[group]
                    busy[merger] += merges[group]
                }
            }
        }
        criticalPath = free.max() ?? 0
        self.busy = busy
    }
}
