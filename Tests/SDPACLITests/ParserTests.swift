import SDPACommandLine
import Testing

private let spec = CommandSpec(
    name: "tool test", synopsis: "[options]", abstract: "A command for the parser's tests.",
    options: [
        .value("file", "FILE", "a file"),
        .value("count", "N", "a count"),
        .value("ratio", "X", "a number"),
        .value("sizes", "A,B", "integers"),
        .value("weights", "A,B", "numbers"),
        .value("kind", "KIND", "a choice"),
        .value("tag", "T", "repeatable", repeatable: true),
        .flag("verbose", "a flag"),
    ])

/// The usage error `arguments` raise, or `nil` when they parse.
private func usageError(_ arguments: [String], _ access: (ParsedArguments) throws -> Void = { _ in }) -> UsageError? {
    do {
        try access(try spec.parse(arguments))
        return nil
    } catch let error as UsageError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite("Argument parser") struct ParserTests {
    @Test func parsesValuesFlagsAndEqualsForm() throws {
        let parsed = try spec.parse(["--file", "a.npy", "--count=3", "--verbose", "--tag", "x", "--tag=y"])
        #expect(parsed.string("file") == "a.npy")
        #expect(try parsed.integer("count") == 3)
        #expect(parsed.has("verbose"))
        #expect(!parsed.has("ratio"))
        #expect(parsed.strings("tag") == ["x", "y"])
        #expect(!parsed.helpRequested)
    }

    @Test func negativeNumbersAreValues() throws {
        let parsed = try spec.parse(["--ratio", "-0.5", "--weights", "-1,2.5, 3"])
        #expect(try parsed.number("ratio") == -0.5)
        #expect(try parsed.numberList("weights") == [-1, 2.5, 3])
        #expect(try parsed.float("ratio") == -0.5)
        #expect(try parsed.numbersInFloatRange("weights") == [-1, 2.5, 3])
    }

    @Test func helpIsRecognizedAnywhere() throws {
        #expect(try spec.parse(["--file", "a", "-h"]).helpRequested)
        #expect(try spec.parse(["--help"]).helpRequested)
        let help = spec.help
        #expect(help.hasPrefix("usage: tool test [options]\n"))
        #expect(help.contains("--file FILE"))
        #expect(help.contains("--tag T") && help.contains("(repeatable)"))
        #expect(help.contains("-h, --help"))
    }

    @Test func malformedCommandLinesAreUsageErrors() {
        let cases: [([String], String)] = [
            (["--nope"], "unknown option '--nope'"),
            (["stray"], "unexpected argument 'stray'"),
            (["-x"], "unexpected argument '-x'"),
            (["--file"], "--file needs a value (FILE)"),
            (["--file", "--verbose"], "--file needs a value (FILE)"),
            (["--file", "a", "--file", "b"], "--file is given more than once"),
            (["--verbose=yes"], "--verbose is a flag and takes no value"),
        ]
        for (arguments, message) in cases {
            let error = usageError(arguments)
            #expect(error?.message == message, "\(arguments)")
            #expect(error?.command == "tool test")
        }
    }

    @Test func typedAccessorsRejectMalformedValues() {
        let cases: [([String], (ParsedArguments) throws -> Void, String)] = [
            (["--count", "x"], { _ = try $0.integer("count") }, "--count expects an integer, got 'x'"),
            (["--count", "0"], { _ = try $0.integer("count", minimum: 1) }, "--count expects a positive integer, got '0'"),
            (["--ratio", "abc"], { _ = try $0.number("ratio") }, "--ratio expects a number, got 'abc'"),
            (["--ratio", "1.5"], { _ = try $0.number("ratio", in: 0...1) }, "--ratio expects a number in 0...1, got '1.5'"),
            (["--ratio", "nan"], { _ = try $0.number("ratio") }, "--ratio expects a number, got 'nan'"),
            (["--sizes", "1,2"], { _ = try $0.integerList("sizes", counts: [5]) },
             "--sizes expects a comma-separated list of 5 integers, got '1,2'"),
            (["--sizes", "1,,2"], { _ = try $0.integerList("sizes") }, "--sizes expects a comma-separated list of integers, got '1,,2'"),
            (["--weights", "1,x"], { _ = try $0.numberList("weights") }, "--weights expects a comma-separated list of numbers, got '1,x'"),
            (["--ratio", "1e39"], { _ = try $0.float("ratio") },
             "--ratio expects a number within float32's range (magnitude ≤ 3.4028235e+38), got '1e39'"),
            (["--ratio", "inf"], { _ = try $0.float("ratio") }, "--ratio expects a number, got 'inf'"),
            (["--weights", "0.5,-4e38"], { _ = try $0.numbersInFloatRange("weights") },
             "--weights expects numbers within float32's range (magnitude ≤ 3.4028235e+38), got '0.5,-4e38'"),
            (["--kind", "c"], { _ = try $0.choice("kind", among: ["a", "b"]) }, "--kind must be one of a, b; got 'c'"),
            ([], { _ = try $0.required("file") }, "missing --file"),
        ]
        for (arguments, access, message) in cases {
            #expect(usageError(arguments, access)?.message == message, "\(arguments)")
        }
    }

    @Test func absentOptionsGiveNil() throws {
        let parsed = try spec.parse([])
        #expect(try parsed.integer("count") == nil)
        #expect(try parsed.number("ratio") == nil)
        #expect(try parsed.integerList("sizes") == nil)
        #expect(try parsed.choice("kind", among: ["a"]) == nil)
        #expect(parsed.strings("tag").isEmpty)
    }
}
