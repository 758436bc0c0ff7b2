import Foundation
import SDPA

/// Sentence embeddings with a BERT-style sentence-transformers model directory (all-MiniLM-L6-v2 and
/// its kind): ``WordPieceTokenizer``, ``BertEncoder``, pooling and L2 normalization, as
/// sentence-transformers' `encode` computes them.
///
/// ```swift
/// let embedder = try SentenceEmbedder(modelDirectory: URL(fileURLWithPath: "Models/all-MiniLM-L6-v2"))
/// let embeddings = try embedder.embed(["A man is eating food.", "Someone is eating."])   // [2, 384]
/// ```
public struct SentenceEmbedder: Sendable {
    /// The model's settings.
    public let configuration: BertConfiguration
    /// The tokenizer over the model's `vocab.txt`.
    public let tokenizer: WordPieceTokenizer
    /// The encoder over the model's `model.safetensors`.
    public let encoder: BertEncoder

    /// Sentences per encoder call: sentence-transformers' default batch size.
    public static let defaultBatchSize = 32

    /// Loads `config.json`, `vocab.txt`, `model.safetensors` and the optional sentence-transformers settings of a directory.
    ///
    /// - Throws: ``EmbeddingError`` naming the file or tensor that is missing or malformed.
    public init(modelDirectory: URL) throws {
        configuration = try BertConfiguration(directory: modelDirectory)
        tokenizer = try WordPieceTokenizer(vocabularyFile: modelDirectory.appending(path: "vocab.txt"), normalizer: configuration.normalizer)
        guard tokenizer.vocabulary.count <= configuration.vocabularySize else {
            throw EmbeddingError.vocabulary(path: modelDirectory.appending(path: "vocab.txt").path,
                                            reason: "holds \(tokenizer.vocabulary.count) tokens but config.json's vocab_size is \(configuration.vocabularySize)")
        }
        encoder = try BertEncoder(configuration: configuration, weights: SafeTensorsFile(contentsOf: modelDirectory.appending(path: "model.safetensors")))
    }

    /// The token ids of each sentence, `[CLS] … [SEP]`, truncated to the model's maximum sequence length.
    public func tokenize(_ sentences: [String]) -> [[Int32]] {
        sentences.map { tokenizer.encode(configuration.lowercasesInput ? $0.lowercased() : $0, maximumLength: configuration.maximumSequenceLength) }
    }

    /// The embeddings of `sentences`, `[N, embeddingSize]` float32, row `i` for sentence `i`.
    ///
    /// Sentences run `batchSize` at a time. Padded, the batches are formed after sorting by length (as
    /// sentence-transformers does), so each pads only to its own longest; packed, in the given order.
    ///
    /// - Throws: ``EmbeddingError/invalidArgument(argument:value:reason:)`` for a batch size below 1; ``SDPAError`` from the layers.
    public func embed(_ sentences: [String], layout: SequenceLayout = .padded, batchSize: Int = defaultBatchSize) throws -> Tensor {
        guard batchSize >= 1 else {
            throw EmbeddingError.invalidArgument(argument: "batchSize", value: "\(batchSize)", reason: "must be at least 1")
        }
        let ids = tokenize(sentences)
        let order = layout == .padded ? ids.indices.sorted { (ids[$0].count, $0) > (ids[$1].count, $1) } : Array(ids.indices)
        let width = configuration.embeddingSize
        var result = [Float](repeating: 0, count: sentences.count * width)
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let members = Array(order[start..<Swift.min(order.count, start + batchSize)])
            let batch = try encoder.encode(members.map { ids[$0] }, layout: layout)
            let pooled = pool(batch)
            for (n, sentence) in members.enumerated() {
                result.replaceSubrange((sentence * width)..<((sentence + 1) * width), with: pooled[(n * width)..<((n + 1) * width)])
            }
        }
        return try Tensor(shape: [sentences.count, width], scalars: result)
    }

    /// One embedding per sequence of `batch`: the pooling modes side by side, then L2-normalized if the
    /// model says so (`x / max(‖x‖, 1e-12)`, as `torch.nn.functional.normalize`).
    func pool(_ batch: BertEncoder.EncodedBatch) -> [Float] {
        let d = configuration.hiddenSize, width = configuration.embeddingSize
        let states = batch.hiddenStates.scalars
        var pooled = [Float](repeating: 0, count: batch.rows.count * width)
        for (n, rows) in batch.rows.enumerated() {
            for (m, mode) in configuration.pooling.enumerated() {
                let out = n * width + m * d
                switch mode {
                case .classToken:
                    for j in 0..<d { pooled[out + j] = states[rows.lowerBound * d + j] }
                case .max:
                    for j in 0..<d { pooled[out + j] = rows.map { states[$0 * d + j] }.max() ?? 0 }
                case .mean, .meanSquareRootLength:
                    var sum = [Float](repeating: 0, count: d)
                    for r in rows { for j in 0..<d { sum[j] += states[r * d + j] } }
                    let divisor = mode == .mean ? Float(rows.count) : Float(rows.count).squareRoot()
                    for j in 0..<d { pooled[out + j] = sum[j] / Swift.max(divisor, 1e-9) }
                }
            }
            if configuration.normalizesEmbeddings {
                let row = (n * width)..<((n + 1) * width)
                let norm = pooled[row].reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
                for j in row { pooled[j] /= Swift.max(norm, 1e-12) }
            }
        }
        return pooled
    }
}
