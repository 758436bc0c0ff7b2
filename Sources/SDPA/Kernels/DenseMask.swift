import CSDPAKernels

/// The element types a dense mask can hold, each standing for an additive bias.
protocol _DenseMaskElement {
    /// `true` for bool masks: a pure mask, which fully visible tiles can skip.
    static var isBoolean: Bool { get }
    /// The additive bias this element stands for (`-inf` = masked), in `Double` for the reference path.
    static func bias(_ raw: Self) -> Double
    /// The same in `Float` for the fused kernel.
    static func floatBias(_ raw: Self) -> Float
    /// The kind of mask the C kernels read this type as (in the `Q·Kᵀ` registers, or on a score tile),
    /// or `nil` when they have none for it and the Swift loops apply it.
    static var tileMaskKind: sdpa_mask_kind? { get }
}

extension _DenseMaskElement {
    @inline(__always) static var tileMaskKind: sdpa_mask_kind? { nil }
}

/// A bool mask element (`0` = masked).
extension UInt8: _DenseMaskElement {
    static var isBoolean: Bool { true }
    @inline(__always) static var tileMaskKind: sdpa_mask_kind? { SDPA_MASK_BOOL }
    @inline(__always) static func bias(_ raw: UInt8) -> Double { raw == 0 ? -.infinity : 0 }
    @inline(__always) static func floatBias(_ raw: UInt8) -> Float { raw == 0 ? -.infinity : 0 }
}

extension Float: _DenseMaskElement {
    static var isBoolean: Bool { false }
    @inline(__always) static var tileMaskKind: sdpa_mask_kind? { SDPA_MASK_F32 }
    @inline(__always) static func bias(_ raw: Float) -> Double { Double(raw) }
    @inline(__always) static func floatBias(_ raw: Float) -> Float { raw }
}

extension Double: _DenseMaskElement {
    static var isBoolean: Bool { false }
    @inline(__always) static func bias(_ raw: Double) -> Double { raw }
    @inline(__always) static func floatBias(_ raw: Double) -> Float { Float(raw) }
}

extension BFloat16: _DenseMaskElement {
    static var isBoolean: Bool { false }
    @inline(__always) static func bias(_ raw: BFloat16) -> Double { Double(raw.floatValue) }
    @inline(__always) static func floatBias(_ raw: BFloat16) -> Float { raw.floatValue }
}

/// IEEE binary16 bits, as stored in a `.float16` mask.
struct _HalfBits: _DenseMaskElement {
    let bits: UInt16
    static var isBoolean: Bool { false }
    @inline(__always) static func bias(_ raw: _HalfBits) -> Double { Double(_halfBitsToFloat(raw.bits)) }
    @inline(__always) static func floatBias(_ raw: _HalfBits) -> Float { _halfBitsToFloat(raw.bits) }
}

/// Throws ``SDPAError/maskNotBroadcastable(mask:target:)`` unless a mask of `maskShape` broadcasts to the
/// scores of `shape`; builds nothing on success (it runs on every call with a `TensorBias`).
/// A mask has at most four dimensions (``SDPAError/rank(argument:shape:expected:)``), as PyTorch 2.15
/// requires: it adds the mask to the scores in place, so a fifth dimension, even of size 1, is an error
/// there, while 3-D inputs run as `[1, H, L, S]` scores and take a 4-D mask's leading 1 as the batch.
func _checkBroadcastable(_ maskShape: [Int], to shape: AttentionShape) throws {
    if maskShape.count > 4 {
        throw SDPAError.rank(
            argument: "attnMask", shape: maskShape,
            expected: "at most 4 dimensions, broadcast to the attention scores' shape \(shape.scoresShape)")
    }
    for n in 0..<maskShape.count {
        // Score dimensions counted from the right: S, L, H, then B for 4-D inputs; 1 beyond the rank.
        let target = n == 0 ? shape.keyLength : n == 1 ? shape.queryLength : n == 2 ? shape.queryHeads
            : n == 3 && shape.rank == 4 ? shape.batch : 1
        let size = maskShape[maskShape.count - 1 - n]
        if size != 1 && size != target { throw SDPAError.maskNotBroadcastable(mask: maskShape, target: shape.scoresShape) }
    }
}

/// Where a dense mask's elements are (its first element, its broadcast strides as ``_DenseMask`` reads them) and
/// their dtype, without the storage: what a ``TensorBias`` part keeps (its mask keeps the storage alive) to read one
/// position per score without building a ``_DenseMask`` (arrays read, storage retained) each time.
@usableFromInline
struct _DenseMaskLayout: @unchecked Sendable {
    let base: UnsafeRawPointer
    let s0: Int, s1: Int, s2: Int, s3: Int
    let dtype: DType

    /// The layout of `mask` (any shape: strides are read only where it broadcasts to `[B, H, L, S]`).
    @usableFromInline
    init(_ mask: borrowing Tensor) {
        dtype = mask.dtype
        base = UnsafeRawPointer(mask._storage.bytes) + mask._offset * mask.dtype.byteWidth
        var s = (0, 0, 0, 0)
        let rank = mask.shape.count
        for n in 0..<Swift.min(rank, 4) where mask.shape[rank - 1 - n] != 1 {
            let stride = mask.strides[rank - 1 - n]
            switch n {
            case 0: s.3 = stride
            case 1: s.2 = stride
            case 2: s.1 = stride
            default: s.0 = stride
            }
        }
        (s0, s1, s2, s3) = s
    }

    /// The additive bias at `(batch, head, query, key)` (`-inf` where the mask masks), in `Double`.
    @inline(__always)
    func bias(batch: Int, head: Int, query: Int, key: Int) -> Double {
        let n = batch * s0 + head * s1 + query * s2 + key * s3
        switch dtype {
        case .bool: return UInt8.bias(base.assumingMemoryBound(to: UInt8.self)[n])
        case .float32: return Float.bias(base.assumingMemoryBound(to: Float.self)[n])
        case .float64: return Double.bias(base.assumingMemoryBound(to: Double.self)[n])
        case .float16: return _HalfBits.bias(base.assumingMemoryBound(to: _HalfBits.self)[n])
        case .bfloat16: return BFloat16.bias(base.assumingMemoryBound(to: BFloat16.self)[n])
        }
    }
}

/// A dense mask read in place through broadcast strides: element `(b, h, i, j)` lives at
/// `b * s0 + h * s1 + i * s2 + j * s3` from the mask's first element, so a `[L, S]` mask is neither
/// copied nor expanded to `[B, H, L, S]`. One specialization per element type: the loops that read it
/// know their type, and bool masks classify tiles by reading them, so a causal-shaped bool mask skips
/// the tiles it empties just as ``CausalBias`` does.
struct _DenseMask<Element: _DenseMaskElement>: _ScoreModifier, @unchecked Sendable {
    let base: UnsafePointer<Element>
    let s0: Int, s1: Int, s2: Int, s3: Int
    /// Keeps the storage `base` points into alive.
    let storage: _TensorStorage

    /// Reads `mask`, already checked to broadcast to the scores (``_checkBroadcastable(_:to:)``), as
    /// `[B, H, L, S]` (a 3-D problem's mask has no batch dimension but 1): a broadcast dimension gets stride 0.
    /// Builds no array.
    init(_ mask: borrowing Tensor) {
        let layout = _DenseMaskLayout(mask)
        base = layout.base.assumingMemoryBound(to: Element.self)
        (s0, s1, s2, s3) = (layout.s0, layout.s1, layout.s2, layout.s3)
        storage = mask._storage
    }

    static var modifiesScores: Bool { !Element.isBoolean }

    /// Rows that differ per query but not per head (a `[L, S]` or `[B, 1, L, S]` mask) are read by every head.
    var sharesRowsAcrossHeads: Bool { s1 == 0 && s2 != 0 }

    @inline(__always)
    func row(batch: Int, head: Int, query: Int) -> UnsafePointer<Element> {
        base + batch * s0 + head * s1 + query * s2
    }

    func biasedScore<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        let bias = Element.bias(row(batch: batch, head: head, query: query)[key * s3])
        return bias == -.infinity ? -.infinity : score + T(bias)
    }

    /// Reads the tile's mask: empty when every entry masks, full when a bool mask masks none.
    func tileVisibility(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> TileVisibility {
        if queries.isEmpty || keys.isEmpty { return .empty }
        // A mask row shared by every query (`s2 == 0`, e.g. key padding) is read once.
        let queries = s2 == 0 ? queries.lowerBound..<(queries.lowerBound + 1) : queries
        if let mask = tileMask(batch: batch, head: head, queries: queries, keys: keys) {
            // A float mask adds values anyway: only an empty tile is worth knowing about.
            let enough = Element.isBoolean ? SDPA_MASK_SEEN_MASKED | SDPA_MASK_SEEN_VISIBLE : SDPA_MASK_SEEN_VISIBLE
            let seen = sdpa_mask_tile_visibility(
                mask.kind, Int32(queries.count), Int32(keys.count), mask.base, mask.rowStride, Int32(enough))
            if seen & Int32(SDPA_MASK_SEEN_VISIBLE) == 0 { return .empty }
            return Element.isBoolean && seen & Int32(SDPA_MASK_SEEN_MASKED) == 0 ? .full : .partial
        }
        var sawVisible = false, sawMasked = false
        for i in queries {
            let m = row(batch: batch, head: head, query: i) + keys.lowerBound * s3
            for c in 0..<keys.count {
                if Element.floatBias(m[c * s3]) == -.infinity { sawMasked = true } else { sawVisible = true }
            }
            // A float mask adds values anyway: only an empty tile is worth knowing about.
            if sawVisible && (sawMasked || !Element.isBoolean) { return .partial }
        }
        return sawVisible ? .full : .empty
    }

    func tileMask(batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>) -> _ScoreTileMask? {
        guard s3 == 1, let kind = Element.tileMaskKind, !queries.isEmpty else { return nil }
        return _ScoreTileMask(
            kind: kind, base: UnsafeRawPointer(row(batch: batch, head: head, query: queries.lowerBound) + keys.lowerBound),
            rowStride: s2)
    }

    func apply(
        toScores scores: UnsafeMutablePointer<Float>, rowStride stride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        let n = keys.count
        // Mask rows contiguous along keys, in a type the C kernels read: the same tile `tileMask` gives.
        if n > 0, let mask = tileMask(batch: batch, head: head, queries: queries, keys: keys) {
            if mask.kind == SDPA_MASK_BOOL {
                sdpa_mask_tile_bool(Int32(queries.count), Int32(n), scores, stride,
                                    mask.base.assumingMemoryBound(to: UInt8.self), mask.rowStride)
            } else {
                sdpa_add_mask_tile_f32(Int32(queries.count), Int32(n), scores, stride,
                                       mask.base.assumingMemoryBound(to: Float.self), mask.rowStride)
            }
            return
        }
        for (r, i) in queries.enumerated() {
            let m = row(batch: batch, head: head, query: i) + keys.lowerBound * s3, out = scores + r * stride
            // `-inf` replaces the score rather than adding to it, so a NaN score at a masked position
            // stays masked, as on the math path.
            if s3 == 1 {
                for c in 0..<n { let b = Element.floatBias(m[c]); out[c] = b == -.infinity ? b : out[c] + b }
            } else {
                for c in 0..<n { let b = Element.floatBias(m[c * s3]); out[c] = b == -.infinity ? b : out[c] + b }
            }
        }
    }
}

/// Something to run with a dense mask's modifier, whatever its element type.
///
/// The inputs are passed through rather than stored in the consumer: a stored tensor is three
/// retains and three releases, a measurable share of a tiny call's dispatch cost.
protocol _DenseMaskConsumer {
    associatedtype Output
    func callAsFunction<Modifier: _ScoreModifier>(
        _ modifier: Modifier, query: Tensor, key: Tensor, value: Tensor
    ) throws -> Output
}

/// Calls `consumer` with the dense-mask modifier specialised for `mask`'s dtype.
func _withDenseMask<Consumer: _DenseMaskConsumer>(
    _ mask: Tensor, shape: AttentionShape, query: Tensor, key: Tensor, value: Tensor, _ consumer: Consumer
) throws -> Consumer.Output {
    try _checkBroadcastable(mask.shape, to: shape)
    switch mask.dtype {
    case .bool: return try consumer(_DenseMask<UInt8>(mask), query: query, key: key, value: value)
    case .float32: return try consumer(_DenseMask<Float>(mask), query: query, key: key, value: value)
    case .float64: return try consumer(_DenseMask<Double>(mask), query: query, key: key, value: value)
    case .float16: return try consumer(_DenseMask<_HalfBits>(mask), query: query, key: key, value: value)
    case .bfloat16: return try consumer(_DenseMask<BFloat16>(mask), query: query, key: key, value: value)
    }
}

/// One question put to a dense mask read as its element type (``_reading(_:_:)``): what a ``TensorBias``
/// inside a composition asks per tile or per element.
protocol _DenseMaskReading {
    associatedtype Output
    func callAsFunction<Element: _DenseMaskElement>(_ mask: _DenseMask<Element>) -> Output
}

/// `reading` of `mask`, already checked to broadcast to the scores, read as its dtype's element type.
func _reading<Reading: _DenseMaskReading>(_ mask: Tensor, _ reading: Reading) -> Reading.Output {
    switch mask.dtype {
    case .bool: return reading(_DenseMask<UInt8>(mask))
    case .float32: return reading(_DenseMask<Float>(mask))
    case .float64: return reading(_DenseMask<Double>(mask))
    case .float16: return reading(_DenseMask<_HalfBits>(mask))
    case .bfloat16: return reading(_DenseMask<BFloat16>(mask))
    }
}
