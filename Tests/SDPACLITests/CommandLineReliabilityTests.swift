import Foundation
import SDPA
@_spi(Fuzzing) import SDPACommandLine
import Testing

// What `sdpa` does with sizes no machine holds, with output paths that would destroy an input or
// each other, and with a run that fails half way: as a user hits them, through the command itself.
// Tolerances: none (outputs are compared bit for bit).

// MARK: - helpers (private: the test module is shared with other files)

/// Runs `sdpa` in process; returns the exit status and what went to standard output and error.
private func sdpa(_ arguments: [String]) -> (status: Int32, standardOutput: String, standardError: String) {
    final class Collector: @unchecked Sendable { var out = "", err = "" }
    let collector = Collector()
    let status = SDPACommandLine.main(
        arguments, output: CommandOutput(standardOutput: { collector.out += $0 }, standardError: { collector.err += $0 }))
    return (status, collector.out, collector.err)
}

/// A new folder holding q.npy, k.npy and v.npy (`B = 1, H = 2, L = 5, S = 7, E = 4`).
private func folderWithInputs() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appending(path: "sdpa-reliability-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try Tensor.randomNormal(shape: [1, 2, 5, 4], seed: 1).write(to: folder.appending(path: "q.npy"))
    try Tensor.randomNormal(shape: [1, 2, 7, 4], seed: 2).write(to: folder.appending(path: "k.npy"))
    try Tensor.randomNormal(shape: [1, 2, 7, 4], seed: 3).write(to: folder.appending(path: "v.npy"))
    return folder
}

/// `--query q.npy --key k.npy --value v.npy` in `folder`.
private func inputArguments(_ folder: URL) -> [String] {
    ["--query", folder.appending(path: "q.npy").path, "--key", folder.appending(path: "k.npy").path,
     "--value", folder.appending(path: "v.npy").path]
}

private func contents(_ folder: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
}

// MARK: - sizes

@Suite("Command line reliability") struct CommandLineReliabilityTests {
    /// `sdpa explain --shape` answers for sizes no machine holds, allocating nothing proportional to them.
    @Test func explainingAShapeNoMachineHoldsAllocatesNothing() throws {
        // 32 GiB of query and 64 GiB of key and value if they were allocated.
        let shape = ["explain", "--shape", "1,64,1048576,1048576,128", "--bias", "causal-lower-right"]
        let result = sdpa(shape)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("inputs: B=1 H=64 Hkv=64 L=1048576 S=1048576 E=128 Ev=128, float32"))
        #expect(result.standardOutput.contains("backend: fused"))
        #if os(Linux)
        // Measured in a process of its own: this one's resident memory includes what tests running beside it hold
        // (over 1 GiB at times).
        let command = try #require(builtExecutable("sdpa"), "sdpa is not built beside the test runner (swift test builds every product)")
        // Its exit status is checked above; a sanitizer's leak report at exit could change it here.
        let child = try childPeakResidentBytes(command, shape)
        #expect(child.exited, "sdpa explain was killed by a signal")
        #expect(child.peakBytes > 0 && child.peakBytes < 1 << 30, "sdpa explain held \(child.peakBytes) bytes resident")
        #endif
        for bias in ["alibi", "block-diagonal", "padding", "window:4096"] {
            let other = sdpa(["explain", "--shape", "2,64,1048576,1048576,128", "--bias", bias])
            #expect(other.status == 0, "\(bias): \(other.standardError)")
        }
    }

    /// Sizes whose element or byte counts overflow Int are input errors (exit 1) naming the tensor.
    @Test func shapesPastIntAreInputErrors() {
        for (arguments, message) in [
            (["explain", "--shape", "1,1,1,1,9223372036854775807"], "sdpa explain: error: query has shape [1, 1, 1, 9223372036854775807]"),
            (["explain", "--shape", "1,1,4294967296,4294967296,0"], "sdpa explain: error: attention scores has shape"),
            (["bench", "--shape", "1,1,9223372036854775807,1,1"], "sdpa bench: error: query has shape [1, 1, 9223372036854775807, 1]"),
            (["bench", "--shape", "1,1,1099511627776,1,1", "--bias", "none"], "sdpa bench: error: Tensor.randomNormal [1, 1, 1099511627776, 1] float32 needs"),
            (["bench", "--shape", "1,1,1048576,1048576,1", "--bias", "mask-bool"], "sdpa bench: error: Tensor(shape:dtype:element:) [1048576, 1048576] bool needs"),
            (["explain", "--shape", "1,1099511627776,1,1,1", "--bias", "alibi"], "sdpa explain: error: one ALiBi slope for each of H = 1099511627776 heads needs"),
        ] {
            let result = sdpa(arguments)
            #expect(result.status == 1, "\(arguments): \(result.standardError)")
            // Bench prints its progress first: the error is the last line.
            #expect(result.standardError.split(separator: "\n").last?.hasPrefix(message) == true, "\(arguments): \(result.standardError)")
        }
    }

    /// Bias parameters near Int.max: a window side of Int.max is an unbounded side, lengths summing past
    /// Int.max are an input error.
    @Test func biasParametersNearIntMax() throws {
        let folder = try folderWithInputs()
        let huge = sdpa(["run", "--bias", "window:1,9223372036854775807", "--out", folder.appending(path: "a.npy").path] + inputArguments(folder))
        #expect(huge.status == 0, "\(huge.standardError)")
        let q = try Tensor(contentsOf: folder.appending(path: "q.npy")), k = try Tensor(contentsOf: folder.appending(path: "k.npy"))
        let v = try Tensor(contentsOf: folder.appending(path: "v.npy"))
        let unbounded = try scaledDotProductAttention(
            query: q, key: k, value: v, attnMask: SlidingWindowBias(seqLenQ: 5, seqLenKV: 7, left: 1, right: nil))
        #expect(try Tensor(contentsOf: folder.appending(path: "a.npy")).scalars.map(\.bitPattern) == unbounded.scalars.map(\.bitPattern))
        let sum = sdpa(["run", "--bias", "block-diagonal:9223372036854775807,1", "--out", folder.appending(path: "b.npy").path]
            + inputArguments(folder))
        #expect(sum.status == 1)
        #expect(sum.standardError.contains("the lengths sum past Int.max"), "\(sum.standardError)")
    }

    // MARK: - output paths

    /// An output path naming an input (however spelled) or the other output is a usage error, and the
    /// inputs are left as they were.
    @Test func outputsThatNameAnInputOrEachOtherAreRefused() throws {
        let folder = try folderWithInputs()
        let q = folder.appending(path: "q.npy").path, k = folder.appending(path: "k.npy").path
        let v = folder.appending(path: "v.npy").path, o = folder.appending(path: "o.npy").path
        try FileManager.default.createSymbolicLink(atPath: folder.appending(path: "link-to-k.npy").path, withDestinationPath: k)
        try FileManager.default.linkItem(atPath: v, toPath: folder.appending(path: "hard-link-to-v.npy").path)
        try Tensor(zeros: [1, 2, 5, 7], dtype: .bool).write(to: folder.appending(path: "mask.npy"))
        let before = try inputArguments(folder).filter { $0.hasSuffix(".npy") }.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        for (outputs, message) in [
            (["--out", q], "--out \(q) names the --query file \(q), which it would overwrite"),
            (["--out", folder.path + "/./sub/../q.npy"], "names the --query file"),
            (["--out", folder.appending(path: "link-to-k.npy").path], "names the --key file \(k)"),
            (["--out", folder.appending(path: "hard-link-to-v.npy").path], "names the --value file \(v)"),
            (["--out", o, "--lse-out", o], "--lse-out \(o) and --out \(o) name the same file"),
            (["--out", o, "--lse-out", folder.appending(path: "mask.npy").path, "--mask", folder.appending(path: "mask.npy").path],
             "names the --mask file"),
            (["--out", o, "--lse-out", q], "--lse-out \(q) names the --query file"),
        ] {
            let result = sdpa(["run"] + inputArguments(folder) + outputs)
            #expect(result.status == 2, "\(outputs): \(result.standardError)")
            #expect(result.standardError.contains(message), "\(outputs): \(result.standardError)")
        }
        let after = try inputArguments(folder).filter { $0.hasSuffix(".npy") }.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        #expect(after == before)
        #expect(!FileManager.default.fileExists(atPath: o))
    }

    /// `sdpa bench` refuses a `--json` and `--svg` that name one file, or either naming the `--compare` report.
    @Test func benchOutputsThatNameEachOtherOrTheComparisonAreRefused() throws {
        let folder = try folderWithInputs()
        let r = folder.appending(path: "r.json").path
        for (arguments, message) in [
            (["--json", r, "--svg", r], "--svg \(r) and --json \(r) name the same file"),
            (["--compare", r, "--json", folder.path + "/./r.json"], "names the --compare file \(r)"),
        ] {
            let result = sdpa(["bench", "--shape", "1,1,4,4,4", "--bias", "none"] + arguments)
            #expect(result.status == 2, "\(arguments): \(result.standardError)")
            #expect(result.standardError.contains(message), "\(arguments): \(result.standardError)")
        }
        #expect(try contents(folder) == ["k.npy", "q.npy", "v.npy"])
    }

    /// Outputs are written whole or not at all: a run that cannot write its log-sum-exp leaves the old
    /// output in place, a successful one replaces it, and no temporary file is left either way.
    @Test func outputsAreWrittenAtomically() throws {
        let folder = try folderWithInputs()
        let o = folder.appending(path: "o.npy")
        let old = Data("an earlier output".utf8)
        try old.write(to: o)
        let failed = sdpa(["run", "--out", o.path, "--lse-out", folder.appending(path: "no/such/folder/lse.npy").path] + inputArguments(folder))
        #expect(failed.status == 1)
        #expect(failed.standardError.contains("cannot write the file"), "\(failed.standardError)")
        #expect(try Data(contentsOf: o) == old, "the old output is untouched")
        #expect(try contents(folder) == ["k.npy", "o.npy", "q.npy", "v.npy"])

        let succeeded = sdpa(["run", "--out", o.path, "--lse-out", folder.appending(path: "lse.npy").path] + inputArguments(folder))
        #expect(succeeded.status == 0, "\(succeeded.standardError)")
        #expect(try Tensor(contentsOf: o).shape == [1, 2, 5, 4])
        #expect(try Tensor(contentsOf: folder.appending(path: "lse.npy")).shape == [1, 2, 5])
        #expect(try contents(folder) == ["k.npy", "lse.npy", "o.npy", "q.npy", "v.npy"])
    }

    /// A symbolic link as output is written through (the link stays, its target gets the output), and a
    /// destination that is not a regular file (here /dev/null) is written directly: neither can be renamed over.
    @Test func outputsThroughALinkOrToADevice() throws {
        let folder = try folderWithInputs()
        let target = folder.appending(path: "target.npy"), link = folder.appending(path: "link.npy")
        try Data("old".utf8).write(to: target)
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: target.path)
        let result = sdpa(["run", "--out", link.path, "--lse-out", "/dev/null"] + inputArguments(folder))
        #expect(result.status == 0, "\(result.standardError)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == target.path)
        #expect(try Tensor(contentsOf: target).shape == [1, 2, 5, 4])
        #expect(try contents(folder) == ["k.npy", "link.npy", "q.npy", "target.npy", "v.npy"])
    }

    // MARK: - what an error calls the inputs

    /// An error from the library names the option the user typed (`--mask`, `--sinks[1]`), not the Swift
    /// parameter it fed; a parameter no option fed keeps the library's name. (`OptionCoverageTests` checks the
    /// other options' spellings in its invalid cases.)
    @Test func errorsNameTheOptionsTyped() throws {
        let folder = try folderWithInputs()
        defer { try? FileManager.default.removeItem(at: folder) }
        func file(_ name: String, _ tensor: Tensor) throws -> String {
            let url = folder.appending(path: name)
            try tensor.write(to: url)
            return url.path
        }
        let mask = try file("mask.npy", Tensor(shape: [5, 6], bools: Array(repeating: true, count: 30)))
        let nanSinks = try file("nan-sinks.npy", Tensor(shape: [2], scalars: [Float(0), .nan]))
        let out = folder.appending(path: "o.npy").path
        let cases: [([String], String)] = [
            (["run"] + inputArguments(folder) + ["--out", out, "--sinks", nanSinks], "sdpa run: error: --sinks[1] = nan: "),
            (["explain"] + inputArguments(folder) + ["--mask", mask],
             "sdpa explain: error: --mask of shape [5, 6] cannot be broadcast to the attention scores' shape [1, 2, 5, 7]"),
            // No query file: the sizes came from --shape, so the message keeps the library's names.
            (["explain", "--shape", "1,2,5,7,4", "--kv-heads", "3"],
             "sdpa explain: error: query has 2 heads (shape [1, 2, 5, 4]) and key/value have 3 (shape [1, 3, 7, 4]): without --enable-gqa"),
        ]
        for (arguments, expected) in cases {
            let result = sdpa(arguments)
            #expect(result.status == CommandExitCode.badInput, "\(arguments)")
            #expect(result.standardError.hasPrefix(expected), "\(arguments): \(result.standardError)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// A Swift caller reads the library's own parameter names.
    @Test func theLibraryKeepsItsParameterNames() {
        let error = SDPAError.maskNotBroadcastable(mask: [5, 6], target: [1, 2, 5, 7])
        #expect(error.description.hasPrefix("attnMask of shape [5, 6] cannot be broadcast"))
        let heads = SDPAError.headCountMismatch(query: [1, 2, 5, 4], key: [1, 3, 7, 4], enableGQA: false)
        #expect(heads.description.hasSuffix("pass enableGQA: true for grouped-query attention"))
    }

    // MARK: - the fuzzing entry point

    /// What the fuzzer drives: the run command's parser and the computation on small inputs, reading and
    /// writing no file; errors are thrown as the command reports them.
    @Test func theRunArgumentCheckThrowsWhatTheCommandReports() throws {
        try SDPACommandLine.checkRunArguments(["--query", "q", "--key", "k", "--value", "v", "--out", "o", "--bias", "alibi+window:3+causal-lower-right"])
        try SDPACommandLine.checkRunArguments(["--query", "q", "--key", "k", "--value", "v", "--out", "o", "--bias", "window:1,9223372036854775807"])
        try SDPACommandLine.checkRunArguments(["--query", "q", "--key", "k", "--value", "v", "--out", "o", "--enable-gqa", "--lse-out", "l"])
        try SDPACommandLine.checkRunArguments(["--help"])
        #expect(throws: UsageError.self) { try SDPACommandLine.checkRunArguments(["--query", "q", "--key", "k", "--value", "v", "--out", "q"]) }
        #expect(throws: UsageError.self) { try SDPACommandLine.checkRunArguments(["--bias", "window:x"]) }
        #expect(throws: SDPAError.self) {
            try SDPACommandLine.checkRunArguments(["--query", "q", "--key", "k", "--value", "v", "--out", "o", "--bias", "block-diagonal:9223372036854775807,1"])
        }
        let folder = FileManager.default.temporaryDirectory
        #expect(!FileManager.default.fileExists(atPath: folder.appending(path: "o").path))
    }
}
