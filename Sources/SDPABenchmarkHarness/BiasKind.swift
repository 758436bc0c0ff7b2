import SDPA

/// What building a bias for one attention problem needs: the sizes, and ALiBi slopes when
/// the caller overrides the standard ones.
public struct BiasParameters: Sendable, Hashable {
    /// `H`, the query head count (one ALiBi slope per head).
    public var heads: Int
    /// `L`.
    public var queryLength: Int
    /// `S`.
    public var keyLength: Int
    /// Slopes for ALiBi biases; `nil` means ``AlibiBias/standardSlopes(numHeads:)``.
    public var alibiSlopes: [Float]?

    /// Parameters for `heads` query heads, `queryLength` queries and `keyLength` keys.
    public init(heads: Int, queryLength: Int, keyLength: Int, alibiSlopes: [Float]? = nil) {
        self.heads = heads
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.alibiSlopes = alibiSlopes
    }

    var slopes: [Float] { alibiSlopes ?? AlibiBias.standardSlopes(numHeads: heads) }
}

/// A named attention bias: the spellings of `sdpa --bias`, of the benchmarks and of their JSON.
///
/// ``all`` is the one table that maps a spelling to a bias; a new bias type adds one entry there.
///
/// ```swift
/// let kind = BiasKind.named("alibi+causal-lower-right")!
/// let bias = try kind.makeBias(BiasParameters(heads: 8, queryLength: 512, keyLength: 2048))
/// ```
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
    private let visibility: @Sendable (_ queryLength: Int, _ keyLength: Int) -> Int

    private init(
        _ spelling: String, _ summary: String, acceptsAlibiSlopes: Bool = false, isBenchmarkMask: Bool = false,
        visibility: @escaping @Sendable (Int, Int) -> Int,
        build: @escaping @Sendable (BiasParameters) throws -> (any AttnBias)?
    ) {
        self.spelling = spelling
        self.summary = summary
        self.acceptsAlibiSlopes = acceptsAlibiSlopes
        self.isBenchmarkMask = isBenchmarkMask
        self.visibility = visibility
        self.build = build
    }

    /// Every bias with a spelling, in the order tables list them.
    public static let all: [BiasKind] = [
        BiasKind("none", "no mask", visibility: { $0 * $1 }) { _ in nil },
        BiasKind("causal-upper-left", "CausalBias, upper-left diagonal (as is_causal)",
                 visibility: causalVisibility(.upperLeft)) { causalUpperLeft($0.queryLength, $0.keyLength) },
        BiasKind("causal-lower-right", "CausalBias, lower-right diagonal (the last query sees every key)",
                 visibility: causalVisibility(.lowerRight)) { causalLowerRight($0.queryLength, $0.keyLength) },
        BiasKind("alibi", "AlibiBias without a causal mask", acceptsAlibiSlopes: true, visibility: { $0 * $1 }) {
            AlibiBias(slopes: $0.slopes, seqLenQ: $0.queryLength, seqLenKV: $0.keyLength, causal: nil)
        },
        BiasKind("alibi+causal-upper-left", "AlibiBias with an upper-left causal mask", acceptsAlibiSlopes: true,
                 visibility: causalVisibility(.upperLeft)) {
            AlibiBias(slopes: $0.slopes, seqLenQ: $0.queryLength, seqLenKV: $0.keyLength, causal: .upperLeft)
        },
        BiasKind("alibi+causal-lower-right", "AlibiBias with a lower-right causal mask", acceptsAlibiSlopes: true,
                 visibility: causalVisibility(.lowerRight)) {
            AlibiBias(slopes: $0.slopes, seqLenQ: $0.queryLength, seqLenKV: $0.keyLength, causal: .lowerRight)
        },
        BiasKind("mask-bool", "TensorBias, a fixed [L, S] bool mask: attend unless (3i + 7j) % 10 == 0",
                 isBenchmarkMask: true, visibility: { l, s in countBenchmarkBoolMask(l, s) }) {
            TensorBias(benchmarkBoolMask($0.queryLength, $0.keyLength))
        },
        BiasKind("mask-float", "TensorBias, a fixed [L, S] float mask: -0.125 * ((i + 2j) % 17)",
                 isBenchmarkMask: true, visibility: { $0 * $1 }) {
            TensorBias(benchmarkFloatMask($0.queryLength, $0.keyLength))
        },
    ]

    /// The kinds `sdpa run` and `sdpa explain` accept with `--bias`.
    public static var commandLineKinds: [BiasKind] { all.filter { !$0.isBenchmarkMask } }

    /// The kind spelled `spelling`, or `nil`.
    public static func named(_ spelling: String) -> BiasKind? { all.first { $0.spelling == spelling } }

    /// The bias for one problem; `nil` for `none`.
    ///
    /// - Throws: ``SDPAError`` when the parameters do not make a valid bias.
    public func makeBias(_ parameters: BiasParameters) throws -> (any AttnBias)? { try build(parameters) }

    /// How many of the `L x S` score positions of one head are visible (not masked), counted
    /// analytically from the bias's structure.
    public func visiblePositions(queryLength: Int, keyLength: Int) -> Int { visibility(queryLength, keyLength) }

    /// The spelling.
    public var description: String { spelling }

    /// Kinds are equal when their spellings are: the spelling is the kind's identity.
    public static func == (a: BiasKind, b: BiasKind) -> Bool { a.spelling == b.spelling }
    /// Hashes the spelling.
    public func hash(into hasher: inout Hasher) { hasher.combine(spelling) }
}

/// Visible positions of a causal mask: query `i` sees keys `0 ... i + offset`, clamped to `0 ..< S`.
private func causalVisibility(_ variant: CausalVariant) -> @Sendable (Int, Int) -> Int {
    { queryLength, keyLength in
        let offset = variant.diagonalOffset(seqLenQ: queryLength, seqLenKV: keyLength)
        return (0..<queryLength).reduce(0) { $0 + min(max($1 + offset + 1, 0), keyLength) }
    }
}

// The benchmark masks are closed formulas so that Benchmarks/pytorch_bench.py can build the
// same masks without reading files; keep the two in step.
private func benchmarkBoolMaskAttends(_ i: Int, _ j: Int) -> Bool { (3 * i + 7 * j) % 10 != 0 }

private func benchmarkBoolMask(_ queryLength: Int, _ keyLength: Int) -> Tensor {
    var bools = [Bool]()
    bools.reserveCapacity(queryLength * keyLength)
    for i in 0..<queryLength { for j in 0..<keyLength { bools.append(benchmarkBoolMaskAttends(i, j)) } }
    // The count matches the shape by construction.
    return try! Tensor(shape: [queryLength, keyLength], bools: bools)
}

private func countBenchmarkBoolMask(_ queryLength: Int, _ keyLength: Int) -> Int {
    var visible = 0
    for i in 0..<queryLength { for j in 0..<keyLength where benchmarkBoolMaskAttends(i, j) { visible += 1 } }
    return visible
}

private func benchmarkFloatMask(_ queryLength: Int, _ keyLength: Int) -> Tensor {
    var values = [Float]()
    values.reserveCapacity(queryLength * keyLength)
    for i in 0..<queryLength { for j in 0..<keyLength { values.append(-0.125 * Float((i + 2 * j) % 17)) } }
    return try! Tensor(shape: [queryLength, keyLength], scalars: values)
}
