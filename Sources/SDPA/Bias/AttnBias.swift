/// An attention bias: a type that knows how to turn itself into a dense mask,
/// and may know a faster way to run attention without one.
///
/// This is the protocol of PyTorch's RFC "Scaled Dot Product Attention API
/// Changes" (pytorch#110681) in Swift. ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``
/// routes every bias the same way:
///
/// 1. ``needsMaterialization`` is `true`: call ``materialize(device:)`` and run
///    the masked path with the dense mask;
/// 2. otherwise: call the bias type's ``dispatch(query:key:value:attnBias:options:)``,
///    which picks a kernel that computes the bias itself.
///
/// A conformer only has to implement ``materialize(device:)`` and
/// ``needsMaterialization``; the default ``dispatch(query:key:value:attnBias:options:)``
/// materializes and runs the masked path, and the default ``validate(for:)`` accepts any inputs
/// the materialized mask broadcasts to.
///
/// ```swift
/// /// Attend only to even key positions.
/// struct EvenKeys: AttnBias {
///     var seqLenQ: Int, seqLenKV: Int
///     var needsMaterialization: Bool { true }
///     func materialize(device: Device) throws -> Tensor {
///         try Tensor(shape: [seqLenQ, seqLenKV],
///                    bools: (0..<seqLenQ * seqLenKV).map { $0 % seqLenKV % 2 == 0 })
///     }
/// }
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: EvenKeys(seqLenQ: 4, seqLenKV: 6))
/// ```
///
/// See also: ``TensorBias``, ``CausalBias``, ``AlibiBias``.
public protocol AttnBias: Sendable {
    /// The bias as a dense tensor of at most four dimensions broadcastable to `[B, H, L, S]`: `.bool` (`true` = attend)
    /// or a float dtype (added to the scaled scores; `-inf` masks a position).
    func materialize(device: Device) throws -> Tensor

    /// Whether attention must run on the materialized mask (`true`) or through ``dispatch(query:key:value:attnBias:options:)``.
    var needsMaterialization: Bool { get }

    /// Checks that this bias was built for inputs of `shape`, throwing ``SDPAError/biasMismatch(bias:parameter:expected:actual:inputs:)``
    /// that names the parameter which does not match.
    func validate(for shape: AttentionShape) throws

    /// Runs attention with this bias without the caller materializing it.
    ///
    /// The entry points call it with inputs of rank 3 or 4 and one batch and head layout: inputs that broadcast
    /// reach it expanded (views: a batch of 1 repeated with stride 0, rank 2 as rank 3), those of rank 5 and
    /// more with their batch dimensions flattened into `B` (and its result, `[B, H, L, Ev]`, gets them back).
    ///
    /// - Parameters:
    ///   - query: `[B, H, L, E]` or `[H, L, E]`.
    ///   - key: `[B, Hkv, S, E]` or `[Hkv, S, E]`.
    ///   - value: `[B, Hkv, S, Ev]` or `[Hkv, S, Ev]`.
    ///   - attnBias: the bias.
    ///   - options: scale, dropout and grouped-query settings.
    /// - Returns: `[B, H, L, Ev]` (or `[H, L, Ev]`), in the query's dtype.
    static func dispatch(
        query: Tensor, key: Tensor, value: Tensor, attnBias: Self, options: AttentionOptions
    ) throws -> Tensor

    /// Like ``dispatch(query:key:value:attnBias:options:)``, also returning the per-row
    /// log-sum-exp of the scaled, biased scores (`[B, H, L]` float32, `-inf` for fully masked rows),
    /// which split-KV decoding and merging partial results need.
    ///
    /// The default materializes the bias, so a type with its own `dispatch` should implement this
    /// too, or its log-sum-exp calls will take the masked path.
    static func dispatchWithLogSumExp(
        query: Tensor, key: Tensor, value: Tensor, attnBias: Self, options: AttentionOptions
    ) throws -> (output: Tensor, logSumExp: Tensor)
}

extension AttnBias {
    /// Accepts every input; the materialized mask is checked for broadcastability instead.
    public func validate(for shape: AttentionShape) throws {}

    /// Materializes the bias and runs the masked path: what a bias without a kernel of its own gets.
    public static func dispatch(
        query: Tensor, key: Tensor, value: Tensor, attnBias: Self, options: AttentionOptions
    ) throws -> Tensor {
        try dispatchWithLogSumExp(query: query, key: key, value: value, attnBias: attnBias, options: options).output
    }

    /// Materializes the bias and runs the masked path.
    public static func dispatchWithLogSumExp(
        query: Tensor, key: Tensor, value: Tensor, attnBias: Self, options: AttentionOptions
    ) throws -> (output: Tensor, logSumExp: Tensor) {
        try _materializedAttention(query: query, key: key, value: value, bias: attnBias, options: options).pair
    }
}
