/// A bias's trainable parameters as a backward kernel sees them, without knowing the bias: gradients
/// started at zero, a tile of the scores' gradients added in, partial sums merged in a fixed order (so
/// the result is the same at any thread count); and the float masks among its parts, whose gradients
/// go to targets the kernel keeps (``_MaskGradientTarget``: one per mask, shared by every task; a float mask alone is
/// the one part of its own plan). The bias layer's `_BiasParameterPlan` conforms.
protocol _ParameterGradientPlan: Sendable {
    /// The running gradients of every trainable part.
    associatedtype Gradients: Sendable

    /// Whether ``accumulate(_:masks:scoreGradients:rawScores:workspace:rowStride:batch:head:queries:keys:)`` reads the raw
    /// scores (a part takes the chain: non-additive parts after it, and before it or in it): a kernel keeps a copy of them only
    /// then, and the fused pass takes the bias's derivative from the plan's walk.
    var needsRawScores: Bool { get }

    /// Whether a part takes `dL/d(raw scores)`: the kernel then calls
    /// ``accumulateRawScoreGradients(_:masks:rawGradients:rowStride:batch:head:queries:keys:)`` once it has them.
    var takesRawScoreGradients: Bool { get }

    /// The float masks among the parts whose gradients are taken, in the order the parts apply: the
    /// kernel makes one target for each, in this order, and hands them to every ``accumulate(_:masks:scoreGradients:rawScores:workspace:rowStride:batch:head:queries:keys:)``.
    var differentiatedMasks: [Tensor] { get }

    /// A zero gradient for every trainable part.
    func zeroGradients() -> Gradients

    /// Elements of the workspace ``accumulate(_:masks:scoreGradients:rawScores:workspace:rowStride:batch:head:queries:keys:)``
    /// needs for a tile of `rows` rows `rowStride` apart (0 unless ``needsRawScores``).
    func chainWorkspaceCount(rows: Int, rowStride: Int) -> Int

    /// Adds one tile's contributions into `gradients` and into `masks` (one target per
    /// ``differentiatedMasks`` entry): `scoreGradients` is `dL/d(final scores)` (`rowStride` apart, 0 at
    /// masked positions), `rawScores` the scores before the bias, same stride. With ``needsRawScores``,
    /// `scoreGradients` is left as `dL/d(raw scores)` (the chain walked through every part: the fused pass takes no
    /// derivative of its own then; the math pass, which takes its own per score, reads nothing after it) and
    /// `workspace` holds ``chainWorkspaceCount(rows:rowStride:)`` elements.
    func accumulate<T: BinaryFloatingPoint>(
        _ gradients: inout Gradients, masks: [any _MaskGradientTarget], scoreGradients: UnsafeMutablePointer<T>, rawScores: UnsafePointer<T>,
        workspace: UnsafeMutablePointer<T>?, rowStride: Int, batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>)

    /// Adds one tile's contributions for the parts that take `dL/d(raw scores)` (the final scores' gradient
    /// through the whole bias's derivative), into `gradients` and `masks` as ``accumulate(_:masks:scoreGradients:rawScores:workspace:rowStride:batch:head:queries:keys:)``.
    func accumulateRawScoreGradients<T: BinaryFloatingPoint>(
        _ gradients: inout Gradients, masks: [any _MaskGradientTarget], rawGradients: UnsafePointer<T>,
        rowStride: Int, batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>)

    /// Adds `other`, partial gradients over other tiles, into `gradients`.
    func merge(_ gradients: inout Gradients, _ other: Gradients)
}
