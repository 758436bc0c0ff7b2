import Foundation
import SDPA
import SDPAEmbedding
import Testing

/// A model directory that is incomplete, or describes another kind of model, is a typed error naming the file.
@Suite struct ModelDirectoryTests {
    /// A copy of the tiny model in a temporary directory, with `edit` applied to it.
    func withModel(_ edit: (URL) throws -> Void, _ body: (URL) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "sdpa-embedding-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: EmbeddingReference.tinyModel, to: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        try edit(directory)
        try body(directory)
    }

    func editConfig(_ directory: URL, _ change: (inout [String: Any]) -> Void) throws {
        let url = directory.appending(path: "config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        change(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: url)
    }

    @Test func readsTheTinyModelsSettings() throws {
        let c = try BertConfiguration(directory: EmbeddingReference.tinyModel)
        #expect(c.hiddenSize == 32 && c.layers == 2 && c.heads == 4 && c.intermediateSize == 64 && c.maximumSequenceLength == 24)
        #expect(c.pooling == [.mean] && c.normalizesEmbeddings && c.activation == .gelu && c.normalizer.lowercase && c.normalizer.stripAccents)
    }

    static let brokenConfigurations: [(String, @Sendable (inout [String: Any]) -> Void)] = [
        ("hidden_size", { $0["hidden_size"] = 30 }),
        ("hidden_act", { $0["hidden_act"] = "swish" }),
        ("position_embedding_type", { $0["position_embedding_type"] = "relative_key" }),
        ("num_attention_heads", { $0["num_attention_heads"] = "four" }),
        ("vocab_size", { $0["vocab_size"] = 10 }),
        ("intermediate_size", { $0["intermediate_size"] = 65 }),
    ]

    @Test func brokenConfigurationsAreErrors() throws {
        for (name, change) in Self.brokenConfigurations {
            try withModel({ try editConfig($0, change) }) { directory in
                #expect(throws: EmbeddingError.self, "\(name)") { try SentenceEmbedder(modelDirectory: directory) }
            }
        }
    }

    @Test func missingFilesAreErrors() throws {
        for file in ["config.json", "vocab.txt", "model.safetensors"] {
            try withModel({ try FileManager.default.removeItem(at: $0.appending(path: file)) }) { directory in
                do {
                    _ = try SentenceEmbedder(modelDirectory: directory)
                    Issue.record("loaded without \(file)")
                } catch let error as EmbeddingError {
                    #expect(error.description.contains(file), "\(error)")
                }
            }
        }
    }

    @Test func unsupportedPoolingIsAnError() throws {
        try withModel({
            try Data(#"{"pooling_mode_weightedmean_tokens": true, "pooling_mode_mean_tokens": false}"#.utf8)
                .write(to: $0.appending(path: "1_Pooling/config.json"))
        }) { directory in
            #expect(throws: EmbeddingError.self) { try SentenceEmbedder(modelDirectory: directory) }
        }
    }

    /// CLS and max pooling and no normalization, from the directory's files, against the encoder's hidden states.
    @Test func poolingModesFromTheDirectory() throws {
        try withModel({
            try Data(#"{"pooling_mode_cls_token": true, "pooling_mode_max_tokens": true}"#.utf8).write(to: $0.appending(path: "1_Pooling/config.json"))
            try Data("[]".utf8).write(to: $0.appending(path: "modules.json"))
        }) { directory in
            let embedder = try SentenceEmbedder(modelDirectory: directory)
            #expect(embedder.configuration.pooling == [.classToken, .max] && !embedder.configuration.normalizesEmbeddings)
            let sentence = "the quick brown fox"
            let embedding = try embedder.embed([sentence]).scalars
            let batch = try embedder.encoder.encode(embedder.tokenize([sentence]), layout: .packed)
            let states = batch.hiddenStates.scalars, rows = batch.rows[0]
            #expect(embedding.count == 64)
            for j in 0..<32 {
                #expect(embedding[j] == states[rows.lowerBound * 32 + j])
                #expect(embedding[32 + j] == rows.map { states[$0 * 32 + j] }.max()!)
            }
        }
    }

    @Test func encoderRejectsBadTokenIDs() throws {
        let embedder = try SentenceEmbedder(modelDirectory: EmbeddingReference.tinyModel)
        #expect(throws: EmbeddingError.self) { try embedder.encoder.encode([[6, 100_000, 7]], layout: .padded) }
        #expect(throws: EmbeddingError.self) { try embedder.encoder.encode([[]], layout: .packed) }
        #expect(throws: EmbeddingError.self) { try embedder.encoder.encode([[Int32](repeating: 6, count: 65)], layout: .packed) }
    }
}
