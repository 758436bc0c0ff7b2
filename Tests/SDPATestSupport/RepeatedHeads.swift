import SDPA

/// `[B, Hkv, S, D]` -> `[B, Hkv * g, S, D]`, new head `h` a copy of head `h / g` (torch.repeat_interleave):
/// grouped-query inputs as plain multi-head ones. Every dtype; values copied exactly.
public func repeatHeads(_ t: Tensor, _ g: Int) throws -> Tensor {
    let (B, Hkv, S, D) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
    let x = t.doubleScalars
    var out = [Double]()
    for b in 0..<B {
        for h in 0..<Hkv * g {
            let start = (b * Hkv + h / g) * S * D
            out += x[start..<(start + S * D)]
        }
    }
    return try Tensor(shape: [B, Hkv * g, S, D], scalars: out, dtype: t.dtype)
}
