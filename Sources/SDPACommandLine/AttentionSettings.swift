import Foundation
import SDPA
import SDPABenchmarkHarness

/// The options `sdpa run` and `sdpa explain` share: bias, scale, dropout, GQA, backends and threads,
/// checked for usage errors before any file is read.
struct AttentionSettings {
    var biasKind: BiasKind?
    var maskPath: String?
    var alibiSlopes: [Float]?
    var isCausal: Bool
    var scale: Float?
    var dropoutP: Float
    var dropoutSeed: UInt64?
    var enableGQA: Bool
    var backends: Set<SDPBackend>
    var threads: Int?

    static let backendChoices = ["auto"] + SDPBackend.allCases.map(\.rawValue)

    static let biasOptions: [OptionSpec] = [
        .value("mask", "FILE", "a bool or float mask broadcastable to [B, H, L, S], used as a TensorBias; not with --bias"),
        .value("bias", "KIND", "a bias by name (see below); default none"),
        .value("alibi-slopes", "A,B,...", "ALiBi slopes, one per query head (default: the paper's slopes for H heads)"),
        .flag("is-causal", "upper-left causal mask, PyTorch's is_causal; not with --bias or --mask"),
        .value("scale", "X", "multiplies Q K^T (default 1/sqrt(E))"),
        .flag("enable-gqa", "grouped-query attention: H may be a multiple of the key/value head count"),
        .value("dropout", "P", "dropout probability in 0...1 (runs on the math backend)"),
        .value("seed", "N", "dropout seed (default: a fresh seed each run)"),
        .value("backend", backendChoices.joined(separator: "|"), "backends allowed to run (default auto: the fastest that supports the inputs)"),
        .value("threads", "N", "threads of the fused kernel (default: one per processor)"),
    ]

    static let fileOptions: [OptionSpec] = [
        .value("query", "FILE", "query .npy, [B, H, L, E] or [H, L, E]"),
        .value("key", "FILE", "key .npy, [B, Hkv, S, E] or [Hkv, S, E]"),
        .value("value", "FILE", "value .npy, [B, Hkv, S, Ev] or [Hkv, S, Ev]"),
    ]

    /// The spellings of `--bias` and the path each takes, for `--help`.
    static var biasTable: String {
        var table = TextTable(columns: [.init("KIND"), .init("bias"), .init("path")])
        for kind in BiasKind.commandLineKinds {
            let bias = try? kind.makeBias(BiasParameters(heads: 1, queryLength: 1, keyLength: 1))
            let path = bias == nil ? "no mask" : bias!.needsMaterialization ? "materialized to a mask" : "computed in the fused kernel, never materialized"
            table.append([kind.spelling, kind.summary, path])
        }
        return "bias kinds (--bias):\n" + table.rendered().split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
    }

    /// Reads and checks the options.
    ///
    /// - Throws: ``UsageError`` for values that are malformed or options that conflict.
    init(_ parsed: ParsedArguments) throws {
        let command = parsed.command
        if let spelling = parsed.string("bias") {
            try ParsedArguments.check(spelling, option: "bias", among: BiasKind.commandLineKinds.map(\.spelling), command: command)
            biasKind = BiasKind.named(spelling)
        }
        maskPath = parsed.string("mask")
        if maskPath != nil, biasKind != nil {
            throw UsageError("--mask and --bias cannot be used together: --mask is itself the bias (a TensorBias)", command: command)
        }
        alibiSlopes = try parsed.numberList("alibi-slopes")?.map { Float($0) }
        if alibiSlopes != nil, !(biasKind?.acceptsAlibiSlopes ?? false) {
            let kinds = BiasKind.commandLineKinds.filter(\.acceptsAlibiSlopes).map(\.spelling)
            throw UsageError("--alibi-slopes needs --bias \(kinds.joined(separator: "|"))", command: command)
        }
        isCausal = parsed.has("is-causal")
        if isCausal, maskPath != nil || (biasKind.map { $0.spelling != "none" } ?? false) {
            throw UsageError(
                "--is-causal cannot be combined with --bias or --mask; a causal bias carries its own diagonal (e.g. --bias causal-upper-left)",
                command: command)
        }
        scale = try parsed.number("scale").map { Float($0) }
        dropoutP = Float(try parsed.number("dropout", in: 0...1) ?? 0)
        dropoutSeed = try parsed.integer("seed", minimum: 0).map { UInt64($0) }
        enableGQA = parsed.has("enable-gqa")
        switch try parsed.choice("backend", among: Self.backendChoices) ?? "auto" {
        case "auto": backends = Set(SDPBackend.allCases)
        case let name: backends = [SDPBackend(rawValue: name)!]
        }
        threads = try parsed.integer("threads", minimum: 1)
    }

    /// The bias for inputs of `shape`: the `--mask` file, the `--bias` kind, or none.
    ///
    /// - Throws: ``SDPAError`` when the mask file cannot be read.
    func makeBias(for shape: AttentionShape) throws -> (any AttnBias)? {
        if let maskPath { return TensorBias(try readTensor(maskPath)) }
        return try biasKind?.makeBias(BiasParameters(
            heads: shape.queryHeads, queryLength: shape.queryLength, keyLength: shape.keyLength, alibiSlopes: alibiSlopes))
    }

    /// How the bias is described in output.
    var biasDescription: String {
        if let maskPath { return "TensorBias(\(maskPath))" }
        if isCausal { return "is-causal" }
        return biasKind?.spelling ?? "none"
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
