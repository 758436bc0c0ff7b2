import Foundation
import SDPAEmbedding
import Testing

/// WordPiece against Hugging Face's tokenizer (the one sentence-transformers runs) on strings chosen to
/// exercise each step: clean-up, CJK, accents, case, punctuation, special tokens, long and unknown words.
@Suite struct TokenizerTests {
    func check(_ embedder: SentenceEmbedder, _ reference: EmbeddingReference) {
        for tricky in reference.tricky {
            let ids = embedder.tokenize([tricky.text])[0]
            #expect(ids == tricky.ids, "\(tricky.text.debugDescription): \(embedder.tokenizer.tokens(ids)) vs \(embedder.tokenizer.tokens(tricky.ids))")
        }
    }

    @Test func tinyVocabularyMatchesHuggingFace() throws {
        try check(SentenceEmbedder(modelDirectory: EmbeddingReference.tinyModel), EmbeddingReference.load("tiny_reference.json"))
    }

    @Test(.enabled(if: EmbeddingReference.miniLMDirectory != nil, EmbeddingReference.miniLMMissing))
    func miniLMVocabularyMatchesHuggingFace() throws {
        try check(SentenceEmbedder(modelDirectory: EmbeddingReference.miniLMDirectory!), EmbeddingReference.load("minilm_reference.json"))
    }

    @Test func normalizerSteps() {
        let normalizer = BertNormalizer()
        func text(_ s: String) -> String { String(String.UnicodeScalarView(normalizer.normalize(s))) }
        #expect(text("Héllo\tWörld") == "hello world")
        #expect(text("a\u{200B}b\u{0}c\u{FFFD}d") == "abcd")
        #expect(text("中文") == " 中  文 ")
        #expect(text("\u{0130}") == "i")
        #expect(BertNormalizer(lowercase: false).normalize("Éa") == Array("Éa".unicodeScalars))
        #expect(BertNormalizer.isPunctuation("$") && BertNormalizer.isPunctuation("¿") && !BertNormalizer.isPunctuation("a"))
    }

    @Test func truncationKeepsClassAndSeparator() throws {
        let tokenizer = try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##b"])
        #expect(tokenizer.encode("a a a a", maximumLength: 4) == [2, 4, 4, 3])
        #expect(tokenizer.encode("ab x", maximumLength: 10) == [2, 4, 5, 1, 3])
        #expect(tokenizer.encode("", maximumLength: 10) == [2, 3])
        #expect(tokenizer.encode("a", maximumLength: 0) == [2, 3])
    }

    @Test func vocabularyWithoutSpecialTokensIsAnError() {
        #expect(throws: EmbeddingError.vocabulary(path: "vocabulary", reason: "the vocabulary has no [CLS] token")) {
            try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[SEP]"])
        }
        #expect(throws: EmbeddingError.self) { try WordPieceTokenizer(vocabularyFile: URL(fileURLWithPath: "/nonexistent/vocab.txt")) }
    }
}

@Suite("Tokenizer") struct TokenizerChecks {
    @Test func textLinesSplitAtLineFeedsOnly() {
        #expect(TextLines.split("a\r\nb\n\nc\n") == ["a", "b", "", "c"])
        #expect(TextLines.split("a\u{2028}b\rc") == ["a\u{2028}b\rc"])
        #expect(TextLines.split("") == [] && TextLines.split("\n") == [""])
    }
}
