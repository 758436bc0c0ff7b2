/// A fully connected layer, PyTorch's `nn.Linear`: `y = x Wᵀ + b` over the last dimension.
///
/// The weight is given as PyTorch stores it, `[out, in]`, and packed once, here, into the panels of
/// `Wᵀ` the product reads (``_WeightPanels``); every call is one float32 matrix product on the attention
/// kernels' register tiles, with the bias, the ``Activation`` and an optional residual addition applied
/// to each block of the output while it is in cache.
///
/// ```swift
/// let fc = try Linear(weight: w, bias: b)                  // w: [1536, 384], b: [1536]
/// let h = try fc(x, activation: .gelu)                     // x: [B, L, 384] -> [B, L, 1536]
/// ```
public struct Linear: Sendable {
    /// `in`.
    public var inputFeatures: Int { panels.inputFeatures }
    /// `out`.
    public var outputFeatures: Int { panels.outputFeatures }
    /// The weight transposed, `[in, out]`, in panels of the register tile's columns.
    let panels: _WeightPanels
    /// `[out]` float32, contiguous, or `nil`.
    let biasVector: Tensor?

    /// A layer from PyTorch's `weight` (`[out, in]`) and optional `bias` (`[out]`), any float dtype.
    ///
    /// - Throws: ``SDPAError`` when the weight is not rank 2 or the bias does not have `out` elements, or either is bool.
    public init(weight: Tensor, bias: Tensor? = nil) throws {
        panels = try _WeightPanels(weight: weight, argument: "weight")
        if let bias, bias.shape != [panels.outputFeatures] {
            throw SDPAError.shapeMismatch(argument: "bias", shape: bias.shape, other: "weight", otherShape: weight.shape,
                                          reason: "the bias has one element per output feature, [\(panels.outputFeatures)]")
        }
        biasVector = try bias?._contiguousFloat32("bias")
    }

    /// The layer of output features `columns` alone (rows `columns` of the weight, and of the bias): a view of
    /// this layer's panels when `columns` starts on one (``_WeightPanels/columns(_:)``).
    func _columns(_ columns: Range<Int>) throws -> Linear {
        Linear(panels: try panels.columns(columns), biasVector: try biasVector?.sliced(columns, along: 0).contiguous())
    }

    private init(panels: _WeightPanels, biasVector: Tensor?) {
        (self.panels, self.biasVector) = (panels, biasVector)
    }

    /// A layer initialised as PyTorch's: weight and bias uniform in `±1/√in`, the same for the same seed.
    ///
    /// - Throws: ``SDPAError/invalidShape(argument:shape:reason:)`` for a negative size.
    public static func random(inputFeatures: Int, outputFeatures: Int, bias: Bool = true, seed: UInt64) throws -> Linear {
        let bound = inputFeatures > 0 ? 1 / Float(inputFeatures).squareRoot() : 0
        return try Linear(
            weight: Tensor.randomUniform(shape: [outputFeatures, inputFeatures], in: -bound...bound, seed: seed),
            bias: bias ? Tensor.randomUniform(shape: [outputFeatures], in: -bound...bound, seed: seed &+ 1) : nil)
    }

    /// The weight, `[out, in]` float32, as PyTorch's: a copy made on each access from the panels this layer
    /// keeps (empty, `[0, in]`, only if the memory for the copy cannot be had).
    public var weight: Tensor {
        (try? panels.weight())
            ?? Tensor(_storage: panels.storage._storage, dtype: .float32, shape: [0, inputFeatures], strides: [inputFeatures, 1], offset: 0)
    }
    /// The bias, `[out]`, if any.
    public var bias: Tensor? { biasVector }

    /// `activation(x Wᵀ + b) + residual` for `x` of shape `[..., in]` (any float dtype); the result is
    /// `[..., out]` float32.
    ///
    /// - Parameters:
    ///   - activation: applied after the bias, before the residual.
    ///   - residual: added last, `[..., out]` with the result's shape (a transformer's skip connection).
    /// - Throws: ``SDPAError`` when the last dimension of `x` is not `in`, or `residual` has another shape.
    public func callAsFunction(_ x: Tensor, activation: Activation = .identity, residual: Tensor? = nil) throws -> Tensor {
        guard x.rank >= 1, x.shape.last == inputFeatures else {
            throw SDPAError.shapeMismatch(argument: "x", shape: x.shape, other: "Linear.weight", otherShape: [outputFeatures, inputFeatures],
                                          reason: "the last dimension of x must be the layer's input features, \(inputFeatures)")
        }
        let outputShape = Array(x.shape.dropLast()) + [outputFeatures]
        if let residual, residual.shape != outputShape {
            throw SDPAError.shapeMismatch(argument: "residual", shape: residual.shape, other: "the output", otherShape: outputShape,
                                          reason: "the residual is added to the output, so it has its shape")
        }
        let output = try Tensor._floatMatrix(outputShape)
        _apply(rows: outputShape.dropLast().reduce(1, *), try x._contiguousFloat32("x"), into: output, activation: activation,
               residual: try residual?._contiguousFloat32("residual"), normalization: nil)
        return output
    }

    /// `normalization(activation(x Wᵀ + b) + residual)` over the first `rows` rows of `input`, written to `output`
    /// (both, and `residual`, contiguous float32): the product, then everything else on each block of the output as
    /// it is finished. Tensors, not pointers, so that a converted copy made for the call lives until it returns.
    @usableFromInline
    func _apply(rows: Int, _ input: Tensor, into output: Tensor, activation: Activation, residual: Tensor?, normalization: LayerNorm?) {
        withExtendedLifetime((self, input, output, residual)) {
            _apply(rows: rows, UnsafePointer(input._floats), output._floats, activation: activation,
                   residual: residual?._floats, normalization: normalization)
        }
    }

    /// ``_apply(rows:_:into:activation:residual:normalization:)`` on memory the caller keeps alive.
    private func _apply(
        rows: Int, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
        activation: Activation, residual: UnsafeMutablePointer<Float>?, normalization: LayerNorm?
    ) {
        let (n, k) = (outputFeatures, inputFeatures)
        let blocks = _ProductBlocks(m: rows, n: n, k: k, panelWidth: panels.width, wholeRows: normalization != nil)
        // A layer norm needs whole rows: fused when an item holds them, a pass of its own otherwise.
        let fusedNorm = blocks.columnBlocks == 1 ? normalization : nil
        let out = _SendablePointer(output), skip = residual.map { _SendablePointer($0) }
        var finish: (@Sendable (Range<Int>, Range<Int>) -> Void)?
        if activation != .identity || skip != nil || fusedNorm != nil {
            finish = { (rowRange: Range<Int>, columns: Range<Int>) in
                for r in rowRange {
                    let row = out.pointer! + r * n + columns.lowerBound
                    activation._apply(row, count: columns.count)
                    if let skip {
                        _addRow(row, skip.pointer! + r * n + columns.lowerBound, count: columns.count)
                    }
                }
                fusedNorm?._normalizeRows(out.pointer! + rowRange.lowerBound * n, rows: rowRange.count, stride: n)
            }
        }
        if let biasVector {
            _matrixMultiply(m: rows, a: input, lda: k, b: panels, c: output, ldc: n,
                            start: .rowBias(biasVector._floats), blocks: blocks, finish: finish)
        } else {
            _matrixMultiply(m: rows, a: input, lda: k, b: panels, c: output, ldc: n, blocks: blocks, finish: finish)
        }
        if let normalization, fusedNorm == nil {
            normalization._normalizeInParallel(output, rows: rows)
        }
    }
}
