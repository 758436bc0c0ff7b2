import Foundation
import SDPA
import SDPABenchmarkHarness

/// Where a command writes: standard output, standard error, and whether standard error is a
/// terminal (for the progress bar). Tests pass closures that collect the text.
public struct CommandOutput {
    /// Writes to standard output.
    public var standardOutput: (String) -> Void
    /// Writes to standard error.
    public var standardError: (String) -> Void
    /// Whether standard error is a terminal.
    public var standardErrorIsTerminal: Bool

    /// Output through `standardOutput` and `standardError`.
    public init(standardOutput: @escaping (String) -> Void, standardError: @escaping (String) -> Void,
                standardErrorIsTerminal: Bool = false) {
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.standardErrorIsTerminal = standardErrorIsTerminal
    }

    /// The process's own standard output and standard error, unbuffered so that the two interleave.
    public static var process: CommandOutput {
        CommandOutput(
            standardOutput: { FileHandle.standardOutput.write(Data($0.utf8)) },
            standardError: { FileHandle.standardError.write(Data($0.utf8)) },
            standardErrorIsTerminal: ProgressReporter.standardErrorIsTerminal)
    }
}

/// The exit statuses of `sdpa` and the benchmark executables.
public enum CommandExitCode {
    /// Success, and `--help`.
    public static let success: Int32 = 0
    /// Bad input: a missing or malformed file, shapes that do not fit, an option the library rejects.
    public static let badInput: Int32 = 1
    /// Bad usage: an unknown option or subcommand, a missing or malformed value, options that conflict.
    public static let usage: Int32 = 2
}

/// The `sdpa` command: `run`, `grad`, `explain`, `bench`, and a demo when called without arguments.
///
/// ```swift
/// let status = SDPACommandLine.main(["run", "--query", "q.npy", "--key", "k.npy",
///                                    "--value", "v.npy", "--out", "o.npy"], output: .process)
/// ```
public enum SDPACommandLine {
    /// The subcommands, by name.
    static let subcommands: [(spec: CommandSpec, run: @Sendable (ParsedArguments, CommandOutput) throws -> Void)] = [
        (RunCommand.spec, RunCommand.run),
        (GradCommand.spec, GradCommand.run),
        (ExplainCommand.spec, ExplainCommand.run),
        (BenchCommand.spec, BenchCommand.run),
        (EmbedCommand.spec, EmbedCommand.run),
    ]

    /// The top-level `--help`.
    public static var help: String {
        var lines = [
            "usage: sdpa [<subcommand> [options]]",
            "",
            "Scaled dot-product attention on NumPy .npy files, with attention biases that are never materialized.",
            "Without arguments, runs a demo: every bias through the materialized and the fused path, their",
            "agreement, and a benchmark table.",
            "",
            "subcommands:",
        ]
        for (spec, _) in subcommands {
            lines.append("  " + spec.name.replacingOccurrences(of: "sdpa ", with: "").padding(9) + spec.summary)
        }
        lines += [
            "",
            "biases (--bias KIND): " + (BiasKind.fixed.filter { !$0.isBenchmarkMask }.map(\.spelling) + BiasKind.parts.map(\.syntax))
                .joined(separator: ", "),
            "  or parts joined with '+' into one fused bias, e.g. alibi+window:256+causal-lower-right;",
            "  'sdpa run --help' describes each.",
            "",
            "Run 'sdpa <subcommand> --help' for a subcommand's options.",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Runs `sdpa` with `arguments` (without the program name) and returns the exit status.
    /// Errors are written to `output.standardError`; nothing is thrown and nothing traps.
    public static func main(_ arguments: [String], output: CommandOutput) -> Int32 {
        guard let first = arguments.first else {
            return handlingErrors(command: "sdpa", output: output) { try DemoCommand.run(output: output) }
        }
        if first == "--help" || first == "-h" || first == "help" {
            output.standardOutput(help)
            return CommandExitCode.success
        }
        guard let (spec, run) = subcommands.first(where: { $0.spec.name == "sdpa \(first)" }) else {
            let names = subcommands.map { $0.spec.name.replacingOccurrences(of: "sdpa ", with: "") }
            output.standardError("sdpa: error: unknown subcommand '\(first)'; expected one of \(names.joined(separator: ", "))\nRun 'sdpa --help' for usage.\n")
            return CommandExitCode.usage
        }
        var given: ParsedArguments?
        return handlingErrors(command: spec.name, output: output,
                              naming: { ParameterSpelling.name($0, spec: spec, given: given) }) {
            let parsed = try spec.parse(Array(arguments.dropFirst()))
            given = parsed
            if parsed.helpRequested {
                output.standardOutput(spec.help)
                return
            }
            try run(parsed, output)
        }
    }

    /// Runs `body`, turning its errors into a message on standard error and an exit status:
    /// ``UsageError`` gives 2, anything else (``SDPAError``, file errors) 1. An ``SDPAError``'s message spells
    /// each library parameter it names as `naming` does (by default as the library does).
    public static func handlingErrors(command: String, output: CommandOutput,
                                      naming: (String) -> String = { $0 }, _ body: () throws -> Void) -> Int32 {
        do {
            try body()
            return CommandExitCode.success
        } catch let error as UsageError {
            output.standardError("\(command): error: \(error.message)\nRun '\(error.command) --help' for usage.\n")
            return CommandExitCode.usage
        } catch let error as SDPAError {
            output.standardError("\(command): error: \(error.description(naming: naming))\n")
            return CommandExitCode.badInput
        } catch let error as DecodingError {
            output.standardError("\(command): error: malformed benchmark JSON: \(error)\n")
            return CommandExitCode.badInput
        } catch {
            output.standardError("\(command): error: \(error.localizedDescription)\n")
            return CommandExitCode.badInput
        }
    }
}
