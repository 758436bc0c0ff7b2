import SDPA

/// Standard normal values of `shape`, reproducible from `seed`, in `dtype` (rounded from float32).
public func randn(_ shape: [Int], seed: UInt64, dtype: DType = .float32) throws -> Tensor {
    try Tensor.randomNormal(shape: shape, seed: seed, dtype: dtype)
}

/// Random attention inputs: query `[B, H, L, E]`, key `[B, Hkv, S, E]`, value `[B, Hkv, S, Ev]`, seeded
/// `seed`, `seed + 100` and `seed + 200`.
public func randomAttentionInputs(
    _ B: Int, _ H: Int, _ L: Int, _ S: Int, _ E: Int, ev: Int? = nil, hkv: Int? = nil, seed: UInt64 = 1, dtype: DType = .float32
) throws -> (query: Tensor, key: Tensor, value: Tensor) {
    (try randn([B, H, L, E], seed: seed, dtype: dtype),
     try randn([B, hkv ?? H, S, E], seed: seed + 100, dtype: dtype),
     try randn([B, hkv ?? H, S, ev ?? E], seed: seed + 200, dtype: dtype))
}
