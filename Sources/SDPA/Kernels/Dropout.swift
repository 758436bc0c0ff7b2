import CSDPAKernels

/// Which attention weights dropout keeps, shared by the forward and the backward pass.
///
/// The decision for position `(b, h, i, j)` of the `[B, H, L, S]` weights is a pure function of the
/// seed and the position's index `((b·H + h)·L + i)·S + j`, through the counter-based generator: the
/// same seed drops the same weights in every pass, on every backend (`sdpa_dropout_tile` draws the
/// same bits in C), at any thread count. A weight is dropped when its uniform draw is below `p`;
/// kept ones are scaled by `1 / (1 − p)`.
@usableFromInline
struct _Dropout: Sendable {
    @usableFromInline let random: _CounterRandom
    /// `p`, `0...1`.
    @usableFromInline let probability: Double
    @usableFromInline let heads: Int, queryLength: Int, keyLength: Int
    /// Where the call's query row 0 and key 0 lie in the problem the counters number: (0, 0) but for a
    /// segment of a packed problem (`_Segmentation`), which drops what the whole problem would.
    @usableFromInline let origin: (query: Int, key: Int)

    /// The dropout of `options` for problems of `shape`, or `nil` when nothing is dropped; a fresh seed
    /// when `options` has none.
    @usableFromInline
    init?(_ options: AttentionOptions, shape: AttentionShape) {
        guard options.dropoutP > 0 else { return nil }
        self.init(seed: options.dropoutSeed ?? UInt64.random(in: .min ... .max), probability: options.dropoutP, shape: shape)
    }

    /// Dropout at probability `probability` with `seed`.
    init(seed: UInt64, probability: Float, shape: AttentionShape) {
        random = _CounterRandom(seed: seed)
        self.probability = Double(probability)
        (heads, queryLength, keyLength) = (shape.queryHeads, shape.queryLength, shape.keyLength)
        origin = (0, 0)
    }

    private init(_ whole: _Dropout, origin: (query: Int, key: Int)) {
        (random, probability, heads, queryLength, keyLength) = (whole.random, whole.probability, whole.heads, whole.queryLength, whole.keyLength)
        self.origin = origin
    }

    /// The same dropout for the call whose query row 0 and key 0 are this call's `queries` and `keys`.
    @usableFromInline
    func segment(queries: Int, keys: Int) -> _Dropout {
        _Dropout(self, origin: (origin.query + queries, origin.key + keys))
    }

    /// The counter of position `(batch, head, query, key)`: its index in `[B, H, L, S]`.
    @inlinable @inline(__always)
    func counter(batch: Int, head: Int, query: Int, key: Int) -> UInt64 {
        UInt64(((batch * heads + head) * queryLength + query + origin.query) * keyLength + key + origin.key)
    }

    /// Whether the weight at `counter` is kept.
    @inline(__always)
    func keeps(_ counter: UInt64) -> Bool { random.unit(counter) >= probability }

    /// `value` as dropout leaves it at `counter`: 0 when dropped, `value / (1 − p)` when kept.
    @inline(__always)
    func apply(_ value: Double, at counter: UInt64) -> Double {
        keeps(counter) ? value / (1 - probability) : 0
    }

    /// Dropout on a float32 tile of weights (or of their gradients) in place, `rowStride` apart: query
    /// rows `queries` and keys `keys` of `(batch, head)`, with `sdpa_dropout_tile`, which draws what
    /// ``keeps(_:)`` draws and scales kept values by `Float(1 / (1 − p))`.
    @inlinable
    func apply(toTile tile: UnsafeMutablePointer<Float>, rowStride: Int, batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) {
        sdpa_dropout_tile(Int32(queries.count), Int32(keys.count), tile, rowStride, Float(probability), random.seed,
                          counter(batch: batch, head: head, query: queries.lowerBound, key: keys.lowerBound), UInt64(keyLength))
    }
}

/// The dropout decision as the forward and backward passes make it, for the tests that hold
/// `sdpa_dropout_tile` to it.
@_spi(Testing)
public enum DropoutDecision {
    /// Whether position `(batch, head, query, key)` of problems of `shape` is dropped at probability `p`
    /// for `seed`, and the counter the C tile draws it from.
    public static func drops(
        seed: UInt64, probability p: Float, shape: AttentionShape, batch: Int, head: Int, query: Int, key: Int
    ) -> (dropped: Bool, counter: UInt64) {
        let dropout = _Dropout(seed: seed, probability: p, shape: shape)
        let counter = dropout.counter(batch: batch, head: head, query: query, key: key)
        return (!dropout.keeps(counter), counter)
    }
}
