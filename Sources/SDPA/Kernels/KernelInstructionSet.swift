import CSDPAKernels

/// The instruction-set family of the fused kernel's innermost loops, chosen once at run time.
///
/// On x86-64 processors with AVX2 and FMA the tile products, the online-softmax update and the
/// half-precision conversions run AVX2+FMA code; anywhere else (older x86-64, arm64) a portable
/// implementation that the compiler vectorizes for the baseline target. Results agree to float32
/// rounding; only speed differs. The environment variable `SDPA_KERNELS` (read once, at the first
/// attention call) picks another family this processor runs, by name, for the whole process.
public enum FusedKernelInstructionSet {
    /// The family in use on this thread: one of ``available``.
    public static var current: String { String(cString: sdpa_kernels_isa()) }

    /// The families this build has and this processor runs, best first: `["avx2", "portable"]` on an
    /// AVX2 machine.
    public static var available: [String] {
        (0..<Int(sdpa_kernels_family_count())).compactMap { i in
            sdpa_kernels_family_name(Int32(i)).map { String(cString: $0) }
        }
    }

    /// Selects the family called `name` for the whole process (`nil`: the best again), as
    /// `SDPA_KERNELS` does; `false` (and nothing changes) when this processor cannot run it.
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
