import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine
import SDPATestSupport
import Testing

// MARK: - run: round trips against the library

@Suite("sdpa command line") struct CommandLineTests {
    @Test func runWithoutBiasMatchesTheLibraryCall() throws {
        let files = try InputFiles()
        let result = sdpa(["run"] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.isEmpty)
        #expect(result.standardOutput.contains("wrote \(files.path("o.npy").path): [2, 3, 5, 8] float32"))
        let expected = try scaledDotProductAttention(query: files.query, key: files.key, value: files.value)
        let out = try files.output()
        #expect(out.shape == expected.shape && out.dtype == .float32)
        expectIdentical(out, expected)
    }

    /// `--bias` spellings and the bias each must run, written out independently of `BiasKind`; every
    /// spelling `sdpa bench` runs by default is among them (``everyCommandLineSpellingRuns``).
    static let biasSpellingCases: [(String, (any AttnBias)?)] = [
        ("none", nil),
        ("causal-upper-left", causalUpperLeft(5, 7)),
        ("causal-lower-right", causalLowerRight(5, 7)),
        ("alibi", AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7)),
        ("alibi+causal-upper-left", AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7, causal: .upperLeft)),
        ("alibi+causal-lower-right", AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7, causal: .lowerRight)),
        ("window:2", SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 2, right: 0)),
        ("window:256", SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 256, right: 0)),
        ("window:1,2", SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 1, right: 2, alignment: .lowerRight)),
        ("window:0", SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 0, right: 0)),
        ("window:100,100", SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 100, right: 100)),
        ("window-upper-left:1,2", SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 1, right: 2, alignment: .upperLeft)),
        ("window-upper-left:64,64", SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 64, right: 64, alignment: .upperLeft)),
        ("padding:3,7", KeyPaddingBias(validKeyLengths: [3, 7], seqLenKV: 7)),
        ("chunked-causal:3", ChunkedCausalBias(seqLenQ: 5, seqLenKV: 7, chunkSize: 3)),
        ("chunked-causal-upper-left:2", ChunkedCausalBias(seqLenQ: 5, seqLenKV: 7, chunkSize: 2, alignment: .upperLeft)),
        ("prefix-lm:4,0", PrefixLMBias(prefixLengths: [4, 0], seqLenQ: 5, seqLenKV: 7)),
        ("prefix-lm", PrefixLMBias(prefixLengths: [4, 4], seqLenQ: 5, seqLenKV: 7)),
        ("sink-tokens:1,2", SinkTokensBias(sinkTokens: 1, window: 2, seqLenQ: 5, seqLenKV: 7)),
        ("sink-tokens:2,1+alibi", SinkTokensBias(sinkTokens: 2, window: 1, seqLenQ: 5, seqLenKV: 7)
            .combined(with: AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7))),
        ("padding:0,1", KeyPaddingBias(validKeyLengths: [0, 1], seqLenKV: 7)),
        ("padding", KeyPaddingBias(validKeyLengths: [4, 4], seqLenKV: 7)),
        ("softcap:2", SoftCapBias(cap: 2)),
        ("softcap:5+causal-upper-left", SoftCapBias(cap: 5).combined(with: causalUpperLeft(5, 7))),
        ("softcap:30+causal-upper-left", SoftCapBias(cap: 30).combined(with: causalUpperLeft(5, 7))),
        ("causal-lower-right+alibi", causalLowerRight(5, 7).combined(with: AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7))),
        ("alibi+window:2+causal-lower-right",
         AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7).combined(with: SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 2, right: 0))
            .combined(with: causalLowerRight(5, 7))),
        ("alibi+window:256+causal-lower-right",
         AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7).combined(with: SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 256, right: 0))
            .combined(with: causalLowerRight(5, 7))),
        ("window:3+padding:6,2+softcap:4",
         SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 3, right: 0).combined(with: KeyPaddingBias(validKeyLengths: [6, 2], seqLenKV: 7))
            .combined(with: SoftCapBias(cap: 4))),
    ]

    @Test(arguments: biasSpellingCases)
    func eachBiasSpellingRunsThatBias(spelling: String, bias: (any AttnBias)?) throws {
        let files = try InputFiles()
        let result = sdpa(["run", "--bias", spelling] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let expected = try attention(query: files.query, key: files.key, value: files.value, bias: bias)
        expectIdentical(try files.output(), expected, spelling)
    }

    /// Packed sequences need L = S (key lengths equal the query lengths).
    static let blockDiagonalSpellingCases: [(String, any AttnBias)] = [
        ("block-diagonal:2,5", BlockDiagonalBias(queryLengths: [2, 5])),
        ("block-diagonal-causal:3,0,4", BlockDiagonalBias(queryLengths: [3, 0, 4], causal: .upperLeft)),
        ("block-diagonal", BlockDiagonalBias(queryLengths: [1, 1, 1, 1, 1, 1, 1, 0])),
        ("block-diagonal-causal", BlockDiagonalBias(queryLengths: [1, 1, 1, 1, 1, 1, 1, 0], causal: .upperLeft)),
        ("block-diagonal-causal:7", BlockDiagonalBias(queryLengths: [7], causal: .upperLeft)),
        ("block-diagonal:4,3+padding:5,6",
         BlockDiagonalBias(queryLengths: [4, 3]).combined(with: KeyPaddingBias(validKeyLengths: [5, 6], seqLenKV: 7))),
    ]

    @Test(arguments: blockDiagonalSpellingCases)
    func blockDiagonalSpellingsRunThatBias(spelling: String, bias: any AttnBias) throws {
        let files = try InputFiles(queryLength: 7, keyLength: 7)
        let result = sdpa(["run", "--bias", spelling] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let expected = try attention(query: files.query, key: files.key, value: files.value, bias: bias)
        expectIdentical(try files.output(), expected, spelling)
        #expect(result.standardOutput.contains("bias \(spelling))"))
    }

    @Test func everyCommandLineSpellingRuns() {
        // Each spelling sdpa bench runs by default, and each part, is run above against a bias written out by hand.
        let tested = Set(Self.biasSpellingCases.map(\.0) + Self.blockDiagonalSpellingCases.map(\.0))
        let untested = BiasKind.commandLineKinds.map(\.spelling).filter { !tested.contains($0) }
        #expect(untested.isEmpty, "spellings no test runs: \(untested)")
        let parts = Set(tested.flatMap { $0.split(separator: "+").map { String($0.split(separator: ":")[0]) } })
        let untestedParts = BiasKind.parts.map(\.name).filter { !parts.contains($0) }
        #expect(untestedParts.isEmpty, "parts no test runs: \(untestedParts)")
    }

    @Test func alibiSlopesApplyToCompositionsWithAnAlibiPart() throws {
        let files = try InputFiles()
        let result = sdpa(["run", "--bias", "window:2+alibi", "--alibi-slopes", "0.5,0.25,-1"] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let bias = SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 2, right: 0)
            .combined(with: AlibiBias(slopes: [0.5, 0.25, -1], seqLenQ: 5, seqLenKV: 7))
        let expected = try scaledDotProductAttention(query: files.query, key: files.key, value: files.value, attnMask: bias)
        expectIdentical(try files.output(), expected)
    }

    @Test func alibiSlopesOverrideTheStandardOnes() throws {
        let files = try InputFiles()
        let result = sdpa(["run", "--bias", "alibi+causal-lower-right", "--alibi-slopes", "0.5,0.25,-1"] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let bias = AlibiBias(slopes: [0.5, 0.25, -1], seqLenQ: 5, seqLenKV: 7, causal: .lowerRight)
        let expected = try scaledDotProductAttention(query: files.query, key: files.key, value: files.value, attnMask: bias)
        expectIdentical(try files.output(), expected)
    }

    @Test func maskFileIsATensorBias() throws {
        let files = try InputFiles()
        let mask = try Tensor.randomBools(shape: [5, 7], probability: 0.7, seed: 3)
        try mask.write(to: files.path("m.npy"))
        let result = sdpa(["run", "--mask", files.path("m.npy").path] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let expected = try scaledDotProductAttention(query: files.query, key: files.key, value: files.value, attnMask: TensorBias(mask))
        expectIdentical(try files.output(), expected)
    }

    @Test func optionsReachTheLibrary() throws {
        let files = try InputFiles(heads: 4, keyValueHeads: 2, valueHeadDim: 6)
        let result = sdpa(["run", "--is-causal", "--scale", "0.3", "--enable-gqa", "--backend", "math", "--threads", "1"] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let expected = try withSDPBackends([.math]) {
            try scaledDotProductAttention(query: files.query, key: files.key, value: files.value, isCausal: true, scale: 0.3, enableGQA: true)
        }
        let out = try files.output()
        #expect(out.shape == [2, 4, 5, 6])
        expectIdentical(out, expected)
    }

    @Test func dropoutWithASeedIsReproducible() throws {
        let files = try InputFiles()
        let result = sdpa(["run", "--dropout", "0.25", "--seed", "42"] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let expected = try scaledDotProductAttention(query: files.query, key: files.key, value: files.value, dropoutP: 0.25, dropoutSeed: 42)
        expectIdentical(try files.output(), expected)
    }

    @Test func logSumExpIsWrittenWithLseOut() throws {
        let files = try InputFiles()
        let lse = files.path("lse.npy").path
        let result = sdpa(["run", "--bias", "causal-lower-right", "--lse-out", lse] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("wrote \(lse): [2, 3, 5] float32"))
        let expected = try scaledDotProductAttentionWithLogSumExp(
            query: files.query, key: files.key, value: files.value, attnMask: causalLowerRight(5, 7))
        expectIdentical(try files.output(), expected.output)
        expectIdentical(try files.output("lse.npy"), expected.logSumExp)
    }

    @Test func outputKeepsTheQueryDType() throws {
        let files = try InputFiles(dtype: .float16)
        let result = sdpa(["run", "--bias", "alibi"] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let expected = try scaledDotProductAttention(
            query: files.query, key: files.key, value: files.value, attnMask: AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7))
        let out = try files.output()
        #expect(out.dtype == .float16)
        expectIdentical(out, expected)
    }

    /// `--dtype bfloat16` on float32 files (NumPy has no bfloat16): the library's bfloat16 call on the files'
    /// values rounded to bfloat16, its output written back as float32 (exactly).
    @Test func dtypeRunsInAnotherDType() throws {
        let files = try InputFiles()
        let result = sdpa(["run", "--bias", "alibi+causal-lower-right", "--dtype", "bfloat16"] + files.arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let (q, k, v) = (try files.query.converted(to: .bfloat16), try files.key.converted(to: .bfloat16),
                         try files.value.converted(to: .bfloat16))
        let expected = try scaledDotProductAttention(
            query: q, key: k, value: v, attnMask: AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7, causal: .lowerRight))
        let out = try files.output()
        #expect(out.dtype == .float32)
        expectIdentical(out, try expected.converted(to: .float32))
    }

    // MARK: - errors: exit status and message

    @Test func usageErrorsExitWith2() throws {
        let files = try InputFiles()
        let cases: [([String], String)] = [
            (["frobnicate"], "sdpa: error: unknown subcommand 'frobnicate'; expected one of run, grad, explain, bench"),
            (["run", "--query", "q.npy"], "sdpa run: error: missing --key"),
            (["run", "--nope"] + files.arguments, "sdpa run: error: unknown option '--nope'"),
            (["run", "--bias", "sideways"] + files.arguments,
             "sdpa run: error: --bias unknown bias 'sideways'; expected none, alibi+causal-upper-left, alibi+causal-lower-right, "
                + "or parts joined with '+': causal-upper-left, causal-lower-right, alibi, window:LEFT[,RIGHT], window-upper-left:LEFT[,RIGHT], "
                + "padding[:LEN,...], block-diagonal[:L1,L2,...], block-diagonal-causal[:L1,L2,...], softcap:CAP"),
            (["run", "--bias", "alibi+sideways"] + files.arguments, "sdpa run: error: --bias unknown bias 'sideways'; expected"),
            (["run", "--bias", "mask-bool"] + files.arguments,
             "sdpa run: error: --bias mask-bool is a benchmark mask of sdpa bench; give a mask file with --mask"),
            (["run", "--bias", "window:-1"] + files.arguments,
             "sdpa run: error: --bias window:-1: LEFT must be a non-negative integer, got '-1' (a window size cannot be negative)"),
            (["run", "--bias", "window-upper-left:3,-2"] + files.arguments,
             "sdpa run: error: --bias window-upper-left:3,-2: RIGHT must be a non-negative integer, got '-2' (a window size cannot be negative)"),
            (["run", "--bias", "alibi+window:-4+causal-lower-right"] + files.arguments,
             "sdpa run: error: --bias window:-4: LEFT must be a non-negative integer, got '-4'"),
            (["run", "--bias", "window"] + files.arguments, "sdpa run: error: --bias window: window needs its size, e.g. window:256"),
            (["run", "--bias", "window:1,2,3"] + files.arguments, "sdpa run: error: --bias window:1,2,3: expected LEFT,RIGHT, got '1,2,3'"),
            (["run", "--bias", "window:x"] + files.arguments, "sdpa run: error: --bias window:x: LEFT must be a non-negative integer, got 'x'"),
            (["run", "--bias", "padding:3,-1"] + files.arguments,
             "sdpa run: error: --bias padding:3,-1: LEN2 must be a non-negative integer, got '-1' (a length cannot be negative)"),
            (["run", "--bias", "block-diagonal:2,,3"] + files.arguments,
             "sdpa run: error: --bias block-diagonal:2,,3: L2 must be a non-negative integer, got ''"),
            (["run", "--bias", "softcap:0"] + files.arguments, "sdpa run: error: --bias softcap:0: CAP must be a positive finite number (in float32's range), got '0'"),
            (["run", "--bias", "softcap"] + files.arguments, "sdpa run: error: --bias softcap: softcap needs its CAP, e.g. softcap:30"),
            (["run", "--bias", "causal-upper-left:3"] + files.arguments,
             "sdpa run: error: --bias causal-upper-left:3: 'causal-upper-left' takes no parameters"),
            (["run", "--bias", "none+alibi"] + files.arguments, "sdpa run: error: --bias 'none' cannot be combined with other parts with '+'"),
            (["run", "--bias", "window:2+window:2"] + files.arguments, "sdpa run: error: --bias 'window:2' appears twice in 'window:2+window:2'"),
            (["run", "--bias", "alibi+"] + files.arguments, "sdpa run: error: --bias unknown bias ''; expected"),
            (["run", "--bias", "causal-lower-right", "--is-causal"] + files.arguments,
             "sdpa run: error: --is-causal cannot be combined with --bias or --mask"),
            (["run", "--alibi-slopes", "1,2,3"] + files.arguments,
             "sdpa run: error: --alibi-slopes needs a --bias with ALiBi"),
            (["run", "--bias", "window:3", "--alibi-slopes", "1,2,3"] + files.arguments, "sdpa run: error: --alibi-slopes needs a --bias with ALiBi"),
            (["run", "--bias", "alibi", "--alibi-slopes", "1,x"] + files.arguments,
             "sdpa run: error: --alibi-slopes expects a comma-separated list of numbers, got '1,x'"),
            (["run", "--backend", "gpu"] + files.arguments, "sdpa run: error: --backend must be one of auto, fused, math; got 'gpu'"),
            (["run", "--threads", "0"] + files.arguments, "sdpa run: error: --threads expects a positive integer, got '0'"),
            (["run", "--dropout", "2"] + files.arguments, "sdpa run: error: --dropout expects a number in 0...1, got '2'"),
            (["run", "--scale"] + files.arguments, "sdpa run: error: --scale needs a value (X)"),
            (["explain"], "sdpa explain: error: give --query, --key and --value, or --shape B,H,L,S,E"),
            (["explain", "--shape", "1,2,3"], "sdpa explain: error: --shape expects a comma-separated list of 5 integers, got '1,2,3'"),
            (["explain", "--shape", "1,1,4,4,8", "--query", "q.npy"], "sdpa explain: error: give either --shape or --query/--key/--value, not both"),
            (["bench", "--bias", "nope"], "sdpa bench: error: --bias unknown bias 'nope'"),
            (["bench", "--bias", "window:-256"], "sdpa bench: error: --bias window:-256: LEFT must be a non-negative integer"),
            (["explain", "--shape", "1,1,4,4,8", "--bias", "padding:-2"], "sdpa explain: error: --bias padding:-2: LEN1 must be a non-negative integer"),
            (["bench", "--dtype", "int8"], "sdpa bench: error: --dtype must be one of float32, float16, bfloat16; got 'int8'"),
        ]
        for (arguments, message) in cases {
            let result = sdpa(arguments)
            #expect(result.status == 2, "\(arguments): \(result.standardError)")
            #expect(result.standardError.hasPrefix(message), "\(arguments): \(result.standardError)")
            #expect(result.standardError.contains("--help' for usage."), "\(arguments)")
            #expect(result.standardOutput.isEmpty)
        }
    }

    @Test("the parts an unknown --bias part is told of include 'mask' where --mask is an option (run, grad), not in bench")
    func unknownPartListsTheMaskPartWhereThereIsOne() throws {
        let files = try InputFiles()
        let mask = "sink-tokens:N,WINDOW, mask (where the --mask file's mask goes)\n"
        let run = sdpa(["run", "--bias", "sideways"] + files.arguments)
        #expect(run.status == 2 && run.standardError.contains(mask), "\(run.standardError)")
        let bench = sdpa(["bench", "--bias", "sideways"])
        #expect(bench.status == 2 && bench.standardError.contains("sink-tokens:N,WINDOW\n"), "\(bench.standardError)")
    }

    @Test func badInputExitsWith1AndNamesTheProblem() throws {
        let files = try InputFiles()
        try Data("not numpy at all".utf8).write(to: files.path("bad.npy"))
        let wrongKey = try Tensor.randomNormal(shape: [2, 3, 7, 4], seed: 1)
        try wrongKey.write(to: files.path("k4.npy"))
        let missing = files.path("missing.npy").path
        func replacing(_ option: String, with path: String) -> [String] {
            var arguments = files.arguments
            arguments[arguments.firstIndex(of: option)! + 1] = path
            return arguments
        }
        let cases: [([String], String)] = [
            (["run"] + replacing("--query", with: missing), "sdpa run: error: \(missing): cannot read the file"),
            (["run"] + replacing("--key", with: files.path("bad.npy").path),
             "sdpa run: error: \(files.path("bad.npy").path): not a .npy file (missing the \\x93NUMPY magic string)"),
            (["run"] + replacing("--key", with: files.path("k4.npy").path),
             "sdpa run: error: --key has shape [2, 3, 7, 4] and --query has shape [2, 3, 5, 8]: query and key must have the same head dimension E"),
            (["run", "--bias", "alibi", "--alibi-slopes", "1,2"] + files.arguments,
             "sdpa run: error: AlibiBias.slopes.count is 2 but the inputs need 3"),
            (["run", "--mask", missing] + files.arguments, "sdpa run: error: \(missing): cannot read the file"),
            (["run"] + replacing("--out", with: files.path("no/such/folder/o.npy").path), "sdpa run: error: "),
            (["explain", "--query", missing, "--key", missing, "--value", missing], "sdpa explain: error: \(missing): cannot read the file"),
            (["bench", "--compare", missing, "--shape", "1,1,4,4,8"], "sdpa bench: error: "),
            // Parameters that do not fit the inputs: named, exit 1.
            (["run", "--bias", "padding:3,9"] + files.arguments,
             "sdpa run: error: --bias padding:3,9 (LEN of batch 1) = 9: a valid key length cannot be longer than the key length S = 7"),
            (["run", "--bias", "padding:3"] + files.arguments,
             "sdpa run: error: --bias padding:3 (LEN) = 1 lengths: padding takes one valid key length per batch entry, and the batch size B is 2"),
            (["run", "--bias", "alibi+padding:8,1"] + files.arguments, "sdpa run: error: --bias padding:8,1 (LEN of batch 0) = 8"),
            (["run", "--bias", "block-diagonal:2,3"] + files.arguments,
             "sdpa run: error: --bias block-diagonal:2,3 (sequence lengths) = sum 5: the packed sequence lengths must sum to the key length S = 7"),
            (["run", "--bias", "block-diagonal-causal:3,4"] + files.arguments,
             "sdpa run: error: --bias block-diagonal-causal:3,4 (sequence lengths) = sum 7: the packed sequence lengths must sum to the query length L = 5"),
            (["run", "--bias", "block-diagonal"] + files.arguments, "sdpa run: error: --bias block-diagonal (sequence lengths) = sum 5"),
            (["explain", "--shape", "1,1,8,8,4", "--bias", "block-diagonal:4,5"], "sdpa explain: error: --bias block-diagonal:4,5 (sequence lengths) = sum 9"),
            (["bench", "--shape", "1,1,8,4,4", "--bias", "block-diagonal-causal"], "sdpa bench: error: --bias block-diagonal-causal (sequence lengths)"),
        ]
        for (arguments, message) in cases {
            let result = sdpa(arguments)
            #expect(result.status == 1, "\(arguments): \(result.standardError)")
            #expect(result.standardError.hasPrefix(message), "\(arguments): \(result.standardError)")
            #expect(!result.standardError.contains("--help"), "\(arguments)")
        }
        #expect(!FileManager.default.fileExists(atPath: files.path("o.npy").path), "no output after a failure")
    }

    @Test func everySubcommandHasHelp() {
        for (arguments, usage) in [
            (["--help"], "usage: sdpa [<subcommand> [options]]"),
            (["run", "--help"], "usage: sdpa run --query FILE"),
            (["explain", "-h"], "usage: sdpa explain "),
            (["bench", "--help"], "usage: sdpa bench "),
        ] {
            let result = sdpa(arguments)
            #expect(result.status == 0)
            #expect(result.standardOutput.hasPrefix(usage), "\(arguments)")
            #expect(result.standardError.isEmpty)
        }
        let runHelp = sdpa(["run", "--help"]).standardOutput
        for kind in BiasKind.commandLineKinds { #expect(runHelp.contains(kind.spelling)) }
        let topHelp = sdpa(["--help"]).standardOutput
        for text in [runHelp, topHelp, sdpa(["bench", "--help"]).standardOutput, sdpa(["explain", "--help"]).standardOutput] {
            for part in BiasKind.parts { #expect(text.contains(part.syntax), "\(part.syntax)") }
            #expect(text.contains("alibi+window:256+causal-lower-right"))
        }
        #expect(sdpa(["bench", "--help"]).standardOutput.contains("mask-bool"))
        #expect(runHelp.contains("exit status: 0 success, 1 bad input"))
    }

    // MARK: - explain and bench

    @Test func explainNamesTheBackendAndTheRejectedOnes() throws {
        let byShape = sdpa(["explain", "--shape", "1,2,16,32,8", "--bias", "alibi+causal-lower-right"])
        #expect(byShape.status == 0, "\(byShape.standardError)")
        #expect(byShape.standardOutput.contains("inputs: B=1 H=2 Hkv=2 L=16 S=32 E=8 Ev=8, float32"))
        #expect(byShape.standardOutput.contains("bias: alibi+causal-lower-right"))
        #expect(byShape.standardOutput.contains("backend: fused"))
        #expect(byShape.standardOutput.contains("math rejected: fused is preferred"))
        #expect(byShape.standardOutput.contains("kernels: \(FusedKernelInstructionSet.current)\n"), "\(byShape.standardOutput)")

        let files = try InputFiles()
        let restricted = sdpa(["explain", "--backend", "math"] + files.arguments.dropLast(2))
        #expect(restricted.status == 0, "\(restricted.standardError)")
        #expect(restricted.standardOutput.contains("backend: math"))
        #expect(restricted.standardOutput.contains("fused rejected: not allowed by withSDPBackends"))
        #expect(!restricted.standardOutput.contains("kernels:"), "the math backend runs no kernel family")

        let float64 = sdpa(["explain", "--shape", "1,1,4,4,8", "--dtype", "float64"])
        #expect(float64.standardOutput.contains("backend: math"))
    }

    @Test func benchPrintsATableAndWritesJSONAndSVG() throws {
        let folder = try temporaryFolder()
        let json = folder.appending(path: "bench.json"), svg = folder.appending(path: "bench.svg")
        let result = sdpa([
            "bench", "--shape", "1,2,16,16,8", "--bias", "causal-lower-right", "--bias", "none", "--samples", "1",
            "--threads", "1", "--json", json.path, "--svg", svg.path,
        ])
        #expect(result.status == 0, "\(result.standardError)")
        // Not a terminal: one plain progress line per configuration.
        #expect(result.standardError == "[1/3] causal-lower-right B=1 H=2 L=16 S=16 E=8 float32 materialized\n"
            + "[2/3] causal-lower-right B=1 H=2 L=16 S=16 E=8 float32 fused\n[3/3] none B=1 H=2 L=16 S=16 E=8 float32 fused\n")
        let lines = result.standardOutput.split(separator: "\n")
        // The peak is measured (one thread of the kernel family's FMA loop), so only its wording is fixed.
        #expect(lines[0].hasPrefix("B=1 H=2 L=16 S=16 E=8 float32, 1 thread, peak ") && lines[0].contains(" per core, measured: "))
        #expect(lines[1].hasPrefix("bias") && lines[1].contains("eff. GFLOP/s") && lines[1].contains("peak extra mem"))
        #expect(lines[3].hasPrefix("causal-lower-right  materialized"))
        #expect(lines[4].hasPrefix("                    fused"))
        #expect(lines[5].hasPrefix("none                fused"))

        let report = try BenchmarkReport(contentsOf: json)
        #expect(report.schema == "sdpa-benchmark/1" && report.benchmark == "sdpa bench")
        #expect(report.results.map(\.path) == ["materialized", "fused", "fused"])
        let causal = report.results[1]
        #expect(causal.workload.effectiveFlops == 4 * 2 * (16 * 17 / 2) * 8)
        #expect(causal.threads == 1 && causal.timing?.samples == 1)
        #expect(try String(contentsOf: svg, encoding: .utf8).hasPrefix("<svg "))
    }

    @Test func benchRunsTheNewBiasesWithExactEffectiveFlops() throws {
        let folder = try temporaryFolder()
        let json = folder.appending(path: "bench.json")
        let spellings = ["window:3", "padding", "block-diagonal-causal:4,12", "softcap:30+causal-upper-left", "alibi+window:2+causal-lower-right"]
        let result = sdpa(["bench", "--shape", "2,2,16,16,8", "--samples", "1", "--threads", "1", "--json", json.path]
            + spellings.flatMap { ["--bias", $0] })
        #expect(result.status == 0, "\(result.standardError)")
        let report = try BenchmarkReport(contentsOf: json)
        #expect(report.workloads.map(\.bias) == spellings)
        // Soft-capping has no materialized form: the fused path only.
        #expect(report.results.filter { $0.workload.bias.hasPrefix("softcap") }.map(\.path) == ["fused"])
        #expect(report.results.filter { $0.workload.bias == "window:3" }.map(\.path) == ["materialized", "fused"])
        func visible(_ spelling: String) -> Double? {
            report.results.first { $0.workload.bias == spelling }.map { $0.workload.effectiveFlops / (4 * 8) }
        }
        // B=2 H=2 L=S=16: window of 3 back sees 1+2+3 + 13*4 per head; padding half of S; blocks 4 and 12 causal.
        #expect(visible("window:3") == 4 * Double(1 + 2 + 3 + 13 * 4))
        #expect(visible("padding") == Double(4 * 16 * 8))
        #expect(visible("block-diagonal-causal:4,12") == 4 * Double(10 + 78))
        #expect(visible("softcap:30+causal-upper-left") == Double(4 * 136))
        #expect(visible("alibi+window:2+causal-lower-right") == 4 * Double(1 + 2 + 14 * 3))
    }

    @Test func progressIsABarOnATerminal() {
        let result = sdpa(["bench", "--shape", "1,1,8,8,8", "--bias", "none", "--samples", "1"], terminal: true)
        #expect(result.status == 0)
        #expect(result.standardError.hasPrefix("\r\u{1B}[K[........................] 1/1 none"))
        #expect(result.standardError.hasSuffix("\r\u{1B}[K"))
    }
}
