/// One option a command accepts: `--name VALUE`, `--name=VALUE`, or a flag `--name`.
public struct OptionSpec: Sendable, Equatable {
    /// The name without the leading `--`.
    public var name: String
    /// The value's placeholder in help (`FILE`, `N`); `nil` for a flag.
    public var valueName: String?
    /// One line of help.
    public var help: String
    /// Whether the option may be given more than once (each value is kept).
    public var isRepeatable: Bool

    /// An option taking a value.
    public static func value(_ name: String, _ valueName: String, _ help: String, repeatable: Bool = false) -> OptionSpec {
        OptionSpec(name: name, valueName: valueName, help: help, isRepeatable: repeatable)
    }

    /// A flag, true when present.
    public static func flag(_ name: String, _ help: String) -> OptionSpec {
        OptionSpec(name: name, valueName: nil, help: help, isRepeatable: false)
    }
}

/// A command's options and help: what the parser checks arguments against.
public struct CommandSpec: Sendable {
    /// The command as typed, e.g. `sdpa run`.
    public var name: String
    /// The usage line after the name.
    public var synopsis: String
    /// One line saying what the command does, for the list of subcommands.
    public var summary: String
    /// What the command does, a paragraph.
    public var abstract: String
    /// The options, in help order.
    public var options: [OptionSpec]
    /// Text after the options (e.g. a table of bias spellings).
    public var epilogue: String
    /// The placeholder of the arguments that are not options (e.g. `SENTENCE`), for a command that takes
    /// them; `nil` for one that does not (a stray argument is then a usage error). After `--`, every
    /// argument is one of them.
    public var positionals: String? = nil

    /// A command spec; `--help` is accepted by every command without being listed.
    public init(name: String, synopsis: String, summary: String = "", abstract: String, options: [OptionSpec], epilogue: String = "") {
        self.name = name
        self.synopsis = synopsis
        self.summary = summary
        self.abstract = abstract
        self.options = options
        self.epilogue = epilogue
    }

    /// The `--help` text.
    public var help: String {
        var lines = ["usage: \(name) \(synopsis)", "", abstract, "", "options:"]
        let labels = options.map { "--\($0.name)" + ($0.valueName.map { " \($0)" } ?? "") }
        let width = max(labels.map(\.count).max() ?? 0, "-h, --help".count)
        for (label, option) in zip(labels, options) {
            lines.append("  " + label.padding(width) + "  " + option.help + (option.isRepeatable ? " (repeatable)" : ""))
        }
        lines.append("  " + "-h, --help".padding(width) + "  show this help")
        if !epilogue.isEmpty { lines += ["", epilogue] }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Parses `arguments` (without the command name).
    ///
    /// - Throws: ``UsageError`` for an unknown option, a missing value, a repeated option that
    ///   may appear once, a flag given a value, or a stray argument.
    public func parse(_ arguments: [String]) throws -> ParsedArguments {
        var parsed = ParsedArguments(command: name)
        var index = 0
        var optionsEnded = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if positionals != nil && (optionsEnded || !argument.hasPrefix("-") || argument == "-") {
                parsed.positionals.append(argument)
                continue
            }
            if positionals != nil && argument == "--" {
                optionsEnded = true
                continue
            }
            if argument == "-h" || argument == "--help" {
                parsed.helpRequested = true
                continue
            }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw UsageError("unexpected argument '\(argument)'", command: name)
            }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let option = options.first(where: { $0.name == name }) else {
                throw UsageError("unknown option '--\(name)'", command: self.name)
            }
            if parsed.values[name] != nil && !option.isRepeatable {
                throw UsageError("--\(name) is given more than once", command: self.name)
            }
            if let valueName = option.valueName {
                let value: String
                if let inlineValue {
                    value = inlineValue
                } else {
                    // A following option is not a value: `--query --key k.npy` lacks the query's file.
                    guard index < arguments.count, !arguments[index].hasPrefix("--") else {
                        throw UsageError("--\(name) needs a value (\(valueName))", command: self.name)
                    }
                    value = arguments[index]
                    index += 1
                }
                parsed.values[name, default: []].append(value)
            } else {
                if inlineValue != nil { throw UsageError("--\(name) is a flag and takes no value", command: self.name) }
                parsed.values[name, default: []].append("")
            }
        }
        return parsed
    }
}

/// The options found on a command line, with typed, checked access.
public struct ParsedArguments: Sendable, Equatable {
    /// The command, for error messages.
    public let command: String
    /// Every value given for each option name, in order (flags hold one empty string per use).
    public var values: [String: [String]] = [:]
    /// Whether `-h` or `--help` was given.
    public var helpRequested = false
    /// The arguments that are not options, in order, for a command with ``CommandSpec/positionals``.
    public var positionals: [String] = []

    init(command: String) { self.command = command }

    /// Whether the flag or option `name` was given.
    public func has(_ name: String) -> Bool { values[name] != nil }

    /// The value of `name`, or `nil` when absent.
    public func string(_ name: String) -> String? { values[name]?.last }

    /// Every value of the repeatable option `name`.
    public func strings(_ name: String) -> [String] { values[name] ?? [] }

    /// The value of `name`.
    /// - Throws: ``UsageError`` when it is absent.
    public func required(_ name: String) throws -> String {
        guard let value = string(name) else { throw UsageError("missing --\(name)", command: command) }
        return value
    }

    /// `name` as an integer of at least `minimum`, or `nil` when absent.
    /// - Throws: ``UsageError`` when the value is not such an integer.
    public func integer(_ name: String, minimum: Int = .min) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text), value >= minimum else {
            let what = minimum == 1 ? "a positive integer" : minimum == 0 ? "a non-negative integer" : "an integer"
            throw UsageError("--\(name) expects \(what), got '\(text)'", command: command)
        }
        return value
    }

    /// `name` as a finite number in `range`, or `nil` when absent.
    /// - Throws: ``UsageError`` when the value is not such a number.
    public func number(_ name: String, in range: ClosedRange<Double> = -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude) throws -> Double? {
        guard let text = string(name) else { return nil }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            let bounds = range.lowerBound > -Double.greatestFiniteMagnitude ? " in \(range.lowerBound.shortText)...\(range.upperBound.shortText)" : ""
            throw UsageError("--\(name) expects a number\(bounds), got '\(text)'", command: command)
        }
        return value
    }

    /// `name` as a finite `Float`, or `nil` when absent: a number past float32's range would become an infinity.
    /// - Throws: ``UsageError`` when the value is not a number or is out of float32's range.
    public func float(_ name: String) throws -> Float? {
        try numberInFloatRange(name).map { Float($0) }
    }

    /// `name` as a `Double` within float32's range (finite once rounded to `Float`), kept as given: a
    /// value that float64 work takes as it is and float32 work rounds. `nil` when absent.
    /// - Throws: ``UsageError`` when the value is not a number or is out of float32's range.
    public func numberInFloatRange(_ name: String) throws -> Double? {
        guard let value = try number(name) else { return nil }
        guard Float(value).isFinite else { throw outOfFloatRange(name, "a number") }
        return value
    }

    /// `name` as a comma-separated list of `Double`s within float32's range, kept as given (as
    /// ``numberInFloatRange(_:)`` keeps one).
    /// - Throws: ``UsageError`` for a malformed list or a number out of float32's range.
    public func numbersInFloatRange(_ name: String) throws -> [Double]? {
        guard let values = try numberList(name) else { return nil }
        guard values.allSatisfy({ Float($0).isFinite }) else { throw outOfFloatRange(name, "numbers") }
        return values
    }

    /// `name` as a comma-separated list of finite `Float`s.
    @available(*, deprecated, renamed: "numbersInFloatRange", message: "lists are kept as Doubles within float32's range")
    public func floatList(_ name: String) throws -> [Float]? { try numbersInFloatRange(name)?.map { Float($0) } }

    private func outOfFloatRange(_ name: String, _ what: String) -> UsageError {
        UsageError("--\(name) expects \(what) within float32's range (magnitude ≤ \(Float.greatestFiniteMagnitude)), got '\(string(name) ?? "")'",
                   command: command)
    }

    /// `name` as a comma-separated list of integers of at least `minimum`, exactly `counts` long when given.
    /// - Throws: ``UsageError`` for a malformed list.
    public func integerList(_ name: String, counts: Set<Int>? = nil, minimum: Int = .min) throws -> [Int]? {
        guard let text = string(name) else { return nil }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingSpaces) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0! >= minimum }), counts?.contains(parts.count) ?? true else {
            let count = counts.map { " of \($0.sorted().map(String.init).joined(separator: " or ")) integers" } ?? " of integers"
            throw UsageError("--\(name) expects a comma-separated list\(count), got '\(text)'", command: command)
        }
        return parts.map { $0! }
    }

    /// `name` as a comma-separated list of finite numbers.
    /// - Throws: ``UsageError`` for a malformed list.
    public func numberList(_ name: String) throws -> [Double]? {
        guard let text = string(name) else { return nil }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingSpaces) }
        guard !parts.isEmpty, parts.allSatisfy({ $0?.isFinite ?? false }) else {
            throw UsageError("--\(name) expects a comma-separated list of numbers, got '\(text)'", command: command)
        }
        return parts.map { $0! }
    }

    /// `name` as one of `choices`, or `nil` when absent.
    /// - Throws: ``UsageError`` naming the choices when the value is not one of them.
    public func choice(_ name: String, among choices: [String]) throws -> String? {
        guard let text = string(name) else { return nil }
        try Self.check(text, option: name, among: choices, command: command)
        return text
    }

    /// Throws ``UsageError`` naming the choices unless `text` is one of them.
    public static func check(_ text: String, option: String, among choices: [String], command: String) throws {
        guard choices.contains(text) else {
            throw UsageError("--\(option) must be one of \(choices.joined(separator: ", ")); got '\(text)'", command: command)
        }
    }
}

/// A command line that does not fit its command: exit code 2, with a pointer to `--help`.
public struct UsageError: Error, Equatable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// The command whose `--help` to point to.
    public var command: String

    /// An error saying `message` about `command`.
    public init(_ message: String, command: String) {
        self.message = message
        self.command = command
    }

    /// The message.
    public var description: String { message }
}

extension String {
    /// This string padded with spaces to `width` characters.
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

extension Double {
    /// `1` rather than `1.0` for whole numbers.
    var shortText: String { self == rounded() && Swift.abs(self) < 1e15 ? String(Int(self)) : String(self) }
}

extension Substring {
    var trimmingSpaces: Substring {
        let start = firstIndex { $0 != " " } ?? endIndex
        let end = lastIndex { $0 != " " }.map(index(after:)) ?? start
        return self[start..<Swift.max(start, end)]
    }
}
