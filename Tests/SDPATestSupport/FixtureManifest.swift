import Foundation
import SDPA

/// One `*manifest.json` of the PyTorch fixtures (`Tests/SDPATests/Fixtures/make_*fixtures.py`): its
/// cases, the files they name, and the files of its prefix on disk, so that a test can count both.
public struct FixtureManifest: @unchecked Sendable {
    /// The folder holding the manifest and its `.npy` files.
    public let directory: URL
    /// The manifest's file name.
    public let file: String
    /// The `cases` array, one JSON object per case; empty when the manifest is missing or malformed
    /// (``problems(prefix:otherPrefixes:)`` then says so).
    public let cases: [[String: Any]]
    /// Why the manifest could not be read, if it could not.
    public let readError: String?

    /// Reads `file` in `directory`.
    public init(_ file: String, in directory: URL) {
        (self.directory, self.file) = (directory, file)
        do {
            let data = try Data(contentsOf: directory.appendingPathComponent(file))
            guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let cases = json["cases"] as? [[String: Any]] else {
                (self.cases, readError) = ([], "\(file) has no 'cases' array")
                return
            }
            (self.cases, readError) = (cases, nil)
        } catch {
            (self.cases, readError) = ([], "\(file) cannot be read: \(error)")
        }
    }

    /// Every `.npy` file the cases name (inputs, outputs, log-sum-exps, masks, at any depth).
    public var referencedFiles: [String] {
        func files(in value: Any) -> [String] {
            if let s = value as? String { return s.hasSuffix(".npy") ? [s] : [] }
            if let d = value as? [String: Any] { return d.values.flatMap(files(in:)) }
            if let a = value as? [Any] { return a.flatMap(files(in:)) }
            return []
        }
        return cases.flatMap(files(in:))
    }

    /// The `.npy` files in the folder whose names start with `prefix` and with none of `otherPrefixes`.
    public func filesOnDisk(prefix: String, otherPrefixes: [String] = []) -> Set<String> {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return Set(names.filter { name in
            name.hasSuffix(".npy") && name.hasPrefix(prefix) && !otherPrefixes.contains { !$0.isEmpty && name.hasPrefix($0) }
        })
    }

    /// What does not add up: a manifest that cannot be read, case names that repeat, named files
    /// that are missing or named twice, files of the manifest's prefix that no case names.
    public func problems(prefix: String, otherPrefixes: [String] = []) -> [String] {
        if let readError { return [readError] }
        var found = [String]()
        let names = cases.compactMap { $0["name"] as? String }
        if names.count != cases.count { found.append("\(cases.count - names.count) cases have no name") }
        if Set(names).count != names.count { found.append("case names repeat") }
        let referenced = referencedFiles, onDisk = filesOnDisk(prefix: prefix, otherPrefixes: otherPrefixes)
        if Set(referenced).count != referenced.count { found.append("a file is named by two cases (or twice by one)") }
        let missing = Set(referenced).subtracting(onDisk).sorted()
        if !missing.isEmpty { found.append("\(missing.count) named files are missing, e.g. \(missing.prefix(3))") }
        let orphans = onDisk.subtracting(referenced).sorted()
        if !orphans.isEmpty { found.append("\(orphans.count) files no case names, e.g. \(orphans.prefix(3))") }
        return found
    }
}

/// The JSON values a fixture's bias description holds.
public enum FixtureValue: Sendable, Equatable {
    case string(String), numbers([Double]), null

    /// The value of a parsed JSON object: a string, a number or list of numbers, or anything else as `.null`.
    public init(_ any: Any) {
        if let s = any as? String { self = .string(s) }
        else if let a = any as? [NSNumber] { self = .numbers(a.map(\.doubleValue)) }
        else if let n = any as? NSNumber { self = .numbers([n.doubleValue]) }
        else { self = .null }
    }

    /// The value as one integer, if it is one number.
    public var int: Int? {
        if case .numbers(let n) = self, n.count == 1 { return Int(n[0]) }
        return nil
    }

    /// The value as integers (empty unless numbers).
    public var ints: [Int] {
        if case .numbers(let n) = self { return n.map { Int($0) } }
        return []
    }

    /// The value as a causal variant, if it names one.
    public var variant: CausalVariant? {
        if case .string(let s) = self { return CausalVariant(rawValue: s) }
        return nil
    }
}

/// Bias parts as the manifests spell them (`bias_manifest.json`'s `biases`: `window`, `causal`,
/// `alibi`, `blockDiagonal`, `keyPadding`, `softCap`; `serving_manifest.json`'s `chunkedCausal`,
/// `prefixLM`, `sinkTokens`), composed left to right into one fused bias; with `inserting`, that bias
/// too, as part number `position` (`grad_manifest.json`'s `maskPart`: a ``TensorBias`` among the parts).
///
/// - Throws: ``SDPAError/invalidArgument(argument:value:reason:)`` for an unknown part or one that
///   lacks a parameter.
public func composedBias(
    _ parts: [[String: FixtureValue]], _ shape: AttentionShape, inserting extra: (any FusedAttnBias)? = nil, at position: Int = 0
) throws -> any FusedAttnBias {
    let (L, S) = (shape.queryLength, shape.keyLength)
    var biases: [any FusedAttnBias] = try parts.map { part in
        switch part["kind"] {
        case .string("window"):
            return SlidingWindowBias(seqLenQ: L, seqLenKV: S, left: part["left"]?.int, right: part["right"]?.int,
                                     alignment: part["alignment"]?.variant ?? .lowerRight)
        case .string("causal"):
            guard let variant = part["variant"]?.variant else { throw missing("variant", part) }
            return CausalBias(variant: variant, seqLenQ: L, seqLenKV: S)
        case .string("alibi"):
            let slopes: [Double]
            if case .numbers(let s)? = part["slopes"] { slopes = s } else { slopes = AlibiBias.standardSlopes(numHeads: shape.queryHeads) }
            return AlibiBias(slopes: slopes, seqLenQ: L, seqLenKV: S, causal: part["causal"]?.variant)
        case .string("blockDiagonal"):
            return BlockDiagonalBias(queryLengths: part["queryLengths"]?.ints ?? [], keyLengths: part["keyLengths"]?.ints ?? [],
                                     causal: part["causal"]?.variant)
        case .string("keyPadding"):
            return KeyPaddingBias(validKeyLengths: part["lengths"]?.ints ?? [], seqLenKV: S)
        case .string("chunkedCausal"):
            guard let size = part["chunkSize"]?.int else { throw missing("chunkSize", part) }
            return ChunkedCausalBias(seqLenQ: L, seqLenKV: S, chunkSize: size, alignment: part["alignment"]?.variant ?? .lowerRight)
        case .string("prefixLM"):
            return PrefixLMBias(prefixLengths: part["lengths"]?.ints ?? [], seqLenQ: L, seqLenKV: S,
                                alignment: part["alignment"]?.variant ?? .lowerRight)
        case .string("sinkTokens"):
            guard let sinks = part["sinkTokens"]?.int, let window = part["window"]?.int else { throw missing("sinkTokens, window", part) }
            return SinkTokensBias(sinkTokens: sinks, window: window, seqLenQ: L, seqLenKV: S, alignment: part["alignment"]?.variant ?? .lowerRight)
        case .string("softCap"):
            guard case .numbers(let cap)? = part["cap"], cap.count == 1 else { throw missing("cap", part) }
            return SoftCapBias(cap: cap[0])
        default:
            throw SDPAError.invalidArgument(argument: "kind", value: "\(String(describing: part["kind"]))", reason: "unknown bias part")
        }
    }
    if let extra { biases.insert(extra, at: Swift.min(Swift.max(0, position), biases.count)) }
    guard let first = biases.first else { throw SDPAError.invalidArgument(argument: "biases", value: "[]", reason: "no parts") }
    return biases.dropFirst().reduce(first) { combine($0, $1) }
}

private func missing(_ parameter: String, _ part: [String: FixtureValue]) -> SDPAError {
    SDPAError.invalidArgument(argument: parameter, value: "\(part)", reason: "the bias part lacks it")
}

/// Composes two existential fused biases by opening both.
public func combine(_ a: any FusedAttnBias, _ b: any FusedAttnBias) -> any FusedAttnBias {
    func open<A: FusedAttnBias>(_ a: A) -> any FusedAttnBias {
        func inner<B: FusedAttnBias>(_ b: B) -> any FusedAttnBias { a.combined(with: b) }
        return inner(b)
    }
    return open(a)
}
