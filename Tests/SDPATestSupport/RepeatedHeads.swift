import SDPA

/// `[B, Hkv, S, D]` -> `[B, Hkv * g, S, D]` (or `[Hkv, S, D]` -> `[Hkv * g, S, D]`), new head `h` a copy of
/// head `h / g` (torch.repeat_interleave): grouped-query inputs as plain multi-head ones. Every dtype;
/// values copied exactly.
public func repeatHeads(_ t: Tensor, _ g: Int) throws -> Tensor {
    let r = t.shape.count
    let (B, Hkv, S, D) = (r == 4 ? t.shape[0] : 1, t.shape[r - 3], t.shape[r - 2], t.shape[r - 1])
    let x = t.doubleScalars
    var out = [Double]()
    for b in 0..<B {
        for h in 0..<Hkv * g {
            let start = (b * Hkv + h / g) * S * D
            out += x[start..<(start + S * D)]
        }
    }
    return try Tensor(shape: (r == 4 ? [B] : []) + [Hkv * g, S, D], scalars: out, dtype: t.dtype)
}

/// The gradient of ``repeatHeads(_:_:)``'s input from one of its output (`[B, Hkv * g, S, D]` or
/// `[Hkv * g, S, D]`): each run of `g` heads summed, in head order, laid out row-major as
/// `[B, Hkv, S, D]` — the dK and dV grouped-query attention must give.
public func summedHeadGroups(_ t: Tensor, _ g: Int) -> [Double] {
    let r = t.shape.count
    let width = t.shape[r - 2] * t.shape[r - 1]
    let x = t.doubleScalars
    return (0..<(x.count / g)).map { n in
        let (group, rest) = (n / width, n % width)
        return (0..<g).reduce(0.0) { $0 + x[(group * g + $1) * width + rest] }
    }
}
