/// A post-norm transformer encoder layer, BERT's and PyTorch's `nn.TransformerEncoderLayer`
/// (`norm_first=False`) in evaluation mode:
///
/// ```
/// h = attentionNorm(x + attention(x))
/// y = outputNorm(h + feedForwardOut(activation(feedForwardIn(h))))
/// ```
///
/// Each residual addition and layer norm runs on the blocks of the preceding matrix product as they
/// are finished, and the activation on the first feed-forward product's, so the layer makes one pass
/// over memory per product.
///
/// ```swift
/// let layer = try TransformerEncoderLayer.random(embedDim: 64, heads: 4, feedForwardDim: 256, seed: 1)
/// let y = try layer(x, attnMask: KeyPaddingBias(validKeyLengths: lengths, seqLenKV: L))   // x: [B, L, 64]
/// ```
public struct TransformerEncoderLayer: Sendable {
    /// The self-attention block (its output projection must map back to `D`).
    public let attention: MultiHeadAttention
    /// The layer norm after the attention's residual addition.
    public let attentionNorm: LayerNorm
    /// `D -> F`, followed by ``activation``.
    public let feedForwardIn: Linear
    /// `F -> D`.
    public let feedForwardOut: Linear
    /// The layer norm after the feed-forward residual addition.
    public let outputNorm: LayerNorm
    /// The feed-forward activation (BERT: ``Activation/gelu``, the default here; PyTorch's `nn.TransformerEncoderLayer`
    /// defaults to ``Activation/relu``).
    public let activation: Activation

    /// A layer from its parts.
    ///
    /// - Throws: ``SDPAError/shapeMismatch(argument:shape:other:otherShape:reason:)`` when the sizes do not chain
    ///   (`D -> D` attention, `D -> F -> D` feed-forward, norms over `D`).
    public init(
        attention: MultiHeadAttention, attentionNorm: LayerNorm, feedForwardIn: Linear, feedForwardOut: Linear,
        outputNorm: LayerNorm, activation: Activation = .gelu
    ) throws {
        let d = attention.embedDim
        let checks: [(String, [Int], [Int])] = [
            ("attention.outputProjection", [attention.outputProjection.outputFeatures], [d]),
            ("attentionNorm", [attentionNorm.features], [d]),
            ("feedForwardIn", [feedForwardIn.inputFeatures], [d]),
            ("feedForwardOut", [feedForwardOut.inputFeatures, feedForwardOut.outputFeatures], [feedForwardIn.outputFeatures, d]),
            ("outputNorm", [outputNorm.features], [d]),
        ]
        for (name, actual, expected) in checks where actual != expected {
            throw SDPAError.shapeMismatch(argument: name, shape: actual, other: "what the layer needs", otherShape: expected,
                                          reason: "an encoder layer maps D = \(d) to itself through attention, then D -> F -> D")
        }
        (self.attention, self.attentionNorm, self.feedForwardIn, self.feedForwardOut, self.outputNorm, self.activation) =
            (attention, attentionNorm, feedForwardIn, feedForwardOut, outputNorm, activation)
    }

    /// A randomly initialised layer (every projection as ``Linear/random(inputFeatures:outputFeatures:bias:seed:)``,
    /// layer norms at identity), the same for the same seed. For tests and benchmarks: PyTorch initialises
    /// `nn.MultiheadAttention`'s in-projection otherwise (Xavier-uniform, zero biases), and a model loads its weights.
    ///
    /// - Throws: ``SDPAError`` for sizes that do not fit (see ``MultiHeadAttention/random(embedDim:heads:keyValueHeads:bias:dropoutP:seed:)``).
    public static func random(
        embedDim: Int, heads: Int, keyValueHeads: Int? = nil, feedForwardDim: Int, activation: Activation = .gelu,
        layerNormEpsilon: Float = 1e-5, seed: UInt64
    ) throws -> TransformerEncoderLayer {
        try TransformerEncoderLayer(
            attention: .random(embedDim: embedDim, heads: heads, keyValueHeads: keyValueHeads, seed: seed),
            attentionNorm: LayerNorm(features: embedDim, epsilon: layerNormEpsilon),
            feedForwardIn: .random(inputFeatures: embedDim, outputFeatures: feedForwardDim, seed: seed &+ 10),
            feedForwardOut: .random(inputFeatures: feedForwardDim, outputFeatures: embedDim, seed: seed &+ 20),
            outputNorm: LayerNorm(features: embedDim, epsilon: layerNormEpsilon), activation: activation)
    }

    /// The layer on `x` (`[B, L, D]`, or unbatched `[L, D]`), the attention under `attnMask`; `x`'s shape, float32.
    ///
    /// - Throws: ``SDPAError`` when `x` is not `[B, L, D]` or `[L, D]`, or the bias does not fit the scores.
    public func callAsFunction<Bias: AttnBias>(_ x: Tensor, attnMask: Bias) throws -> Tensor {
        try feedForward(attention.attend(x, attention.attentionCall(attnMask, training: false, dropoutSeed: nil)), residual: x)
    }

    /// The layer on `x` (`[B, L, D]`, or unbatched `[L, D]`) with no attention bias, or PyTorch's upper-left causal mask.
    ///
    /// - Throws: ``SDPAError`` when `x` is not `[B, L, D]` or `[L, D]`.
    public func callAsFunction(_ x: Tensor, isCausal: Bool = false) throws -> Tensor {
        try feedForward(attention.attend(x, attention.attentionCall(isCausal: isCausal, training: false, dropoutSeed: nil)), residual: x)
    }

    /// Everything after the attention: output projection, residual and norm, then the feed-forward half.
    func feedForward(_ heads: Tensor, residual x: Tensor) throws -> Tensor {
        let (rows, f) = (x.count / Swift.max(1, attention.embedDim), feedForwardIn.outputFeatures)
        let h = try Tensor._floatMatrix(x.shape)
        attention.outputProjection._apply(rows: rows, heads, into: h, activation: .identity,
                                          residual: try x._contiguousFloat32("x"), normalization: attentionNorm)
        let inner = try Tensor._floatMatrix([rows, f])
        feedForwardIn._apply(rows: rows, h, into: inner, activation: activation, residual: nil, normalization: nil)
        let y = try Tensor._floatMatrix(x.shape)
        feedForwardOut._apply(rows: rows, inner, into: y, activation: .identity, residual: h, normalization: outputNorm)
        return y
    }
}
