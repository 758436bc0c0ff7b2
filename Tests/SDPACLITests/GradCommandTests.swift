import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine
import SDPATestSupport
import Testing

// `sdpa grad`: the files it writes are the library's gradients, bit for bit.

/// The library's forward and backward passes, as `sdpa grad` must run them.
private func libraryGradients(
    _ files: InputFiles, bias: (any AttnBias)? = nil, isCausal: Bool = false, scale: Double? = nil,
    dropoutP: Float = 0, dropoutSeed: UInt64? = nil
) throws -> AttentionGradients {
    let (q, k, v) = (files.query, files.key, files.value)
    let (out, lse) = try attentionWithLogSumExp(
        query: q, key: k, value: v, bias: bias, isCausal: isCausal, scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed)
    return try attentionGradients(
        gradOutput: files.gradOutput, query: q, key: k, value: v, output: out, logSumExp: lse, bias: bias,
        isCausal: isCausal, scale: scale, dropoutP: dropoutP, dropoutSeed: dropoutSeed)
}

/// Checks that `dq.npy`, `dk.npy` and `dv.npy` in `files`' folder are `expected`'s.
private func expectWritten(_ files: InputFiles, _ expected: AttentionGradients, _ label: String,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
    expectIdentical(try files.output("dq.npy"), expected.query, "\(label) dq", sourceLocation: sourceLocation)
    expectIdentical(try files.output("dk.npy"), expected.key, "\(label) dk", sourceLocation: sourceLocation)
    expectIdentical(try files.output("dv.npy"), expected.value, "\(label) dv", sourceLocation: sourceLocation)
}

@Suite("sdpa grad") struct GradCommandTests {
    @Test func gradWithoutBiasMatchesTheLibrary() throws {
        let files = try InputFiles()
        let result = sdpa(["grad"] + files.gradArguments)
        #expect(result.status == 0 && result.standardError.isEmpty, "\(result.standardError)")
        #expect(result.standardOutput.hasPrefix("wrote \(files.path("dq.npy").path): [2, 3, 5, 8] float32 (B=2 H=3 Hkv=3 L=5 S=7 E=8 Ev=8, bias none)\n"))
        #expect(result.standardOutput.contains("wrote \(files.path("dv.npy").path): [2, 3, 7, 8] float32\n"))
        try expectWritten(files, try libraryGradients(files), "no bias")
    }

    /// `--dtype bfloat16` on float32 files: both passes in bfloat16 on the files' values rounded to it (the output's
    /// gradient too), the gradients written back as float32.
    @Test func gradRunsInAnotherDType() throws {
        let files = try InputFiles()
        let result = sdpa(["grad", "--is-causal", "--dtype", "bfloat16"] + files.gradArguments)
        #expect(result.status == 0 && result.standardError.isEmpty, "\(result.standardError)")
        let (q, k, v) = (try files.query.converted(to: .bfloat16), try files.key.converted(to: .bfloat16),
                         try files.value.converted(to: .bfloat16))
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: q, key: k, value: v, isCausal: true)
        let grads = try scaledDotProductAttentionBackward(
            gradOutput: try files.gradOutput.converted(to: .bfloat16), query: q, key: k, value: v, output: out, logSumExp: lse, isCausal: true)
        let expected = AttentionGradients(query: try grads.query.converted(to: .float32), key: try grads.key.converted(to: .float32),
                                          value: try grads.value.converted(to: .float32))
        try expectWritten(files, expected, "--dtype bfloat16")
    }

    @Test func gradWithAlibiWritesTheSlopesGradient() throws {
        let files = try InputFiles()
        let slopes = files.path("ds.npy")
        let result = sdpa(["grad", "--bias", "alibi+causal-lower-right", "--alibi-slopes", "0.5,-0.25,0.125", "--dalibi-slopes", slopes.path] + files.gradArguments)
        #expect(result.status == 0, "\(result.standardError)")
        let expected = try libraryGradients(files, bias: AlibiBias(slopes: [0.5, -0.25, 0.125], seqLenQ: 5, seqLenKV: 7, causal: .lowerRight))
        try expectWritten(files, expected, "alibi")
        let written = try Tensor(contentsOf: slopes)
        #expect(written.shape == [3] && written.dtype == .float64)
        #expect(written.doubleScalars == expected.alibiSlopes)
    }

    @Test func gradWithSinksWritesTheSinksGradient() throws {
        let files = try InputFiles()
        let sinks = try Tensor(shape: [3], scalars: [0.5, -.infinity, 2], dtype: .float64)
        try sinks.write(to: files.path("sinks.npy"))
        let result = sdpa(["grad", "--bias", "window:3,0", "--sinks", files.path("sinks.npy").path, "--dsinks", files.path("ds.npy").path]
                          + files.gradArguments)
        #expect(result.status == 0, "\(result.standardError)")
        let bias = SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 3, right: 0)
        let (out, lse) = try scaledDotProductAttentionWithLogSumExp(query: files.query, key: files.key, value: files.value, attnMask: bias, sinks: sinks)
        let expected = try scaledDotProductAttentionBackward(gradOutput: files.gradOutput, query: files.query, key: files.key, value: files.value,
                                                             output: out, logSumExp: lse, attnMask: bias, sinks: sinks)
        try expectWritten(files, expected, "sinks")
        let written = try Tensor(contentsOf: files.path("ds.npy"))
        #expect(written.shape == [3] && written.dtype == .float64, "the sinks' dtype")
        expectIdentical(written, try #require(expected.sinks), "dsinks")
        #expect(written.doubleScalars[1] == 0 && written.doubleScalars[0] != 0)
    }

    @Test func gradWithAFloatMaskWritesTheMasksGradient() throws {
        let files = try InputFiles()
        let mask = try randn([1, 3, 5, 7], seed: 15, dtype: .float16)
        try mask.write(to: files.path("m.npy"))
        let result = sdpa(["grad", "--mask", files.path("m.npy").path, "--dmask", files.path("dm.npy").path, "--scale", "0.4"] + files.gradArguments)
        #expect(result.status == 0, "\(result.standardError)")
        let expected = try libraryGradients(files, bias: TensorBias(mask), scale: 0.4)
        try expectWritten(files, expected, "float mask")
        let written = try files.output("dm.npy")
        #expect(written.shape == [1, 3, 5, 7] && written.dtype == .float16, "the mask's gradient in its shape and dtype")
        expectIdentical(written, try #require(expected.attnMask))
    }

    @Test func gradWithAComposedFloatMaskWritesTheGradientThatReachesIt() throws {
        let files = try InputFiles()
        let mask = try randn([3, 1, 7], seed: 16)
        try mask.write(to: files.path("m.npy"))
        let result = sdpa(["grad", "--mask", files.path("m.npy").path, "--bias", "softcap:5+causal-upper-left",
                           "--dmask", files.path("dm.npy").path] + files.gradArguments)
        #expect(result.status == 0, "\(result.standardError)")
        let bias = TensorBias(mask).combined(with: SoftCapBias(cap: 5).combined(with: causalUpperLeft(5, 7)))
        let expected = try libraryGradients(files, bias: bias)
        try expectWritten(files, expected, "composed float mask")
        let written = try files.output("dm.npy")
        #expect(written.shape == [3, 1, 7] && written.dtype == .float32, "the mask's gradient in its shape and dtype")
        expectIdentical(written, try #require(expected.attnMask))
        #expect(written.doubleScalars.contains { $0 != 0 })
    }

    /// A part `mask` of `--bias` puts the mask file among the parts: between two soft-caps (the chain rule), and after
    /// one (Hugging Face's Gemma 2 order).
    @Test func gradWithTheMaskAmongTheParts() throws {
        let files = try InputFiles()
        let mask = try randn([5, 7], seed: 26)
        try mask.write(to: files.path("m.npy"))
        for (spelling, bias) in [
            ("softcap:5+mask+softcap:3", SoftCapBias(cap: 5).combined(with: TensorBias(mask)).combined(with: SoftCapBias(cap: 3)) as any AttnBias),
            ("softcap:4+mask+causal-upper-left", SoftCapBias(cap: 4).combined(with: TensorBias(mask)).combined(with: causalUpperLeft(5, 7))),
            // Not the spelling `alibi+causal-upper-left` (AlibiBias with its own causal mask): its parts, ALiBi counted from
            // the lower-right diagonal wherever the mask stands.
            ("alibi+causal-upper-left+mask", AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7).combined(with: causalUpperLeft(5, 7))
                .combined(with: TensorBias(mask))),
            ("alibi+mask+causal-upper-left", AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7).combined(with: TensorBias(mask))
                .combined(with: causalUpperLeft(5, 7))),
        ] {
            let result = sdpa(["grad", "--mask", files.path("m.npy").path, "--bias", spelling, "--dmask", files.path("dm.npy").path]
                              + files.gradArguments)
            #expect(result.status == 0, "\(result.standardError)")
            let expected = try libraryGradients(files, bias: bias)
            try expectWritten(files, expected, spelling)
            expectIdentical(try files.output("dm.npy"), try #require(expected.attnMask), spelling)
        }
        // The mask first (no `mask` part) is another bias: the soft-cap then caps the mask's values too.
        let first = try libraryGradients(files, bias: TensorBias(mask).combined(with: SoftCapBias(cap: 5)).combined(with: SoftCapBias(cap: 3)))
        #expect(sdpa(["grad", "--mask", files.path("m.npy").path, "--bias", "softcap:5+mask+softcap:3"] + files.gradArguments).status == 0)
        #expect(try files.output("dq.npy").doubleScalars != first.query.doubleScalars)
    }

    @Test func gradWithDropoutUsesOneSeedForBothPasses() throws {
        let files = try InputFiles()
        let result = sdpa(["grad", "--dropout", "0.3", "--seed", "17", "--is-causal"] + files.gradArguments)
        #expect(result.status == 0, "\(result.standardError)")
        try expectWritten(files, try libraryGradients(files, isCausal: true, dropoutP: 0.3, dropoutSeed: 17), "dropout")
        // Without a seed, one is drawn and shared: the gradients then differ from run to run, but the
        // command succeeds (the backward pass drops what the forward pass dropped).
        #expect(sdpa(["grad", "--dropout", "0.3"] + files.gradArguments).status == 0)
    }
}
