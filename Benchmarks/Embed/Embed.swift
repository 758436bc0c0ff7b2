import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine
import SDPAEmbedding

/// Sentence embeddings per second with all-MiniLM-L6-v2: 256 sentences of 8–128 tokens, padded and
/// packed, against sentence-transformers on PyTorch with the same threads (issue 18's targets: ≥ 1.0×
/// padded, ≥ 1.5× packed).
@main
enum EmbedBenchmark {
    static let packageDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let spec = CommandSpec(
        name: "Embed",
        synopsis: "[--model DIR] [--sentences N] [--pytorch PYTHON] [options]",
        abstract: """
            Times SentenceEmbedder.embed on N sentences (default 256) whose token counts, [CLS] and [SEP] included, are \
            spread evenly over 8...128 (seeded), in batches of 32 as sentence-transformers' encode: padded (batches \
            formed after sorting by length, each padded to its longest, KeyPaddingBias) and packed (BlockDiagonalBias, \
            no padding). With --pytorch, sentence-transformers' encode on the same sentences (Benchmarks/embed_bench.py, \
            same threads) is timed between this package's timings, --rounds times, each side keeping its median round. \
            The model is not downloaded: Scripts/install-minilm.sh installs it into Models/.
            """,
        options: [
            .value("model", "DIR", "the model directory (default Models/all-MiniLM-L6-v2)"),
            .value("sentences", "N", "how many sentences (default 256)"),
            .value("pytorch", "PYTHON", "a Python with torch and sentence-transformers: time sentence-transformers interleaved"),
            .value("pytorch-json", "FILE", "with --pytorch: write sentence-transformers' report here"),
            .value("pytorch-script", "FILE", "with --pytorch: embed_bench.py (default: the one beside this benchmark's sources)"),
            .value("rounds", "N", "with --pytorch: rounds, each side keeping its median (default 3)"),
        ])

    static let batchSize = 32

    /// One workload per layout; the attention problem inside the model, its batch the sentence count.
    static func workloads(_ options: BenchmarkCommandLine) throws -> [AttentionWorkload] {
        let count = try options.parsed.integer("sentences", minimum: 1) ?? 256
        return ["padding", "block-diagonal"].map { bias in
            var workload = AttentionWorkload(batch: count, heads: 12, queryLength: 128, keyLength: 128, headDim: 32, bias: BiasKind.named("none")!)
            workload.bias = bias
            return workload
        }
    }

    static func main() {
        BenchmarkCommandLine.main(spec, workloads: workloads) { options, workloads, output in
            var options = options
            let model = options.parsed.string("model").map { URL(fileURLWithPath: $0) } ?? packageDirectory.appending(path: "Models/all-MiniLM-L6-v2")
            // Without the model there is nothing to measure: say so and leave the other benchmarks of a plugin run be.
            guard FileManager.default.fileExists(atPath: model.appending(path: "model.safetensors").path) else {
                output.standardError("Embed: skipped: no model in \(model.path); run Scripts/install-minilm.sh, or pass --model DIR\n")
                return nil
            }
            let embedder = try SentenceEmbedder(modelDirectory: model)
            let sentences = try makeSentences(count: workloads[0].batch, tokenizer: embedder.tokenizer)
            let plan = options.isQuick ? MeasurementPlan(warmUpCalls: 1, samples: 1) : MeasurementPlan(warmUpCalls: 1, samples: 3)
            let threads = SDPAThreads.effectiveCount

            var pytorch: PyTorchCounterpart?
            if let python = options.parsed.string("pytorch") {
                let sentenceFile = FileManager.default.temporaryDirectory.appending(path: "sdpa-embed-sentences-\(ProcessInfo.processInfo.processIdentifier).txt")
                try Data((sentences.joined(separator: "\n") + "\n").utf8).write(to: sentenceFile)
                let script = options.parsed.string("pytorch-script").map { URL(fileURLWithPath: $0) }
                    ?? packageDirectory.appending(path: "Benchmarks/embed_bench.py")
                do {
                    pytorch = try PyTorchCounterpart(
                        python: URL(fileURLWithPath: python), script: script, benchmark: spec.name,
                        arguments: ["--model", model.path, "--sentences", sentenceFile.path, "--threads", String(threads),
                                    "--batch-size", String(batchSize)] + (options.isQuick ? ["--quick"] : []))
                } catch let error as PyTorchCounterpartError {
                    // A Python without sentence-transformers: measure this package alone rather than nothing.
                    output.standardError("Embed: no sentence-transformers comparison (\(error.description)); pip install sentence-transformers into \(python)'s environment\n")
                }
            }
            let rounds = pytorch == nil ? 1 : try options.parsed.integer("rounds", minimum: 1) ?? 3
            var ours = [[TimingSummary]](repeating: [], count: workloads.count), theirs = [TimingSummary]()
            var theirResult: BenchmarkResult?
            var progress = output.progressReporter(total: rounds * (workloads.count + (pytorch == nil ? 0 : 1)))
            for round in 1...rounds {
                for (n, workload) in workloads.enumerated() {
                    let layout: SequenceLayout = workload.bias == "padding" ? .padded : .packed
                    progress.begin("round \(round): \(layout.rawValue)")
                    ours[n].append(try measure(plan) { try embedder.embed(sentences, layout: layout, batchSize: batchSize) })
                }
                if let pytorch {
                    progress.begin("round \(round): sentence-transformers")
                    guard let result = try pytorch.measure(workloads[0]).first, let timing = result.timing else {
                        throw PyTorchCounterpartError("embed_bench.py answered no timing")
                    }
                    theirs.append(timing)
                    theirResult = result
                }
            }
            progress.finish()

            func medianRound(_ timings: [TimingSummary]) -> TimingSummary { SDPABenchmarkHarness.medianRound(timings, seconds: \.medianSeconds)! }
            let count = Double(sentences.count)
            var figures = [String: Double]()
            var results = [BenchmarkResult]()
            for (n, workload) in workloads.enumerated() {
                let timing = medianRound(ours[n])
                let layout = workload.bias == "padding" ? "padded" : "packed"
                figures["sentencesPerSecond.\(layout)"] = count / timing.medianSeconds
                results.append(BenchmarkResult(workload: workload, path: layout, threads: threads, timing: timing,
                                               note: "\(sentences.count) sentences, batches of \(batchSize), \(model.lastPathComponent)"))
            }
            if var theirResult, !theirs.isEmpty {
                theirResult.timing = medianRound(theirs)
                let perSecond = count / theirResult.timing!.medianSeconds
                figures["sentenceTransformers.sentencesPerSecond"] = perSecond
                figures["speedup.padded"] = figures["sentencesPerSecond.padded"]! / perSecond
                figures["speedup.packed"] = figures["sentencesPerSecond.packed"]! / perSecond
                let report = pytorch!.report(benchmark: spec.name, workloads: [workloads[0]], results: [theirResult])
                if let path = options.parsed.string("pytorch-json") { try report.write(to: URL(fileURLWithPath: path)) }
                options.comparison = report
            }
            var report = options.report(workloads: workloads, results: results)
            report.figures = figures
            return BenchmarkOutcome(report: report, comparison: options.comparison)
        }
    }

    /// `count` sentences of whole-word tokens from the vocabulary, the i-th with 8 + (i · 120) / (count − 1)
    /// tokens ([CLS] and [SEP] included) in a shuffled order, the words drawn with a seeded generator.
    static func makeSentences(count: Int, tokenizer: WordPieceTokenizer) throws -> [String] {
        let words = tokenizer.vocabulary.filter { $0.count >= 3 && $0.unicodeScalars.allSatisfy { ("a"..."z").contains($0) } }
            .filter { tokenizer.tokenize($0).count == 1 }
        guard !words.isEmpty else {
            throw EmbeddingError.vocabulary(path: "vocab.txt", reason: "has no whole lower-case words to build benchmark sentences from")
        }
        var state: UInt64 = 18
        func next() -> UInt64 {  // SplitMix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var lengths = (0..<count).map { 8 + (count > 1 ? $0 * 120 / (count - 1) : 0) }
        for i in stride(from: count - 1, to: 0, by: -1) { lengths.swapAt(i, Int(next() % UInt64(i + 1))) }
        let sentences = lengths.map { tokens in (0..<(tokens - 2)).map { _ in words[Int(next() % UInt64(words.count))] }.joined(separator: " ") }
        let actual = sentences.map { tokenizer.encode($0, maximumLength: 512).count }
        guard actual == lengths else {
            throw EmbeddingError.vocabulary(path: "vocab.txt", reason: "benchmark sentences do not tokenize to their intended lengths")
        }
        return sentences
    }
}
