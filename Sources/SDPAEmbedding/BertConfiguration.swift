import Foundation
import SDPA

/// The settings of a BERT-style sentence-transformers model directory, from its files:
/// `config.json` (the encoder), `tokenizer_config.json` (casing), `sentence_bert_config.json` (the
/// maximum sequence length), `1_Pooling/config.json` (pooling) and `modules.json` (whether a
/// `Normalize` module follows). Only `config.json` is required; the others default to
/// all-MiniLM-L6-v2's settings (uncased, mean pooling, L2 normalization).
public struct BertConfiguration: Sendable, Hashable {
    /// `D`.
    public var hiddenSize: Int
    /// The encoder layers.
    public var layers: Int
    /// `H`.
    public var heads: Int
    /// `F`, the feed-forward width.
    public var intermediateSize: Int
    /// The feed-forward activation.
    public var activation: Activation
    /// The layer norms' epsilon.
    public var layerNormEpsilon: Float
    /// Rows of the position embedding table.
    public var maximumPositions: Int
    /// Rows of the token-type embedding table.
    public var tokenTypes: Int
    /// Rows of the word embedding table.
    public var vocabularySize: Int
    /// Tokens per sentence, `[CLS]` and `[SEP]` included; longer sentences are truncated.
    public var maximumSequenceLength: Int
    /// The tokenizer's normalization.
    public var normalizer: BertNormalizer
    /// sentence-transformers' own lower-casing of the text before the tokenizer (`do_lower_case` in
    /// `sentence_bert_config.json`).
    public var lowercasesInput: Bool
    /// How token embeddings become one sentence embedding.
    public var pooling: [Pooling]
    /// Whether the sentence embedding is scaled to unit length.
    public var normalizesEmbeddings: Bool

    /// A way of pooling token embeddings; several are concatenated in this order, as in sentence-transformers.
    public enum Pooling: String, Sendable, Hashable, CaseIterable {
        /// The `[CLS]` token's embedding.
        case classToken = "pooling_mode_cls_token"
        /// The element-wise maximum over the tokens.
        case max = "pooling_mode_max_tokens"
        /// The mean over the tokens.
        case mean = "pooling_mode_mean_tokens"
        /// The sum over the tokens divided by the square root of their count.
        case meanSquareRootLength = "pooling_mode_mean_sqrt_len_tokens"
    }

    /// Reads the configuration files of `directory`.
    ///
    /// - Throws: ``EmbeddingError/configuration(path:reason:)`` for a missing or malformed `config.json`, a value
    ///   out of range, or a model this implementation does not run (relative position embeddings, an unknown
    ///   activation, a pooling mode it does not have).
    public init(directory: URL) throws {
        let configURL = directory.appending(path: "config.json")
        let config = try Self.json(configURL, required: true)!
        func integer(_ key: String, minimum: Int = 1) throws -> Int {
            guard let value = config[key] as? NSNumber, String(cString: value.objCType) != "c", value.doubleValue == value.doubleValue.rounded(),
                  value.doubleValue >= Double(minimum), value.doubleValue < 1e9 else {
                throw EmbeddingError.configuration(path: configURL.path, reason: "\(key) must be an integer of at least \(minimum); found \(String(describing: config[key] ?? "nothing"))")
            }
            return value.intValue
        }
        hiddenSize = try integer("hidden_size")
        layers = try integer("num_hidden_layers", minimum: 0)
        heads = try integer("num_attention_heads")
        intermediateSize = try integer("intermediate_size")
        maximumPositions = try integer("max_position_embeddings")
        tokenTypes = try integer("type_vocab_size")
        vocabularySize = try integer("vocab_size")
        guard hiddenSize % heads == 0 else {
            throw EmbeddingError.configuration(path: configURL.path, reason: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(heads)")
        }
        let epsilon = (config["layer_norm_eps"] as? NSNumber)?.doubleValue ?? 1e-12
        guard epsilon >= 0, epsilon.isFinite else {
            throw EmbeddingError.configuration(path: configURL.path, reason: "layer_norm_eps must be a non-negative number; found \(epsilon)")
        }
        layerNormEpsilon = Float(epsilon)
        switch config["hidden_act"] as? String ?? "gelu" {
        case "gelu": activation = .gelu
        case "relu": activation = .relu
        case let other:
            throw EmbeddingError.configuration(path: configURL.path, reason: "hidden_act '\(other)' is not supported; this encoder runs gelu (exact) and relu")
        }
        if let kind = config["position_embedding_type"] as? String, kind != "absolute" {
            throw EmbeddingError.configuration(path: configURL.path, reason: "position_embedding_type '\(kind)' is not supported; this encoder runs absolute position embeddings")
        }

        let tokenizerURL = directory.appending(path: "tokenizer_config.json")
        let tokenizer = try Self.json(tokenizerURL) ?? [:]
        let lowercase = tokenizer["do_lower_case"] as? Bool ?? true
        normalizer = BertNormalizer(lowercase: lowercase, stripAccents: tokenizer["strip_accents"] as? Bool,
                                    handleChineseCharacters: tokenizer["tokenize_chinese_chars"] as? Bool ?? true)

        let sentenceURL = directory.appending(path: "sentence_bert_config.json")
        let sentence = try Self.json(sentenceURL) ?? [:]
        let modelLimit = Swift.min(maximumPositions, (tokenizer["model_max_length"] as? NSNumber).map { Int(Swift.min($0.doubleValue, 1e9)) } ?? maximumPositions)
        if let length = sentence["max_seq_length"] as? NSNumber {
            guard length.doubleValue >= 2, length.doubleValue <= Double(maximumPositions), length.doubleValue == length.doubleValue.rounded() else {
                throw EmbeddingError.configuration(path: sentenceURL.path, reason: "max_seq_length must be an integer in 2...\(maximumPositions) (max_position_embeddings); found \(length)")
            }
            maximumSequenceLength = length.intValue
        } else {
            maximumSequenceLength = Swift.max(2, modelLimit)
        }
        lowercasesInput = sentence["do_lower_case"] as? Bool ?? false

        let poolingURL = directory.appending(path: "1_Pooling/config.json")
        if let poolingConfig = try Self.json(poolingURL) {
            let supported = Set(Pooling.allCases.map(\.rawValue))
            for (key, value) in poolingConfig where key.hasPrefix("pooling_mode_") && !supported.contains(key) && (value as? Bool) == true {
                throw EmbeddingError.configuration(path: poolingURL.path, reason: "\(key) is not supported; this implementation pools with \(Pooling.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            pooling = Pooling.allCases.filter { poolingConfig[$0.rawValue] as? Bool == true }
            if pooling.isEmpty {
                throw EmbeddingError.configuration(path: poolingURL.path, reason: "no pooling mode is enabled")
            }
        } else {
            pooling = [.mean]
        }
        if let modules = try Self.jsonArray(directory.appending(path: "modules.json")) {
            normalizesEmbeddings = modules.contains { ($0["type"] as? String)?.hasSuffix(".Normalize") == true }
        } else {
            normalizesEmbeddings = true
        }
    }

    /// `D / H`.
    public var headDim: Int { hiddenSize / heads }

    /// The length of one sentence embedding: `D` per pooling mode.
    public var embeddingSize: Int { hiddenSize * pooling.count }

    private static func data(_ url: URL, required: Bool) throws -> Data? {
        guard FileManager.default.fileExists(atPath: url.path) else {
            if required { throw EmbeddingError.configuration(path: url.path, reason: "is missing") }
            return nil
        }
        guard let data = try? Data(contentsOf: url) else { throw EmbeddingError.configuration(path: url.path, reason: "cannot be read") }
        return data
    }

    private static func json(_ url: URL, required: Bool = false) throws -> [String: Any]? {
        guard let data = try data(url, required: required) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: data), let fields = object as? [String: Any] else {
            throw EmbeddingError.configuration(path: url.path, reason: "is not a JSON object")
        }
        return fields
    }

    private static func jsonArray(_ url: URL) throws -> [[String: Any]]? {
        guard let data = try data(url, required: false) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: data), let list = object as? [[String: Any]] else {
            throw EmbeddingError.configuration(path: url.path, reason: "is not a JSON list of objects")
        }
        return list
    }
}
