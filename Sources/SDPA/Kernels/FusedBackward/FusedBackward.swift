import CSDPAKernels

/// What the fused backward pass returns: the inputs' gradients, the float masks', and the partial
/// gradients of the bias's trainable parts merged in item order.
struct _FusedGradients<ParameterGradients> {
    var query: Tensor, key: Tensor, value: Tensor
    /// The gradients of the plan's ``_ParameterGradientPlan/differentiatedMasks``, in their order.
    var maskParts: [Tensor] = []
    var parameters: ParameterGradients?
    /// `dL/dsinks` when the options carry sinks (``_sinkGradient(_:shape:logSumExp:rowDeltas:)``).
    var sinks: Tensor?
}

/// FlashAttention-2's backward pass on the kernel layer's tiles, for any bias the forward kernel runs.
///
/// Per work item (one chunk of keys of one (batch, key/value head), ``_BackwardSchedule``), key tile
/// by key tile: `Kᵀ`, `Vᵀ` packed once; then for every query tile and query head of the group whose
/// tile the bias does not empty, `S = scale · Q Kᵀ` with the bias applied by the forward's own tile
/// code, `P = exp(S − lse)`, `dP = dO Vᵀ` (dropout on both, as the forward dropped), `dS = P ∘ (dP − D)`
/// (the bias's derivative on it; `D = rowsum(dO ∘ O)`, `O` recomputed in float32 for half precisions:
/// ``_rowDeltas(_:shape:rowsPerTile:forward:)``), `dV += Pᵀ dO`, `dK += scale · dSᵀ Q`, `dQ += scale · dS K`. The key
/// tile's dK and dV are written once, after the sweep. Extra memory: per thread O(tile); per call the
/// log-sum-exp and `D` rows, dQ and the recomputed output in float32 for half precisions, the partial dQ rows of key chunks
/// after the first (``_BackwardSchedule/maxChunks`` at most): O(L·E), never `L × S`.
func _fusedAttentionBackward<Modifier: _DifferentiableScoreModifier, Plan: _ParameterGradientPlan>(
    _ tensors: _BackwardTensors, shape: AttentionShape, modifier: Modifier, options: AttentionOptions,
    plan: Plan?
) throws -> _FusedGradients<Plan.Gradients> {
    let maskParts = try (plan?.differentiatedMasks ?? []).map(_MaskGradient.init(mask:))
    let schedule = _BackwardSchedule(shape: shape, maskSharing: _MaskGradient.sharing(of: maskParts))
    let buffers = try _GradientBuffers(tensors, schedule: schedule)
    let items = schedule.rounds * schedule.itemsPerRound
    guard shape.batch * shape.queryHeads * shape.queryLength > 0, items > 0 else {
        return _FusedGradients(query: buffers.results.queryGradient(), key: buffers.results.key, value: buffers.results.value,
                               maskParts: maskParts.map { $0.result() }, parameters: plan?.zeroGradients(),
                               // Rows that see no key have D = 0.
                               sinks: try options.sinks.map {
                                   try _sinkGradient($0, shape: shape, logSumExp: tensors.logSumExp._elements(as: Float.self),
                                                     rowDeltas: [Float](repeating: 0, count: shape.batch * shape.queryHeads * shape.queryLength))
                               })
    }
    let deltas = try _rowDeltas(tensors, shape: shape, rowsPerTile: schedule.queryRows) { dtype in
        try _fusedAttention(query: tensors.query, key: tensors.key, value: tensors.value, shape: shape, modifier: modifier,
                            options: options, outputDType: dtype)
    }
    let inputs = try _BackwardInputs(tensors, rowDeltas: deltas)
    let sinks = try options.sinks.map { try _sinkGradient($0, shape: shape, logSumExp: inputs.logSumExp, rowDeltas: deltas) }
    let pass = try _BackwardPass(
        inputs: inputs, schedule: schedule, modifier: modifier,
        options: options, plan: plan, maskParts: maskParts, buffers: buffers, dropout: _Dropout(options, shape: shape))
    let threads = Swift.min(SDPAThreads.effectiveCount, schedule.itemsPerRound)
    let scratch = try _BackwardScratchSlots(pass, threads: threads)

    // One partial gradient per item, merged in item order: the bits do not depend on the threads.
    let partials = _ParameterPartials(plan: plan, tasks: items)
    for round in 0..<schedule.rounds {
        let (slots, queue) = (_WorkQueue(count: threads), _WorkQueue(count: schedule.itemsPerRound))
        _parallelFor(threads) {
            guard let slot = slots.next() else { return }
            let tiles = scratch.scratch(slot: slot)
            while let index = queue.next() {
                let item = schedule.item(index, round: round)
                let n = round * schedule.itemsPerRound + index
                pass.run(item, scratch: tiles, parameters: partials.partial(n))
            }
        }
        buffers.mergePartials(round: round, threads: threads)
    }
    return _FusedGradients(query: buffers.results.queryGradient(), key: buffers.results.key, value: buffers.results.value,
                           maskParts: maskParts.map { $0.result() }, parameters: partials.merged(), sinks: sinks)
}
