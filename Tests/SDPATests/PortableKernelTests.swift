import Foundation
@_spi(Testing) import SDPA
import Testing

@Suite("Portable micro-kernels")
struct PortableKernelTests {
    @Test("this machine uses the best family it runs, and lists the portable one last")
    func instructionSet() {
        let available = FusedKernelInstructionSet.available
        #expect(available.last == "portable")
        #expect(FusedKernelInstructionSet.current == available.first)
    }

    /// The portable variant (what runs without AVX2, and on arm64) must be as correct as the fast one.
    /// Forcing it is process-wide, so it runs in a child process of its own.
    @Test("the portable loops agree with the math backend")
    func portableMatchesMath() async {
        await #expect(processExitsWith: .success) {
            FusedKernelInstructionSet.select("portable")
            guard FusedKernelInstructionSet.current == "portable" else { exit(3) }
            for bias in ["none", "causalLowerRight", "alibiUpperLeft", "boolMaskLS", "windowCausal"] {
                for dtype in [DType.float32, .float16, .bfloat16] {
                    let c = FusedCase(L: 37, S: 150, E: 40, Ev: 24, dtype: dtype, bias: bias)
                    guard let (q, k, v) = try? c.inputs(),
                          let fused = try? withSDPBackends([.fused], { try c.run(q, k, v) }),
                          let math = try? withSDPBackends([.math], { try c.run(q, k, v) }) else { exit(2) }
                    for (a, b) in zip(fused.output.doubleScalars, math.output.doubleScalars)
                    where abs(a - b) > c.tolerance.atol + c.tolerance.rtol * abs(b) {
                        exit(1)
                    }
                }
            }
        }
    }
}
