import Foundation
import SDPA
import SDPABenchmarkHarness
import SDPACommandLine
import SDPATestSupport
import Testing

// Every option of every `sdpa` subcommand, on valid input (exit 0, and where the option changes the
// result, the library call it stands for, bit for bit) and on invalid input (the exit status and
// message). The options are read from each subcommand's --help, so a new option fails
// `everyOptionIsCoveredBothWays` until it has both kinds of case.

/// One invocation of the option tables: the arguments, given the input files, and what it must do.
struct OptionCase: Sendable, CustomTestStringConvertible {
    let subcommand: String
    let arguments: @Sendable (InputFiles) -> [String]
    /// 0 for a valid case; 1 (bad input) or 2 (usage) for an invalid one.
    let status: Int32
    /// The start of the message on standard error, for an invalid case.
    let message: String
    let label: String

    var testDescription: String { "sdpa \(subcommand) \(label)" }

    static func valid(_ subcommand: String, _ label: String, _ arguments: @escaping @Sendable (InputFiles) -> [String]) -> OptionCase {
        OptionCase(subcommand: subcommand, arguments: arguments, status: 0, message: "", label: label)
    }

    static func invalid(_ subcommand: String, _ status: Int32, _ message: String, _ label: String,
                        _ arguments: @escaping @Sendable (InputFiles) -> [String]) -> OptionCase {
        OptionCase(subcommand: subcommand, arguments: arguments, status: status, message: message, label: label)
    }
}

/// `--query q.npy --key k.npy --value v.npy` (and `--out o.npy` for run).
private func io(_ f: InputFiles, out: Bool = true) -> [String] { out ? f.arguments : Array(f.arguments.dropLast(2)) }
private let tinyBench = ["--shape", "1,1,8,8,8", "--bias", "none", "--samples", "1", "--threads", "1"]

enum OptionTables {
    static let valid: [OptionCase] = [
        .valid("run", "--query --key --value --out") { io($0) },
        .valid("run", "--lse-out") { io($0) + ["--lse-out", $0.path("lse.npy").path] },
        .valid("run", "--sinks") { io($0) + ["--sinks", $0.path("sinks.npy").path, "--is-causal"] },
        .valid("run", "--dtype bfloat16") { io($0) + ["--dtype", "bfloat16"] },
        .valid("run", "--mask (float)") { io($0) + ["--mask", $0.path("float-mask.npy").path] },
        .valid("run", "--mask --bias (composed)") { io($0) + ["--mask", $0.path("float-mask.npy").path, "--bias", "alibi+causal-lower-right"] },
        .valid("run", "--bias --alibi-slopes") { io($0) + ["--bias", "alibi", "--alibi-slopes", "0.5,0.25,0.125"] },
        .valid("run", "--is-causal --scale") { io($0) + ["--is-causal", "--scale", "0.3"] },
        .valid("run", "--enable-gqa") { _ in gqaFiles() + ["--enable-gqa"] },
        .valid("run", "--dropout --seed") { io($0) + ["--dropout", "0.25", "--seed", "42"] },
        .valid("run", "--backend fused --threads 2") { io($0) + ["--backend", "fused", "--threads", "2"] },
        .valid("run", "--backend auto") { io($0) + ["--backend", "auto"] },
        .valid("grad", "--query --key --value --grad-out --dq --dk --dv") { $0.gradArguments },
        .valid("grad", "--mask (float) --dmask") { $0.gradArguments + ["--mask", $0.path("float-mask.npy").path, "--dmask", $0.path("dm.npy").path] },
        .valid("grad", "--mask (float) --bias with a part mask --dmask") {
            $0.gradArguments + ["--mask", $0.path("float-mask.npy").path, "--bias", "softcap:5+mask+window:2", "--dmask", $0.path("dm.npy").path]
        },
        .valid("grad", "--mask (float) --bias --dmask (composed)") {
            $0.gradArguments + ["--mask", $0.path("float-mask.npy").path, "--bias", "window:2", "--dmask", $0.path("dm.npy").path]
        },
        .valid("grad", "--bias --alibi-slopes --dalibi-slopes") {
            $0.gradArguments + ["--bias", "alibi", "--alibi-slopes", "0.5,0.25,0.125", "--dalibi-slopes", $0.path("ds.npy").path]
        },
        .valid("grad", "--is-causal --scale") { $0.gradArguments + ["--is-causal", "--scale", "0.3"] },
        .valid("grad", "--enable-gqa") { _ in gqaGradFiles() + ["--enable-gqa"] },
        .valid("grad", "--dropout --seed") { $0.gradArguments + ["--dropout", "0.25", "--seed", "42"] },
        .valid("grad", "--backend math --threads 2") { $0.gradArguments + ["--backend", "math", "--threads", "2"] },
        .valid("grad", "--dtype float16") { $0.gradArguments + ["--dtype", "float16"] },
        .valid("grad", "--sinks --dsinks") { $0.gradArguments + ["--sinks", $0.path("sinks.npy").path, "--dsinks", $0.path("dsinks.npy").path] },
        .valid("grad", "--backend fused --dropout --seed") { $0.gradArguments + ["--backend", "fused", "--dropout", "0.25", "--seed", "42"] },
        .valid("explain", "--query --key --value") { io($0, out: false) },
        .valid("explain", "--shape --dtype bfloat16") { _ in ["--shape", "1,2,16,32,8", "--dtype", "bfloat16"] },
        .valid("explain", "--mask") { io($0, out: false) + ["--mask", $0.path("float-mask.npy").path] },
        .valid("explain", "--bias --alibi-slopes") { io($0, out: false) + ["--bias", "alibi", "--alibi-slopes", "1,2,3"] },
        .valid("explain", "--is-causal --scale") { io($0, out: false) + ["--is-causal", "--scale", "2"] },
        .valid("explain", "--scale past float32") { io($0, out: false) + ["--scale", "1e39"] },
        .valid("explain", "--enable-gqa") { _ in Array(gqaFiles().dropLast(2)) + ["--enable-gqa"] },
        .valid("explain", "--dropout --seed") { io($0, out: false) + ["--dropout", "0.5", "--seed", "7"] },
        .valid("explain", "--backend math") { io($0, out: false) + ["--backend", "math"] },
        .valid("explain", "--threads") { io($0, out: false) + ["--threads", "2,64"] },
        .valid("explain", "--shape --kv-heads --enable-gqa") { _ in ["--shape", "1,8,1,4000,64", "--kv-heads", "2", "--enable-gqa"] },
        .valid("bench", "--shape --bias --samples --threads") { _ in tinyBench },
        .valid("bench", "--dtype float16") { _ in tinyBench + ["--dtype", "float16"] },
        .valid("bench", "--dtype bfloat16 --peak-gflops") { _ in tinyBench + ["--dtype", "bfloat16", "--peak-gflops", "50"] },
        .valid("bench", "--json --svg") { tinyBench + ["--json", $0.path("b.json").path, "--svg", $0.path("b.svg").path] },
        .valid("bench", "--compare") { tinyBench + ["--compare", $0.path("pytorch.json").path] },
        .valid("bench", "--decode --kv-heads --steps") { _ in ["--decode", "--shape", "3,4,1,200,8", "--kv-heads", "2", "--steps", "2", "--threads", "1"] },
    ]

    static let invalid: [OptionCase] = [
        .invalid("run", 2, "sdpa run: error: missing --query", "--query missing") { Array(io($0).dropFirst(2)) },
        .invalid("run", 2, "sdpa run: error: --key needs a value (FILE)", "--key without a file") { _ in ["--query", "q.npy", "--key"] },
        .invalid("run", 1, "sdpa run: error: ", "--value of a missing file") { ["--query", $0.path("q.npy").path, "--key", $0.path("k.npy").path,
                                                                                "--value", $0.path("none.npy").path, "--out", $0.path("o.npy").path] },
        .invalid("run", 2, "sdpa run: error: missing --out", "--out missing") { io($0, out: false) },
        .invalid("run", 2, "sdpa run: error: --lse-out needs a value (FILE)", "--lse-out without a file") { io($0) + ["--lse-out"] },
        .invalid("run", 1, "sdpa run: error: --sinks has shape [2]: expected [H] = [3]", "--sinks of the wrong length") {
            io($0) + ["--sinks", $0.path("bad-sinks.npy").path]
        },
        .invalid("run", 1, "sdpa run: error: --mask of shape [3, 7]", "--mask that does not broadcast") { io($0) + ["--mask", $0.path("bad-mask.npy").path] },
        .invalid("run", 2, "sdpa run: error: --bias unknown bias 'sideways'", "--bias unknown") { io($0) + ["--bias", "sideways"] },
        .invalid("run", 2, "sdpa run: error: --alibi-slopes expects a comma-separated list of numbers, got '1,,2'", "--alibi-slopes malformed") {
            io($0) + ["--bias", "alibi", "--alibi-slopes", "1,,2"]
        },
        .invalid("run", 2, "sdpa run: error: --is-causal is a flag and takes no value", "--is-causal given a value") { io($0) + ["--is-causal=yes"] },
        .invalid("run", 2, "sdpa run: error: --scale expects a number, got 'big'", "--scale big") { io($0) + ["--scale", "big"] },
        .invalid("run", 1, "sdpa run: error: --query has 4 heads", "--enable-gqa missing for GQA shapes") { _ in gqaFiles() },
        .invalid("run", 2, "sdpa run: error: --dropout expects a number in 0...1, got '-0.1'", "--dropout -0.1") { io($0) + ["--dropout", "-0.1"] },
        .invalid("run", 2, "sdpa run: error: --seed expects a non-negative integer, got '-1'", "--seed -1") { io($0) + ["--seed", "-1"] },
        .invalid("run", 2, "sdpa run: error: --backend must be one of auto, fused, math; got 'gpu'", "--backend gpu") { io($0) + ["--backend", "gpu"] },
        .invalid("run", 2, "sdpa run: error: --dtype must be one of", "--dtype bool") { io($0) + ["--dtype", "bool"] },
        .invalid("run", 2, "sdpa run: error: --threads expects a positive integer, got '0'", "--threads 0") { io($0) + ["--threads", "0"] },
        .invalid("grad", 2, "sdpa grad: error: missing --query", "--query missing") { Array($0.gradArguments.dropFirst(2)) },
        .invalid("grad", 2, "sdpa grad: error: --key needs a value (FILE)", "--key without a file") { _ in ["--query", "q.npy", "--key"] },
        .invalid("grad", 1, "sdpa grad: error: ", "--value of a missing file") { f in
            f.gradArguments.map { $0 == f.path("v.npy").path ? f.path("none.npy").path : $0 }
        },
        .invalid("grad", 1, "sdpa grad: error: --grad-out has shape [2, 1, 5, 7] and output has shape [2, 3, 5, 8]", "--grad-out of another shape") { f in
            f.gradArguments.map { $0 == f.path("dout.npy").path ? f.path("float-mask.npy").path : $0 }
        },
        .invalid("grad", 2, "sdpa grad: error: missing --dq", "--dq missing") { Array($0.gradArguments.dropLast(6)) + Array($0.gradArguments.suffix(4)) },
        .invalid("grad", 2, "sdpa grad: error: --dk needs a value (FILE)", "--dk without a file") { Array($0.gradArguments.dropLast(3)) },
        .invalid("grad", 2, "sdpa grad: error: missing --dv", "--dv missing") { Array($0.gradArguments.dropLast(2)) },
        .invalid("grad", 2, "sdpa grad: error: --bias softcap:5+mask: the part 'mask' needs --mask FILE", "--bias part mask without --mask") {
            $0.gradArguments + ["--bias", "softcap:5+mask"]
        },
        .invalid("grad", 2, "sdpa grad: error: --bias mask+softcap:5+mask: the part 'mask' appears twice", "--bias part mask twice") {
            $0.gradArguments + ["--mask", $0.path("float-mask.npy").path, "--bias", "mask+softcap:5+mask"]
        },
        // Errors about the other parts quote --bias as written, and the parts they list include `mask`.
        .invalid("grad", 2, "sdpa grad: error: --bias 'window:2' appears twice in 'window:2+mask+window:2'", "--bias part twice around mask") {
            $0.gradArguments + ["--mask", $0.path("float-mask.npy").path, "--bias", "window:2+mask+window:2"]
        },
        .invalid("grad", 2, "sdpa grad: error: --dmask needs the float mask it is the gradient of, given with --mask", "--dmask without --mask") {
            $0.gradArguments + ["--dmask", $0.path("dm.npy").path]
        },
        .invalid("grad", 2, "sdpa grad: error: --dsinks needs the sinks it is the gradient of, given with --sinks", "--dsinks without --sinks") {
            $0.gradArguments + ["--dsinks", $0.path("dsinks.npy").path]
        },
        .invalid("grad", 1, "sdpa grad: error: --sinks has shape [2]: expected [H] = [3]", "--sinks of the wrong length") {
            $0.gradArguments + ["--sinks", $0.path("bad-sinks.npy").path]
        },
        .invalid("grad", 2, "sdpa grad: error: --dalibi-slopes needs a --bias with ALiBi", "--dalibi-slopes without ALiBi") {
            $0.gradArguments + ["--bias", "causal-lower-right", "--dalibi-slopes", $0.path("ds.npy").path]
        },
        .invalid("grad", 1, "sdpa grad: error: --mask has dtype bool: a bool mask has no gradient", "--mask (bool) with --dmask") {
            $0.gradArguments + ["--mask", $0.path("bad-mask.npy").path, "--dmask", $0.path("dm.npy").path]
        },
        .invalid("grad", 2, "sdpa grad: error: --bias unknown bias 'sideways'", "--bias unknown") { $0.gradArguments + ["--bias", "sideways"] },
        .invalid("grad", 2, "sdpa grad: error: --alibi-slopes needs a --bias with ALiBi", "--alibi-slopes without ALiBi") {
            $0.gradArguments + ["--alibi-slopes", "1,2,3"]
        },
        .invalid("grad", 2, "sdpa grad: error: --is-causal is a flag and takes no value", "--is-causal given a value") { $0.gradArguments + ["--is-causal=1"] },
        .invalid("grad", 2, "sdpa grad: error: --scale expects a number, got 'x'", "--scale x") { $0.gradArguments + ["--scale", "x"] },
        .invalid("grad", 1, "sdpa grad: error: --query has 4 heads", "--enable-gqa missing for GQA shapes") { _ in gqaGradFiles() },
        .invalid("grad", 2, "sdpa grad: error: --dropout expects a number in 0...1, got '2'", "--dropout 2") { $0.gradArguments + ["--dropout", "2"] },
        .invalid("grad", 2, "sdpa grad: error: --seed expects a non-negative integer, got '-3'", "--seed -3") { $0.gradArguments + ["--seed", "-3"] },
        .invalid("grad", 2, "sdpa grad: error: --backend must be one of auto, fused, math; got 'gpu'", "--backend gpu") { $0.gradArguments + ["--backend", "gpu"] },
        .invalid("grad", 2, "sdpa grad: error: --dtype must be one of", "--dtype int8") { $0.gradArguments + ["--dtype", "int8"] },
        .invalid("grad", 2, "sdpa grad: error: --threads expects a positive integer, got '0'", "--threads 0") { $0.gradArguments + ["--threads", "0"] },
        .invalid("explain", 2, "sdpa explain: error: give --query, --key and --value, or --shape B,H,L,S,E", "--query alone") {
            ["--query", $0.path("q.npy").path]
        },
        .invalid("explain", 2, "sdpa explain: error: give either --shape or --query/--key/--value, not both", "--shape with --key") {
            ["--shape", "1,1,4,4,8", "--key", $0.path("k.npy").path]
        },
        .invalid("explain", 1, "sdpa explain: error: ", "--key of a file that is not .npy") {
            ["--query", $0.path("q.npy").path, "--key", $0.path("pytorch.json").path, "--value", $0.path("v.npy").path]
        },
        .invalid("explain", 1, "sdpa explain: error: ", "--value of a missing file") {
            ["--query", $0.path("q.npy").path, "--key", $0.path("k.npy").path, "--value", $0.path("none.npy").path]
        },
        .invalid("explain", 2, "sdpa explain: error: --shape expects a comma-separated list of 5 integers, got '1,2,3,4,-5'", "--shape negative") { _ in
            ["--shape", "1,2,3,4,-5"]
        },
        .invalid("explain", 2, "sdpa explain: error: --dtype must be one of float32, float16, bfloat16, float64; got 'int8'", "--dtype int8") { _ in
            ["--shape", "1,1,4,4,8", "--dtype", "int8"]
        },
        .invalid("explain", 2, "sdpa explain: error: --dtype applies only with --shape", "--dtype with files") { io($0, out: false) + ["--dtype", "float16"] },
        .invalid("explain", 1, "sdpa explain: error: ", "--mask of a missing file") { io($0, out: false) + ["--mask", $0.path("none.npy").path] },
        .invalid("explain", 2, "sdpa explain: error: --bias window:x: LEFT must be a non-negative integer, got 'x'", "--bias window:x") { _ in
            ["--shape", "1,1,4,4,8", "--bias", "window:x"]
        },
        .invalid("explain", 1, "sdpa explain: error: AlibiBias.slopes.count is 1 but the inputs need 3", "--alibi-slopes too few") {
            io($0, out: false) + ["--bias", "alibi", "--alibi-slopes", "1"]
        },
        .invalid("explain", 2, "sdpa explain: error: --is-causal cannot be combined with --bias or --mask", "--is-causal --mask") {
            io($0, out: false) + ["--is-causal", "--mask", $0.path("float-mask.npy").path]
        },
        .invalid("explain", 2, "sdpa explain: error: --scale expects a number, got 'inf'", "--scale inf") { io($0, out: false) + ["--scale", "inf"] },
        .invalid("explain", 2, "sdpa explain: error: --enable-gqa is a flag and takes no value", "--enable-gqa given a value") {
            io($0, out: false) + ["--enable-gqa=1"]
        },
        .invalid("explain", 2, "sdpa explain: error: --dropout expects a number in 0...1, got '1.5'", "--dropout 1.5") { io($0, out: false) + ["--dropout", "1.5"] },
        .invalid("explain", 2, "sdpa explain: error: --seed expects a non-negative integer, got 'x'", "--seed x") { io($0, out: false) + ["--seed", "x"] },
        .invalid("explain", 2, "sdpa explain: error: --backend must be one of auto, fused, math; got ''", "--backend empty") { io($0, out: false) + ["--backend="] },
        .invalid("explain", 2, "sdpa explain: error: --threads expects a comma-separated list of integers, got '2,0'", "--threads 0") {
            io($0, out: false) + ["--threads", "2,0"]
        },
        .invalid("explain", 2, "sdpa explain: error: --kv-heads applies only with --shape", "--kv-heads with files") {
            io($0, out: false) + ["--kv-heads", "1"]
        },
        .invalid("bench", 2, "sdpa bench: error: --shape expects a comma-separated list of 5 integers, got '1,1,0,8,8'", "--shape with a 0") { _ in
            ["--shape", "1,1,0,8,8"]
        },
        .invalid("bench", 2, "sdpa bench: error: --bias needs a value (KIND)", "--bias without a kind") { _ in ["--bias"] },
        .invalid("bench", 2, "sdpa bench: error: --dtype must be one of float32, float16, bfloat16; got 'float64'", "--dtype float64") { _ in
            ["--dtype", "float64"]
        },
        .invalid("bench", 2, "sdpa bench: error: --samples expects a positive integer, got '0'", "--samples 0") { _ in ["--samples", "0"] },
        .invalid("bench", 2, "sdpa bench: error: --json needs a value (FILE)", "--json without a file") { _ in tinyBench + ["--json"] },
        .invalid("bench", 2, "sdpa bench: error: --svg is given more than once", "--svg twice") {
            tinyBench + ["--svg", $0.path("a.svg").path, "--svg", $0.path("b.svg").path]
        },
        .invalid("bench", 1, "sdpa bench: error: malformed benchmark JSON", "--compare of a file that is not a report") {
            tinyBench + ["--compare", $0.path("float-mask.npy").path]
        },
        .invalid("bench", 2, "sdpa bench: error: --threads expects a positive integer, got '-2'", "--threads -2") { _ in ["--threads", "-2"] },
        .invalid("bench", 2, "sdpa bench: error: --peak-gflops expects a number in 0.001...1000000, got '0'", "--peak-gflops 0") { _ in ["--peak-gflops", "0"] },
        .invalid("bench", 2, "sdpa bench: error: --decode is a flag and takes no value", "--decode given a value") { _ in ["--decode=yes"] },
        .invalid("bench", 2, "sdpa bench: error: --decode times one query row per sequence: L in --shape must be 1, got 8", "--decode with L = 8") { _ in
            ["--decode", "--shape", "1,1,8,8,8"]
        },
        .invalid("bench", 2, "sdpa bench: error: --bias does not apply with --decode (decoding is causal)", "--decode with --bias") { _ in
            ["--decode", "--bias", "alibi"]
        },
        .invalid("bench", 2, "sdpa bench: error: --kv-heads must divide the query heads H = 4, got 3", "--kv-heads not dividing H") { _ in
            ["--decode", "--shape", "1,4,1,8,8", "--kv-heads", "3"]
        },
        .invalid("bench", 2, "sdpa bench: error: --kv-heads expects a positive integer, got '0'", "--kv-heads 0") { _ in ["--decode", "--kv-heads", "0"] },
        .invalid("bench", 2, "sdpa bench: error: --steps applies only with --decode", "--steps without --decode") { _ in tinyBench + ["--steps", "3"] },
        .invalid("bench", 2, "sdpa bench: error: --steps expects a positive integer, got '-1'", "--steps -1") { _ in ["--decode", "--steps", "-1"] },
    ]

}

/// `--query --key --value --out` of inputs with 4 query heads and 2 key/value heads, in a new folder.
private func gqaFiles() -> [String] {
    (try? InputFiles(heads: 4, keyValueHeads: 2))?.arguments ?? []
}

/// `sdpa grad`'s file options for inputs with 4 query heads and 2 key/value heads, in a new folder.
private func gqaGradFiles() -> [String] {
    (try? InputFiles(heads: 4, keyValueHeads: 2))?.gradArguments ?? []
}

/// The input files every option case may name: `q/k/v.npy`, a float mask, a mask that does not
/// broadcast, and a PyTorch-style report of the tiny benchmark.
private func optionFiles() throws -> InputFiles {
    let files = try InputFiles()
    try randn([2, 1, 5, 7], seed: 5).write(to: files.path("float-mask.npy"))
    try Tensor(zeros: [3, 7], dtype: .bool).write(to: files.path("bad-mask.npy"))
    try Tensor(shape: [3], scalars: [Float(0.5), -1, 2]).write(to: files.path("sinks.npy"))
    try Tensor(shape: [2], scalars: [Float(0.5), -1]).write(to: files.path("bad-sinks.npy"))
    let workload = AttentionWorkload(batch: 1, heads: 1, queryLength: 8, keyLength: 8, headDim: 8, bias: BiasKind.named("none")!)
    var report = BenchmarkReport(benchmark: "sdpa bench", implementation: "PyTorch (test)", machine: MachineDescription(threads: 1), workloads: [workload])
    report.results = [BenchmarkResult(workload: workload, path: "fused", threads: 1, timing: TimingSummary(perCallSeconds: [1e-5], callsPerSample: 1))
        .withThroughput(peakGFLOPS: 98)]
    try report.write(to: files.path("pytorch.json"))
    return files
}

@Suite("sdpa options: valid and invalid input")
struct OptionCoverageTests {
    /// The options a subcommand's --help lists in its "options:" section.
    static func options(of subcommand: String) -> [String] {
        let lines = sdpa([subcommand, "--help"]).standardOutput.split(separator: "\n", omittingEmptySubsequences: false)
        let section = lines.drop { $0 != "options:" }.dropFirst().prefix { !$0.isEmpty }
        return section.filter { $0.hasPrefix("  --") }.map { String($0.dropFirst(2).prefix { $0 != " " }) }
    }

    @Test("every option of run, grad, explain and bench has a valid and an invalid case")
    func everyOptionIsCoveredBothWays() throws {
        let files = try optionFiles()
        for subcommand in ["run", "grad", "explain", "bench"] {
            let listed = Self.options(of: subcommand)
            #expect(listed.count >= 9, "\(subcommand) --help lists \(listed)")
            // A valid case exercises every option it passes; an invalid one the option its label starts with.
            let ours = { (cases: [OptionCase]) in cases.filter { $0.subcommand == subcommand } }
            let valid = Set(ours(OptionTables.valid).flatMap { $0.arguments(files) }.map { String($0.prefix { $0 != "=" }) })
            let invalid = Set(ours(OptionTables.invalid).map { String($0.label.prefix { $0 != " " }) })
            #expect(listed.filter { !valid.contains($0) }.isEmpty, "sdpa \(subcommand): no valid case uses \(listed.filter { !valid.contains($0) })")
            #expect(listed.filter { !invalid.contains($0) }.isEmpty, "sdpa \(subcommand): no invalid case for \(listed.filter { !invalid.contains($0) })")
        }
    }

    @Test("valid options exit 0", arguments: OptionTables.valid)
    func validOption(_ c: OptionCase) throws {
        let files = try optionFiles()
        let result = sdpa([c.subcommand] + c.arguments(files))
        #expect(result.status == 0, "\(c.testDescription): \(result.standardError)")
        #expect(!result.standardOutput.isEmpty)
    }

    @Test("invalid options exit 1 or 2 and say why", arguments: OptionTables.invalid)
    func invalidOption(_ c: OptionCase) throws {
        let files = try optionFiles()
        let result = sdpa([c.subcommand] + c.arguments(files))
        #expect(result.status == c.status, "\(c.testDescription): \(result.standardError)")
        #expect(result.standardError.hasPrefix(c.message), "\(c.testDescription): \(result.standardError)")
        #expect(result.standardError.contains("--help' for usage.") == (c.status == 2), "\(c.testDescription)")
        #expect(result.standardOutput.isEmpty)
    }

    // MARK: - what the valid options do

    @Test func bareSdpaRunsTheDemo() {
        let result = DemoCommand.$shape.withValue([1, 2, 16, 16, 8]) { sdpa([]) }
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.hasPrefix("SDPA demo: scaled dot-product attention"))
        #expect(result.standardOutput.contains("Shape B=1 H=2 L=16 S=16 E=8, float32"))
        for kind in BiasKind.commandLineKinds {
            #expect(result.standardOutput.contains("\n" + kind.spelling + " "), "the demo leaves out \(kind.spelling)")
        }
        #expect(result.standardOutput.contains("(vs math)"), "soft-capping is checked against the math backend")
        #expect(result.standardOutput.contains("eff. GFLOP/s"))
    }

    @Test(arguments: [["help"], ["-h"], ["--help"]])
    func helpIsTheTopLevelHelp(_ arguments: [String]) {
        let result = sdpa(arguments)
        #expect(result.status == 0 && result.standardError.isEmpty)
        #expect(result.standardOutput == SDPACommandLine.help)
        #expect(result.standardOutput.hasPrefix("usage: sdpa [<subcommand> [options]]"))
    }

    @Test func runOptionsReachTheLibrary() throws {
        let files = try optionFiles()
        let (q, k, v) = (files.query, files.key, files.value)
        let floatMask = try Tensor(contentsOf: files.path("float-mask.npy"))
        let sinks = try Tensor(contentsOf: files.path("sinks.npy"))
        let cases: [([String], () throws -> Tensor)] = [
            (["--backend", "fused"], { try withSDPBackends([.fused]) { try scaledDotProductAttention(query: q, key: k, value: v) } }),
            (["--backend", "auto", "--threads", "2"], { try scaledDotProductAttention(query: q, key: k, value: v) }),
            (["--mask", files.path("float-mask.npy").path], { try scaledDotProductAttention(query: q, key: k, value: v, attnMask: TensorBias(floatMask)) }),
            (["--bias", "alibi", "--alibi-slopes", "0.5,0.25,0.125", "--scale", "0.7"], {
                try scaledDotProductAttention(query: q, key: k, value: v, attnMask: AlibiBias(slopes: [0.5, 0.25, 0.125], seqLenQ: 5, seqLenKV: 7), scale: 0.7)
            }),
            (["--sinks", files.path("sinks.npy").path, "--bias", "causal-lower-right"], {
                try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(5, 7), sinks: sinks)
            }),
            (["--mask", files.path("float-mask.npy").path, "--bias", "alibi"], {
                try scaledDotProductAttention(query: q, key: k, value: v,
                                              attnMask: TensorBias(floatMask).combined(with: AlibiBias(numHeads: 3, seqLenQ: 5, seqLenKV: 7)))
            }),
        ]
        for (options, expected) in cases {
            let result = sdpa(["run"] + io(files) + options)
            #expect(result.status == 0, "\(options): \(result.standardError)")
            expectIdentical(try files.output(), try expected(), "\(options)")
        }
        // The float mask shows up in the description of the run, with the bias it is composed with.
        #expect(sdpa(["run"] + io(files) + ["--mask", files.path("float-mask.npy").path]).standardOutput.contains("bias TensorBias("))
        #expect(sdpa(["run"] + io(files) + ["--mask", files.path("float-mask.npy").path, "--bias", "alibi"]).standardOutput
            .contains("float-mask.npy)+alibi)"))
    }

    /// `--scale` reaches float64 inputs as the number it reads, not rounded to float32 on the way.
    @Test func scaleReachesFloat64InputsAsRead() throws {
        let folder = try temporaryFolder()
        let q = try randn([1, 2, 5, 8], seed: 1, dtype: .float64), k = try randn([1, 2, 6, 8], seed: 2, dtype: .float64)
        let v = try randn([1, 2, 6, 4], seed: 3, dtype: .float64)
        for (name, t) in [("q", q), ("k", k), ("v", v)] { try t.write(to: folder.appending(path: "\(name).npy")) }
        let paths = ["q", "k", "v", "o"].map { folder.appending(path: "\($0).npy").path }
        let result = sdpa(["run", "--query", paths[0], "--key", paths[1], "--value", paths[2], "--out", paths[3], "--scale", "0.3"])
        #expect(result.status == 0, "\(result.standardError)")
        let written = try Tensor(contentsOf: folder.appending(path: "o.npy"))
        expectIdentical(written, try scaledDotProductAttention(query: q, key: k, value: v, scale: 0.3))
        #expect(written.doubleScalars != (try scaledDotProductAttention(query: q, key: k, value: v, scale: Float(0.3))).doubleScalars)
    }

    /// A `--scale` float32 cannot hold runs as the library runs it (on the math backend, in `Double`), as PyTorch
    /// takes any Python float.
    @Test func scalePastFloat32RunsAsTheLibraryRunsIt() throws {
        let folder = try temporaryFolder()
        let q = try randn([1, 2, 5, 8], seed: 1), k = try randn([1, 2, 6, 8], seed: 2), v = try randn([1, 2, 6, 4], seed: 3)
        for (name, t) in [("q", q), ("k", k), ("v", v)] { try t.write(to: folder.appending(path: "\(name).npy")) }
        let paths = ["q", "k", "v", "o"].map { folder.appending(path: "\($0).npy").path }
        for scale in ["1e-50", "-1e39"] {
            let result = sdpa(["run", "--query", paths[0], "--key", paths[1], "--value", paths[2], "--out", paths[3], "--scale", scale])
            #expect(result.status == 0, "\(result.standardError)")
            let written = try Tensor(contentsOf: folder.appending(path: "o.npy"))
            expectIdentical(written, try scaledDotProductAttention(query: q, key: k, value: v, scale: Double(scale)!))
            #expect(written.doubleScalars.allSatisfy { $0.isFinite })
        }
    }

    @Test func threeDimensionalInputs() throws {
        let folder = try temporaryFolder()
        let q = try randn([3, 5, 8], seed: 1), k = try randn([3, 6, 8], seed: 2), v = try randn([3, 6, 4], seed: 3)
        for (name, t) in [("q", q), ("k", k), ("v", v)] { try t.write(to: folder.appending(path: "\(name).npy")) }
        let paths = ["q", "k", "v", "o"].map { folder.appending(path: "\($0).npy").path }
        let result = sdpa(["run", "--query", paths[0], "--key", paths[1], "--value", paths[2], "--out", paths[3], "--bias", "causal-lower-right"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("[3, 5, 4] float32"))
        expectIdentical(try Tensor(contentsOf: folder.appending(path: "o.npy")),
                        try scaledDotProductAttention(query: q, key: k, value: v, attnMask: causalLowerRight(5, 6)))
        let explained = sdpa(["explain", "--query", paths[0], "--key", paths[1], "--value", paths[2]])
        #expect(explained.standardOutput.contains("inputs: B=1 H=3 Hkv=3 L=5 S=6 E=8 Ev=4, float32"))
    }

    @Test func explainOptionsShowInTheExplanation() throws {
        let files = try optionFiles()
        let base = io(files, out: false)
        let cases: [([String], [String])] = [
            (["--mask", files.path("float-mask.npy").path], ["bias: TensorBias(", "materialized to a float32 mask of shape [2, 1, 5, 7]", "backend: fused"]),
            (["--is-causal"], ["bias: is-causal", "route: isCausal (upper-left causal mask computed in the kernel)"]),
            (["--dropout", "0.5", "--seed", "3"], ["backend: fused"]),
            (["--backend", "math"], ["backend: math", "fused rejected: not allowed by withSDPBackends"]),
        ]
        for (options, mentions) in cases {
            let result = sdpa(["explain"] + base + options)
            #expect(result.status == 0, "\(options): \(result.standardError)")
            for text in mentions { #expect(result.standardOutput.contains(text), "\(options): \(result.standardOutput)") }
        }
        let gqa = sdpa(["explain"] + Array(gqaFiles().dropLast(2)) + ["--enable-gqa"])
        #expect(gqa.standardOutput.contains("inputs: B=2 H=4 Hkv=2 L=5 S=7 E=8 Ev=8, float32"), "\(gqa.standardError)")
        for dtype in ["float16", "bfloat16", "float64"] {
            let result = sdpa(["explain", "--shape", "1,2,16,32,8", "--dtype", dtype])
            #expect(result.standardOutput.contains("L=16 S=32 E=8 Ev=8, \(dtype)"), "\(result.standardOutput)")
            #expect(result.standardOutput.contains("backend: \(dtype == "float64" ? "math" : "fused")"))
        }
    }

    @Test func benchDecode() throws {
        let files = try optionFiles()
        let single = sdpa(["bench", "--decode", "--shape", "1,4,1,300,16", "--kv-heads", "2", "--samples", "2", "--json", files.path("one.json").path])
        #expect(single.status == 0, "\(single.standardError)")
        #expect(single.standardOutput.contains("contiguous") && single.standardOutput.contains("the time to read them (median of the pairs"), "\(single.standardOutput)")
        let one = try BenchmarkReport(contentsOf: files.path("one.json"))
        #expect(one.benchmark == "Decode" && one.workloads.map(\.keyValueHeads) == [2] && one.results.count == 1)
        #expect((one.figures?["single.float32.timeOverReadTime"] ?? 0) > 0 && (one.figures?["memoryReadGBPerSecond"] ?? 0) > 0)
        #expect((one.figures?["single.float32.interleavedReadGBPerSecond"] ?? 0) > 0 && (one.figures?["single.float32.timeOverStartUpReadTime"] ?? 0) > 0)

        let batch = sdpa(["bench", "--decode", "--shape", "3,4,1,200,16", "--kv-heads", "1", "--steps", "3", "--dtype", "bfloat16",
                          "--json", files.path("batch.json").path])
        #expect(batch.status == 0, "\(batch.standardError)")
        #expect(batch.standardOutput.contains("3 sequences of 128…200 tokens, 3 steps"), "\(batch.standardOutput)")
        let report = try BenchmarkReport(contentsOf: files.path("batch.json"))
        #expect(report.results.first?.path == "paged" && report.results.first?.timing?.samples == 3)
        #expect((report.figures?["batching.bfloat16.tokensPerSecond"] ?? 0) > 0)
        // A step's bytes: lengths 128 + 164 + 200 plus, averaged over steps 1...3, 3 tokens each appended since;
        // 1 KV head, E = Ev = 16, bfloat16.
        let stepBytes = (492.0 + 3 * 3) * 1 * 32 * 2
        let (rate, step) = (report.figures?["batching.bfloat16.readGBPerSecond"] ?? 0, report.figures?["batching.bfloat16.stepSeconds"] ?? 0)
        #expect(abs(rate * 1e9 * step - stepBytes) < 1e-6 * stepBytes, "\(rate) GB/s over \(step) s")
        #expect((report.figures?["batching.bfloat16.timeOverStartUpReadTime"] ?? 0) > 0)
        #expect(batch.standardOutput.contains("a step reads K and V ("), "\(batch.standardOutput)")
        #expect(DecodeBenchmark.sequenceLengths(count: 3, longest: 200) == [128, 164, 200])
        #expect(DecodeBenchmark.sequenceLengths(count: 4, longest: 50) == [50, 50, 50, 50])
    }

    @Test func benchDTypesPeakAndComparison() throws {
        let files = try optionFiles()
        for dtype in ["float16", "bfloat16"] {
            let json = files.path("\(dtype).json")
            let result = sdpa(["bench"] + tinyBench + ["--dtype", dtype, "--json", json.path])
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardOutput.hasPrefix("B=1 H=1 L=8 S=8 E=8 \(dtype), 1 thread"))
            #expect(try BenchmarkReport(contentsOf: json).workloads.map(\.dtype) == [dtype])
        }
        let peak = sdpa(["bench"] + tinyBench + ["--peak-gflops", "50"])
        #expect(peak.standardOutput.contains("peak 50 GFLOP/s"), "\(peak.standardOutput)")
        let compared = sdpa(["bench"] + tinyBench + ["--compare", files.path("pytorch.json").path])
        #expect(compared.status == 0, "\(compared.standardError)")
        #expect(compared.standardOutput.contains("PyTorch (test) eff."), "\(compared.standardOutput)")
        #expect(compared.standardOutput.contains("(fused)"))
    }
}
