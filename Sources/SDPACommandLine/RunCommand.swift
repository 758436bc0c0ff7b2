import Foundation
import SDPA
import SDPABenchmarkHarness

/// `sdpa run`: attention on `.npy` files.
enum RunCommand {
    static let spec = CommandSpec(
        name: "sdpa run",
        synopsis: "--query FILE --key FILE --value FILE --out FILE [options]",
        summary: "attention on .npy files, written to a .npy file",
        abstract: """
            Computes scaled dot-product attention on NumPy .npy files (float32, float16 or float64) and writes \
            the output in the query's dtype.
            """,
        options: AttentionSettings.fileOptions + [
            .value("out", "FILE", "where to write the output .npy, [B, H, L, Ev] or [H, L, Ev]"),
            .value("lse-out", "FILE", "also write the per-row log-sum-exp, [B, H, L] float32"),
        ] + AttentionSettings.biasOptions,
        epilogue: AttentionSettings.biasTable + """


            exit status: 0 success, 1 bad input (missing or malformed file, shapes that do not fit), 2 bad usage
            """)

    static func run(_ parsed: ParsedArguments, output console: CommandOutput) throws {
        let paths = try ["query", "key", "value", "out"].map(parsed.required)
        let lsePath = parsed.string("lse-out")
        let settings = try AttentionSettings(parsed)
        let (query, key, value) = (try readTensor(paths[0]), try readTensor(paths[1]), try readTensor(paths[2]))
        let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: settings.enableGQA)
        let bias = try settings.makeBias(for: shape)
        let (output, logSumExp): (Tensor, Tensor?) = try settings.withScope {
            if lsePath == nil {
                let out = try attention(
                    query: query, key: key, value: value, bias: bias, isCausal: settings.isCausal, scale: settings.scale,
                    dropoutP: settings.dropoutP, dropoutSeed: settings.dropoutSeed, enableGQA: settings.enableGQA)
                return (out, nil)
            }
            let pair = try attentionWithLogSumExp(
                query: query, key: key, value: value, bias: bias, isCausal: settings.isCausal, scale: settings.scale,
                dropoutP: settings.dropoutP, dropoutSeed: settings.dropoutSeed, enableGQA: settings.enableGQA)
            return (pair.output, pair.logSumExp)
        }
        try output.write(to: URL(fileURLWithPath: paths[3]))
        console.standardOutput("wrote \(paths[3]): \(output.shape) \(output.dtype) (\(shape), bias \(settings.biasDescription))\n")
        if let lsePath, let logSumExp {
            try logSumExp.write(to: URL(fileURLWithPath: lsePath))
            console.standardOutput("wrote \(lsePath): \(logSumExp.shape) \(logSumExp.dtype)\n")
        }
    }
}
