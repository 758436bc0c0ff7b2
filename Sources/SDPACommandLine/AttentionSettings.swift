import Foundation
import SDPA
import SDPABenchmarkHarness

/// The options `sdpa run`, `sdpa grad` and `sdpa explain` share: bias, scale, dropout, GQA, backends and threads,
/// checked for usage errors before any file is read.
struct AttentionSettings {
    /// `--bias`, without its `mask` part if it has one.
    var biasKind: BiasKind?
    /// How many of `--bias`'s parts come before the `--mask` file's mask: the position of its `mask` part; `nil` without
    /// one (the mask first, then the bias as spelled).
    var maskPosition: Int?
    var maskPath: String?
    /// `--sinks` (`sdpa run` and `sdpa grad`): a file of learned attention sinks, one logit per query head.
    var sinksPath: String?
    var alibiSlopes: [Double]?
    var isCausal: Bool
    var scale: Double?
    var dropoutP: Float
    var dropoutSeed: UInt64?
    var enableGQA: Bool
    var backends: Set<SDPBackend>
    var threads: Int?

    static let backendChoices = ["auto"] + SDPBackend.allCases.map(\.rawValue)

    static let biasOptions: [OptionSpec] = [
        .value("mask", "FILE", "a bool or float mask of at most 4 dimensions (the inputs' rank, for more) broadcastable to [B, H, L, S], used as a TensorBias; with --bias, composed with it: first, or where a part 'mask' of --bias stands (e.g. softcap:50+mask)"),
        .value("bias", "KIND", "a bias by name (see below); default none"),
        .value("alibi-slopes", "A,B,...", "ALiBi slopes, one per query head (default: the paper's slopes for H heads)"),
        .flag("is-causal", "upper-left causal mask, PyTorch's is_causal; not with --bias or --mask"),
        .value("scale", "X", "multiplies Q K^T (default 1/sqrt(E)); any finite number (one that float32 cannot hold runs on the math backend, in float64)"),
        .flag("enable-gqa", "grouped-query attention: H may be a multiple of the key/value head counts (without it, head counts broadcast: equal, or 1)"),
        .value("dropout", "P", "dropout probability in 0...1 (both backends drop the same weights for one --seed)"),
        .value("seed", "N", "dropout seed (default: a fresh seed each run)"),
        .value("backend", backendChoices.joined(separator: "|"), "backends allowed to run (default auto: the fastest that supports the inputs)"),
        .value("threads", "N", "threads of the fused kernel (default: one per processor)"),
    ]

    /// `--sinks` of `sdpa run` and `sdpa grad`.
    static let sinksOption = OptionSpec.value(
        "sinks", "FILE", "learned attention sinks .npy (gpt-oss): [H], one logit per query head, any float dtype, -inf for none; "
            + "each joins its head's softmax denominator and feeds no output")

    static let fileOptions: [OptionSpec] = [
        .value("query", "FILE", "query .npy, [B, H, L, E], [H, L, E] or [N, ..., H, L, E] (batch dimensions, flattened into B); any rank from 2, broadcast against key and value as PyTorch broadcasts"),
        .value("key", "FILE", "key .npy, [B, Hkv, S, E], [Hkv, S, E] or [N, ..., Hkv, S, E]; any rank from 2"),
        .value("value", "FILE", "value .npy, [B, Hkv, S, Ev], [Hkv, S, Ev] or [N, ..., Hkv, S, Ev]; any rank from 2"),
    ]

    /// The spellings of `--bias` and the path each takes, for `--help`.
    static var biasTable: String { biasHelp(kinds: BiasKind.commandLineKinds, title: "bias kinds (--bias)") }

    /// The help text on `--bias`: the fixed names, the parts and their parameters, how parts combine,
    /// and `kinds` as examples with the path each takes.
    static func biasHelp(kinds: [BiasKind], title: String) -> String {
        func indented(_ table: TextTable) -> String {
            table.rendered().split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        }
        var parts = TextTable(columns: [.init("KIND or PART"), .init("bias")])
        for kind in BiasKind.fixed where !kind.isBenchmarkMask && !kind.spelling.contains("+") {
            parts.append([kind.spelling, kind.summary])
        }
        for part in BiasKind.parts { parts.append([part.syntax, part.summary]) }
        var examples = TextTable(columns: [.init("KIND"), .init("path")])
        for kind in kinds {
            let bias = try? kind.makeBias(BiasParameters(heads: 1, queryLength: 16, keyLength: 16))
            let path = bias == nil ? "no mask"
                : bias!.needsMaterialization ? "materialized to a mask"
                : hasMaterializedForm(bias!) ? "computed in the fused kernel, never materialized"
                : "computed in the fused kernel; no materialized form (not additive)"
            examples.append([kind.spelling, path])
        }
        return """
            \(title): a name, or parts joined with '+' into one fused bias (a BiasComposition:
            a position is visible when every part sees it, scores go through the parts left to right,
            a tile is skipped when any part skips it), e.g. alibi+window:256+causal-lower-right.
            \(indented(parts))
            LEFT/RIGHT are keys before/after the aligned diagonal (FlashAttention-2's window_size); lengths
            must be non-negative; 'alibi+causal-upper-left' and 'alibi+causal-lower-right' are AlibiBias
            with its own causal mask, its distances counted from that diagonal; an alibi part in any other
            spelling counts them from the lower-right diagonal (FlashAttention-2's alibi_slopes); a part may
            repeat only if it changes scores (alibi, softcap).

            examples (the kinds sdpa bench runs by default):
            \(indented(examples))
            """
    }

    /// The `--bias` spelling `spelling`, parsed.
    ///
    /// - Throws: ``UsageError`` naming the part or parameter that does not parse, or for a benchmark mask
    ///   where those are not offered.
    static func parseBias(
        _ spelling: String, command: String, allowingBenchmarkMasks: Bool, placeholder: (part: String, meaning: String)? = nil
    ) throws -> BiasKind {
        let kind: BiasKind
        do { kind = try BiasKind.parse(spelling, placeholder: placeholder) } catch let error as BiasSpellingError {
            throw UsageError("--bias \(error.message)", command: command)
        }
        if kind.isBenchmarkMask, !allowingBenchmarkMasks {
            throw UsageError("--bias \(spelling) is a benchmark mask of sdpa bench; give a mask file with --mask", command: command)
        }
        return kind
    }

    /// Reads and checks the options; `--threads` as one count unless `readsThreads` is `false`.
    ///
    /// - Throws: ``UsageError`` for values that are malformed or options that conflict.
    init(_ parsed: ParsedArguments, readsThreads: Bool = true) throws {
        let command = parsed.command
        maskPath = parsed.string("mask")
        if let spelling = parsed.string("bias") {
            // A part `mask` says where the --mask file's mask goes among the parts.
            let parts = spelling.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
            if let position = parts.firstIndex(of: "mask") {
                guard maskPath != nil else { throw UsageError("--bias \(spelling): the part 'mask' needs --mask FILE", command: command) }
                guard parts.lastIndex(of: "mask") == position else { throw UsageError("--bias \(spelling): the part 'mask' appears twice", command: command) }
                maskPosition = position
            }
            // `--bias mask` alone is the mask alone.
            if parts != ["mask"] {
                biasKind = try Self.parseBias(spelling, command: command, allowingBenchmarkMasks: false,
                                              placeholder: ("mask", "where the --mask file's mask goes"))
            }
        }
        sinksPath = parsed.string("sinks")
        alibiSlopes = try parsed.numbersInFloatRange("alibi-slopes")
        if alibiSlopes != nil, !(biasKind?.acceptsAlibiSlopes ?? false) {
            throw UsageError("--alibi-slopes needs a --bias with ALiBi (alibi, alibi+causal-upper-left, alibi+causal-lower-right, or a composition with an alibi part)", command: command)
        }
        isCausal = parsed.has("is-causal")
        if isCausal, maskPath != nil || Self.named(biasKind) != nil {
            throw UsageError(
                "--is-causal cannot be combined with --bias or --mask; a causal bias carries its own diagonal (e.g. --bias causal-upper-left)",
                command: command)
        }
        // Any finite number, as the library takes it: one past float32's range runs on the math backend in Double.
        scale = try parsed.number("scale")
        dropoutP = Float(try parsed.number("dropout", in: 0...1) ?? 0)
        dropoutSeed = try parsed.integer("seed", minimum: 0).map { UInt64($0) }
        enableGQA = parsed.has("enable-gqa")
        switch try parsed.choice("backend", among: Self.backendChoices) ?? "auto" {
        case "auto": backends = Set(SDPBackend.allCases)
        case let name: backends = [SDPBackend(rawValue: name)!]
        }
        // `sdpa explain` reads its own --threads (a list of counts to model).
        threads = readsThreads ? try parsed.integer("threads", minimum: 1) : nil
    }

    /// The bias for inputs of `shape`: the `--mask` file, the `--bias` kind, both composed (the mask first:
    /// `TensorBias(mask).combined(with: bias)`, or after the parts before `--bias`'s `mask` part; one fused call), or none.
    ///
    /// - Throws: ``SDPAError`` when the mask file cannot be read or the kind cannot be built for these sizes.
    func makeBias(for shape: AttentionShape) throws -> (any AttnBias)? {
        try makeBias(for: shape, mask: try readMask())
    }

    /// ``makeBias(for:)`` with the `--mask` file's tensor already read (``readMask()``).
    func makeBias(for shape: AttentionShape, mask tensor: Tensor?) throws -> (any AttnBias)? {
        let parameters = BiasParameters(
            batch: shape.batch, heads: shape.queryHeads, queryLength: shape.queryLength, keyLength: shape.keyLength, alibiSlopes: alibiSlopes)
        guard let tensor else { return try biasKind?.makeBias(parameters) }
        let mask = TensorBias(tensor)
        guard let biasKind else { return mask }
        if let maskPosition {
            // The mask among the parts, each built as a part: `alibi+mask+causal-upper-left` or `alibi+causal-upper-left+mask`
            // is not the spelling `alibi+causal-upper-left` (AlibiBias with its own causal mask), so its ALiBi counts from
            // the lower-right diagonal, as the help says of any other spelling.
            var parts = try biasKind.spelling.split(separator: "+").compactMap {
                try BiasKind.parse(String($0)).makeBias(parameters) as? any FusedAttnBias
            }
            parts.insert(mask, at: Swift.min(maskPosition, parts.count))
            return parts.dropFirst().reduce(parts[0]) { combinedBias($0, $1) }
        }
        guard let built = try biasKind.makeBias(parameters) else { return mask }
        guard let fused = built as? any FusedAttnBias else {
            throw SDPAError.invalidArgument(argument: "--bias", value: biasKind.spelling, reason: "--mask composes only with a fused bias")
        }
        return combinedBias(mask, fused)
    }

    /// The `--mask` file's tensor, or `nil` without one.
    ///
    /// - Throws: ``SDPAError/npy(path:reason:)`` when it cannot be read.
    func readMask() throws -> Tensor? {
        try maskPath.map(readTensor)
    }

    /// The `--sinks` file's tensor, or `nil` without one.
    ///
    /// - Throws: ``SDPAError/npy(path:reason:)`` when it cannot be read.
    func readSinks() throws -> Tensor? {
        try sinksPath.map(readTensor)
    }

    /// The `--bias` kind when it names a bias (`--bias none` names none).
    var requestedBias: BiasKind? { Self.named(biasKind) }

    /// `kind` unless it is `none`.
    private static func named(_ kind: BiasKind?) -> BiasKind? { kind?.spelling == "none" ? nil : kind }

    /// How the bias is described in output.
    var biasDescription: String {
        if let maskPath {
            var parts = requestedBias?.spelling.split(separator: "+").map(String.init) ?? []
            parts.insert("TensorBias(\(maskPath))", at: Swift.min(maskPosition ?? 0, parts.count))
            return parts.joined(separator: "+")
        }
        if isCausal { return "is-causal" }
        return requestedBias?.spelling ?? "none"
    }

    /// Runs `body` with the backends and thread count the options ask for.
    func withScope<Result>(_ body: () throws -> Result) throws -> Result {
        try withSDPBackends(backends) { try withThreads(threads, body) }
    }
}

/// Runs `body` with the fused kernel limited to `threads` threads, or with the default count for `nil`.
public func withThreads<Result>(_ threads: Int?, _ body: () throws -> Result) rethrows -> Result {
    guard let threads else { return try body() }
    return try withSDPAThreads(threads, body)
}

/// Reads the `.npy` file at `path`.
///
/// - Throws: ``SDPAError/npy(path:reason:)`` for a missing or malformed file.
func readTensor(_ path: String) throws -> Tensor {
    try Tensor(contentsOf: URL(fileURLWithPath: path))
}

/// `--dtype` of `sdpa run` and `sdpa grad`: the dtype the attention runs in, the files' values converted
/// to it after reading. NumPy has no bfloat16: its values come in float32 files, and the results go back
/// in the files' dtypes (exactly, from bfloat16 or float16 to float32).
enum ComputeDType {
    static let option = OptionSpec.value(
        "dtype", ExplainCommand.dtypeChoices.joined(separator: "|"),
        "run in this dtype: the files' values converted to it after reading (bfloat16, which NumPy lacks, from float32 files), "
            + "the results written back in the files' dtypes (default: the query file's dtype)")

    /// The dtype `--dtype` names, or `nil`.
    /// - Throws: ``UsageError`` for a name that is not a floating-point dtype.
    static func parse(_ parsed: ParsedArguments) throws -> DType? {
        try parsed.choice("dtype", among: ExplainCommand.dtypeChoices).map { DType(rawValue: $0)! }
    }

    /// `tensor` in `dtype` (itself when `dtype` is `nil` or its own).
    static func converted(_ tensor: Tensor, to dtype: DType?) throws -> Tensor {
        try dtype.map(tensor.converted(to:)) ?? tensor
    }
}
