import Foundation
import SDPA
import SDPATestSupport
import Testing

// Two user-written fused biases, from outside the module: FlexAttention's mask_mod examples made
// static. Each must run on the fused path and match its own materialized form.
// float32 fused vs float32 fused-with-dense-mask, and against the math backend: float32 accuracy.
let pluginTolerance = Tolerance.float32

/// Prefix-LM: every query sees the first `prefix` keys (the prompt, bidirectional), and is causal after that.
struct PrefixLM: FusedAttnBias {
    var prefix: Int
    var seqLen: Int

    static var modifiesScores: Bool { false }
    var materializedShape: [Int] { [seqLen, seqLen] }

    func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { key < prefix || key <= query }

    func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        if keys.upperBound <= prefix { return .full }
        let causal = TileVisibility.causal(queries: queries, keys: keys, diagonalOffset: 0)
        // Past the prefix it is plain causal; a tile straddling the prefix is never empty.
        return keys.lowerBound >= prefix || causal == .full ? causal : .partial
    }
}

/// Document masking: tokens of a packed batch attend only within their own document (given per token), causally.
struct DocumentMaskBias: FusedAttnBias {
    var documentOfToken: [Int]

    static var modifiesScores: Bool { false }
    var materializedShape: [Int] { [documentOfToken.count, documentOfToken.count] }

    func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool {
        documentOfToken[query] == documentOfToken[key] && key <= query
    }
    // No tile classifier: the default, `.partial`, is always correct; only speed is lost.
}

/// Causal written as a plugin: the same mask as `causalUpperLeft`, with a classifier.
struct PluginCausal: FusedAttnBias {
    var seqLen: Int
    static var modifiesScores: Bool { false }
    var materializedShape: [Int] { [seqLen, seqLen] }
    func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { key <= query }
    func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        .causal(queries: queries, keys: keys, diagonalOffset: 0)
    }
}

/// A score modifier with no mask: a learned-looking relative-position bias per head.
struct RelativePositionBias: FusedAttnBias {
    var heads: Int, seqLen: Int
    var materializedShape: [Int] { [heads, seqLen, seqLen] }
    func modifyScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        score + T(0.05) * T(head + 1) * T((query - key) % 7)
    }
}

@Suite("User-written fused biases")
struct FusedPluginTests {
    let L = 150
    func inputs() throws -> (Tensor, Tensor, Tensor) {
        (try Tensor.randomNormal(shape: [2, 3, L, 32], seed: 1),
         try Tensor.randomNormal(shape: [2, 3, L, 32], seed: 2),
         try Tensor.randomNormal(shape: [2, 3, L, 32], seed: 3))
    }

    func checkMatchesMaterialized<Bias: FusedAttnBias>(_ bias: Bias) throws {
        let (q, k, v) = try inputs()
        #expect(!bias.needsMaterialization)
        let explanation = try explainSDPA(query: q, key: k, value: v, attnMask: bias)
        #expect(explanation.backend == .fused)
        #expect(explanation.route.contains("dispatch"))
        let fused = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
        let mask = try bias.materialize(device: .cpu)
        let materialized = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(mask))
        expectClose(fused, materialized, pluginTolerance, "\(Bias.self): fused vs its materialized mask")
        let reference = try withSDPBackends([.math]) { try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias) }
        expectClose(fused, reference, pluginTolerance, "\(Bias.self): fused vs math")
    }

    @Test func prefixLM() throws {
        try checkMatchesMaterialized(PrefixLM(prefix: 40, seqLen: L))
        let mask = try PrefixLM(prefix: 2, seqLen: 4).materialize(device: .cpu)
        #expect(mask.dtype == .bool)
        #expect(mask.bools == [true, true, false, false,
                               true, true, false, false,
                               true, true, true, false,
                               true, true, true, true])
    }

    @Test func documentMask() throws {
        let documents = (0..<L).map { $0 < 30 ? 0 : $0 < 31 ? 1 : $0 < 100 ? 2 : 3 }
        try checkMatchesMaterialized(DocumentMaskBias(documentOfToken: documents))
    }

    @Test func pluginCausalEqualsBuiltIn() throws {
        let (q, k, v) = try inputs()
        let plugin = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: PluginCausal(seqLen: L))
        let builtIn = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalUpperLeft(L, L))
        expectIdentical(plugin, builtIn, "plugin causal vs causalUpperLeft")
    }

    @Test func scoreModifier() throws {
        try checkMatchesMaterialized(RelativePositionBias(heads: 3, seqLen: L))
        #expect(try RelativePositionBias(heads: 3, seqLen: L).materialize(device: .cpu).dtype == .float32)
    }

    /// The usage example of the "Writing your own bias" article, as it is written there.
    @Test func articleUsage() throws {
        let (q, k, v) = try inputs()
        let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: PrefixLM(prefix: 40, seqLen: L))
        let composed = PrefixLM(prefix: 20, seqLen: L).combined(with: RelativePositionBias(heads: 3, seqLen: L))
        let out2 = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: composed)
        expectClose(out, try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(
            PrefixLM(prefix: 40, seqLen: L).materialize(device: .cpu))), pluginTolerance, "prefix-LM")
        expectClose(out2, try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(
            composed.materialize(device: .cpu))), pluginTolerance, "prefix-LM + relative position")
    }

    /// Every Swift block of `Documentation.docc/WritingYourOwnBias.md` is quoted from this file: its lines,
    /// indentation aside, appear here one after another. If the article and the tests part, this fails.
    @Test func articleQuotesThisFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let article = try String(contentsOf: root.appendingPathComponent("Sources/SDPA/Documentation.docc/WritingYourOwnBias.md"), encoding: .utf8)
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        func lines(_ text: Substring) -> [String] {
            text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let sourceLines = lines(source[...])
        let blocks = article.components(separatedBy: "```swift\n").dropFirst().map { lines($0.components(separatedBy: "```")[0].dropLast(1)) }
        #expect(blocks.count == 3, "the article's Swift blocks: \(blocks.count)")
        for block in blocks {
            let found = (0...(sourceLines.count - block.count)).contains { Array(sourceLines[$0..<$0 + block.count]) == block }
            #expect(found, "not quoted verbatim from FusedPluginTests.swift:\n\(block.joined(separator: "\n"))")
        }
    }

    /// The example of `FusedAttnBias`'s doc comment is this file's `PrefixLM` (its usage line aside), so that
    /// it compiles and its tile classifier is tested (an earlier one answered `.empty` for tiles straddling the prefix).
    @Test func docCommentQuotesThisFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("Sources/SDPA/Bias/FusedAttnBias.swift"), encoding: .utf8)
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let sourceLines = source.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let docLines = doc.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
        guard let open = docLines.firstIndex(of: "/// ```swift"), let close = docLines[(open + 1)...].firstIndex(of: "/// ```") else {
            Issue.record("no Swift block in FusedAttnBias's doc comment")
            return
        }
        let block = docLines[(open + 1)..<close].map { String($0.dropFirst(3)).trimmingCharacters(in: .whitespaces) }
            .filter { !$0.hasPrefix("let out = ") }
        #expect(block.first?.hasPrefix("/// Prefix-LM") == true && block.count > 10)
        let found = (0...(sourceLines.count - block.count)).contains { Array(sourceLines[$0..<$0 + block.count]) == block }
        #expect(found, "not quoted verbatim from FusedPluginTests.swift:\n\(block.joined(separator: "\n"))")
    }

    /// Prefixes that end inside a tile, so that tiles straddle the prefix: the classifier must not empty them.
    @Test(arguments: [1, 37, 150, 199])
    func prefixLMAgainstTheMathBackend(prefix: Int) throws {
        let l = 200
        let q = try Tensor.randomNormal(shape: [1, 2, l, 64], seed: 11), k = try Tensor.randomNormal(shape: [1, 2, l, 64], seed: 12)
        let v = try Tensor.randomNormal(shape: [1, 2, l, 64], seed: 13)
        let bias = PrefixLM(prefix: prefix, seqLen: l)
        let fused = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias)
        let math = try withSDPBackends([.math]) { try scaledDotProductAttention(query: q, key: k, value: v, attnMask: bias) }
        expectClose(fused, math, pluginTolerance, "prefix \(prefix)")
    }

    @Test func composedWithBuiltIns() throws {
        let bias = PrefixLM(prefix: 20, seqLen: L)
            .combined(with: RelativePositionBias(heads: 3, seqLen: L))
            .combined(with: KeyPaddingBias(validKeyLengths: [L, 77], seqLenKV: L))
        try checkMatchesMaterialized(bias)
    }

    @Test("the fused backward pass of a user's bias (its tiles skipped by its own classifier) equals the math one")
    func backward() throws {
        let (q, k, v) = try inputs()
        let dO = try Tensor.randomNormal(shape: [2, 3, L, 32], seed: 4)
        let documents = (0..<L).map { $0 < 30 ? 0 : $0 < 31 ? 1 : $0 < 100 ? 2 : 3 }
        let biases: [any FusedAttnBias] = [
            PrefixLM(prefix: 40, seqLen: L), DocumentMaskBias(documentOfToken: documents), PluginCausal(seqLen: L),
            RelativePositionBias(heads: 3, seqLen: L),
            PrefixLM(prefix: 20, seqLen: L).combined(with: RelativePositionBias(heads: 3, seqLen: L))
                .combined(with: KeyPaddingBias(validKeyLengths: [L, 77], seqLenKV: L)),
        ]
        for bias in biases {
            let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, attnMask: bias)
            let run = { (backend: SDPBackend) in
                try withSDPBackends([backend]) {
                    try scaledDotProductAttentionBackward(gradOutput: dO, query: q, key: k, value: v, output: out, logSumExp: lse, attnMask: bias)
                }
            }
            let (fused, math) = (try run(.fused), try run(.math))
            // float32 tiles over 150 keys against Double.
            let tolerance = Tolerance(atol: 2e-5, rtol: 2e-5)
            expectClose(fused.query, math.query, tolerance, "\(type(of: bias)) dQ")
            expectClose(fused.key, math.key, tolerance, "\(type(of: bias)) dK")
            expectClose(fused.value, math.value, tolerance, "\(type(of: bias)) dV")
        }
    }
}
