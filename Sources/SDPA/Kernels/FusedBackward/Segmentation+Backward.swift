extension _Segmentation where Modifier: _DifferentiableScoreModifier {
    /// The backward pass as the forward ran it: each segment's own fused backward pass over views of
    /// the tensors (one parallel job after another), its gradients joined along the sequence axis. A
    /// segment's gradients are those of its sequences alone; keys no query sees get zeros. The bias has no
    /// trainable parts (`plan`: the caller's plan type, never a plan).
    func backward<Plan: _ParameterGradientPlan>(
        _ tensors: _BackwardTensors, options: AttentionOptions, plan: Plan.Type
    ) throws -> (query: Tensor, key: Tensor, value: Tensor) {
        var (queries, keys, values) = ([Tensor](), [Tensor](), [Tensor]())
        for segment in segments {
            let part = Self.shape(of: segment, in: shape)
            let (k, v) = (try tensors.key.sliced(segment.keys, along: -2), try tensors.value.sliced(segment.keys, along: -2))
            guard !segment.queries.isEmpty else {
                keys.append(try Tensor(_zeros: k.shape, dtype: k.dtype, argument: "grads.key"))
                values.append(try Tensor(_zeros: v.shape, dtype: v.dtype, argument: "grads.value"))
                continue
            }
            let rows = segment.queries
            let view = _BackwardTensors(
                gradOutput: try tensors.gradOutput.sliced(rows, along: -2), query: try tensors.query.sliced(rows, along: -2), key: k, value: v,
                output: try tensors.output.sliced(rows, along: -2), logSumExp: try tensors.logSumExp.sliced(rows, along: -1))
            let gradients = try _fusedAttentionBackward(view, shape: part, modifier: segment.modifier, options: options,
                                                        plan: nil as Plan?, maskForGradient: nil)
            queries.append(gradients.query)
            keys.append(gradients.key)
            values.append(gradients.value)
        }
        return (try Tensor.concatenated(queries, along: -2), try Tensor.concatenated(keys, along: -2),
                try Tensor.concatenated(values, along: -2))
    }
}
