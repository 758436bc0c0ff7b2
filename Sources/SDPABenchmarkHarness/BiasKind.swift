import SDPA

/// What building a bias for one attention problem needs: the sizes, and ALiBi slopes when
/// the caller overrides the standard ones.
public struct BiasParameters: Sendable, Hashable {
    /// `B`, the batch size (one valid key length per batch entry for key padding).
    public var batch: Int
    /// `H`, the query head count (one ALiBi slope per head).
    public var heads: Int
    /// `L`.
    public var queryLength: Int
    /// `S`.
    public var keyLength: Int
    /// Slopes for ALiBi biases; `nil` means ``AlibiBias/standardSlopes(numHeads:)``.
    public var alibiSlopes: [Double]?

    /// Parameters for `batch` entries of `heads` query heads, `queryLength` queries and `keyLength` keys.
    public init(batch: Int = 1, heads: Int, queryLength: Int, keyLength: Int, alibiSlopes: [Double]? = nil) {
        self.batch = batch
        self.heads = heads
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.alibiSlopes = alibiSlopes
    }

    /// The ALiBi slopes: the given ones, or the standard ones for ``heads`` heads.
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` for more heads than memory holds slopes for.
    func slopes() throws -> [Double] {
        if let alibiSlopes { return alibiSlopes }
        try checkPerEntryValues(heads, of: "ALiBi slope for each of H = \(heads) heads")
        return AlibiBias.standardSlopes(numHeads: heads)
    }

    /// Throws unless `count` values of one word each (one per head or per batch entry, from the sizes
    /// alone) fit in memory: an error, not an abort, for sizes that `sdpa explain` takes without allocating.
    func checkPerEntryValues(_ count: Int, of what: String) throws {
        let bytes = count.multipliedReportingOverflow(by: MemoryLayout<Int>.size)
        if bytes.overflow || bytes.partialValue > Tensor.maximumByteCount {
            throw SDPAError.allocationFailed(argument: "one \(what)", byteCount: bytes.overflow ? .max : bytes.partialValue,
                                             reason: "more than this machine's memory")
        }
    }
}

/// A `--bias` spelling that does not parse: an unknown part, or a malformed or out-of-range
/// parameter. The message names the parameter; the command line reports it as a usage error.
public struct BiasSpellingError: Error, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. `window:-1: LEFT must be a non-negative integer, got '-1'`.
    public var message: String
    /// An error saying `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// A named attention bias: the spellings of `sdpa --bias`, of the benchmarks and of their JSON.
///
/// A spelling is either one of the fixed names of ``fixed`` (`none`, `alibi+causal-lower-right`,
/// the benchmark masks …) or parts of ``parts`` joined with `+`, each `NAME` or `NAME:ARGS`, which
/// build one ``BiasComposition`` (one fused kernel instantiation, see ``combinedBias(_:_:)``):
///
/// ```swift
/// let kind = try BiasKind.parse("alibi+window:256+causal-lower-right")
/// let bias = try kind.makeBias(BiasParameters(heads: 8, queryLength: 512, keyLength: 2048))
/// ```
///
/// These two tables are the only place a spelling is mapped to a bias; a new bias type adds one entry.
public struct BiasKind: Sendable, Hashable, CustomStringConvertible {
    /// The spelling on the command line and in JSON, e.g. `causal-lower-right`.
    public let spelling: String
    /// What the bias is, for `--help` and tables.
    public let summary: String
    /// Whether `--alibi-slopes` applies.
    public let acceptsAlibiSlopes: Bool
    /// A fixed-pattern dense mask that exists to benchmark ``TensorBias``: offered by
    /// `sdpa bench` and the benchmarks, not by `sdpa run` (which reads real masks with `--mask`).
    public let isBenchmarkMask: Bool
    private let build: @Sendable (BiasParameters) throws -> (any AttnBias)?
    /// Visible positions over `B x H x L x S`; `nil` to count them on the built bias.
    private let visibility: (@Sendable (BiasParameters) -> Int)?

    private init(
        _ spelling: String, _ summary: String, acceptsAlibiSlopes: Bool = false, isBenchmarkMask: Bool = false,
        visibility: (@Sendable (BiasParameters) -> Int)? = nil,
        build: @escaping @Sendable (BiasParameters) throws -> (any AttnBias)?
    ) {
        self.spelling = spelling
        self.summary = summary
        self.acceptsAlibiSlopes = acceptsAlibiSlopes
        self.isBenchmarkMask = isBenchmarkMask
        self.visibility = visibility
        self.build = build
    }

    /// The spellings that are not compositions of ``parts``: no mask, the ALiBi biases with their own
    /// built-in causal mask (one bias type, not a composition), and the benchmark masks.
    public static let fixed: [BiasKind] = [
        BiasKind("none", "no mask", visibility: { $0.batch * $0.heads * $0.queryLength * $0.keyLength }) { _ in nil },
        BiasKind("alibi+causal-upper-left", "AlibiBias with its upper-left causal mask", acceptsAlibiSlopes: true) {
            AlibiBias(slopes: try $0.slopes(), seqLenQ: $0.queryLength, seqLenKV: $0.keyLength, causal: .upperLeft)
        },
        BiasKind("alibi+causal-lower-right", "AlibiBias with its lower-right causal mask", acceptsAlibiSlopes: true) {
            AlibiBias(slopes: try $0.slopes(), seqLenQ: $0.queryLength, seqLenKV: $0.keyLength, causal: .lowerRight)
        },
        BiasKind("mask-bool", "TensorBias, a fixed [L, S] bool mask: attend unless (3i + 7j) % 10 == 0",
                 isBenchmarkMask: true, visibility: { $0.batch * $0.heads * countBenchmarkBoolMask($0.queryLength, $0.keyLength) }) {
            TensorBias(try benchmarkBoolMask($0.queryLength, $0.keyLength))
        },
        BiasKind("mask-float", "TensorBias, a fixed [L, S] float mask: -0.125 * ((i + 2j) % 17)",
                 isBenchmarkMask: true, visibility: { $0.batch * $0.heads * $0.queryLength * $0.keyLength }) {
            TensorBias(try benchmarkFloatMask($0.queryLength, $0.keyLength))
        },
    ]

    /// The parts a spelling joins with `+`.
    public static let parts: [BiasPart] = BiasPart.all

    /// The kinds tables list, in order: what `sdpa bench`, the demo and the benchmarks run by default.
    public static let all: [BiasKind] = [
        "none", "causal-upper-left", "causal-lower-right", "alibi", "alibi+causal-upper-left", "alibi+causal-lower-right",
        "window:256", "window-upper-left:64,64", "padding", "block-diagonal", "block-diagonal-causal",
        "softcap:30+causal-upper-left", "alibi+window:256+causal-lower-right",
        "mask-bool", "mask-float",
    ].map { try! parse($0) }

    /// The kinds `sdpa run` and `sdpa explain` list in their help (any spelling of ``parse(_:placeholder:)`` that is
    /// not a benchmark mask is accepted).
    public static var commandLineKinds: [BiasKind] { all.filter { !$0.isBenchmarkMask } }

    /// The kind spelled `spelling`, or `nil` when it does not parse.
    public static func named(_ spelling: String) -> BiasKind? { try? parse(spelling) }

    /// Parses a spelling: a name of ``fixed``, or parts of ``parts`` joined with `+`.
    ///
    /// - Parameter placeholder: a part that stands for a bias given elsewhere (`sdpa`'s `mask`, where the `--mask`
    ///   file's mask goes) and what it means: skipped, the kind (and its ``spelling``) made of the other parts, at
    ///   least one; an error about parts that repeat quotes `spelling` as written, the unknown-part error lists
    ///   the placeholder among the parts.
    /// - Throws: ``BiasSpellingError`` naming the part or parameter that is wrong, or when only the placeholder is
    ///   given.
    public static func parse(_ spelling: String, placeholder: (part: String, meaning: String)? = nil) throws -> BiasKind {
        let written = spelling.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        let texts = written.filter { $0 != placeholder?.part }
        if let placeholder, texts.isEmpty { throw BiasSpellingError("'\(spelling)' has no part but '\(placeholder.part)'") }
        let kept = texts.joined(separator: "+")
        if let kind = fixed.first(where: { $0.spelling == kept }) { return kind }
        let parsed: [ParsedBiasPart] = try texts.map { text in
            let colon = text.firstIndex(of: ":")
            let name = colon.map { String(text[..<$0]) } ?? text
            let arguments = colon.map { String(text[text.index(after: $0)...]) }
            guard let part = BiasPart.all.first(where: { $0.name == name }) else {
                if fixed.contains(where: { $0.spelling == text }) {
                    throw BiasSpellingError("'\(text)' cannot be combined with other parts with '+'")
                }
                let partSyntax = BiasPart.all.map(\.syntax) + (placeholder.map { ["\($0.part) (\($0.meaning))"] } ?? [])
                throw BiasSpellingError(
                    "unknown bias '\(written.count == 1 ? spelling : text)'; expected \(fixed.filter { !$0.isBenchmarkMask }.map(\.spelling).joined(separator: ", ")), "
                        + "or parts joined with '+': \(partSyntax.joined(separator: ", "))")
            }
            return ParsedBiasPart(part: part, text: text, value: try part.parse(arguments, text))
        }
        if parsed.count > 1 {
            // A mask given twice is the same mask (most likely a slip); a score modifier twice changes the scores again.
            for (n, p) in parsed.enumerated() where !p.part.modifiesScores && parsed[..<n].contains(where: { $0.text == p.text }) {
                throw BiasSpellingError("'\(p.text)' appears twice in '\(spelling)'")
            }
        }
        let summary = parsed.count == 1 ? parsed[0].value.summary
            : "composition: " + parsed.map(\.value.summary).joined(separator: " + ")
        let values = parsed.map(\.value)
        return BiasKind(kept, summary, acceptsAlibiSlopes: parsed.contains { $0.part.acceptsAlibiSlopes }) { parameters in
            var bias = try values[0].make(parameters)
            for value in values.dropFirst() { bias = combinedBias(bias, try value.make(parameters)) }
            return bias
        }
    }

    /// The bias for one problem; `nil` for `none`.
    ///
    /// - Throws: ``SDPAError`` when the parameters do not make a valid bias for these sizes (e.g. block
    ///   lengths that do not sum to `L`, a padding length past `S`), naming the parameter.
    public func makeBias(_ parameters: BiasParameters) throws -> (any AttnBias)? { try build(parameters) }

    /// How many of the `L x S` score positions of one batch entry and head are visible (not masked), for `B = 1`.
    public func visiblePositions(queryLength: Int, keyLength: Int) -> Int {
        visiblePositions(BiasParameters(heads: 1, queryLength: queryLength, keyLength: keyLength))
    }

    /// How many of the `B x H x L x S` score positions are visible (not masked): exact, counted on the
    /// built bias tile by tile (``FusedAttnBias/tileVisibility(batch:head:queries:keys:)`` answers whole
    /// tiles, ``FusedAttnBias/isVisible(batch:head:query:key:)`` the partial ones) for batch entry and
    /// head 0 of each batch (the built-in masks are the same for every head). `B x H x L x S` when the
    /// bias cannot be built for these sizes.
    public func visiblePositions(_ parameters: BiasParameters) -> Int {
        if let visibility { return visibility(parameters) }
        let p = parameters
        guard let bias = try? build(p) else { return p.batch * p.heads * p.queryLength * p.keyLength }
        guard let fused = bias as? any FusedAttnBias else { return p.batch * p.heads * p.queryLength * p.keyLength }
        return countVisiblePositions(fused, batch: p.batch, queryLength: p.queryLength, keyLength: p.keyLength) * p.heads
    }

    /// The spelling.
    public var description: String { spelling }

    /// Kinds are equal when their spellings are: the spelling is the kind's identity.
    public static func == (a: BiasKind, b: BiasKind) -> Bool { a.spelling == b.spelling }
    /// Hashes the spelling.
    public func hash(into hasher: inout Hasher) { hasher.combine(spelling) }
}

/// One part of a `+`-joined bias spelling: `NAME` or `NAME:ARGS`.
public struct BiasPart: Sendable {
    /// The name before `:`.
    public let name: String
    /// The spelling with its parameters, for help: `window:LEFT[,RIGHT]`.
    public let syntax: String
    /// What the part is, for help.
    public let summary: String
    /// Whether `--alibi-slopes` applies.
    public let acceptsAlibiSlopes: Bool
    /// Whether the part changes visible scores (ALiBi, soft-capping), so that giving it twice is not redundant.
    public let modifiesScores: Bool
    fileprivate let parse: @Sendable (_ arguments: String?, _ text: String) throws -> ParsedBiasValue

    fileprivate init(_ name: String, syntax: String? = nil, _ summary: String, acceptsAlibiSlopes: Bool = false,
                     modifiesScores: Bool = false, parse: @escaping @Sendable (String?, String) throws -> ParsedBiasValue) {
        self.name = name
        self.syntax = syntax ?? name
        self.summary = summary
        self.acceptsAlibiSlopes = acceptsAlibiSlopes
        self.modifiesScores = modifiesScores
        self.parse = parse
    }

    /// Every part, in help order.
    static let all: [BiasPart] = [
        BiasPart("causal-upper-left", "CausalBias, upper-left diagonal (as is_causal)", parse: noArguments { p in
            causalUpperLeft(p.queryLength, p.keyLength)
        }),
        BiasPart("causal-lower-right", "CausalBias, lower-right diagonal (the last query sees every key)", parse: noArguments { p in
            causalLowerRight(p.queryLength, p.keyLength)
        }),
        BiasPart("alibi", "AlibiBias without a causal mask", acceptsAlibiSlopes: true, modifiesScores: true, parse: noArguments { p in
            AlibiBias(slopes: try p.slopes(), seqLenQ: p.queryLength, seqLenKV: p.keyLength, causal: nil)
        }),
        window("window", .lowerRight),
        window("window-upper-left", .upperLeft),
        perBatchLengths("padding", "KeyPaddingBias: batch b attends to its first LEN_b keys, one LEN per batch entry (default: half of S each)",
                        type: "KeyPaddingBias", noun: "valid key length", byDefault: "half of the keys of every batch entry valid") { lengths, p in
            KeyPaddingBias(validKeyLengths: lengths, seqLenKV: p.keyLength)
        },
        blockDiagonal("block-diagonal", causal: nil),
        blockDiagonal("block-diagonal-causal", causal: .upperLeft),
        BiasPart("softcap", syntax: "softcap:CAP", "SoftCapBias: scores become CAP * tanh(score / CAP) (Gemma 2); no materialized form",
                 modifiesScores: true) { arguments, text in
            guard let arguments else { throw BiasSpellingError("\(text): softcap needs its CAP, e.g. softcap:30") }
            guard let cap = Double(arguments), cap.isFinite, cap > 0, Float(cap).isFinite, Float(cap) > 0 else {
                throw BiasSpellingError("\(text): CAP must be a positive finite number (in float32's range), got '\(arguments)'")
            }
            return ParsedBiasValue(summary: "SoftCapBias, cap \(arguments)") { _ in SoftCapBias(cap: cap) }
        },
        chunkedCausal("chunked-causal", .lowerRight),
        chunkedCausal("chunked-causal-upper-left", .upperLeft),
        perBatchLengths("prefix-lm", "PrefixLMBias: batch b sees its first LEN_b keys from every query, causal (lower-right) after them; one LEN per batch entry (default: half of S each)",
                        type: "PrefixLMBias", noun: "prefix length", byDefault: "half of the keys of every batch entry a prefix") { lengths, p in
            PrefixLMBias(prefixLengths: lengths, seqLenQ: p.queryLength, seqLenKV: p.keyLength)
        },
        BiasPart("sink-tokens", syntax: "sink-tokens:N,WINDOW",
                 "SinkTokensBias (StreamingLLM): the first N keys and the WINDOW keys before each query's position (lower-right), causal") { arguments, text in
            guard let arguments else { throw BiasSpellingError("\(text): sink-tokens needs N,WINDOW, e.g. sink-tokens:4,1020") }
            let sizes = try integers(arguments, text, names: ["N", "WINDOW"], label: "", count: 2...2)
            return ParsedBiasValue(summary: "SinkTokensBias, \(sizes[0]) sink tokens, window \(sizes[1])") { p in
                SinkTokensBias(sinkTokens: sizes[0], window: sizes[1], seqLenQ: p.queryLength, seqLenKV: p.keyLength)
            }
        },
    ]

    private static func noArguments(_ make: @escaping @Sendable (BiasParameters) throws -> any FusedAttnBias) -> @Sendable (String?, String) throws -> ParsedBiasValue {
        { arguments, text in
            if arguments != nil {
                throw BiasSpellingError("\(text): '\(text.prefix { $0 != ":" })' takes no parameters")
            }
            let name = String(text)
            return ParsedBiasValue(summary: BiasPart.all.first { $0.name == name }?.summary ?? name, make: make)
        }
    }

    private static func window(_ name: String, _ alignment: CausalVariant) -> BiasPart {
        let side = alignment == .lowerRight ? "lower-right" : "upper-left"
        return BiasPart(
            name, syntax: "\(name):LEFT[,RIGHT]",
            "SlidingWindowBias, \(side): query i sees keys i+d-LEFT ... i+d+RIGHT (d = \(alignment == .lowerRight ? "S-L" : "0"); RIGHT default 0, causal)"
        ) { arguments, text in
            guard let arguments else { throw BiasSpellingError("\(text): \(name) needs its size, e.g. \(name):256 or \(name):128,128") }
            let sizes = try integers(arguments, text, names: ["LEFT", "RIGHT"], label: "", count: 1...2)
            let (left, right) = (sizes[0], sizes.count > 1 ? sizes[1] : 0)
            return ParsedBiasValue(summary: "SlidingWindowBias, \(side), left \(left), right \(right)") { p in
                SlidingWindowBias(seqLenQ: p.queryLength, seqLenKV: p.keyLength, left: left, right: right, alignment: alignment)
            }
        }
    }

    /// A part taking one length per batch entry, `NAME[:LEN,...]` (default: half of S each), each at most S.
    private static func perBatchLengths(
        _ name: String, _ summary: String, type: String, noun: String, byDefault: String,
        make: @escaping @Sendable ([Int], BiasParameters) -> any FusedAttnBias
    ) -> BiasPart {
        BiasPart(name, syntax: "\(name)[:LEN,...]", summary) { arguments, text in
            let lengths = try arguments.map { try integers($0, text, names: nil, label: "LEN", count: nil) }
            let summary = lengths.map { "\(type), \(noun)s \($0.map(String.init).joined(separator: ", "))" } ?? "\(type), \(byDefault)"
            return ParsedBiasValue(summary: summary) { p in
                // One Int per batch entry: a batch too large for memory is an error, not an abort.
                if lengths == nil { try p.checkPerEntryValues(p.batch, of: "\(noun) for each of B = \(p.batch) batch entries") }
                let given = lengths ?? Array(repeating: (p.keyLength + 1) / 2, count: p.batch)
                if given.count != p.batch {
                    throw SDPAError.invalidArgument(
                        argument: "--bias \(text) (LEN)", value: "\(given.count) lengths",
                        reason: "\(name) takes one \(noun) per batch entry, and the batch size B is \(p.batch)")
                }
                if let b = given.firstIndex(where: { $0 > p.keyLength }) {
                    throw SDPAError.invalidArgument(
                        argument: "--bias \(text) (LEN of batch \(b))", value: "\(given[b])",
                        reason: "a \(noun) cannot be longer than the key length S = \(p.keyLength)")
                }
                return make(given, p)
            }
        }
    }

    private static func chunkedCausal(_ name: String, _ alignment: CausalVariant) -> BiasPart {
        let side = alignment == .lowerRight ? "lower-right" : "upper-left"
        return BiasPart(
            name, syntax: "\(name):SIZE",
            "ChunkedCausalBias, \(side) (Llama 4's local layers): causal within chunks of SIZE positions"
        ) { arguments, text in
            guard let arguments else { throw BiasSpellingError("\(text): \(name) needs its chunk size, e.g. \(name):8192") }
            let size = try integers(arguments, text, names: ["SIZE"], label: "", count: 1...1)[0]
            guard size >= 1 else { throw BiasSpellingError("\(text): SIZE must be a positive integer, got '\(arguments)' (a chunk holds at least one position)") }
            return ParsedBiasValue(summary: "ChunkedCausalBias, \(side), chunks of \(size)") { p in
                ChunkedCausalBias(seqLenQ: p.queryLength, seqLenKV: p.keyLength, chunkSize: size, alignment: alignment)
            }
        }
    }

    private static func blockDiagonal(_ name: String, causal: CausalVariant?) -> BiasPart {
        BiasPart(
            name, syntax: "\(name)[:L1,L2,...]",
            "BlockDiagonalBias, packed sequences of these lengths (key lengths equal, they sum to L = S)\(causal == nil ? "" : ", causal in each")"
                + " (default: \(defaultPackedSequences) equal sequences)"
        ) { arguments, text in
            let lengths = try arguments.map { try integers($0, text, names: nil, label: "L", count: nil) }
            let what = causal == nil ? "BlockDiagonalBias" : "BlockDiagonalBias, causal"
            let summary = lengths.map { "\(what), sequence lengths \($0.map(String.init).joined(separator: ", "))" }
                ?? "\(what), \(defaultPackedSequences) equal sequences"
            return ParsedBiasValue(summary: summary) { p in
                let sequences = lengths ?? equalLengths(total: p.queryLength, count: defaultPackedSequences)
                var sum = 0
                for length in sequences {
                    let (total, overflow) = sum.addingReportingOverflow(length)
                    if overflow {
                        throw SDPAError.invalidArgument(argument: "--bias \(text) (sequence lengths)", value: "\(sequences)",
                                                        reason: "the lengths sum past Int.max")
                    }
                    sum = total
                }
                if sum != p.queryLength || sum != p.keyLength {
                    let which = sum != p.queryLength ? "query length L = \(p.queryLength)" : "key length S = \(p.keyLength)"
                    throw SDPAError.invalidArgument(
                        argument: "--bias \(text) (sequence lengths)", value: "sum \(sum)",
                        reason: "the packed sequence lengths must sum to the \(which) (key lengths equal the query lengths)")
                }
                return BlockDiagonalBias(queryLengths: sequences, causal: causal)
            }
        }
    }

    /// `text`'s comma-separated non-negative integers.
    private static func integers(_ arguments: String, _ text: String, names: [String]?, label: String, count: ClosedRange<Int>?) throws -> [Int] {
        let items = arguments.split(separator: ",", omittingEmptySubsequences: false)
        if let count, !count.contains(items.count) {
            throw BiasSpellingError("\(text): expected \(names!.prefix(count.upperBound).joined(separator: ",")), got '\(arguments)'")
        }
        return try items.enumerated().map { n, item in
            let name = names.map { $0[n] } ?? "\(label)\(n + 1)"
            guard let value = Int(item) else { throw BiasSpellingError("\(text): \(name) must be a non-negative integer, got '\(item)'") }
            guard value >= 0 else {
                throw BiasSpellingError("\(text): \(name) must be a non-negative integer, got '\(item)' (\(names == nil ? "a length" : name == "N" ? "a count" : name == "SIZE" ? "a chunk size" : "a window size") cannot be negative)")
            }
            return value
        }
    }
}

/// How many sequences `block-diagonal` packs without lengths.
public let defaultPackedSequences = 8

/// `total` split into `count` lengths that differ by at most one, the longer first.
public func equalLengths(total: Int, count: Int) -> [Int] {
    (0..<count).map { total / count + ($0 < total % count ? 1 : 0) }
}

/// A parsed part: its summary and how to build it for given sizes.
struct ParsedBiasValue: Sendable {
    var summary: String
    var make: @Sendable (BiasParameters) throws -> any FusedAttnBias
}

private struct ParsedBiasPart {
    var part: BiasPart
    var text: String
    var value: ParsedBiasValue
}

/// `a.combined(with: b)` for two biases whose types are known only at run time: opens both
/// existentials so that the result is the one ``BiasComposition`` type a user would write.
public func combinedBias(_ a: any FusedAttnBias, _ b: any FusedAttnBias) -> any FusedAttnBias {
    func openFirst<A: FusedAttnBias>(_ a: A) -> any FusedAttnBias {
        func openSecond<B: FusedAttnBias>(_ b: B) -> any FusedAttnBias { a.combined(with: b) }
        return openSecond(b)
    }
    return openFirst(a)
}

/// Whether `bias` has a materialized form: false for non-additive fused biases (soft-capping),
/// whose `materialize(device:)` throws.
public func hasMaterializedForm(_ bias: any AttnBias) -> Bool {
    guard let fused = bias as? any FusedAttnBias else { return true }
    func additive<F: FusedAttnBias>(_ f: F) -> Bool { F.isAdditive }
    return additive(fused)
}

/// Visible positions of `bias` over `batch x L x S` at head 0: whole tiles by
/// ``FusedAttnBias/tileVisibility(batch:head:queries:keys:)`` (exact for `.empty` and `.full` by the
/// protocol's rules), element by element on partial tiles.
public func countVisiblePositions(_ bias: any FusedAttnBias, batch: Int, queryLength: Int, keyLength: Int, tile: Int = 64) -> Int {
    func count<F: FusedAttnBias>(_ bias: F) -> Int {
        var total = 0
        for b in 0..<batch {
            for q0 in stride(from: 0, to: queryLength, by: tile) {
                let queries = q0..<min(q0 + tile, queryLength)
                for k0 in stride(from: 0, to: keyLength, by: tile) {
                    let keys = k0..<min(k0 + tile, keyLength)
                    switch bias.tileVisibility(batch: b, head: 0, queries: queries, keys: keys) {
                    case .empty: continue
                    case .full: total += queries.count * keys.count
                    case .partial:
                        for i in queries { for j in keys where bias.isVisible(batch: b, head: 0, query: i, key: j) { total += 1 } }
                    }
                }
            }
        }
        return total
    }
    return count(bias)
}

// The benchmark masks are closed formulas so that Benchmarks/pytorch_bench.py can build the
// same masks without reading files; keep the two in step.
private func benchmarkBoolMaskAttends(_ i: Int, _ j: Int) -> Bool { (3 * i + 7 * j) % 10 != 0 }

private func benchmarkBoolMask(_ queryLength: Int, _ keyLength: Int) throws -> Tensor {
    try Tensor(shape: [queryLength, keyLength], dtype: .bool) { n in
        benchmarkBoolMaskAttends(n / keyLength, n % keyLength) ? 1 : 0
    }
}

private func countBenchmarkBoolMask(_ queryLength: Int, _ keyLength: Int) -> Int {
    var visible = 0
    for i in 0..<queryLength { for j in 0..<keyLength where benchmarkBoolMaskAttends(i, j) { visible += 1 } }
    return visible
}

private func benchmarkFloatMask(_ queryLength: Int, _ keyLength: Int) throws -> Tensor {
    try Tensor(shape: [queryLength, keyLength]) { n in Double(-0.125 * Float((n / keyLength + 2 * (n % keyLength)) % 17)) }
}
