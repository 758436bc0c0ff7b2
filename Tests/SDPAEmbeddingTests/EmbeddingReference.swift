import Testing
import Foundation
import SDPA
import SDPAEmbedding

/// A reference file written by Scripts/make_embedding_fixtures.py: sentences, Hugging Face's token ids
/// for them and for tricky strings, and sentence-transformers' embeddings.
struct EmbeddingReference: Decodable {
    struct Tricky: Decodable {
        var text: String
        var ids: [Int32]
    }
    var maxSeqLength: Int
    var sentences: [String]
    var tokenIDs: [[Int32]]
    var embeddings: [[Float]]
    var tricky: [Tricky]

    static func load(_ name: String) throws -> EmbeddingReference {
        try JSONDecoder().decode(EmbeddingReference.self, from: Data(contentsOf: fixture(name)))
    }

    static func fixture(_ name: String) -> URL {
        Bundle.module.resourceURL!.appending(path: "Fixtures").appending(path: name)
    }

    /// The committed tiny random BERT.
    static var tinyModel: URL { fixture("tiny-bert") }

    /// all-MiniLM-L6-v2 where Scripts/install-minilm.sh puts it (or `SDPA_MINILM_DIRECTORY`), if it is there.
    static let miniLMDirectory: URL? = {
        let candidates = [ProcessInfo.processInfo.environment["SDPA_MINILM_DIRECTORY"]].compactMap { $0 }.map { URL(fileURLWithPath: $0) }
            + [URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "../../Models/all-MiniLM-L6-v2").standardized]
        return candidates.first { FileManager.default.fileExists(atPath: $0.appending(path: "model.safetensors").path) }
    }()

    /// Why the all-MiniLM-L6-v2 tests are skipped, shown by the test runner.
    static let miniLMMissing: Comment = "all-MiniLM-L6-v2 is not installed: run Scripts/install-minilm.sh (or set SDPA_MINILM_DIRECTORY) to check against sentence-transformers"
}

/// The cosine similarity of two vectors, and the largest absolute difference of their elements (NaN-aware:
/// a NaN anywhere makes both fail any threshold).
func agreement(_ a: [Float], _ b: [Float]) -> (cosine: Double, maxAbs: Double) {
    precondition(a.count == b.count)
    var (dot, na, nb, worst) = (0.0, 0.0, 0.0, 0.0)
    for (x, y) in zip(a, b) {
        let (x, y) = (Double(x), Double(y))
        dot += x * y; na += x * x; nb += y * y
        let d = abs(x - y)
        worst = d.isNaN ? .nan : max(worst, d)
    }
    let cosine = dot / (na.squareRoot() * nb.squareRoot())
    return (cosine.isNaN ? -1 : cosine, worst.isNaN ? .infinity : worst)
}

/// Row `i` of a `[N, W]` tensor.
func row(_ t: Tensor, _ i: Int) -> [Float] {
    let w = t.shape[1]
    return Array(t.scalars[(i * w)..<((i + 1) * w)])
}
