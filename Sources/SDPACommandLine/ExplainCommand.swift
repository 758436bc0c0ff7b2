import SDPA
import SDPABenchmarkHarness

/// `sdpa explain`: which backend would run, and why each other one would not.
enum ExplainCommand {
    static let dtypeChoices = DType.allCases.filter(\.isFloatingPoint).map(\.rawValue)

    static let spec = CommandSpec(
        name: "sdpa explain",
        synopsis: "(--query FILE --key FILE --value FILE | --shape B,H,L,S,E [--dtype T]) [options]",
        summary: "which backend would run the inputs, and why not the others",
        abstract: """
            Prints how attention would run these inputs: the route the bias takes, the backend chosen and \
            why each other backend was passed over. Nothing is computed.
            """,
        options: AttentionSettings.fileOptions + [
            .value("shape", "B,H,L,S,E", "explain for zero tensors of this shape instead of files"),
            .value("dtype", dtypeChoices.joined(separator: "|"), "the dtype with --shape (default float32)"),
        ] + AttentionSettings.biasOptions.filter { $0.name != "threads" },
        epilogue: AttentionSettings.biasTable)

    static func run(_ parsed: ParsedArguments, output: CommandOutput) throws {
        let fileNames = ["query", "key", "value"]
        let givenFiles = fileNames.filter(parsed.has)
        let shapeValues = try parsed.integerList("shape", counts: [5], minimum: 0)
        let dtypeName = try parsed.choice("dtype", among: dtypeChoices)
        if shapeValues != nil, !givenFiles.isEmpty {
            throw UsageError("give either --shape or --query/--key/--value, not both", command: spec.name)
        }
        if shapeValues == nil, givenFiles.count < fileNames.count {
            throw UsageError("give --query, --key and --value, or --shape B,H,L,S,E", command: spec.name)
        }
        if dtypeName != nil, shapeValues == nil {
            throw UsageError("--dtype applies only with --shape (files carry their own dtype)", command: spec.name)
        }
        let settings = try AttentionSettings(parsed)

        let query: Tensor, key: Tensor, value: Tensor
        if let s = shapeValues {
            let dtype = DType(rawValue: dtypeName ?? "float32")!
            query = try Tensor(zeros: [s[0], s[1], s[2], s[4]], dtype: dtype)
            key = try Tensor(zeros: [s[0], s[1], s[3], s[4]], dtype: dtype)
            value = key
        } else {
            (query, key, value) = (try readTensor(parsed.required("query")), try readTensor(parsed.required("key")),
                                   try readTensor(parsed.required("value")))
        }
        let shape = try AttentionShape(query: query, key: key, value: value, enableGQA: settings.enableGQA)
        let bias = try settings.makeBias(for: shape)
        let explanation = try settings.withScope {
            try explainSDPA(
                query: query, key: key, value: value, attnMask: bias, isCausal: settings.isCausal,
                scale: settings.scale, dropoutP: settings.dropoutP, enableGQA: settings.enableGQA)
        }
        output.standardOutput("inputs: \(shape), \(query.dtype)\nbias: \(settings.biasDescription)\n\(explanation)\n")
    }
}
