/// Which gradient a differentiated part of a fused bias takes, by where the non-additive parts (soft-capping)
/// stand: none after it, `dL/d(final scores)` as it is; none before it nor the part itself, `dL/d(raw scores)`,
/// the kernel's own gradient through every part's derivative (additive parts have derivative 1); otherwise the
/// chain through the ones after it, each part's input recomputed on the tile (``_BiasParameterPlan/walkChain(_:masks:scoreGradients:rawScores:workspace:rowStride:batch:head:queries:keys:)``).
enum _GradientSource: Equatable { case finalScores, rawScores, chain }

/// How the gradient of the final scores reaches the trainable parts of a fused bias: its parts in
/// the order they apply (a composition flattened), which of them are ``TrainableAttnBias``, and which
/// are float ``TensorBias`` masks (a mask inside a composition gets its gradient as a mask alone does).
///
/// Part `k` is handed `dL/d(its output)`: the final scores' gradient times the derivatives of the
/// non-additive parts after it (soft-capping), each at its own input (``_GradientSource``). Both backends
/// call it per tile, into partial gradients merged in a fixed order (see ``TrainableAttnBias``) and into
/// the kernel's mask targets.
struct _BiasParameterPlan: _ParameterGradientPlan {
    let parts: [any FusedAttnBias]
    /// Indices into `parts` of the trainable ones, and the gradient each takes.
    let trainable: [Int], trainableSources: [_GradientSource]
    /// Indices into `parts` of the float masks whose gradients are taken (``TensorBias/requiresGradient``),
    /// and the gradient each takes.
    let masks: [Int], maskSources: [_GradientSource]
    /// Whether a part takes the chain: the raw scores are then needed.
    let needsRawScores: Bool
    /// Indices into `parts` of the non-additive ones (soft-capping): the parts whose derivative the chain takes.
    let nonAdditive: [Int]
    /// Whether a part takes `dL/d(raw scores)` (``accumulateRawScoreGradients(_:masks:rawGradients:rowStride:batch:head:queries:keys:)``).
    let takesRawScoreGradients: Bool

    /// The plan of `bias`, or `nil` when no part of it is trainable or a float mask.
    init?<Bias: FusedAttnBias>(_ bias: Bias) {
        let parts = _parts(of: bias)
        let trainable = parts.indices.filter { parts[$0] is any TrainableAttnBias }
        let masks = parts.indices.filter { (parts[$0] as? TensorBias).map { $0.requiresGradient && $0.mask.dtype.isFloatingPoint } == true }
        guard !(trainable + masks).isEmpty else { return nil }
        func source(_ k: Int) -> _GradientSource {
            if !parts[(k + 1)...].contains(where: { !$0.isAdditivePart }) { return .finalScores }
            // dL/d(raw scores) carries the part's own derivative too: only an additive part (or a mask) may take it.
            return parts[...k].contains { !$0.isAdditivePart } ? .chain : .rawScores
        }
        (self.parts, self.trainable, self.masks) = (parts, trainable, masks)
        nonAdditive = parts.indices.filter { !parts[$0].isAdditivePart }
        (trainableSources, maskSources) = (trainable.map(source), masks.map(source))
        needsRawScores = (trainableSources + maskSources).contains(.chain)
        takesRawScoreGradients = (trainableSources + maskSources).contains(.rawScores)
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

    /// Adds one tile's contributions into `gradients` and `masks` (one target per ``masks`` entry) for the parts
    /// that take the final scores' gradient or the chain: `scoreGradients` is `dL/d(final scores)` (`rowStride`
    /// apart, 0 at masked positions); `rawScores` the scores before the bias, with the same stride, read only when
    /// ``needsRawScores`` (a fused driver keeps a copy of them only then). With ``needsRawScores`` the chain is
    /// walked down to the first part (``walkChain(_:masks:scoreGradients:rawScores:workspace:rowStride:batch:head:queries:keys:)``),
    /// leaving `scoreGradients` as `dL/d(raw scores)`, and `workspace` holds
    /// ``chainWorkspaceCount(rows:rowStride:)`` elements.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    func accumulate<T: BinaryFloatingPoint>(
        _ gradients: inout _BiasParameterGradients, masks targets: [any _MaskGradientTarget], scoreGradients: UnsafeMutablePointer<T>,
        rawScores: UnsafePointer<T>, workspace: UnsafeMutablePointer<T>?, rowStride: Int, batch: Int, head: Int,
        queries: Range<Int>, keys: Range<Int>
    ) {
        take(.finalScores, UnsafePointer(scoreGradients), into: &gradients, masks: targets, rowStride: rowStride, batch: batch,
             head: head, queries: queries, keys: keys)
        guard needsRawScores else { return }
        // A pass that took no workspace would lose the chain's gradients and, in the fused pass, the bias's derivative.
        guard let workspace else { preconditionFailure("a plan whose parts take the chain needs its workspace") }
        walkChain(&gradients, masks: targets, scoreGradients: scoreGradients, rawScores: rawScores, workspace: workspace,
                  rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
    }

    /// Adds one tile's contributions for the parts that take `dL/d(raw scores)` (`rawGradients`: the final scores'
    /// gradient through every part's derivative, `rowStride` apart, 0 at masked positions).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    func accumulateRawScoreGradients<T: BinaryFloatingPoint>(
        _ gradients: inout _BiasParameterGradients, masks targets: [any _MaskGradientTarget], rawGradients: UnsafePointer<T>,
        rowStride: Int, batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        take(.rawScores, rawGradients, into: &gradients, masks: targets, rowStride: rowStride, batch: batch, head: head,
             queries: queries, keys: keys)
    }

    /// Hands `tile` to the parts whose gradient is `source`'s, trainable ones and masks.
    private func take<T: BinaryFloatingPoint>(
        _ source: _GradientSource, _ tile: UnsafePointer<T>, into gradients: inout _BiasParameterGradients,
        masks targets: [any _MaskGradientTarget], rowStride: Int, batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        // A kernel that took no target for a mask would drop its gradient without a word.
        precondition(targets.count == masks.count, "one mask-gradient target per differentiated mask")
        for n in gradients.parts.indices where trainableSources[n] == source {
            gradients.parts[n].accumulate(tile, rowStride: rowStride, batch: batch, head: head, queries: queries, keys: keys)
        }
        for n in targets.indices where maskSources[n] == source {
            targets[n].add(tile, rowStride: rowStride, cols: keys.count, batch: batch, head: head, queries: queries, firstKey: keys.lowerBound)
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
