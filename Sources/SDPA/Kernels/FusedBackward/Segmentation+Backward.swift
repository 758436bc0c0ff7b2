extension _Segmentation where Modifier: _DifferentiableScoreModifier {
    /// The backward pass as the forward ran it: every segment's fused backward pass over views of the
    /// tensors, their work items in one job of the pool (the segments with the most work first), `D`
    /// computed once for the whole problem, each segment adding into its rows and keys of the one set of
    /// gradients. A segment's gradients are those of its sequences alone; keys no query sees get zeros. The
    /// trainable parts of the bias (`plan`) take their gradients at the whole problem's positions, one partial
    /// per work item, merged in the job's order (the same at any thread count); no mask gradient is taken (the
    /// backward routing runs a bias with a differentiated float mask as one call). The
    /// sinks' gradient, when the options carry sinks, comes from the whole problem's rows.
    func backward<Plan: _ParameterGradientPlan>(
        _ tensors: _BackwardTensors, options: AttentionOptions, plan: Plan?
    ) throws -> (query: Tensor, key: Tensor, value: Tensor, parameters: Plan.Gradients?, sinks: Tensor?) {
        let deltas = try _rowDeltas(tensors, shape: shape, rowsPerTile: _BackwardSchedule(shape: shape).queryRows) { dtype in
            try run(query: tensors.query, key: tensors.key, value: tensors.value, options: options, logSumExp: true, outputDType: dtype)
        }
        let sinks = try options.sinks.map {
            try _sinkGradient($0, shape: shape, logSumExp: tensors.logSumExp._elements(as: Float.self), rowDeltas: deltas)
        }
        let results = try _GradientResults(tensors)
        // Segments without query rows add nothing: their keys' gradients stay zero.
        var passes = [(pass: _BackwardPass<Modifier, Plan>, work: Int)]()
        for segment in segments where !segment.queries.isEmpty {
            let part = Self.shape(of: segment, in: shape), rows = segment.queries
            let view = _BackwardTensors(
                gradOutput: try tensors.gradOutput.sliced(rows, along: -2), query: try tensors.query.sliced(rows, along: -2),
                key: try tensors.key.sliced(segment.keys, along: -2), value: try tensors.value.sliced(segment.keys, along: -2),
                output: try tensors.output.sliced(rows, along: -2), logSumExp: try tensors.logSumExp.sliced(rows, along: -1))
            // The segment's D rows: rows `rows` of each (batch, head) of the whole problem's.
            var rowDeltas = [Float]()
            rowDeltas.reserveCapacity(part.batch * part.queryHeads * rows.count)
            for head in 0..<(part.batch * part.queryHeads) {
                rowDeltas += deltas[(head * shape.queryLength + rows.lowerBound)..<(head * shape.queryLength + rows.upperBound)]
            }
            let schedule = _BackwardSchedule(shape: part)
            passes.append((try _BackwardPass(inputs: try _BackwardInputs(view, rowDeltas: rowDeltas), schedule: schedule,
                                             modifier: segment.modifier, options: options, plan: plan, maskParts: [],
                                             buffers: try _GradientBuffers(into: results, rows: rows, keys: segment.keys, schedule: schedule),
                                             dropout: dropout?.segment(queries: rows.lowerBound, keys: segment.keys.lowerBound)),
                           part.queryLength * Swift.max(1, part.keyLength)))
        }
        // Every item of every segment, the segments with the most work first (as the forward's job).
        let order = passes.indices.sorted { (passes[$0].work, $1) > (passes[$1].work, $0) }
        var claims = [(segment: Int, item: Int)]()
        for s in order { claims += (0..<passes[s].pass.schedule.itemsPerRound).map { (s, $0) } }
        let threads = Swift.max(1, Swift.min(SDPAThreads.effectiveCount, claims.count))
        let partials = _ParameterPartials(plan: plan, tasks: claims.count)
        if let widest = passes.map { $0.pass }.max(by: { $0.schedule.queryRows < $1.schedule.queryRows }) {
            // Every segment has the same key tile (it depends on the head dims alone); the widest query tile sizes the slots.
            let scratch = try _BackwardScratchSlots(widest, threads: threads)
            let (slots, queue, job, all) = (_WorkQueue(count: threads), _WorkQueue(count: claims.count), claims, passes.map { $0.pass })
            _parallelFor(threads) {
                guard let slot = slots.next() else { return }
                let tiles = scratch.scratch(slot: slot)
                while let n = queue.next() {
                    let pass = all[job[n].segment]
                    pass.run(pass.schedule.item(job[n].item, round: 0), scratch: tiles, parameters: partials.partial(n))
                }
            }
        }
        for (pass, _) in passes { pass.buffers.mergePartials(round: 0, threads: threads) }
        return (results.queryGradient(), results.key, results.value, partials.merged(), sinks)
    }
}
