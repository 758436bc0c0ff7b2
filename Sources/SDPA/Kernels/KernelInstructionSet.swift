import CSDPAKernels

/// The instruction set of the fused kernel's innermost loops, chosen once at run time.
///
/// On x86-64 processors with AVX2 and FMA the tile products, the online-softmax update and the
/// half-precision conversions run AVX2+FMA code; anywhere else (older x86-64, arm64) a portable
/// implementation that the compiler vectorizes for the baseline target. Results agree to float32
/// rounding; only speed differs.
public enum FusedKernelInstructionSet {
    /// `"avx2+fma"` or `"portable"`.
    public static var current: String { String(cString: sdpa_kernels_isa()) }

    /// Forces the portable loops (`true`) or returns to the best for this processor (`false`), for the
    /// whole process: tests only, run in a process of their own.
    @_spi(Testing)
    public static func forcePortable(_ on: Bool) { sdpa_kernels_force_portable(on ? 1 : 0) }
}
