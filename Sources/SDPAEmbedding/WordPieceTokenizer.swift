import Foundation

/// BERT's tokenizer: ``BertNormalizer``, splitting into words at whitespace and around punctuation,
/// then WordPiece (greedy longest match, continuations prefixed `##`, a word without a split into known
/// pieces, or longer than ``maximumCharactersPerWord``, becoming `[UNK]`), and `[CLS] … [SEP]` around the
/// result. Special tokens written in the text (`[MASK]`, `[SEP]`, …) are recognised before normalization,
/// as Hugging Face's tokenizer does.
///
/// ```swift
/// let tokenizer = try WordPieceTokenizer(vocabularyFile: modelDirectory.appending(path: "vocab.txt"))
/// let ids = tokenizer.encode("Héllo, world!", maximumLength: 256)   // [CLS] hello , world ! [SEP]
/// ```
public struct WordPieceTokenizer: Sendable {
    /// The tokens, by id (line `n` of `vocab.txt` is id `n`).
    public let vocabulary: [String]
    /// The text clean-up before splitting.
    public let normalizer: BertNormalizer
    /// Longer words become `[UNK]` whole.
    public let maximumCharactersPerWord: Int
    /// Ids of `[UNK]`, `[CLS]`, `[SEP]`, `[PAD]`.
    public let unknownID: Int32, classID: Int32, separatorID: Int32, paddingID: Int32
    /// Ids by token, keyed by UTF-8 bytes (not `String`, whose equality is canonical equivalence:
    /// `é` and `e` + U+0301 would be one key, where the vocabulary holds them apart).
    private let ids: [[UInt8]: Int32]
    /// The special tokens matched in raw text, longest first.
    private let specialTokens: [(scalars: [Unicode.Scalar], id: Int32)]

    /// The special tokens BERT's vocabulary must hold.
    public static let specialTokenNames = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]

    /// A tokenizer over `vocabulary` (one token per id).
    ///
    /// - Throws: ``EmbeddingError/vocabulary(path:reason:)`` when `[UNK]`, `[CLS]`, `[SEP]` or `[PAD]` is missing.
    public init(vocabulary: [String], normalizer: BertNormalizer = BertNormalizer(), maximumCharactersPerWord: Int = 100,
                source: String = "vocabulary") throws {
        var ids = [[UInt8]: Int32]()
        for (id, token) in vocabulary.enumerated() where ids[Array(token.utf8)] == nil { ids[Array(token.utf8)] = Int32(id) }
        func id(_ token: String) throws -> Int32 {
            guard let id = ids[Array(token.utf8)] else {
                throw EmbeddingError.vocabulary(path: source, reason: "the vocabulary has no \(token) token")
            }
            return id
        }
        (unknownID, classID, separatorID, paddingID) = (try id("[UNK]"), try id("[CLS]"), try id("[SEP]"), try id("[PAD]"))
        specialTokens = Self.specialTokenNames.compactMap { name in ids[Array(name.utf8)].map { (Array(name.unicodeScalars), $0) } }
            .sorted { $0.scalars.count > $1.scalars.count }
        self.vocabulary = vocabulary
        self.ids = ids
        self.normalizer = normalizer
        self.maximumCharactersPerWord = maximumCharactersPerWord
    }

    /// A tokenizer over a `vocab.txt` file (one token per line, UTF-8).
    ///
    /// - Throws: ``EmbeddingError/vocabulary(path:reason:)`` for a file that cannot be read, is not UTF-8 or lacks a special token.
    public init(vocabularyFile url: URL, normalizer: BertNormalizer = BertNormalizer()) throws {
        guard let data = try? Data(contentsOf: url) else {
            throw EmbeddingError.vocabulary(path: url.path, reason: "cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw EmbeddingError.vocabulary(path: url.path, reason: "is not UTF-8 text")
        }
        try self.init(vocabulary: TextLines.split(text), normalizer: normalizer, source: url.path)
    }

    /// The id of `token`, if the vocabulary has it.
    public func id(of token: String) -> Int32? { ids[Array(token.utf8)] }

    /// The word pieces of `text` as ids, without `[CLS]` and `[SEP]`.
    public func tokenize(_ text: String) -> [Int32] {
        var result = [Int32]()
        var segment = [Unicode.Scalar]()
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count {
            if let special = specialTokens.first(where: { Self.matches($0.scalars, in: scalars, at: i) }) {
                tokenizeSegment(segment, into: &result)
                segment.removeAll()
                result.append(special.id)
                i += special.scalars.count
            } else {
                segment.append(scalars[i])
                i += 1
            }
        }
        tokenizeSegment(segment, into: &result)
        return result
    }

    /// `[CLS]`, the word pieces of `text` truncated to `maximumLength − 2`, `[SEP]`.
    public func encode(_ text: String, maximumLength: Int) -> [Int32] {
        [classID] + tokenize(text).prefix(Swift.max(0, maximumLength - 2)) + [separatorID]
    }

    /// The tokens of `ids`, for display.
    public func tokens(_ ids: [Int32]) -> [String] {
        ids.map { vocabulary.indices.contains(Int($0)) ? vocabulary[Int($0)] : "<\($0)>" }
    }

    private static func matches(_ token: [Unicode.Scalar], in text: [Unicode.Scalar], at i: Int) -> Bool {
        i + token.count <= text.count && zip(token, text[i...]).allSatisfy { $0 == $1 }
    }

    /// Normalizes a piece of text between special tokens, splits it into words and those into pieces.
    private func tokenizeSegment(_ segment: [Unicode.Scalar], into result: inout [Int32]) {
        if segment.isEmpty { return }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: segment)
        var word = [Unicode.Scalar]()
        for c in normalizer.normalize(String(text)) {
            if BertNormalizer.isWhitespace(c) {
                wordPieces(word, into: &result)
                word.removeAll()
            } else if BertNormalizer.isPunctuation(c) {
                wordPieces(word, into: &result)
                word.removeAll()
                wordPieces([c], into: &result)
            } else {
                word.append(c)
            }
        }
        wordPieces(word, into: &result)
    }

    /// WordPiece: the longest known prefix, then the longest known `##` continuation, and so on.
    private func wordPieces(_ word: [Unicode.Scalar], into result: inout [Int32]) {
        if word.isEmpty { return }
        if word.count > maximumCharactersPerWord {
            result.append(unknownID)
            return
        }
        let utf8 = word.map { Array(String($0).utf8) }
        var pieces = [Int32]()
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while end > start {
                let bytes = (start > 0 ? Array("##".utf8) : []) + utf8[start..<end].joined()
                if let id = ids[bytes] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let found else {
                result.append(unknownID)
                return
            }
            pieces.append(found)
            start = end
        }
        result += pieces
    }
}
