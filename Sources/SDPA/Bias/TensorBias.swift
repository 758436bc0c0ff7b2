/// A dense mask given as a tensor: the RFC's wrapper for what `attn_mask` used to be.
///
/// `.bool` masks say where to attend (`true`); float masks are added to the scaled
/// scores (`-inf` masks). Any shape of at most four dimensions that broadcasts to `[B, H, L, S]`
/// works (as in PyTorch: a fifth dimension is an error, even of size 1, unless the inputs have batch
/// dimensions, `[N, ..., H, L, E]`: then up to their rank, broadcast to `[N, ..., H, L, S]`), for example (`L = 3`,
/// `S = 4`, 1 = attend):
///
/// ```
/// [L, S] bool               [B, 1, 1, S] bool (key padding, batch 0 has 3 keys)
/// [[1, 0, 1, 1],            [[[[1, 1, 1, 0]]], ...]
///  [0, 1, 1, 0],
///  [1, 1, 1, 1]]
/// ```
///
/// ```swift
/// let padding = try Tensor(shape: [2, 1, 1, 4], bools: [true, true, true, false, true, true, true, true])
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(padding))
/// ```
///
/// It is also a ``FusedAttnBias`` part: `TensorBias(padding).combined(with: causalLowerRight(L, S))` runs fused,
/// the mask read in place beside the other parts (see `TensorBias+Composition.swift`).
public struct TensorBias: AttnBias {
    /// The mask as given.
    public var mask: Tensor {
        didSet { _layout = _DenseMaskLayout(mask) }
    }
    /// Where the mask's elements are, for reading one score's (``FusedAttnBias/modifyScore(_:batch:head:query:key:)``)
    /// without rebuilding a reader each time; `mask` keeps the storage it points into alive.
    @usableFromInline var _layout: _DenseMaskLayout
    /// Whether the backward pass takes a float mask's gradient (``AttentionGradients/attnMask``), alone or in a
    /// composition; PyTorch's `requires_grad`. `false` makes the mask a constant and spares what its gradient
    /// costs: a float32 sum per mask element, and for a mask the same for every head (or batch) the work items
    /// run in rounds; in a composition also the segments of packed sequences, and for a mask between two
    /// non-additive parts the chain rule's copies of each tile. Ignored for a bool mask, which has no gradient.
    public var requiresGradient: Bool

    /// Wraps a `.bool` or float mask of at most four dimensions broadcastable to `[B, H, L, S]` (of up to the
    /// inputs' rank for inputs of rank 5 and more), the scores' shape after query, key and value broadcast.
    @inlinable public init(_ mask: Tensor) { self.init(mask, requiresGradient: true) }

    /// A mask as ``init(_:)`` wraps it; `requiresGradient: false` for a float mask whose gradient is not wanted.
    @inlinable public init(_ mask: Tensor, requiresGradient: Bool) {
        (self.mask, self.requiresGradient, _layout) = (mask, requiresGradient, _DenseMaskLayout(mask))
    }

    /// Always `true`: the mask already is a tensor.
    @inlinable public var needsMaterialization: Bool { true }

    /// The mask itself.
    @inlinable public func materialize(device: Device) throws -> Tensor { mask }

    /// Checks that the mask has at most four dimensions and broadcasts to the scores' shape.
    public func validate(for shape: AttentionShape) throws {
        try _checkBroadcastable(mask.shape, to: shape)
    }

    /// The dense-mask path, as the entry points take it: the mask read in place (not the fused path of a
    /// ``FusedAttnBias``, which a ``TensorBias`` is only as a part of a composition).
    public static func dispatch(
        query: Tensor, key: Tensor, value: Tensor, attnBias: TensorBias, options: AttentionOptions
    ) throws -> Tensor {
        try _materializedAttention(query: query, key: key, value: value, bias: attnBias, options: options, logSumExp: false).output
    }

    /// The dense-mask path, with the log-sum-exp.
    public static func dispatchWithLogSumExp(
        query: Tensor, key: Tensor, value: Tensor, attnBias: TensorBias, options: AttentionOptions
    ) throws -> (output: Tensor, logSumExp: Tensor) {
        try _materializedAttention(query: query, key: key, value: value, bias: attnBias, options: options).pair
    }
}
