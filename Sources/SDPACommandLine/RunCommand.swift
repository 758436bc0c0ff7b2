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
            the output in the query's dtype; with --dtype, in another dtype (bfloat16 from float32 files).
            """,
        options: AttentionSettings.fileOptions + [
            .value("out", "FILE", "where to write the output .npy, [B, H, L, Ev] or [H, L, Ev]"),
            .value("lse-out", "FILE", "also write the per-row log-sum-exp, [B, H, L] float32"),
            AttentionSettings.sinksOption,
            ComputeDType.option,
        ] + AttentionSettings.biasOptions,
        epilogue: AttentionSettings.biasTable + """


            exit status: 0 success, 1 bad input (missing or malformed file, shapes that do not fit), 2 bad usage
            """)

    /// The command line of one run, checked before any file is read: the paths, with outputs that
    /// name no input and not each other, and the attention settings.
    struct Arguments {
        var query: String, key: String, value: String, out: String
        var lseOut: String?
        var settings: AttentionSettings
        /// `--dtype`, or `nil` for the files' own.
        var dtype: DType?

        /// - Throws: ``UsageError`` for a missing or malformed option, options that conflict, or an
        ///   output path naming an input or the other output.
        init(_ parsed: ParsedArguments) throws {
            (query, key, value, out) = (try parsed.required("query"), try parsed.required("key"),
                                        try parsed.required("value"), try parsed.required("out"))
            lseOut = parsed.string("lse-out")
            settings = try AttentionSettings(parsed)
            dtype = try ComputeDType.parse(parsed)
            var inputs = [("query", query), ("key", key), ("value", value)]
            if let mask = settings.maskPath { inputs.append(("mask", mask)) }
            if let sinks = settings.sinksPath { inputs.append(("sinks", sinks)) }
            try checkOutputPaths([("out", out)] + (lseOut.map { [("lse-out", $0)] } ?? []), inputs: inputs, command: spec.name)
        }
    }

    static func run(_ parsed: ParsedArguments, output console: CommandOutput) throws {
        let arguments = try Arguments(parsed)
        let settings = arguments.settings
        let files = (try readTensor(arguments.query), try readTensor(arguments.key), try readTensor(arguments.value))
        let (query, key, value) = (try ComputeDType.converted(files.0, to: arguments.dtype), try ComputeDType.converted(files.1, to: arguments.dtype),
                                   try ComputeDType.converted(files.2, to: arguments.dtype))
        let shape = try AttentionShape(flatteningBatchDimensionsOf: query, key: key, value: value, enableGQA: settings.enableGQA)
        let bias = try settings.makeBias(for: shape)
        let (computed, logSumExp) = try compute(query: query, key: key, value: value, bias: bias, sinks: try settings.readSinks(),
                                                settings: settings, withLogSumExp: arguments.lseOut != nil)
        let output = try computed.converted(to: files.0.dtype)
        // Both files are written in full under temporary names before either is renamed into place: a
        // file is never half-written, and a run that cannot write one output writes neither.
        let staged = [try _StagedNPYFile(output, at: URL(fileURLWithPath: arguments.out))]
            + (try logSumExp.map { [try _StagedNPYFile($0, at: URL(fileURLWithPath: arguments.lseOut!))] } ?? [])
        for file in staged { try file.commit() }
        console.standardOutput("wrote \(arguments.out): \(output.shape) \(output.dtype) (\(shape), bias \(settings.biasDescription))\n")
        if let lsePath = arguments.lseOut, let logSumExp {
            console.standardOutput("wrote \(lsePath): \(logSumExp.shape) \(logSumExp.dtype)\n")
        }
    }

    /// Attention as the settings ask (with `sinks`, the `--sinks` file's), with the log-sum-exp when `withLogSumExp`.
    static func compute(
        query: Tensor, key: Tensor, value: Tensor, bias: (any AttnBias)?, sinks: Tensor?, settings: AttentionSettings, withLogSumExp: Bool
    ) throws -> (output: Tensor, logSumExp: Tensor?) {
        try settings.withScope {
            if !withLogSumExp {
                let out = try attention(
                    query: query, key: key, value: value, bias: bias, isCausal: settings.isCausal, scale: settings.scale,
                    dropoutP: settings.dropoutP, dropoutSeed: settings.dropoutSeed, enableGQA: settings.enableGQA, sinks: sinks)
                return (out, nil)
            }
            let pair = try attentionWithLogSumExp(
                query: query, key: key, value: value, bias: bias, isCausal: settings.isCausal, scale: settings.scale,
                dropoutP: settings.dropoutP, dropoutSeed: settings.dropoutSeed, enableGQA: settings.enableGQA, sinks: sinks)
            return (pair.output, pair.logSumExp)
        }
    }
}

extension SDPACommandLine {
    /// `sdpa run`'s argument and `--bias` spelling parser, and the computation on small zero inputs
    /// (`B = 2, H = 4, L = S = 8, E = 4`) in place of the files: what the command does with `arguments`
    /// up to reading its inputs, reading and writing no file. The entry point of the fuzzing target.
    ///
    /// - Throws: ``UsageError`` or ``SDPAError``, as the command would report them.
    @_spi(Fuzzing)
    public static func checkRunArguments(_ arguments: [String]) throws {
        let parsed = try RunCommand.spec.parse(arguments)
        if parsed.helpRequested { return }
        let checked = try RunCommand.Arguments(parsed)
        var settings = checked.settings
        (settings.maskPath, settings.sinksPath) = (nil, nil)
        let query = try Tensor.randomNormal(shape: [2, 4, 8, 4], seed: 1)
        let (key, value) = settings.enableGQA
            ? (try Tensor.randomNormal(shape: [2, 2, 8, 4], seed: 2), try Tensor.randomNormal(shape: [2, 2, 8, 4], seed: 3))
            : (try Tensor.randomNormal(shape: [2, 4, 8, 4], seed: 2), try Tensor.randomNormal(shape: [2, 4, 8, 4], seed: 3))
        let shape = try AttentionShape(flatteningBatchDimensionsOf: query, key: key, value: value, enableGQA: settings.enableGQA)
        let bias = try settings.makeBias(for: shape)
        _ = try RunCommand.compute(query: query, key: key, value: value, bias: bias, sinks: nil, settings: settings,
                                   withLogSumExp: checked.lseOut != nil)
    }
}
