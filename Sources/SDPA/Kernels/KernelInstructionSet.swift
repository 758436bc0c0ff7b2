import CSDPAKernels

/// The instruction-set family of the fused kernel's innermost loops, chosen once at run time.
///
/// The tile products, the online-softmax update, masks and half-precision conversions are written
/// once over a small vector layer and compiled per family: `amx` (AMX tiles for the bfloat16 products),
/// `avx512bf16` (AVX512-BF16's `vdpbf16ps` for them), `avx512` (x86-64 with AVX-512 F/BW/VL/DQ),
/// `avx2` (AVX2 + FMA + F16C), `neonbf16` and `neon` (arm64) and `portable` (plain C, any CPU). The best
/// family the processor runs is chosen at the first call; on an Intel core `avx512` ranks above
/// `avx512bf16` (there `vdpbf16ps` runs no faster than two float32 FMAs, so bfloat16 widened to float32
/// is faster). Results agree to float32 rounding (bfloat16 products as pairs: to bfloat16's); only speed differs.
/// The environment variable `SDPA_KERNELS` (read once, at the first attention call) picks another
/// family this processor runs, by name, for the whole process.
public enum FusedKernelInstructionSet {
    /// The family in use on this thread: one of ``available``.
    public static var current: String { String(cString: sdpa_kernels_isa()) }

    /// The families this build has and this processor runs, best first: `["avx512", "avx2", "portable"]`
    /// on an AVX-512 machine, `["avx512", "avx512bf16", "avx2", "portable"]` on an Intel Xeon with
    /// AVX512-BF16 whose AMX tiles are absent or refused.
    public static var available: [String] {
        (0..<Int(sdpa_kernels_family_count())).compactMap { i in
            sdpa_kernels_family_name(Int32(i)).map { String(cString: $0) }
        }
    }

    /// Whether the family in use on this thread multiplies bfloat16 inputs as bfloat16 pairs (dot-product
    /// instructions such as AVX512-BF16's `vdpbf16ps`), rounding the probabilities to bfloat16 for `P·V`
    /// as PyTorch's flash kernel does, rather than widening them to float32 first.
    @_spi(Testing)
    public static var multipliesBFloat16Pairs: Bool { sdpa_layout_for(SDPA_ELEMENT_BF16) == SDPA_LAYOUT_BF16_PAIRS }

    /// Selects the family called `name` for the whole process (`nil`: the default again, the one
    /// `SDPA_KERNELS` names or else the best), as `SDPA_KERNELS` does; `false` (and nothing changes) when this processor cannot run it.
    /// For benchmarks and tests: calls already running finish with the family they started with.
    @_spi(Testing) @discardableResult
    public static func select(_ name: String?) -> Bool {
        (name.map { sdpa_kernels_select($0) } ?? sdpa_kernels_select(nil)) == 0
    }

    /// Runs `body` with the family called `name` for the kernel calls made on this thread (a
    /// fused call under `withSDPAThreads(1)` makes all of them here), or returns `nil` without
    /// running it when this processor cannot run that family.
    @_spi(Testing)
    public static func withFamily<R>(_ name: String, _ body: () throws -> R) rethrows -> R? {
        guard sdpa_kernels_use_on_this_thread(name) == 0 else { return nil }
        defer { sdpa_kernels_use_on_this_thread(nil) }
        return try body()
    }
}
