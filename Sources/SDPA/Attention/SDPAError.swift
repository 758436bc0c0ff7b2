/// Every error the library throws: each message names the argument at fault
/// and the shapes involved, so the caller can fix the call without a debugger.
///
/// ```swift
/// do { _ = try scaledDotProductAttention(query: q, key: k, value: v) }
/// catch let error as SDPAError { print(error) }
/// // "query has 8 heads (shape [1, 8, 128, 64]) and key/value have 3 (shape [1, 3, 128, 64]): without enableGQA ..."
/// ```
public enum SDPAError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A shape has a negative dimension, or a count does not match it.
    case invalidShape(argument: String, shape: [Int], reason: String)
    /// A tensor has the wrong number of dimensions.
    case rank(argument: String, shape: [Int], expected: String)
    /// Two tensors disagree on a dimension they must share.
    case shapeMismatch(argument: String, shape: [Int], other: String, otherShape: [Int], reason: String)
    /// Query and key/value head counts do not fit together.
    case headCountMismatch(query: [Int], key: [Int], enableGQA: Bool)
    /// Query, key and value do not share one element type.
    case dtypeMismatch(query: DType, key: DType, value: DType)
    /// A tensor has an element type the operation cannot take.
    case unsupportedDType(argument: String, dtype: DType, reason: String)
    /// A mask cannot be broadcast to the attention scores' shape.
    case maskNotBroadcastable(mask: [Int], target: [Int])
    /// A scalar option is out of range.
    case invalidArgument(argument: String, value: String, reason: String)
    /// A bias was built for other sizes than the inputs it is used with.
    case biasMismatch(bias: String, parameter: String, expected: Int, actual: Int, inputs: String)
    /// `isCausal` was set together with an explicit bias.
    case causalWithBias(bias: String)
    /// No backend both is allowed by ``withSDPBackends(_:_:)`` and supports the inputs.
    case noBackend(allowed: [SDPBackend], reasons: [String])
    /// An axis list does not fit a tensor.
    case invalidAxes(argument: String, axes: [Int], shape: [Int])
    /// A reshape asks for another number of elements.
    case reshape(from: [Int], to: [Int])
    /// A `.npy` file cannot be read or written.
    case npy(path: String, reason: String)
    /// Memory for `argument` cannot be had: more than this machine has, or refused by the system.
    case allocationFailed(argument: String, byteCount: Int, reason: String)
    /// A ``PagedKVCache`` has too few free blocks for an append; the cache is left unchanged.
    case kvCacheFull(sequence: String, tokens: Int, neededBlocks: Int, freeBlocks: Int, blockCount: Int)

    /// What went wrong, naming the argument and the shapes or values involved.
    public var description: String { description(naming: { $0 }) }

    /// The description with each parameter the library names (`query`, `attnMask`, `enableGQA`, …) spelled as
    /// `name` spells it: the `sdpa` command says `--mask` where a Swift caller reads `attnMask`.
    package func description(naming name: (String) -> String) -> String {
        switch self {
        case let .invalidShape(argument, shape, reason):
            // An argument that is itself a shape is named once: `shape [2, -1]: …`, not `shape has shape …`.
            return argument.hasSuffix("shape") || argument.hasSuffix("Shape")
                ? "\(name(argument)) \(shape): \(reason)" : "\(name(argument)) has shape \(shape): \(reason)"
        case let .rank(argument, shape, expected):
            return "\(name(argument)) has shape \(shape) (rank \(shape.count)); expected \(expected)"
        case let .shapeMismatch(argument, shape, other, otherShape, reason):
            return "\(name(argument)) has shape \(shape) and \(name(other)) has shape \(otherShape): \(reason)"
        case let .headCountMismatch(query, key, enableGQA):
            let hq = query.count >= 3 ? query[query.count - 3] : 0
            let hkv = key.count >= 3 ? key[key.count - 3] : 0
            let heads = "\(name("query")) has \(hq) heads (shape \(query)) and \(name("key"))/\(name("value")) have \(hkv) (shape \(key))"
            let gqa = name("enableGQA")
            if enableGQA {
                return heads + ": with \(gqa) the query head count must be a positive multiple of the key/value head count"
            }
            let pass = gqa == "enableGQA" ? "pass enableGQA: true" : "pass \(gqa)"
            return heads + ": without \(gqa) they must be equal, or one side have one head (broadcast to the other's, as PyTorch broadcasts); \(pass) for grouped-query attention"
        case let .dtypeMismatch(query, key, value):
            let (q, k, v) = (name("query"), name("key"), name("value"))
            return "\(q), \(k) and \(v) must share one dtype; got \(q) \(query), \(k) \(key), \(v) \(value)"
        case let .unsupportedDType(argument, dtype, reason):
            return "\(name(argument)) has dtype \(dtype): \(reason)"
        case let .maskNotBroadcastable(mask, target):
            return "\(name("attnMask")) of shape \(mask) cannot be broadcast to the attention scores' shape \(target); each mask dimension, aligned from the right, must equal the score dimension or be 1"
        case let .invalidArgument(argument, value, reason):
            return "\(name(argument)) = \(value): \(reason)"
        case let .biasMismatch(bias, parameter, expected, actual, inputs):
            return "\(bias).\(parameter) is \(actual) but the inputs need \(expected) (\(inputs))"
        case let .causalWithBias(bias):
            return "\(bias) should not be used with isCausal: true; pass the causal variant through the bias (e.g. causalUpperLeft(L, S)) or drop isCausal"
        case let .noBackend(allowed, reasons):
            return "no allowed backend can run these inputs (allowed: \(allowed.map(\.rawValue).joined(separator: ", "))): " + reasons.joined(separator: "; ")
        case let .invalidAxes(argument, axes, shape):
            return "\(name(argument)) \(axes) is not valid for a tensor of shape \(shape)"
        case let .reshape(from, to):
            // The target may be any sizes a caller wrote, so its count is checked, not trapped on.
            func elements(_ shape: [Int]) -> String {
                shape.contains { $0 < 0 } ? "" : " (\(_checkedProduct(shape).map(String.init) ?? "more than Int.max") elements)"
            }
            return "cannot reshape a tensor of shape \(from)\(elements(from)) to \(to)\(elements(to))"
        case let .npy(path, reason):
            return "\(path): \(reason)"
        case let .allocationFailed(argument, byteCount, reason):
            return "\(name(argument)) needs \(byteCount) bytes (\(_binaryByteCount(byteCount))): \(reason)"
        case let .kvCacheFull(sequence, tokens, needed, free, count):
            return "the paged KV cache needs \(needed) free blocks to append \(tokens) tokens to \(sequence) but has \(free) of \(count); "
                + "free (or preempt) a sequence, or create the cache with more blocks"
        }
    }
}

/// `byteCount` in the largest binary unit that keeps it at least 1: `32 GiB`, `1.5 KiB`, `12 bytes`.
func _binaryByteCount(_ byteCount: Int) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = Double(byteCount), unit = 0
    while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
    if unit == 0 { return "\(byteCount) bytes" }
    let rounded = (value * 10).rounded() / 10
    return (rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)) + " " + units[unit]
}
