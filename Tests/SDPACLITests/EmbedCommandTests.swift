import Foundation
import SDPA
import SDPACommandLine
import Testing

/// `sdpa embed` in process on the committed tiny BERT (Tests/SDPAEmbeddingTests/Fixtures/tiny-bert).
@Suite struct EmbedCommandTests {
    static let packageDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "../..").standardized
    static let model = packageDirectory.appending(path: "Tests/SDPAEmbeddingTests/Fixtures/tiny-bert").path

    /// Runs `sdpa embed arguments…`: status, standard output, standard error.
    func embed(_ arguments: [String]) -> (status: Int32, out: String, err: String) {
        final class Text: @unchecked Sendable { var out = "", err = "" }
        let text = Text()
        let status = SDPACommandLine.main(["embed"] + arguments, output: CommandOutput(standardOutput: { text.out += $0 }, standardError: { text.err += $0 }))
        return (status, text.out, text.err)
    }

    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appending(path: "sdpa-embed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func sentencesFromArgumentsGiveASummary() {
        let run = embed(["--model", Self.model, "the quick brown fox", "a man is eating food", "--tokens"])
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("embeddings: [2, 32] float32 (tiny-bert, attention fused, padded)"))
        #expect(run.out.contains("cosine similarity:") && run.out.contains("  0: 1.0000  "))
        #expect(run.out.contains("tokens 0: [CLS] the quick brown fox [SEP]"))
    }

    /// Arguments and a file together (arguments first, then the file's lines, a blank line an empty sentence),
    /// every attention path and layout, .npy and .json: the same embeddings.
    @Test func npyAndJSONOutputAgreeAcrossPaths() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appending(path: "sentences.txt")
        try Data("hello world\r\n\nsomeone is eating bread\n".utf8).write(to: input)
        let base = dir.appending(path: "base.npy").path
        #expect(embed(["--model", Self.model, "--input", input.path, "--out", base, "--", "--not an option"]).status == 0)
        let expected = try Tensor(contentsOf: URL(fileURLWithPath: base))
        #expect(expected.shape == [4, 32])
        for options in [["--attention", "math"], ["--packed"], ["--packed", "--attention", "math", "--batch-size", "2", "--threads", "1"]] {
            let out = dir.appending(path: "o.json").path
            let run = embed(["--model", Self.model, "--input", input.path, "--out", out] + options + ["--", "--not an option"])
            #expect(run.status == 0, "\(options): \(run.err)")
            let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
            #expect(document["sentences"] as? [String] == ["--not an option", "hello world", "", "someone is eating bread"])
            let values = (document["embeddings"] as! [[Double]]).flatMap { $0 }
            let maxAbs = zip(values, expected.doubleScalars).map { abs($0 - $1) }.max()!
            #expect(values.count == 128 && maxAbs <= 2e-6, "\(options): \(maxAbs)")
        }
    }

    @Test func usageErrorsExitWithTwo() {
        for arguments in [["hello"], ["--model", Self.model], ["--model", Self.model, "x", "--out", "e.txt"],
                          ["--model", Self.model, "x", "--attention", "slow"], ["--model", Self.model, "x", "--batch-size", "0"]] {
            let run = embed(arguments)
            #expect(run.status == 2, "\(arguments): \(run.err)")
            #expect(run.err.contains("sdpa embed: error:"))
        }
    }

    @Test func badInputExitsWithOne() throws {
        let run = embed(["--model", "/nonexistent-model", "x"])
        #expect(run.status == 1 && run.err.contains("/nonexistent-model/config.json: is missing"), "\(run.err)")
        let missing = embed(["--model", Self.model, "--input", "/nonexistent.txt"])
        #expect(missing.status == 1 && missing.err.contains("cannot be read"), "\(missing.err)")
    }
}

@Suite("sdpa embed") struct EmbedCommandChecks {
    /// README.md's `sdpa embed` example prints what the README shows (when all-MiniLM-L6-v2 is installed).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: EmbedCommandTests.packageDirectory.appending(path: "Models/all-MiniLM-L6-v2/model.safetensors").path),
                   "all-MiniLM-L6-v2 is not installed: run Scripts/install-minilm.sh to check the README's sdpa embed example"))
    func readmeEmbedExample() throws {
        let readme = try String(contentsOf: EmbedCommandTests.packageDirectory.appending(path: "README.md"), encoding: .utf8)
        let command = "sdpa embed --model Models/all-MiniLM-L6-v2 \"A man is eating food.\" \"Someone is eating a piece of bread.\""
        let afterCommand = try #require(readme.range(of: command + "\n```\n```\n"))
        let shown = readme[afterCommand.upperBound...].components(separatedBy: "```")[0]
        final class Text: @unchecked Sendable { var out = "" }
        let text = Text()
        let model = EmbedCommandTests.packageDirectory.appending(path: "Models/all-MiniLM-L6-v2").path
        let status = SDPACommandLine.main(["embed", "--model", model, "A man is eating food.", "Someone is eating a piece of bread."],
                                          output: CommandOutput(standardOutput: { text.out += $0 }, standardError: { _ in }))
        #expect(status == 0)
        #expect(text.out == shown)
    }
}
