import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine
import Testing

// MARK: - helpers (private: the test module is shared with other files)

/// What one `sdpa` invocation printed and returned.
private struct Invocation {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

/// Collects a command's output; used by one test on one thread.
private final class OutputCollector {
    var standardOutput = ""
    var standardError = ""
}

/// Runs `sdpa` in process with `arguments`.
private func sdpa(_ arguments: [String], terminal: Bool = false) -> Invocation {
    let collector = OutputCollector()
    let output = CommandOutput(
        standardOutput: { collector.standardOutput += $0 }, standardError: { collector.standardError += $0 },
        standardErrorIsTerminal: terminal)
    let status = SDPACommandLine.main(arguments, output: output)
    return Invocation(status: status, standardOutput: collector.standardOutput, standardError: collector.standardError)
}

/// A fresh folder for one test's files.
private func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appending(path: "sdpa-cli-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Query, key and value `.npy` files in a new folder: `[B, H, L, E]`, `[B, Hkv, S, E]`, `[B, Hkv, S, Ev]`.
private struct InputFiles {
    var folder: URL
    var query: Tensor, key: Tensor, value: Tensor

    init(batch: Int = 2, heads: Int = 3, keyValueHeads: Int? = nil, queryLength: Int = 5, keyLength: Int = 7,
         headDim: Int = 8, valueHeadDim: Int? = nil, dtype: DType = .float32) throws {
        folder = try temporaryFolder()
        let hkv = keyValueHeads ?? heads
        query = try Tensor.randomNormal(shape: [batch, heads, queryLength, headDim], seed: 11, dtype: dtype)
        key = try Tensor.randomNormal(shape: [batch, hkv, keyLength, headDim], seed: 12, dtype: dtype)
        value = try Tensor.randomNormal(shape: [batch, hkv, keyLength, valueHeadDim ?? headDim], seed: 13, dtype: dtype)
        try query.write(to: path("q.npy"))
        try key.write(to: path("k.npy"))
        try value.write(to: path("v.npy"))
    }

    func path(_ name: String) -> URL { folder.appending(path: name) }

    /// `--query q.npy --key k.npy --value v.npy --out o.npy`.
    var arguments: [String] {
        ["--query", path("q.npy").path, "--key", path("k.npy").path, "--value", path("v.npy").path, "--out", path("o.npy").path]
    }

    func output(_ name: String = "o.npy") throws -> Tensor { try Tensor(contentsOf: path(name)) }
}

/// Bit patterns of a tensor's elements: equal outputs must be identical, not merely close.
private func bits(_ t: Tensor) -> [UInt64] { t.doubleScalars.map(\.bitPattern) }

// MARK: - run: round trips against the library

@Test func runWithoutBiasMatchesTheLibraryCall() throws {
    let files = try InputFiles()
    let result = sdpa(["run"] + files.arguments)
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardError.isEmpty)
    #expect(result.standardOutput.contains("wrote \(files.path("o.npy").path): [2, 3, 5, 8] float32"))
    let expected = try scaledDotProductAttention(query: files.query, key: files.key, value: files.value)
    let out = try files.output()
    #expect(out.shape == expected.shape && out.dtype == .float32)
    #expect(bits(out) == bits(expected))
}

@Test(arguments: [
    ("none", nil),
    ("causal-upper-left", causalUpperLeft(5, 7) as (any AttnBias)?),
    ("causal-lower-right", causalLowerRight(5, 7)),
    ("alibi", AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7)),
    ("alibi+causal-upper-left", AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7, causal: .upperLeft)),
    ("alibi+causal-lower-right", AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7, causal: .lowerRight)),
] as [(String, (any AttnBias)?)])
func eachBiasSpellingRunsThatBias(spelling: String, bias: (any AttnBias)?) throws {
    let files = try InputFiles()
    let result = sdpa(["run", "--bias", spelling] + files.arguments)
    #expect(result.status == 0, "\(result.standardError)")
    let expected = try attention(query: files.query, key: files.key, value: files.value, bias: bias)
    #expect(bits(try files.output()) == bits(expected))
}

@Test func everyCommandLineSpellingIsTested() {
    // The parameterized test above lists the spellings by hand; a new BiasKind entry must be added there too.
    #expect(BiasKind.commandLineKinds.map(\.spelling) == [
        "none", "causal-upper-left", "causal-lower-right", "alibi", "alibi+causal-upper-left", "alibi+causal-lower-right",
    ])
}

@Test func alibiSlopesOverrideTheStandardOnes() throws {
    let files = try InputFiles()
    let result = sdpa(["run", "--bias", "alibi+causal-lower-right", "--alibi-slopes", "0.5,0.25,-1"] + files.arguments)
    #expect(result.status == 0, "\(result.standardError)")
    let bias = AlibiBias(slopes: [0.5, 0.25, -1], seqLenQ: 5, seqLenKV: 7, causal: .lowerRight)
    let expected = try scaledDotProductAttention(query: files.query, key: files.key, value: files.value, attnMask: bias)
    #expect(bits(try files.output()) == bits(expected))
}

@Test func maskFileIsATensorBias() throws {
    let files = try InputFiles()
    let mask = try Tensor.randomBools(shape: [5, 7], probability: 0.7, seed: 3)
    try mask.write(to: files.path("m.npy"))
    let result = sdpa(["run", "--mask", files.path("m.npy").path] + files.arguments)
    #expect(result.status == 0, "\(result.standardError)")
    let expected = try scaledDotProductAttention(query: files.query, key: files.key, value: files.value, attnMask: TensorBias(mask))
    #expect(bits(try files.output()) == bits(expected))
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
    #expect(bits(out) == bits(expected))
}

@Test func dropoutWithASeedIsReproducible() throws {
    let files = try InputFiles()
    let result = sdpa(["run", "--dropout", "0.25", "--seed", "42"] + files.arguments)
    #expect(result.status == 0, "\(result.standardError)")
    let expected = try scaledDotProductAttention(query: files.query, key: files.key, value: files.value, dropoutP: 0.25, dropoutSeed: 42)
    #expect(bits(try files.output()) == bits(expected))
}

@Test func logSumExpIsWrittenWithLseOut() throws {
    let files = try InputFiles()
    let lse = files.path("lse.npy").path
    let result = sdpa(["run", "--bias", "causal-lower-right", "--lse-out", lse] + files.arguments)
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput.contains("wrote \(lse): [2, 3, 5] float32"))
    let expected = try scaledDotProductAttentionWithLogSumExp(
        query: files.query, key: files.key, value: files.value, attnMask: causalLowerRight(5, 7))
    #expect(bits(try files.output()) == bits(expected.output))
    #expect(bits(try files.output("lse.npy")) == bits(expected.logSumExp))
}

@Test func outputKeepsTheQueryDType() throws {
    let files = try InputFiles(dtype: .float16)
    let result = sdpa(["run", "--bias", "alibi"] + files.arguments)
    #expect(result.status == 0, "\(result.standardError)")
    let expected = try scaledDotProductAttention(
        query: files.query, key: files.key, value: files.value, attnMask: AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7))
    let out = try files.output()
    #expect(out.dtype == .float16)
    #expect(bits(out) == bits(expected))
}

// MARK: - errors: exit status and message

@Test func usageErrorsExitWith2() throws {
    let files = try InputFiles()
    let m = files.path("m.npy").path
    let cases: [([String], String)] = [
        (["frobnicate"], "sdpa: error: unknown subcommand 'frobnicate'; expected one of run, explain, bench"),
        (["run", "--query", "q.npy"], "sdpa run: error: missing --key"),
        (["run", "--nope"] + files.arguments, "sdpa run: error: unknown option '--nope'"),
        (["run", "--bias", "sideways"] + files.arguments,
         "sdpa run: error: --bias must be one of none, causal-upper-left, causal-lower-right, alibi, alibi+causal-upper-left, alibi+causal-lower-right; got 'sideways'"),
        (["run", "--bias", "mask-bool"] + files.arguments, "sdpa run: error: --bias must be one of"),
        (["run", "--bias", "alibi", "--mask", m] + files.arguments,
         "sdpa run: error: --mask and --bias cannot be used together: --mask is itself the bias (a TensorBias)"),
        (["run", "--bias", "causal-lower-right", "--is-causal"] + files.arguments,
         "sdpa run: error: --is-causal cannot be combined with --bias or --mask"),
        (["run", "--alibi-slopes", "1,2,3"] + files.arguments,
         "sdpa run: error: --alibi-slopes needs --bias alibi|alibi+causal-upper-left|alibi+causal-lower-right"),
        (["run", "--bias", "alibi", "--alibi-slopes", "1,x"] + files.arguments,
         "sdpa run: error: --alibi-slopes expects a comma-separated list of numbers, got '1,x'"),
        (["run", "--backend", "gpu"] + files.arguments, "sdpa run: error: --backend must be one of auto, fused, math; got 'gpu'"),
        (["run", "--threads", "0"] + files.arguments, "sdpa run: error: --threads expects a positive integer, got '0'"),
        (["run", "--dropout", "2"] + files.arguments, "sdpa run: error: --dropout expects a number in 0...1, got '2'"),
        (["run", "--scale"] + files.arguments, "sdpa run: error: --scale needs a value (X)"),
        (["explain"], "sdpa explain: error: give --query, --key and --value, or --shape B,H,L,S,E"),
        (["explain", "--shape", "1,2,3"], "sdpa explain: error: --shape expects a comma-separated list of 5 integers, got '1,2,3'"),
        (["explain", "--shape", "1,1,4,4,8", "--query", "q.npy"], "sdpa explain: error: give either --shape or --query/--key/--value, not both"),
        (["bench", "--bias", "nope"], "sdpa bench: error: --bias must be one of"),
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
         "sdpa run: error: " + SDPAError.shapeMismatch(
            argument: "key", shape: [2, 3, 7, 4], other: "query", otherShape: [2, 3, 5, 8],
            reason: "query and key must have the same head dimension E").description),
        (["run", "--bias", "alibi", "--alibi-slopes", "1,2"] + files.arguments,
         "sdpa run: error: AlibiBias.slopes.count is 2 but the inputs need 3"),
        (["run", "--mask", missing] + files.arguments, "sdpa run: error: \(missing): cannot read the file"),
        (["run", "--dropout", "0.5", "--backend", "fused"] + files.arguments, "sdpa run: error: no allowed backend can run these inputs"),
        (["run"] + replacing("--out", with: files.path("no/such/folder/o.npy").path), "sdpa run: error: "),
        (["explain", "--query", missing, "--key", missing, "--value", missing], "sdpa explain: error: \(missing): cannot read the file"),
        (["bench", "--compare", missing, "--shape", "1,1,4,4,8"], "sdpa bench: error: "),
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

    let files = try InputFiles()
    let restricted = sdpa(["explain", "--backend", "math"] + files.arguments.dropLast(2))
    #expect(restricted.status == 0, "\(restricted.standardError)")
    #expect(restricted.standardOutput.contains("backend: math"))
    #expect(restricted.standardOutput.contains("fused rejected: not allowed by withSDPBackends"))

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
    #expect(lines[0].hasPrefix("B=1 H=2 L=16 S=16 E=8 float32, 1 thread, peak 98 GFLOP/s"))
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

@Test func progressIsABarOnATerminal() {
    let result = sdpa(["bench", "--shape", "1,1,8,8,8", "--bias", "none", "--samples", "1"], terminal: true)
    #expect(result.status == 0)
    #expect(result.standardError.hasPrefix("\r\u{1B}[K[........................] 1/1 none"))
    #expect(result.standardError.hasSuffix("\r\u{1B}[K"))
}
