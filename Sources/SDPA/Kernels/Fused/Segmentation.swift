/// One independent piece of a problem its bias cuts (`_ScoreModifier.segments(groupingRows:)`): query
/// rows `queries` see keys `keys` only, biased by `modifier` (the whole problem's bias seen from the segment's
/// first row and key).
@usableFromInline
struct _Segment<Modifier: _ScoreModifier> {
    @usableFromInline let queries: Range<Int>, keys: Range<Int>
    @usableFromInline let modifier: Modifier

    @inlinable
    init(queries: Range<Int>, keys: Range<Int>, modifier: Modifier) {
        (self.queries, self.keys, self.modifier) = (queries, keys, modifier)
    }
}

/// Packed sequences run as their own calls (FlashAttention's variable-length batches): one call per
/// segment, all of them one job of the worker pool, each writing its rows of the one result in place.
///
/// The tile grid of the whole problem fits sequences badly: a query tile straddles two sequences and its
/// key tiles, aligned to the grid, reach into their neighbours, so scores are computed only to be masked
/// (most of them when the sequences are short). A segment's own call tiles only its own rows and keys.
/// Segments are used when the positions their tiles visit are at most ``worthwhile`` of the grid's. A
/// segment's bits are those of its sequences run alone as a call of their own, at any thread count. Dropout
/// drops what it drops in the whole problem (its draws are numbered by positions of the whole problem).
/// The backward pass runs the same segments (`Segmentation+Backward.swift`).
@usableFromInline
struct _Segmentation<Modifier: _ScoreModifier> {
    @usableFromInline let shape: AttentionShape
    @usableFromInline let segments: [_Segment<Modifier>]
    /// The whole problem's dropout (one seed for every segment), if any.
    @usableFromInline let dropout: _Dropout?
    /// The score positions the segments' tiles visit, as a share of those one call's tiles would.
    @usableFromInline let visitedShare: Double

    /// Segments run when they visit at most this share of the positions the grid visits: with as many, they
    /// still run faster (no tile of theirs straddles two sequences, so none is masked by the bias).
    @inlinable static var worthwhile: Double { 1 }

    /// The segments of `modifier` on `shape` when running them pays, `nil` otherwise.
    @inlinable
    init?(shape: AttentionShape, modifier: Modifier, options: AttentionOptions) {
        // A bias that does not cut the problem answers without a tiling (on every fused call's path); the
        // packed path builds it twice, beside a plan per segment.
        guard shape.queryLength > 0,
              let segments = modifier.segments(groupingRows: _FusedTiling(shape).queryRows), segments.count > 1 else { return nil }
        let tiling = _FusedTiling(shape)
        let grid = Self.visitedPositions(shape: shape, tiling: tiling, modifier: modifier, segments: segments)
        var own = 0
        for segment in segments where !segment.queries.isEmpty {
            let part = Self.shape(of: segment, in: shape)
            own += Self.visitedPositions(shape: part, tiling: _FusedTiling(part), modifier: segment.modifier,
                                         segments: [_Segment(queries: 0..<part.queryLength, keys: 0..<part.keyLength, modifier: segment.modifier)])
        }
        visitedShare = Double(own) / Double(Swift.max(1, grid))
        guard visitedShare <= Self.worthwhile else { return nil }
        (self.shape, self.segments, dropout) = (shape, segments, _Dropout(options, shape: shape))
    }

    /// The shape of `segment`'s own call.
    @inlinable
    static func shape(of segment: _Segment<Modifier>, in shape: AttentionShape) -> AttentionShape {
        var part = shape
        (part.queryLength, part.keyLength) = (segment.queries.count, segment.keys.count)
        return part
    }

    /// Score positions of one (batch, head) that the tiles of `tiling` visit (tiles not skipped by the
    /// bias), each query tile reading only the key tiles that reach the keys of the segments its rows lie in.
    @inlinable
    static func visitedPositions(shape: AttentionShape, tiling: _FusedTiling, modifier: Modifier, segments: [_Segment<Modifier>]) -> Int {
        let columns = tiling.keyColumns
        var positions = 0, first = 0
        for t in 0..<tiling.queryTiles {
            let rows = tiling.rows(ofTile: t, length: shape.queryLength)
            while segments[first].queries.upperBound <= rows.lowerBound { first += 1 }
            var last = first
            while segments[last].queries.upperBound < rows.upperBound { last += 1 }
            let (low, high) = (segments[first].keys.lowerBound, segments[last].keys.upperBound)
            var k0 = low / columns * columns
            while k0 < high {
                let keys = k0..<Swift.min(k0 + columns, shape.keyLength)
                if modifier.tileVisibility(batch: 0, head: 0, queries: rows, keys: keys) != .empty {
                    positions += rows.count * keys.count
                }
                k0 += columns
            }
        }
        return positions
    }

    /// Runs every segment as a call of its own in one job, into one result (with the log-sum-exp when
    /// `logSumExp` asks for it; in `outputDType`, by default the query's).
    @inlinable
    func run(query: Tensor, key: Tensor, value: Tensor, options: AttentionOptions, logSumExp: Bool, outputDType: DType? = nil) throws -> _AttentionResult {
        let whole = try _OutputWriter(shape: shape, dtype: query.dtype, outputDType: outputDType, sinks: options.sinks, logSumExp: logSumExp)
        var calls = [_FusedCall<Modifier, _TensorKeyValues>]()
        calls.reserveCapacity(segments.count)
        for segment in segments where !segment.queries.isEmpty {
            let part = Self.shape(of: segment, in: shape)
            let source = try _TensorKeyValues(key: key.sliced(segment.keys, along: -2), value: value.sliced(segment.keys, along: -2))
            calls.append(try _FusedCall(
                query: query.sliced(segment.queries, along: -2), keysAndValues: source, shape: part, modifier: segment.modifier,
                options: options, writer: _OutputWriter(segment: segment.queries, of: whole, shape: part),
                dropout: dropout?.segment(queries: segment.queries.lowerBound, keys: segment.keys.lowerBound)))
        }
        try _runFusedCalls(calls)
        return whole.result
    }
}
