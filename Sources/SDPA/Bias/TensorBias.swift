/// A dense mask given as a tensor: the RFC's wrapper for what `attn_mask` used to be.
///
/// `.bool` masks say where to attend (`true`); float masks are added to the scaled
/// scores (`-inf` masks). Any shape that broadcasts to `[B, H, L, S]` works, for
/// example (`L = 3`, `S = 4`, 1 = attend):
///
/// ```
/// [L, S] bool               [B, 1, 1, S] bool (key padding, batch 0 has 3 keys)
/// [[1, 0, 1, 1],            [[[[1, 1, 1, 0]]], ...]
///  [0, 1, 1, 0],
///  [1, 1, 1, 1]]
/// ```
///
/// ```swift
/// let padding = try Tensor(shape: [2, 1, 1, 4], bools: [true, true, true, false, true, true, true, true])
/// let out = try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(padding))
/// ```
public struct TensorBias: AttnBias {
    /// The mask as given.
    public var mask: Tensor

    /// Wraps a `.bool` or float mask broadcastable to `[B, H, L, S]`.
    public init(_ mask: Tensor) { self.mask = mask }

    /// Always `true`: the mask already is a tensor.
    public var needsMaterialization: Bool { true }

    /// The mask itself.
    public func materialize(device: Device) throws -> Tensor { mask }

    /// Checks that the mask broadcasts to the scores' shape.
    public func validate(for shape: AttentionShape) throws {
        _ = try _DenseMask(mask, shape: shape)
    }
}

/// A dense mask read in place through broadcast strides: element `(b, h, i, j)` lives at storage
/// offset `b * strides[0] + h * strides[1] + i * strides[2] + j * strides[3]` of the mask as given,
/// so a `[L, S]` mask is neither copied nor expanded to `[B, H, L, S]`.
@usableFromInline
struct _DenseMask: _ScoreModifier {
    let mask: Tensor
    let strides: [Int]

    /// - Throws: ``SDPAError/maskNotBroadcastable(mask:target:)``.
    init(_ mask: Tensor, shape: AttentionShape) throws {
        guard var s = mask.broadcastStrides(to: shape.scoresShape) else {
            throw SDPAError.maskNotBroadcastable(mask: mask.shape, target: shape.scoresShape)
        }
        if s.count == 3 { s.insert(0, at: 0) }  // a 3-D problem has B = 1
        self.mask = mask
        self.strides = s
    }

    @usableFromInline
    func modify<T: BinaryFloatingPoint>(_ score: T, batch: Int, head: Int, query: Int, key: Int) -> T {
        let offset = mask._offset + batch * strides[0] + head * strides[1] + query * strides[2] + key * strides[3]
        let v = mask._value(atStorageOffset: offset)
        if mask.dtype == .bool { return v != 0 ? score : -.infinity }
        return score + T(v)
    }

    @usableFromInline
    func apply(
        to scores: UnsafeMutablePointer<Float>, stride: Int,
        batch: Int, head: Int, queries: Range<Int>, keys: Range<Int>
    ) {
        let base = mask._offset + batch * strides[0] + head * strides[1] + keys.lowerBound * strides[3]
        let (rowStride, step) = (strides[2], strides[3])
        let raw = UnsafeRawPointer(mask._storage.bytes)
        // One loop per dtype, chosen once per tile.
        func each<M>(_ type: M.Type, _ update: (inout Float, M) -> Void) {
            let p = raw.assumingMemoryBound(to: M.self)
            for (r, i) in queries.enumerated() {
                let row = scores + r * stride, m = p + base + i * rowStride
                for c in 0..<keys.count { update(&row[c], m[c * step]) }
            }
        }
        switch mask.dtype {
        case .bool: each(UInt8.self) { if $1 == 0 { $0 = -.infinity } }
        case .float32: each(Float.self) { $0 += $1 }
        case .float64: each(Double.self) { $0 = Float(Double($0) + $1) }
        case .float16: each(UInt16.self) { $0 += _halfBitsToFloat($1) }
        case .bfloat16: each(UInt16.self) { $0 += BFloat16(bitPattern: $1).floatValue }
        }
    }
}
