import Foundation
import SDPA
import SDPAEmbedding

/// `sdpa embed`: sentence embeddings with a BERT-style sentence-transformers model directory.
enum EmbedCommand {
    static let spec: CommandSpec = {
        var spec = CommandSpec(
            name: "sdpa embed",
            synopsis: "--model DIR [SENTENCE ...] [--input FILE] [--out FILE.npy|FILE.json] [options]",
            summary: "sentence embeddings with a BERT sentence-transformers model (e.g. all-MiniLM-L6-v2)",
            abstract: """
                Embeds sentences with a sentence-transformers model directory (config.json, model.safetensors, vocab.txt, \
                1_Pooling/config.json): BERT's WordPiece tokenizer, the encoder with this package's attention and layers, \
                pooling and L2 normalization, as sentence-transformers' encode. Sentences come from the arguments and/or \
                --input (one per line). Without --out, prints each embedding's first values and the cosine similarities. \
                Nothing is downloaded: Scripts/install-minilm.sh installs all-MiniLM-L6-v2 into Models/.
                """,
            options: [
                .value("model", "DIR", "the model directory"),
                .value("input", "FILE", "sentences, one per line ('-': standard input)"),
                .value("out", "FILE", "write the embeddings, [N, D] float32: .npy, or .json (with the sentences)"),
                .value("attention", "fused|math", "the attention path: the fused kernel (default) or the math reference"),
                .flag("packed", "run each batch as packed sequences with a BlockDiagonalBias instead of padding"),
                .value("batch-size", "N", "sentences per encoder call (default \(SentenceEmbedder.defaultBatchSize))"),
                .value("threads", "N", "threads (default: one per processor)"),
                .flag("tokens", "also print each sentence's word pieces"),
            ],
            epilogue: """
                example:
                  Scripts/install-minilm.sh
                  sdpa embed --model Models/all-MiniLM-L6-v2 "A man is eating food." "Someone is eating a piece of bread."

                exit status: 0 success, 1 bad input (missing or malformed model, unreadable file), 2 bad usage
                """)
        spec.positionals = "SENTENCE"
        return spec
    }()

    static func run(_ parsed: ParsedArguments, output console: CommandOutput) throws {
        let model = try parsed.required("model")
        let attention = try parsed.choice("attention", among: ["fused", "math"]) ?? "fused"
        let layout: SequenceLayout = parsed.has("packed") ? .packed : .padded
        let batchSize = try parsed.integer("batch-size", minimum: 1) ?? SentenceEmbedder.defaultBatchSize
        let threads = try parsed.integer("threads", minimum: 1)
        let outPath = parsed.string("out")
        if let outPath, !outPath.hasSuffix(".npy"), !outPath.hasSuffix(".json") {
            throw UsageError("--out must name a .npy or a .json file; got '\(outPath)'", command: spec.name)
        }
        var sentences = parsed.positionals
        if let input = parsed.string("input") { sentences += try readSentences(input) }
        guard !sentences.isEmpty || parsed.has("input") else {
            throw UsageError("no sentences: give them as arguments or with --input FILE", command: spec.name)
        }

        let embedder = try SentenceEmbedder(modelDirectory: URL(fileURLWithPath: model))
        let backends: Set<SDPBackend> = attention == "math" ? [.math] : [.fused]
        let embeddings = try withSDPBackends(backends) {
            try withThreads(threads) { try embedder.embed(sentences, layout: layout, batchSize: batchSize) }
        }
        let description = "\(embeddings.shape) float32 (\(URL(fileURLWithPath: model).lastPathComponent), attention \(attention), \(layout.rawValue))"
        if let outPath {
            let url = URL(fileURLWithPath: outPath)
            if outPath.hasSuffix(".npy") {
                try embeddings.write(to: url)
            } else {
                try jsonDocument(sentences: sentences, embeddings: embeddings, model: model, attention: attention, layout: layout).write(to: url)
            }
            console.standardOutput("wrote \(outPath): \(description)\n")
        } else {
            console.standardOutput(summary(sentences: sentences, embeddings: embeddings, description: description))
        }
        if parsed.has("tokens") {
            for (n, ids) in embedder.tokenize(sentences).enumerated() {
                console.standardOutput("tokens \(n): \(embedder.tokenizer.tokens(ids).joined(separator: " "))\n")
            }
        }
    }

    /// One sentence per line; a final line break does not start another sentence.
    static func readSentences(_ path: String) throws -> [String] {
        // Through a file handle, so that a pipe (`<(command)`) reads as well as a file.
        guard let handle = path == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: path),
              let data = try? handle.readToEnd() ?? Data() else {
            throw EmbeddingError.invalidArgument(argument: "--input", value: path, reason: "cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw EmbeddingError.invalidArgument(argument: "--input", value: path, reason: "is not UTF-8 text")
        }
        return TextLines.split(text)
    }

    /// `{"model", "attention", "layout", "sentences", "embeddings"}`; floats printed so that they read back exactly.
    static func jsonDocument(sentences: [String], embeddings: Tensor, model: String, attention: String, layout: SequenceLayout) throws -> Data {
        struct Document: Encodable {
            var model: String, attention: String, layout: String, dimension: Int
            var sentences: [String]
            var embeddings: [[Float]]
        }
        let width = embeddings.shape[1], values = embeddings.scalars
        let document = Document(
            model: model, attention: attention, layout: layout.rawValue, dimension: width, sentences: sentences,
            embeddings: sentences.indices.map { Array(values[($0 * width)..<(($0 + 1) * width)]) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return try encoder.encode(document)
    }

    /// Each embedding's first values, and the cosine similarity of every pair (the embeddings are unit length
    /// for a model that normalizes; computed in full regardless).
    static func summary(sentences: [String], embeddings: Tensor, description: String) -> String {
        let width = embeddings.shape[1], values = embeddings.scalars
        func vector(_ i: Int) -> ArraySlice<Float> { values[(i * width)..<((i + 1) * width)] }
        func format(_ x: Float) -> String { String(format: "%+.4f", x) }
        var lines = ["embeddings: \(description)"]
        for (i, sentence) in sentences.enumerated() {
            lines.append("  \(i): [\(vector(i).prefix(4).map(format).joined(separator: ", ")), ...]  \(sentence.debugDescription)")
        }
        if sentences.count >= 2 {
            lines.append("cosine similarity:")
            for i in sentences.indices {
                let a = vector(i)
                let row = sentences.indices.map { j -> String in
                    let b = vector(j)
                    let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let norms = (a.reduce(0.0) { $0 + Double($1) * Double($1) } * b.reduce(0.0) { $0 + Double($1) * Double($1) }).squareRoot()
                    return String(format: "%.4f", norms > 0 ? dot / norms : 0)
                }
                lines.append("  \(i): " + row.joined(separator: "  "))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
