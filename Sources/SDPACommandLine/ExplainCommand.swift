import SDPA
import SDPABenchmarkHarness

/// `sdpa explain`: which backend would run, and why each other one would not.
enum ExplainCommand {
    static let dtypeChoices = DType.allCases.filter(\.isFloatingPoint).map(\.rawValue)

    static let spec = CommandSpec(
        name: "sdpa explain",
        synopsis: "(--query FILE --key FILE --value FILE | --shape B,H,L,S,E [--kv-heads N] [--dtype T]) [--threads N,...] [options]",
        summary: "which backend would run the inputs, and why not the others",
        abstract: """
            Prints how attention would run these inputs: the route the bias takes, the backend chosen and \
            why each other backend was passed over. With --threads, also the scaling model: the fused kernel's \
            own work items at each thread count (their tiles classified by the bias as the kernel classifies \
            them) and a simulated run of the worker pool, with the predicted speedup over one thread and the \
            critical path, for any thread count, whatever this machine has. Nothing is computed.
            """,
        options: AttentionSettings.fileOptions + [
            .value("shape", "B,H,L,S,E", "explain for inputs of these sizes instead of files (nothing is allocated)"),
            .value("kv-heads", "N", "with --shape: key/value heads (default H; fewer than H, other than 1, needs --enable-gqa)"),
            .value("dtype", dtypeChoices.joined(separator: "|"), "the dtype with --shape (default float32)"),
            .value("threads", "N,...", "also model the fused kernel at these thread counts, e.g. 2,64,128 (it runs on at most 256)"),
        ] + AttentionSettings.biasOptions.filter { $0.name != "threads" },
        epilogue: AttentionSettings.biasTable)

    static func run(_ parsed: ParsedArguments, output: CommandOutput) throws {
        let fileNames = ["query", "key", "value"]
        let givenFiles = fileNames.filter(parsed.has)
        let shapeValues = try parsed.integerList("shape", counts: [5], minimum: 0)
        let dtypeName = try parsed.choice("dtype", among: dtypeChoices)
        let kvHeads = try parsed.integer("kv-heads", minimum: 0)
        let threadCounts = try parsed.integerList("threads", minimum: 1)
        if shapeValues != nil, !givenFiles.isEmpty {
            throw UsageError("give either --shape or --query/--key/--value, not both", command: spec.name)
        }
        if shapeValues == nil, givenFiles.count < fileNames.count {
            throw UsageError("give --query, --key and --value, or --shape B,H,L,S,E", command: spec.name)
        }
        if dtypeName != nil, shapeValues == nil {
            throw UsageError("--dtype applies only with --shape (files carry their own dtype)", command: spec.name)
        }
        if kvHeads != nil, shapeValues == nil {
            throw UsageError("--kv-heads applies only with --shape (files carry their own head counts)", command: spec.name)
        }
        let settings = try AttentionSettings(parsed, readsThreads: false)

        // With --shape nothing is allocated: the sizes are explained as numbers, so any shape this
        // machine could never hold is answered too.
        let shape: AttentionShape, dtype: DType
        var files: (query: Tensor, key: Tensor, value: Tensor)?
        if let s = shapeValues {
            dtype = DType(rawValue: dtypeName ?? "float32")!
            shape = AttentionShape(batch: s[0], queryHeads: s[1], keyValueHeads: kvHeads ?? s[1], queryLength: s[2], keyLength: s[3],
                                   headDim: s[4], valueHeadDim: s[4])
            try shape.validate(dtype: dtype, enableGQA: settings.enableGQA)
        } else {
            let inputs = (try readTensor(parsed.required("query")), try readTensor(parsed.required("key")),
                          try readTensor(parsed.required("value")))
            shape = try AttentionShape(flatteningBatchDimensionsOf: inputs.0, key: inputs.1, value: inputs.2, enableGQA: settings.enableGQA)
            (files, dtype) = (inputs, inputs.0.dtype)
        }
        let bias = try settings.makeBias(for: shape)
        let explanation = try settings.withScope {
            if let files {
                return try explainSDPA(
                    query: files.query, key: files.key, value: files.value, attnMask: bias, isCausal: settings.isCausal,
                    scale: settings.scale, dropoutP: settings.dropoutP, enableGQA: settings.enableGQA)
            }
            return try explainSDPA(
                shape: shape, dtype: dtype, attnMask: bias, isCausal: settings.isCausal,
                scale: settings.scale, dropoutP: settings.dropoutP, enableGQA: settings.enableGQA)
        }
        var text = "inputs: \(shape), \(dtype)\nbias: \(settings.biasDescription)\n\(explanation)\n"
        if let threadCounts {
            let predictions = try settings.withScope {
                try predictSDPAScaling(shape: shape, dtype: dtype, attnMask: bias, isCausal: settings.isCausal,
                                       enableGQA: settings.enableGQA, threads: threadCounts)
            }
            if explanation.backend != .fused {
                text += "(these inputs do not run on the fused kernel; the model below is what it would do with them)\n"
            }
            text += ScalingModelTable.text(predictions) + "\n"
        }
        output.standardOutput(text)
    }
}
