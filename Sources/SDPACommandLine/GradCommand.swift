import Foundation
import SDPA
import SDPABenchmarkHarness

/// `sdpa grad`: the backward pass on `.npy` files.
enum GradCommand {
    static let spec = CommandSpec(
        name: "sdpa grad",
        synopsis: "--query FILE --key FILE --value FILE --grad-out FILE --dq FILE --dk FILE --dv FILE [options]",
        summary: "the gradients of attention on .npy files (the backward pass)",
        abstract: """
            Runs attention on NumPy .npy files (as sdpa run does), then its backward pass with the gradient of the \
            output (--grad-out), and writes the gradients of query, key and value in their dtypes; with --dmask, that of \
            a float --mask (in the mask's shape; composed with --bias, the gradient that reaches it); with --dalibi-slopes, that of the ALiBi slopes of --bias; with --dsinks, \
            that of --sinks. With \
            --dropout and no --seed, one seed is drawn for both passes. With --dtype, both passes run in another dtype \
            (bfloat16 from float32 files), the gradients written back in their files' dtypes.
            """,
        options: AttentionSettings.fileOptions + [
            .value("grad-out", "FILE", "the gradient of the output .npy, in the forward output's shape ([B, H, L, Ev], [H, L, Ev], ...), the query's dtype"),
            .value("dq", "FILE", "where to write the query's gradient .npy"),
            .value("dk", "FILE", "where to write the key's gradient .npy, in the key's shape (summed over each group's query heads with GQA, and over what was broadcast)"),
            .value("dv", "FILE", "where to write the value's gradient .npy"),
            .value("dmask", "FILE", "where to write the gradient of the float --mask, in the mask's shape and dtype"),
            .value("dalibi-slopes", "FILE", "where to write the gradient of the ALiBi slopes of --bias, [H] float64"),
            AttentionSettings.sinksOption,
            .value("dsinks", "FILE", "where to write the gradient of --sinks, [H] in the sinks' dtype"),
            ComputeDType.option,
        ] + AttentionSettings.biasOptions,
        epilogue: AttentionSettings.biasTable + """


            exit status: 0 success, 1 bad input (missing or malformed file, shapes that do not fit), 2 bad usage
            """)

    static func run(_ parsed: ParsedArguments, output console: CommandOutput) throws {
        let paths = try ["query", "key", "value", "grad-out", "dq", "dk", "dv"].map(parsed.required)
        let (maskGradientPath, slopesGradientPath, sinksGradientPath) = (parsed.string("dmask"), parsed.string("dalibi-slopes"), parsed.string("dsinks"))
        let settings = try AttentionSettings(parsed)
        let dtype = try ComputeDType.parse(parsed)
        if maskGradientPath != nil, settings.maskPath == nil {
            throw UsageError("--dmask needs the float mask it is the gradient of, given with --mask", command: parsed.command)
        }
        if slopesGradientPath != nil, !(settings.biasKind?.acceptsAlibiSlopes ?? false) {
            throw UsageError("--dalibi-slopes needs a --bias with ALiBi (alibi, or a composition with an alibi part)", command: parsed.command)
        }
        if sinksGradientPath != nil, settings.sinksPath == nil {
            throw UsageError("--dsinks needs the sinks it is the gradient of, given with --sinks", command: parsed.command)
        }
        let files = (try readTensor(paths[0]), try readTensor(paths[1]), try readTensor(paths[2]))
        let sinks = try settings.readSinks()
        let (query, key, value) = (try ComputeDType.converted(files.0, to: dtype), try ComputeDType.converted(files.1, to: dtype),
                                   try ComputeDType.converted(files.2, to: dtype))
        let gradOutput = try ComputeDType.converted(try readTensor(paths[3]), to: dtype)
        let shape = try AttentionShape(flatteningBatchDimensionsOf: query, key: key, value: value, enableGQA: settings.enableGQA)
        let mask = try settings.readMask()
        if maskGradientPath != nil, let mask, !mask.dtype.isFloatingPoint {
            throw SDPAError.unsupportedDType(argument: "--mask", dtype: mask.dtype, reason: "a bool mask has no gradient (--dmask needs a float mask)")
        }
        let bias = try settings.makeBias(for: shape, mask: mask)
        // The backward pass must drop what the forward dropped: one seed for both.
        let seed = settings.dropoutP > 0 ? settings.dropoutSeed ?? UInt64.random(in: .min ... .max) : settings.dropoutSeed
        let gradients = try settings.withScope {
            let (output, logSumExp) = try attentionWithLogSumExp(
                query: query, key: key, value: value, bias: bias, isCausal: settings.isCausal, scale: settings.scale,
                dropoutP: settings.dropoutP, dropoutSeed: seed, enableGQA: settings.enableGQA, sinks: sinks)
            return try attentionGradients(
                gradOutput: gradOutput, query: query, key: key, value: value, output: output, logSumExp: logSumExp, bias: bias,
                isCausal: settings.isCausal, scale: settings.scale, dropoutP: settings.dropoutP, dropoutSeed: seed, enableGQA: settings.enableGQA,
                sinks: sinks)
        }
        var written: [(String, Tensor)] = [(paths[4], try gradients.query.converted(to: files.0.dtype)),
                                           (paths[5], try gradients.key.converted(to: files.1.dtype)),
                                           (paths[6], try gradients.value.converted(to: files.2.dtype))]
        if let maskGradientPath, let maskGradient = gradients.attnMask { written.append((maskGradientPath, maskGradient)) }
        if let slopesGradientPath, let slopes = gradients.alibiSlopes {
            written.append((slopesGradientPath, try Tensor(shape: [slopes.count], scalars: slopes)))
        }
        if let sinksGradientPath, let sinksGradient = gradients.sinks { written.append((sinksGradientPath, sinksGradient)) }
        for (n, (path, tensor)) in written.enumerated() {
            try tensor.write(to: URL(fileURLWithPath: path))
            let context = n == 0 ? " (\(shape), bias \(settings.biasDescription))" : ""
            console.standardOutput("wrote \(path): \(tensor.shape) \(tensor.dtype)\(context)\n")
        }
    }
}
