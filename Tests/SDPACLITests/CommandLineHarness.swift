import Foundation
import SDPA
import SDPACommandLine

// What the command-line tests share: running `sdpa` in process and input files in a fresh folder.

/// What one `sdpa` invocation printed and returned.
struct Invocation {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

/// Collects a command's output; used by one test on one thread.
final class OutputCollector {
    var standardOutput = ""
    var standardError = ""
}

/// Runs `sdpa` in process with `arguments`.
func sdpa(_ arguments: [String], terminal: Bool = false) -> Invocation {
    let collector = OutputCollector()
    let output = CommandOutput(
        standardOutput: { collector.standardOutput += $0 }, standardError: { collector.standardError += $0 },
        standardErrorIsTerminal: terminal)
    let status = SDPACommandLine.main(arguments, output: output)
    return Invocation(status: status, standardOutput: collector.standardOutput, standardError: collector.standardError)
}

/// A fresh folder for one test's files.
func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appending(path: "sdpa-cli-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Query, key and value `.npy` files in a new folder: `[B, H, L, E]`, `[B, Hkv, S, E]`, `[B, Hkv, S, Ev]`,
/// and an output's gradient `[B, H, L, Ev]` for `sdpa grad`.
struct InputFiles {
    var folder: URL
    var query: Tensor, key: Tensor, value: Tensor, gradOutput: Tensor

    init(batch: Int = 2, heads: Int = 3, keyValueHeads: Int? = nil, queryLength: Int = 5, keyLength: Int = 7,
         headDim: Int = 8, valueHeadDim: Int? = nil, dtype: DType = .float32) throws {
        folder = try temporaryFolder()
        let hkv = keyValueHeads ?? heads
        query = try Tensor.randomNormal(shape: [batch, heads, queryLength, headDim], seed: 11, dtype: dtype)
        key = try Tensor.randomNormal(shape: [batch, hkv, keyLength, headDim], seed: 12, dtype: dtype)
        value = try Tensor.randomNormal(shape: [batch, hkv, keyLength, valueHeadDim ?? headDim], seed: 13, dtype: dtype)
        gradOutput = try Tensor.randomNormal(shape: [batch, heads, queryLength, valueHeadDim ?? headDim], seed: 14, dtype: dtype)
        try query.write(to: path("q.npy"))
        try key.write(to: path("k.npy"))
        try value.write(to: path("v.npy"))
        try gradOutput.write(to: path("dout.npy"))
    }

    func path(_ name: String) -> URL { folder.appending(path: name) }

    /// `--query q.npy --key k.npy --value v.npy --out o.npy`.
    var arguments: [String] {
        ["--query", path("q.npy").path, "--key", path("k.npy").path, "--value", path("v.npy").path, "--out", path("o.npy").path]
    }

    /// `--query q.npy --key k.npy --value v.npy --grad-out dout.npy --dq dq.npy --dk dk.npy --dv dv.npy`.
    var gradArguments: [String] {
        Array(arguments.dropLast(2)) + ["--grad-out", path("dout.npy").path] + ["dq", "dk", "dv"].flatMap { ["--\($0)", path("\($0).npy").path] }
    }

    func output(_ name: String = "o.npy") throws -> Tensor { try Tensor(contentsOf: path(name)) }
}
