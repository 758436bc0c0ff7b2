import Dispatch
import Foundation

/// What the math backward pass computes: the inputs' gradients (in their dtype, or the one asked for), and what the caller
/// turns into the bias's gradients (`ParameterGradients`: its plan's, see ``_ParameterGradientPlan``).
struct _MathBackwardResult<ParameterGradients> {
    var query: Tensor, key: Tensor, value: Tensor
    /// The gradients of the plan's ``_ParameterGradientPlan/differentiatedMasks``, in their order.
    var maskParts: [Tensor]
    /// The trainable parts' gradients, when the bias has a plan.
    var parameters: ParameterGradients?
    /// `dL/dsinks`, when the options carry sinks.
    var sinks: Tensor?
}

/// The reference backward pass: the exact gradient of ``_mathAttention(query:key:value:shape:modifier:options:)``,
/// element by element in `Double`.
///
/// Per row it recomputes the scores and the softmax `P` from query and key (in `Double`, so neither
/// the forward's float32 log-sum-exp nor its rounded output enter; a sink joins the denominator), then with `Z` the dropout factor
/// (0, or `1 / (1 − p)`) and `dO` the output's gradient:
/// `dV += (P∘Z)ᵀ dO`, `dP = (dO Vᵀ)∘Z`, `D = rowsum(P∘dP)` (= `rowsum(dO∘O)`), `dS = P∘(dP − D)`,
/// `dR = dS · modify′(raw score)`, `dQ += scale · dR K`, `dK += scale · dRᵀ Q`. A key whose weight is
/// 0 (masked, or underflowed) contributes nothing, so a NaN in its value row does not reach the
/// gradients, as it does not reach the forward's output; a fully masked row gives zero gradients;
/// NaN in a visible score propagates. Parallel over `(batch, key/value head)`: each task owns its
/// dK and dV rows (summing its group's query heads in order) and its heads' dQ rows, and partial
/// parameter gradients are merged in task order, so the result does not depend on the thread count.
/// A float mask's gradient (the plan's: the scores' gradient for a mask alone, for a mask among other parts
/// the gradient that reaches its part) is gathered per task into the block of the mask it reaches
/// (``_MaskGradientByTask``), the blocks added in task order.
func _mathAttentionBackward<Modifier: _DifferentiableScoreModifier, Plan: _ParameterGradientPlan>(
    gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, gradientDType: DType, shape: AttentionShape, modifier: Modifier,
    options: AttentionOptions, parameters plan: Plan?
) throws -> _MathBackwardResult<Plan.Gradients> {
    let (B, H, Hkv, L, S) = (shape.batch, shape.queryHeads, shape.keyValueHeads, shape.queryLength, shape.keyLength)
    let (E, Ev, group) = (shape.headDim, shape.valueHeadDim, shape.groupSize)
    let q = query._elements(as: Double.self), k = key._elements(as: Double.self), v = value._elements(as: Double.self)
    let dO = gradOutput._elements(as: Double.self)
    let scale = options.resolvedScale(headDim: E)
    let dropout = _Dropout(options, shape: shape)
    let tasks = B * Hkv
    // Validated `[H]`; with sinks, each row's log-sum-exp and D for their gradient (`+inf`, 0: a row that saw no key).
    let sinks = options.sinks?.doubleScalars
    let sinkRows = sinks == nil ? 0 : B * H * L
    let rowLogSumExp = UnsafeMutableBufferPointer<Double>.allocate(capacity: sinkRows)
    let rowDeltas = UnsafeMutableBufferPointer<Double>.allocate(capacity: sinkRows)
    defer {
        rowLogSumExp.deallocate()
        rowDeltas.deallocate()
    }
    rowLogSumExp.initialize(repeating: .infinity)
    rowDeltas.initialize(repeating: 0)
    let (lseBase, deltaBase) = (_SendablePointer(rowLogSumExp.baseAddress), _SendablePointer(rowDeltas.baseAddress))

    var dq = [Double](repeating: 0, count: B * H * L * E)
    var dk = [Double](repeating: 0, count: B * Hkv * S * E), dv = [Double](repeating: 0, count: B * Hkv * S * Ev)
    let maskParts: [any _MaskGradientTarget] = try (plan?.differentiatedMasks ?? []).map { try _MaskGradientByTask(mask: $0, shape: shape) }
    let partials = _ParameterPartials(plan: plan, tasks: tasks)
    dq.withUnsafeMutableBufferPointer { dqBuffer in
        dk.withUnsafeMutableBufferPointer { dkBuffer in
            dv.withUnsafeMutableBufferPointer { dvBuffer in
                let (dqBase, dkBase) = (_SendablePointer(dqBuffer.baseAddress), _SendablePointer(dkBuffer.baseAddress))
                let dvBase = _SendablePointer(dvBuffer.baseAddress)
                DispatchQueue.concurrentPerform(iterations: tasks) { task in
                    let (b, kvHead) = (task / Hkv, task)
                    var raw = [Double](repeating: 0, count: S), p = raw, dS = raw
                    // dL/d(raw scores), for the plan's parts that take it.
                    var dR = [Double](repeating: 0, count: plan?.takesRawScoreGradients == true ? S : 0)
                    // The plan's chain-rule rows, for parts that take the chain.
                    var chain = [Double](repeating: 0, count: plan?.chainWorkspaceCount(rows: 1, rowStride: S) ?? 0)
                    for h in (task % Hkv) * group..<(task % Hkv + 1) * group {
                        let bh = b * H + h
                        let sink = sinks?[h] ?? -.infinity
                        for i in 0..<L {
                            let (qRow, oRow) = ((bh * L + i) * E, (bh * L + i) * Ev)
                            // Scores and softmax, as the forward computes them.
                            var rowMax = -Double.infinity, sawNaN = false
                            for j in 0..<S {
                                let kRow = (kvHead * S + j) * E
                                var dot = 0.0
                                for e in 0..<E { dot += q[qRow + e] * k[kRow + e] }
                                raw[j] = dot * scale
                                p[j] = modifier.biasedScore(raw[j], batch: b, head: h, query: i, key: j)
                                if p[j].isNaN { sawNaN = true } else { rowMax = Swift.max(rowMax, p[j]) }
                            }
                            if rowMax == -.infinity && !sawNaN {
                                // No visible key: zero gradients. A finite sink holds the row's whole weight: its
                                // log-sum-exp is the sink, and D = dO·O with O = 0 (NaN only where dO has one, as fused and PyTorch).
                                if sinks != nil, sink.isFinite {
                                    var d = 0.0
                                    for e in 0..<Ev { d += dO[oRow + e] * 0 }
                                    (lseBase.pointer![bh * L + i], deltaBase.pointer![bh * L + i]) = (sink, d)
                                }
                                continue
                            }
                            let rowMaxWithSink = Swift.max(rowMax, sink)
                            let shift = rowMaxWithSink.isFinite ? rowMaxWithSink : 0
                            var sum = sink == -.infinity ? 0 : Foundation.exp(sink - shift)
                            for j in 0..<S {
                                p[j] = p[j] == -.infinity ? 0 : Foundation.exp(p[j] - shift)
                                sum += p[j]
                            }
                            // dP (through dropout) and D = rowsum(P ∘ dP).
                            var d = 0.0
                            for j in 0..<S {
                                p[j] /= sum
                                dS[j] = 0
                                guard p[j] != 0 else { continue }
                                let vRow = (kvHead * S + j) * Ev
                                var dp = 0.0
                                for e in 0..<Ev { dp += dO[oRow + e] * v[vRow + e] }
                                if let dropout { dp = dropout.apply(dp, at: dropout.counter(batch: b, head: h, query: i, key: j)) }
                                dS[j] = dp
                                d += p[j] * dp
                            }
                            if sinks != nil {
                                (lseBase.pointer![bh * L + i], deltaBase.pointer![bh * L + i]) = (shift + Foundation.log(sum), d)
                            }
                            let dqRow = dqBase.pointer! + qRow
                            if !dR.isEmpty { dR.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
                            for j in 0..<S where p[j] != 0 {
                                dS[j] = p[j] * (dS[j] - d)
                                let (kRow, vRow) = ((kvHead * S + j) * E, (kvHead * S + j) * Ev)
                                // dV: the weight the forward used, dropout included.
                                let used = dropout.map { $0.apply(p[j], at: $0.counter(batch: b, head: h, query: i, key: j)) } ?? p[j]
                                if used != 0 {
                                    let dvRow = dvBase.pointer! + vRow
                                    for e in 0..<Ev { dvRow[e] += used * dO[oRow + e] }
                                }
                                var g = dS[j] * scale
                                // 1 for an additive bias: the product is then exact.
                                let derivative = Modifier.hasScoreDerivative ? modifier.scoreDerivative(raw[j], batch: b, head: h, query: i, key: j) : 1
                                g *= derivative
                                if !dR.isEmpty { dR[j] = dS[j] * derivative }
                                let dkRow = dkBase.pointer! + kRow
                                for e in 0..<E {
                                    dqRow[e] += g * k[kRow + e]
                                    dkRow[e] += g * q[qRow + e]
                                }
                            }
                            if let plan, let partial = partials.partial(task) {
                                // dS is not read after this (the walk of a chain may turn it into dL/d(raw scores)).
                                dS.withUnsafeMutableBufferPointer { gradients in
                                    raw.withUnsafeBufferPointer { scores in
                                        chain.withUnsafeMutableBufferPointer { workspace in
                                            plan.accumulate(
                                                &partial.pointee, masks: maskParts, scoreGradients: gradients.baseAddress!,
                                                rawScores: scores.baseAddress!, workspace: workspace.baseAddress, rowStride: S, batch: b, head: h,
                                                queries: i..<(i + 1), keys: 0..<S)
                                        }
                                    }
                                }
                                if !dR.isEmpty {
                                    dR.withUnsafeBufferPointer {
                                        plan.accumulateRawScoreGradients(&partial.pointee, masks: maskParts, rawGradients: $0.baseAddress!,
                                                                         rowStride: S, batch: b, head: h, queries: i..<(i + 1), keys: 0..<S)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    func tensor(_ values: [Double], like input: Tensor) throws -> Tensor {
        let result = try Tensor(_zeros: input.shape, dtype: gradientDType, argument: "a gradient")
        values.withUnsafeBufferPointer { result._storeContiguous(from: $0) }
        return result
    }
    return _MathBackwardResult(
        query: try tensor(dq, like: query), key: try tensor(dk, like: key), value: try tensor(dv, like: value),
        maskParts: try maskParts.map { try $0.result() }, parameters: partials.merged(),
        sinks: try options.sinks.map { try _sinkGradient($0, shape: shape, logSumExp: Array(rowLogSumExp), rowDeltas: Array(rowDeltas)) })
}
