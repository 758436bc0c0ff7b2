/// How one call's bias reaches a kernel: the RFC's routing rules (RFC.md, "Routing rules"), decided by
/// ``_route(_:isCausal:)`` (and, for a call with a bias, the ``_biasRoute(_:isCausal:)`` it asks) and nowhere
/// else. The forward entry points (`_attention`, on ``_BiasRoute`` when there is a bias), the prepared call
/// (`_PreparedAttention`), ``explainSDPA(query:key:value:attnMask:isCausal:scale:dropoutP:enableGQA:sinks:)``
/// and the backward pass (`_routedBackward`) each act on the route it returns.
@usableFromInline
enum _AttentionRoute<Bias: AttnBias> {
    /// No bias: every score as computed.
    case unmasked
    /// `isCausal` without a bias: PyTorch's upper-left causal mask, computed in the kernel.
    case causalUpperLeft
    /// A bias whose ``AttnBias/needsMaterialization`` is `true`: its dense mask, read through broadcast strides.
    case materialized(Bias)
    /// A ``FusedAttnBias``: computed inside the kernel, which is specialised for its type.
    case fused(Bias)
    /// Any other bias: its type's own ``AttnBias/dispatch(query:key:value:attnBias:options:)``, which
    /// chooses a kernel itself.
    case customDispatch(Bias)
}

/// The route of a call with `bias` (`nil`: none) and `isCausal`: what the prepared call, `explainSDPA`, the
/// scaling model and the backward pass switch over (the forward entry points ask ``_biasRoute(_:isCausal:)``).
///
/// No allocation, and for a concrete bias type the compiler folds the conformance test away (the entry
/// points are specialised in the caller's module).
///
/// - Throws: ``SDPAError/causalWithBias(bias:)`` for `isCausal` together with a bias: a causal bias
///   carries its own variant.
@inlinable
func _route<Bias: AttnBias>(_ bias: Bias?, isCausal: Bool) throws -> _AttentionRoute<Bias> {
    guard let bias else { return isCausal ? .causalUpperLeft : .unmasked }
    switch try _biasRoute(bias, isCausal: isCausal) {
    case .materialized: return .materialized(bias)
    case .fused: return .fused(bias)
    case .customDispatch: return .customDispatch(bias)
    }
}

/// How a call's bias reaches a kernel: ``_AttentionRoute``'s cases for a bias, without the bias.
@usableFromInline
enum _BiasRoute {
    case materialized, fused, customDispatch
}

/// The route of a call with a bias: the decision ``_route(_:isCausal:)`` makes when there is one. The forward
/// entry points ask it directly, so that the bias is never copied into an optional or a route on the way to
/// its kernel (a ``TensorBias`` copy is three retains and three releases, a measurable share of a tiny call).
///
/// - Throws: ``SDPAError/causalWithBias(bias:)`` for `isCausal` together with a bias.
@inlinable @inline(__always)
func _biasRoute<Bias: AttnBias>(_ bias: Bias, isCausal: Bool) throws -> _BiasRoute {
    if isCausal { throw SDPAError.causalWithBias(bias: String(describing: Bias.self)) }
    if bias.needsMaterialization { return .materialized }
    return bias is any FusedAttnBias ? .fused : .customDispatch
}

/// The bias type of a call without one: never instantiated, only named, so that the one generic route
/// serves calls with and without a bias (`nil as _AbsentBias?`).
@usableFromInline
typealias _AbsentBias = CausalBias

/// A bias that ``_route(_:isCausal:)`` sent down the fused route, as the ``FusedAttnBias`` it is: for the
/// paths that need its type rather than its `dispatch` (the prepared call, the backward pass).
func _fusedBias<Bias: AttnBias>(_ bias: Bias) -> any FusedAttnBias {
    guard let fused = bias as? any FusedAttnBias else {
        preconditionFailure("unreachable: _route answers .fused only for a FusedAttnBias")
    }
    return fused
}
