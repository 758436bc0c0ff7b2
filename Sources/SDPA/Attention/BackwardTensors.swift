/// The tensors of one backward call: the forward's inputs and results and the output's gradient.
@usableFromInline
struct _BackwardTensors {
    @usableFromInline var gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor
    /// The dtype the inputs' gradients come in: the query's, or float32 for half-precision inputs whose
    /// gradients the caller sums over what was broadcast (``_BroadcastInputs``) and rounds once.
    var gradientDType: DType

    @usableFromInline
    init(gradOutput: Tensor, query: Tensor, key: Tensor, value: Tensor, output: Tensor, logSumExp: Tensor) {
        (self.gradOutput, self.query, self.key, self.value) = (gradOutput, query, key, value)
        (self.output, self.logSumExp) = (output, logSumExp)
        gradientDType = query.dtype
    }

    /// The problem's shape, once query, key, value, the forward's results, the output's gradient
    /// and the options are checked against each other.
    ///
    /// - Throws: ``SDPAError`` naming the argument and the shapes or values that do not fit.
    func checkedShape(options: AttentionOptions) throws -> AttentionShape {
        let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: options.enableGQA)
        try options.validate(for: shape)
        let lseShape = Array(shape.outputShape.dropLast())
        if output.shape != shape.outputShape {
            throw SDPAError.shapeMismatch(
                argument: "output", shape: output.shape, other: "query", otherShape: query.shape,
                reason: "the forward's output for these inputs has shape \(shape.outputShape) ([B, H, L, Ev]; \(shape))")
        }
        if gradOutput.shape != output.shape {
            throw SDPAError.shapeMismatch(
                argument: "gradOutput", shape: gradOutput.shape, other: "output", otherShape: output.shape,
                reason: "the gradient of the output must have the output's shape")
        }
        if logSumExp.shape != lseShape {
            throw SDPAError.shapeMismatch(
                argument: "logSumExp", shape: logSumExp.shape, other: "query", otherShape: query.shape,
                reason: "the forward's log-sum-exp for these inputs has shape \(lseShape) ([B, H, L])")
        }
        for (name, tensor) in [("output", output), ("gradOutput", gradOutput)] where tensor.dtype != query.dtype {
            throw SDPAError.unsupportedDType(
                argument: name, dtype: tensor.dtype, reason: "it must have the query's dtype, \(query.dtype), as the forward's output does")
        }
        guard logSumExp.dtype.isFloatingPoint else {
            throw SDPAError.unsupportedDType(argument: "logSumExp", dtype: logSumExp.dtype, reason: "the forward's log-sum-exp is float32")
        }
        if options.dropoutP > 0, options.dropoutSeed == nil {
            throw SDPAError.invalidArgument(
                argument: "dropoutSeed", value: "nil",
                reason: "with dropoutP = \(options.dropoutP) the backward pass needs the seed the forward pass used, to drop the same weights")
        }
        return shape
    }
}
