/// How the gradient of the final scores reaches the trainable parts of a fused bias: its parts in
/// the order they apply (a composition flattened), which of them are ``TrainableAttnBias``, and which
/// are float ``TensorBias`` masks (a mask inside a composition gets its gradient as a mask alone does).
///
/// Part `k` is handed `dL/d(its output)`: the final scores' gradient times the derivatives of the
/// non-additive parts after it (soft-capping), each at its own input, which is recomputed from the
/// raw scores only when such a part follows a differentiated one. Both backends call it per tile, into
/// partial gradients merged in a fixed order (see ``TrainableAttnBias``) and into the kernel's mask targets.
struct _BiasParameterPlan: _ParameterGradientPlan {
    let parts: [any FusedAttnBias]
    /// Indices into `parts` of the trainable ones.
    let trainable: [Int]
    /// Indices into `parts` of the float masks (``TensorBias`` with a floating-point mask).
    let masks: [Int]
    /// Whether a non-additive part follows a differentiated one: the raw scores are then needed.
    let needsRawScores: Bool

    /// The plan of `bias`, or `nil` when no part of it is trainable or a float mask.
    init?<Bias: FusedAttnBias>(_ bias: Bias) {
        let parts = _parts(of: bias)
        let trainable = parts.indices.filter { parts[$0] is any TrainableAttnBias }
        let masks = parts.indices.filter { (parts[$0] as? TensorBias)?.mask.dtype.isFloatingPoint == true }
        guard let first = (trainable + masks).min() else { return nil }
        (self.parts, self.trainable, self.masks) = (parts, trainable, masks)
        needsRawScores = parts[(first + 1)...].contains { !$0.isAdditivePart }
    }

    /// The float masks of ``masks``, in part order.
    var differentiatedMasks: [Tensor] { masks.compactMap { (parts[$0] as? TensorBias)?.mask } }

    /// A zero gradient for every trainable part.
    func zeroGradients() -> _BiasParameterGradients {
        _BiasParameterGradients(parts: trainable.compactMap { k in
            func start<T: TrainableAttnBias>(_ part: T) -> any _PartGradient {
                _TrainablePartGradient(bias: part, part: k, gradient: part.zeroParameterGradient)
            }
            guard let part = parts[k] as? any TrainableAttnBias else { return nil }
            return start(part)
        })
    }

    /// Adds one tile's contributions into `gradients` and `masks` (one target per ``masks`` entry):
    /// `scoreGradients` is `dL/d(final scores)` (`rowStride` apart, 0 at masked positions); `rawScores` the
    /// scores before the bias, with the same stride, read only when ``needsRawScores`` (a fused driver keeps a
    /// copy of them only then).
    func accumulate<T: BinaryFloatingPoint>(
        _ gradients: inout _BiasParameterGradients, masks targets: [any _MaskGradientTarget], scoreGradients: UnsafePointer<T>,
        rawScores: UnsafePointer<T>, rowStride: Int, batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        guard needsRawScores else {
            for n in gradients.parts.indices {
                gradients.parts[n].accumulate(scoreGradients, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
            }
            for target in targets {
                target.add(scoreGradients, rowStride: rowStride, cols: keys.count, batch: batch, head: head, queries: queries,
                           firstKey: keys.lowerBound)
            }
            return
        }
        // inputs[k]: the scores part k receives; g: dL/d(output of the part being visited).
        let (rows, cols) = (queries.count, keys.count)
        let last = parts.count - 1
        var inputs = [[T]](repeating: [], count: parts.count)
        var s = (0..<rows * cols).map { rawScores[$0 / cols * rowStride + $0 % cols] }
        for k in 0...last {
            inputs[k] = s
            guard k < last, type(of: parts[k]).modifiesScores else { continue }
            for n in s.indices {
                s[n] = parts[k].modifyScore(s[n], batch: batch, head: head, query: queries.lowerBound + n / cols, key: keys.lowerBound + n % cols)
            }
        }
        var g = (0..<rows * cols).map { scoreGradients[$0 / cols * rowStride + $0 % cols] }
        var (slot, maskSlot) = (gradients.parts.count - 1, masks.count - 1)
        for k in stride(from: last, through: Swift.min(trainable.first ?? .max, masks.first ?? .max), by: -1) {
            if slot >= 0, trainable[slot] == k {
                g.withUnsafeBufferPointer { buffer in
                    gradients.parts[slot].accumulate(buffer.baseAddress!, rowStride: cols, batch: batch, head: head, queries: queries, keys: keys)
                }
                slot -= 1
            } else if maskSlot >= 0, masks[maskSlot] == k {
                if maskSlot < targets.count { g.withUnsafeBufferPointer { buffer in
                    targets[maskSlot].add(buffer.baseAddress!, rowStride: cols, cols: cols, batch: batch, head: head, queries: queries,
                                          firstKey: keys.lowerBound)
                } }
                maskSlot -= 1
            }
            guard !parts[k].isAdditivePart else { continue }
            for n in g.indices where g[n] != 0 {
                g[n] *= parts[k].modifyScoreDerivative(
                    inputs[k][n], batch: batch, head: head, query: queries.lowerBound + n / cols, key: keys.lowerBound + n % cols)
            }
        }
    }

    /// Adds `other`, partial gradients of this plan over other tiles, part by part.
    func merge(_ gradients: inout _BiasParameterGradients, _ other: _BiasParameterGradients) {
        gradients.merge(other)
    }

    /// The public form of `gradients`.
    func results(_ gradients: _BiasParameterGradients) -> [BiasParameterGradient] {
        gradients.parts.map(\.result)
    }
}

/// The running gradients of a bias's trainable parts, in the order of ``_BiasParameterPlan/trainable``.
struct _BiasParameterGradients: Sendable {
    var parts: [any _PartGradient]

    /// Adds `other`, partial gradients of the same plan over other tiles, part by part.
    mutating func merge(_ other: _BiasParameterGradients) {
        for n in parts.indices where n < other.parts.count { parts[n].merge(other.parts[n]) }
    }
}

/// One trainable part's running gradient, its type erased.
protocol _PartGradient: Sendable {
    mutating func accumulate<T: BinaryFloatingPoint>(
        _ scoreGradients: UnsafePointer<T>, rowStride: Int, batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>)
    mutating func merge(_ other: any _PartGradient)
    var result: BiasParameterGradient { get }
}

struct _TrainablePartGradient<Bias: TrainableAttnBias>: _PartGradient {
    let bias: Bias
    let part: Int
    var gradient: Bias.ParameterGradient

    mutating func accumulate<T: BinaryFloatingPoint>(
        _ scoreGradients: UnsafePointer<T>, rowStride: Int, batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        bias.accumulateParameterGradient(
            &gradient, scoreGradients: scoreGradients, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
    }

    mutating func merge(_ other: any _PartGradient) {
        if let other = other as? Self { bias.mergeParameterGradient(&gradient, other.gradient) }
    }

    var result: BiasParameterGradient { BiasParameterGradient(part: part, biasType: Bias.self, value: gradient) }
}

/// A fused bias made of parts applied one after another.
@usableFromInline
protocol _CompositeBias {
    var _parts: [any FusedAttnBias] { get }
}

extension BiasComposition: _CompositeBias {
    @usableFromInline var _parts: [any FusedAttnBias] { [first, second] }
}

extension BiasComposition {
    /// The first ``BlockDiagonalBias`` among the parts, if any (see ``FusedAttnBias/_packedSequences``):
    /// through the parts' own types, folded away once the composition's type is known.
    @inlinable
    public var _packedSequences: BlockDiagonalBias? { first._packedSequences ?? second._packedSequences }
}

/// The leaves of `bias`, in the order they apply: nested compositions flattened.
func _parts(of bias: any FusedAttnBias) -> [any FusedAttnBias] {
    guard let composite = bias as? _CompositeBias else { return [bias] }
    return composite._parts.flatMap { _parts(of: $0) }
}

extension FusedAttnBias {
    /// Whether the part's derivative is 1 everywhere: an additive modifier, or none.
    var isAdditivePart: Bool { Self.isAdditive || !Self.modifiesScores }
}

/// The math backward pass's result for a bias's plan: what the backward routing reads.
typealias _MathGradients = _MathBackwardResult<_BiasParameterGradients>
