import Foundation
import SDPA
import SDPAEmbedding
import Testing

/// End to end against sentence-transformers: the tiny random BERT always, all-MiniLM-L6-v2 when installed.
/// The bar: cosine ≥ 0.99999 and max abs error ≤ 1e-4 per sentence, on both attention paths and both layouts.
@Suite struct SentenceEmbedderTests {
    static let cases: [(SequenceLayout, SDPBackend)] = [(.padded, .fused), (.packed, .fused), (.padded, .math), (.packed, .math)]

    func check(_ embedder: SentenceEmbedder, _ reference: EmbeddingReference, batchSize: Int) throws {
        #expect(embedder.tokenize(reference.sentences) == reference.tokenIDs)
        for (layout, backend) in Self.cases {
            let embeddings = try withSDPBackends([backend]) { try embedder.embed(reference.sentences, layout: layout, batchSize: batchSize) }
            #expect(embeddings.shape == [reference.sentences.count, embedder.configuration.embeddingSize])
            for (i, expected) in reference.embeddings.enumerated() {
                let (cosine, maxAbs) = agreement(row(embeddings, i), expected)
                #expect(cosine >= 0.99999 && maxAbs <= 1e-4, "sentence \(i) (\(layout), \(backend)): cosine \(cosine), max abs \(maxAbs)")
            }
        }
    }

    @Test func tinyModelMatchesSentenceTransformers() throws {
        let embedder = try SentenceEmbedder(modelDirectory: EmbeddingReference.tinyModel)
        try check(embedder, EmbeddingReference.load("tiny_reference.json"), batchSize: 4)
    }

    @Test(.enabled(if: EmbeddingReference.miniLMDirectory != nil, EmbeddingReference.miniLMMissing))
    func miniLMMatchesSentenceTransformers() throws {
        let embedder = try SentenceEmbedder(modelDirectory: EmbeddingReference.miniLMDirectory!)
        try check(embedder, EmbeddingReference.load("minilm_reference.json"), batchSize: 4)
    }

    /// Math and fused attention, padded and packed, any batch size: the same embeddings within float32 rounding.
    @Test func pathsAgree() throws {
        let embedder = try SentenceEmbedder(modelDirectory: EmbeddingReference.tinyModel)
        let sentences = try EmbeddingReference.load("tiny_reference.json").sentences
        let base = try embedder.embed(sentences, layout: .padded, batchSize: 32)
        for (layout, backend) in Self.cases {
            for batchSize in [1, 3, 32] {
                let other = try withSDPBackends([backend]) { try embedder.embed(sentences, layout: layout, batchSize: batchSize) }
                for i in sentences.indices {
                    let (cosine, maxAbs) = agreement(row(other, i), row(base, i))
                    #expect(maxAbs <= 2e-6 && cosine >= 0.999999, "sentence \(i) \(layout) \(backend) batch \(batchSize): max abs \(maxAbs)")
                }
            }
        }
    }

    /// The matrix products and the fused kernel are bit-identical at any thread count, so the embeddings are.
    @Test func bitIdenticalAtAnyThreadCount() throws {
        let embedder = try SentenceEmbedder(modelDirectory: EmbeddingReference.tinyModel)
        let sentences = try EmbeddingReference.load("tiny_reference.json").sentences
        for layout in SequenceLayout.allCases {
            let one = try withSDPAThreads(1) { try embedder.embed(sentences, layout: layout) }
            let two = try withSDPAThreads(2) { try embedder.embed(sentences, layout: layout) }
            #expect(one.scalars.map(\.bitPattern) == two.scalars.map(\.bitPattern), "\(layout)")
        }
    }

    @Test func noSentencesGiveAnEmptyMatrix() throws {
        let embedder = try SentenceEmbedder(modelDirectory: EmbeddingReference.tinyModel)
        for layout in SequenceLayout.allCases {
            #expect(try embedder.embed([], layout: layout).shape == [0, 32])
        }
        #expect(throws: EmbeddingError.self) { try embedder.embed(["x"], batchSize: 0) }
    }

    /// Unit length (the model ends in a Normalize module), and nothing NaN, even for the empty sentence.
    @Test func embeddingsAreUnitVectors() throws {
        let embedder = try SentenceEmbedder(modelDirectory: EmbeddingReference.tinyModel)
        let embeddings = try embedder.embed(["", "a", "hello world"])
        for i in 0..<3 {
            let norm = row(embeddings, i).reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(norm - 1) <= 1e-6, "sentence \(i): norm \(norm)")
        }
    }
}
