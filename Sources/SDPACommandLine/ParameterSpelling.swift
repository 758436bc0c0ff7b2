import SDPA

/// The library's parameter names as the `sdpa` command spells them: an ``SDPAError`` from a call the command
/// made names the option the user typed (`--mask`), not the Swift parameter it fed (`attnMask`).
enum ParameterSpelling {
    /// Each parameter an error may name, and the option that feeds it.
    static let options: [String: String] = [
        "query": "query", "key": "key", "value": "value", "attnMask": "mask", "sinks": "sinks",
        "gradOutput": "grad-out", "scale": "scale", "dropoutP": "dropout", "dropoutSeed": "seed",
        "enableGQA": "enable-gqa", "threads": "threads",
    ]

    /// `parameter` (or an element of it, `sinks[3]`) as `--option` when the command line gave that option, or
    /// when it is a flag of `spec` (the message may tell the user to add it); as the library names it otherwise
    /// (e.g. `query` for `sdpa explain --shape`, which reads no query file).
    static func name(_ parameter: String, spec: CommandSpec, given arguments: ParsedArguments?) -> String {
        let root = parameter.prefix { $0 != "[" && $0 != "." }
        guard let option = options[String(root)],
              let known = spec.options.first(where: { $0.name == option }),
              known.valueName == nil || arguments?.has(option) == true
        else { return parameter }
        return "--" + option + parameter.dropFirst(root.count)
    }
}
