/// Key padding: batch `b` has `validKeyLengths[b]` real keys, and the keys at or past that length
/// are masked — the commonest inference mask, for a batch of prompts of different lengths.
///
/// With `S = 5` and lengths `[3, 5]` (1 = attend; every query row of a batch looks the same):
///
/// ```
/// batch 0: [1, 1, 1, 0, 0]      batch 1: [1, 1, 1, 1, 1]
/// ```
///
/// A batch with length 0 has every row fully masked, and its output is 0. Tiles past a batch's
/// length are skipped: padded keys are never read.
///
/// ```swift
/// let padding = KeyPaddingBias(validKeyLengths: [37, 128], seqLenKV: 128)
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: padding)
/// ```
public struct KeyPaddingBias: FusedAttnBias, Hashable {
    /// Real keys per batch entry, each in `0...seqLenKV`.
    public var validKeyLengths: [Int]
    /// The key/value sequence length `S`.
    public var seqLenKV: Int

    /// Padding for `validKeyLengths.count` batch entries of `seqLenKV` keys.
    public init(validKeyLengths: [Int], seqLenKV: Int) {
        self.validKeyLengths = validKeyLengths
        self.seqLenKV = seqLenKV
    }

    /// `[B, 1, 1, S]`.
    public var materializedShape: [Int] { [validKeyLengths.count, 1, 1, seqLenKV] }

    /// A pure mask.
    public static var modifiesScores: Bool { false }

    /// `key < validKeyLengths[batch]`.
    @inlinable
    public func isVisible(batch: Int, head: Int, query: Int, key: Int) -> Bool { key < validKeyLengths[batch] }

    /// Full before the batch's length, empty after it.
    @inlinable
    public func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        let length = validKeyLengths[batch]
        if queries.isEmpty || keys.lowerBound >= length { return .empty }
        return keys.upperBound <= length ? .full : .partial
    }

    /// Masks the padded run at the end of every row.
    @inlinable
    public func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        let visible = keys.lowerBound..<Swift.max(keys.lowerBound, validKeyLengths[batch])
        for r in 0..<queries.count {
            _maskRow(scores + r * rowStride, keys: keys, keeping: visible)
        }
    }

    /// Checks one length per batch entry, each in `0...S`, and `seqLenKV == S`.
    public func validate(for shape: AttentionShape) throws {
        try _validateParameters()
        if validKeyLengths.count != shape.batch {
            throw SDPAError.biasMismatch(
                bias: "KeyPaddingBias", parameter: "validKeyLengths.count", expected: shape.batch,
                actual: validKeyLengths.count, inputs: "one length per batch entry; \(shape)")
        }
        try shape._check(bias: "KeyPaddingBias", seqLenQ: shape.queryLength, seqLenKV: seqLenKV)
    }
}

extension KeyPaddingBias: _ParameterChecked {
    func _validateParameters() throws {
        if seqLenKV < 0 {
            throw SDPAError.invalidArgument(argument: "KeyPaddingBias.seqLenKV", value: "\(seqLenKV)", reason: "a sequence length cannot be negative")
        }
        if let b = validKeyLengths.firstIndex(where: { $0 < 0 || $0 > seqLenKV }) {
            throw SDPAError.invalidArgument(
                argument: "KeyPaddingBias.validKeyLengths[\(b)]", value: "\(validKeyLengths[b])",
                reason: "a valid key length must be in 0...\(seqLenKV) (seqLenKV)")
        }
    }
}
