extension _BiasParameterPlan {
    /// Elements of workspace ``walkChain(_:masks:scoreGradients:rawScores:workspace:rowStride:batch:head:queries:keys:)``
    /// needs for a tile of `rows` rows `rowStride` apart: one tile of scores per non-additive part (the last one's
    /// input is the running tile itself); 0 without a part that takes the chain.
    func chainWorkspaceCount(rows: Int, rowStride: Int) -> Int {
        needsRawScores ? nonAdditive.count * rows * rowStride : 0
    }

    /// The chain rule on a tile, for the parts that take ``_GradientSource/chain``: the scores advanced from
    /// `rawScores` through the parts, each non-additive part's input kept in `workspace`; then, from the last part
    /// down to the first, each differentiated part handed the gradient of its output, and `scoreGradients` (in
    /// place, `dL/d(final scores)` on entry) multiplied by each non-additive part's derivative at its input, so
    /// that it leaves as `dL/d(raw scores)`. Float32 tiles go through the parts' own tile code (soft-capping
    /// vectorized, a mask's rows read once); `Double` ones (the math pass's rows) score by score.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    func walkChain<T: BinaryFloatingPoint>(
        _ gradients: inout _BiasParameterGradients, masks targets: [any _MaskGradientTarget], scoreGradients g: UnsafeMutablePointer<T>,
        rawScores: UnsafePointer<T>, workspace: UnsafeMutablePointer<T>, rowStride: Int, batch: Int, head: Int,
        queries: Range<Int>, keys: Range<Int>
    ) {
        guard let lastReader = nonAdditive.last, !queries.isEmpty, !keys.isEmpty else { return }
        let cols = keys.count
        // The running scores, then the inputs of the non-additive parts but the last (whose input is the running tile).
        let tile = queries.count * rowStride
        let scores = workspace
        func input(_ n: Int) -> UnsafeMutablePointer<T> { n == nonAdditive.count - 1 ? scores : workspace + (n + 1) * tile }
        for r in 0..<queries.count { (scores + r * rowStride).update(from: rawScores + r * rowStride, count: cols) }
        var n = 0
        for k in 0..<lastReader {
            if !parts[k].isAdditivePart {
                for r in 0..<queries.count { (input(n) + r * rowStride).update(from: scores + r * rowStride, count: cols) }
                n += 1
            }
            guard type(of: parts[k]).modifiesScores else { continue }
            if T.self == Float.self {
                parts[k].apply(toScores: UnsafeMutableRawPointer(scores).assumingMemoryBound(to: Float.self), rowStride: rowStride,
                               batch: batch, head: head, queries: queries, keys: keys)
            } else {
                for (r, i) in queries.enumerated() {
                    let row = scores + r * rowStride
                    for (c, j) in keys.enumerated() { row[c] = parts[k].modifyScore(row[c], batch: batch, head: head, query: i, key: j) }
                }
            }
        }
        var (slot, maskSlot) = (gradients.parts.count - 1, masks.count - 1)
        n = nonAdditive.count - 1
        for k in stride(from: parts.count - 1, through: 0, by: -1) {
            if slot >= 0, trainable[slot] == k {
                if trainableSources[slot] == .chain {
                    gradients.parts[slot].accumulate(UnsafePointer(g), rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
                }
                slot -= 1
            } else if maskSlot >= 0, masks[maskSlot] == k {
                if maskSources[maskSlot] == .chain {
                    targets[maskSlot].add(UnsafePointer(g), rowStride: rowStride, cols: cols, batch: batch, head: head, queries: queries,
                                          firstKey: keys.lowerBound)
                }
                maskSlot -= 1
            }
            guard !parts[k].isAdditivePart else { continue }
            let x = input(n)
            n -= 1
            if T.self == Float.self {
                // The part's own tile chain rule (it may overwrite its input, which nothing reads after it).
                parts[k]._multiplyByScoreDerivative(
                    UnsafeMutableRawPointer(g).assumingMemoryBound(to: Float.self), scores: UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self),
                    rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys, needsOutput: false)
            } else {
                for (r, i) in queries.enumerated() {
                    let (gRow, xRow) = (g + r * rowStride, x + r * rowStride)
                    for (c, j) in keys.enumerated() where gRow[c] != 0 {
                        gRow[c] *= T(parts[k].modifyScoreDerivative(Double(xRow[c]), batch: batch, head: head, query: i, key: j))
                    }
                }
            }
        }
    }
}
