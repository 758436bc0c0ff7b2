import Foundation
import SDPA
import SDPACommandLine
#if canImport(Glibc)
import Glibc
#endif

// What the command-line tests share: running `sdpa` in process or as a child, and input files in a fresh folder.

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

/// The built executable `name` (a product of this package), found beside the test runner.
func builtExecutable(_ name: String) -> URL? {
    let runner = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    var folder = runner.deletingLastPathComponent()
    // On Darwin the runner sits inside an .xctest bundle.
    while folder.pathComponents.count > 1, !FileManager.default.fileExists(atPath: folder.appending(path: name).path) {
        guard folder.lastPathComponent.hasSuffix(".xctest") || folder.lastPathComponent == "MacOS" || folder.lastPathComponent == "Contents" else { break }
        folder.deleteLastPathComponent()
    }
    let url = folder.appending(path: name)
    return FileManager.default.isExecutableFile(atPath: url.path) ? url : nil
}

#if os(Linux)
/// Runs `executable` with `arguments` as a child process, its output discarded, and returns whether it exited
/// (rather than being killed by a signal) and the most memory it held resident: its `VmHWM`, read from
/// `/proc/<pid>/status` while it runs. Unlike ``ResidentMemory``, whose figures are the whole test process's, this
/// sees no other test's allocations. Not `wait4`'s `ru_maxrss`: a child spawned from here (posix_spawn's vfork)
/// takes this process's peak as its own at `exec`, and the test runner's peak passes 1 GiB under AddressSanitizer.
/// The memory a child touches after the last reading is not seen; a child that ends before one reading runs again.
func childPeakResidentBytes(_ executable: URL, _ arguments: [String]) throws -> (exited: Bool, peakBytes: Int) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for descriptor: Int32 in [1, 2] { posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0) }
    let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var outcome = (exited: false, peakBytes: 0)
    for _ in 0..<20 where outcome.peakBytes == 0 {
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable.path, &actions, nil, argv, environ)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
        var status: Int32 = 0
        var peak = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 {
                guard errno == EINTR else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                continue
            }
            peak = max(peak, residentHighWaterMark(of: pid) ?? 0)
            usleep(200)
        }
        // The low 7 bits of a wait status are the signal that ended the process, 0 when it exited.
        outcome = (status & 0x7f == 0, peak)
    }
    return outcome
}

/// A running process's peak resident memory so far (`VmHWM`), in bytes; `nil` once it has ended.
private func residentHighWaterMark(of pid: pid_t) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kilobytes = Int(line.dropFirst("VmHWM:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
    else { return nil }
    return kilobytes * 1024
}
#endif

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
