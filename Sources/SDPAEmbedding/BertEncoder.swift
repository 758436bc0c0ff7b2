import Foundation
import SDPA

/// How a batch of token sequences of different lengths is laid out for the encoder.
public enum SequenceLayout: String, Sendable, Hashable, CaseIterable {
    /// `[B, Lmax, D]`, shorter sequences padded, a ``KeyPaddingBias`` keeping padding out of attention
    /// (what sentence-transformers does). Every matrix product also runs on the padding.
    case padded
    /// `[1, ΣLᵢ, D]`, the sequences end to end, a ``BlockDiagonalBias`` keeping each to itself (FlashAttention's
    /// variable-length layout, PyTorch's NestedTensor): no work on padding at all.
    case packed
}

/// A BERT encoder: word + position + token-type embeddings and a layer norm, then post-norm
/// ``TransformerEncoderLayer``s (GELU feed-forward), in evaluation mode. Attention runs through
/// ``scaledDotProductAttention(query:key:value:attnMask:isCausal:scale:dropoutP:dropoutSeed:enableGQA:sinks:)``, so
/// `withSDPBackends([.math]) { … }` swaps the fused kernel for the reference path.
public struct BertEncoder: Sendable {
    /// The sizes.
    public let configuration: BertConfiguration
    /// The encoder layers.
    public let layers: [TransformerEncoderLayer]
    /// The layer norm after the embeddings.
    public let embeddingNorm: LayerNorm
    private let wordEmbeddings: [Float], positionEmbeddings: [Float], tokenTypeEmbeddings: [Float]

    /// The encoder of a `model.safetensors` of Hugging Face's `BertModel` (names with or without a `bert.` prefix).
    ///
    /// - Throws: ``EmbeddingError/missingTensor(name:path:)`` or ``EmbeddingError/tensorMismatch(name:shape:dtype:expected:)``
    ///   when a tensor is missing or does not have the configuration's shape.
    public init(configuration c: BertConfiguration, weights: SafeTensorsFile) throws {
        let prefix = weights.entries["embeddings.word_embeddings.weight"] == nil && weights.entries["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        func load(_ name: String, _ shape: [Int]) throws -> Tensor {
            let entry = try weights.entry(prefix + name)
            guard entry.shape == shape else {
                throw EmbeddingError.tensorMismatch(name: prefix + name, shape: entry.shape, dtype: entry.dtype, expected: "shape \(shape) (from config.json)")
            }
            return try weights.tensor(prefix + name)
        }
        func floats(_ name: String, _ shape: [Int]) throws -> [Float] { try load(name, shape).scalars }
        func norm(_ name: String) throws -> LayerNorm {
            try LayerNorm(weight: load(name + ".weight", [c.hiddenSize]), bias: load(name + ".bias", [c.hiddenSize]), epsilon: c.layerNormEpsilon)
        }
        func linear(_ name: String, _ out: Int, _ input: Int) throws -> Linear {
            try Linear(weight: load(name + ".weight", [out, input]), bias: load(name + ".bias", [out]))
        }
        let d = c.hiddenSize
        wordEmbeddings = try floats("embeddings.word_embeddings.weight", [c.vocabularySize, d])
        positionEmbeddings = try floats("embeddings.position_embeddings.weight", [c.maximumPositions, d])
        tokenTypeEmbeddings = try floats("embeddings.token_type_embeddings.weight", [c.tokenTypes, d])
        embeddingNorm = try norm("embeddings.LayerNorm")
        layers = try (0..<c.layers).map { i in
            let p = "encoder.layer.\(i)."
            let attention = try MultiHeadAttention(
                queryWeight: load(p + "attention.self.query.weight", [d, d]), keyWeight: load(p + "attention.self.key.weight", [d, d]),
                valueWeight: load(p + "attention.self.value.weight", [d, d]),
                queryBias: load(p + "attention.self.query.bias", [d]), keyBias: load(p + "attention.self.key.bias", [d]),
                valueBias: load(p + "attention.self.value.bias", [d]),
                outputWeight: load(p + "attention.output.dense.weight", [d, d]), outputBias: load(p + "attention.output.dense.bias", [d]),
                heads: c.heads)
            return try TransformerEncoderLayer(
                attention: attention, attentionNorm: norm(p + "attention.output.LayerNorm"),
                feedForwardIn: linear(p + "intermediate.dense", c.intermediateSize, d),
                feedForwardOut: linear(p + "output.dense", d, c.intermediateSize),
                outputNorm: norm(p + "output.LayerNorm"), activation: c.activation)
        }
        configuration = c
    }

    /// The hidden states of a batch of token sequences, `[rows, D]` float32, and the rows of each sequence.
    public struct EncodedBatch: Sendable {
        /// The last layer's output, one row per position (padding included in the padded layout).
        public var hiddenStates: Tensor
        /// The rows of `hiddenStates` holding sequence `i`'s tokens, in order.
        public var rows: [Range<Int>]
    }

    /// Runs the encoder on `sequences` of token ids (each starting with `[CLS]`), laid out as `layout` says.
    ///
    /// - Throws: ``EmbeddingError/invalidArgument(argument:value:reason:)`` for an empty sequence, one longer than the
    ///   position table, or an id outside the vocabulary; ``SDPAError`` from the layers.
    public func encode(_ sequences: [[Int32]], layout: SequenceLayout) throws -> EncodedBatch {
        let c = configuration, d = c.hiddenSize
        for (n, sequence) in sequences.enumerated() {
            guard !sequence.isEmpty, sequence.count <= c.maximumPositions else {
                throw EmbeddingError.invalidArgument(argument: "sequences[\(n)].count", value: "\(sequence.count)",
                                                     reason: "a sequence holds 1...\(c.maximumPositions) tokens (max_position_embeddings)")
            }
            if let bad = sequence.first(where: { $0 < 0 || Int($0) >= c.vocabularySize }) {
                throw EmbeddingError.invalidArgument(argument: "sequences[\(n)]", value: "token id \(bad)", reason: "ids are in 0..<\(c.vocabularySize) (vocab_size)")
            }
        }
        let lengths = sequences.map(\.count)
        let longest = lengths.max() ?? 0
        // Each sequence's tokens and their positions, row by row; padding rows hold [PAD] at its position.
        var rows = [Range<Int>](), tokens = [(id: Int32, position: Int)]()
        for sequence in sequences {
            rows.append(tokens.count..<(tokens.count + sequence.count))
            tokens += sequence.enumerated().map { ($0.element, $0.offset) }
            if layout == .padded {
                tokens += (sequence.count..<longest).map { (0, $0) }
            }
        }
        var embedded = [Float](repeating: 0, count: tokens.count * d)
        embedded.withUnsafeMutableBufferPointer { out in
            for (r, token) in tokens.enumerated() {
                let (w, p) = (Int(token.id) * d, token.position * d)
                for j in 0..<d { out[r * d + j] = wordEmbeddings[w + j] + tokenTypeEmbeddings[j] + positionEmbeddings[p + j] }
            }
        }
        let shape = layout == .padded ? [sequences.count, longest, d] : [1, tokens.count, d]
        var x = try embeddingNorm(Tensor(shape: shape, scalars: embedded))
        switch layout {
        case .padded:
            let bias = KeyPaddingBias(validKeyLengths: lengths, seqLenKV: longest)
            for layer in layers { x = try layer(x, attnMask: bias) }
        case .packed:
            let bias = BlockDiagonalBias(queryLengths: lengths)
            for layer in layers { x = try layer(x, attnMask: bias) }
        }
        return EncodedBatch(hiddenStates: try x.reshaped([tokens.count, d]), rows: rows)
    }
}
