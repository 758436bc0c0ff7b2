// The header of a .npy file, parsed strictly by the format specification
// (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html): a Python dict literal with
// exactly the keys 'descr', 'fortran_order' and 'shape', terminated by a newline. The subset of Python
// literal syntax accepted is what numpy's writers (and those that follow them) produce: quoted strings
// without escapes, True/False, tuples of decimal integers (with Python 2's `L` suffix in versions 1 and
// 2, which numpy also reads). Everything numpy rejects is rejected too; so are a few things numpy lets
// through but no writer produces and the specification does not allow (a header that does not end in
// a newline, a key given twice, comments).

/// The three entries of a .npy header.
struct _NPYHeader: Equatable {
    /// The dtype descriptor string, e.g. `<f4`.
    var descr: String
    var fortranOrder: Bool
    var shape: [Int]

    /// Parses the header text (the bytes after the preamble, exactly as long as the preamble declares).
    ///
    /// - Throws: the reason the header is malformed, as a message for ``SDPAError/npy(path:reason:)``.
    init(_ bytes: ArraySlice<UInt8>, majorVersion: UInt8) throws(_NPYHeaderError) {
        guard bytes.last == UInt8(ascii: "\n") else {
            throw _NPYHeaderError("the header does not end in a newline, so its declared length does not end where the header does")
        }
        var parser = _NPYHeaderParser(bytes: bytes, allowsLongSuffix: majorVersion <= 2)
        var entries: [String: _NPYValue] = [:]
        try parser.expect(UInt8(ascii: "{"), "the header is not a dict literal")
        while !parser.consume(UInt8(ascii: "}")) {
            let key = try parser.string(what: "a key")
            guard ["descr", "fortran_order", "shape"].contains(key) else {
                throw _NPYHeaderError("unexpected key '\(key)'; a .npy header has exactly 'descr', 'fortran_order' and 'shape'")
            }
            guard entries[key] == nil else { throw _NPYHeaderError("the key '\(key)' appears twice") }
            try parser.expect(UInt8(ascii: ":"), "expected ':' after '\(key)'")
            entries[key] = try parser.value()
            if !parser.consume(UInt8(ascii: ",")) {
                try parser.expect(UInt8(ascii: "}"), "expected ',' or '}' after the value of '\(key)'")
                break
            }
        }
        guard parser.atEnd else { throw _NPYHeaderError("unexpected text after the dict, at byte \(parser.offset)") }
        for key in ["descr", "fortran_order", "shape"] where entries[key] == nil {
            throw _NPYHeaderError("no '\(key)' entry")
        }
        guard case let .string(descr)? = entries["descr"] else {
            throw _NPYHeaderError("descr is \(entries["descr"]!), not a dtype string")
        }
        guard case let .bool(fortranOrder)? = entries["fortran_order"] else {
            throw _NPYHeaderError("fortran_order is \(entries["fortran_order"]!), not True or False")
        }
        guard case let .tuple(shape)? = entries["shape"] else {
            throw _NPYHeaderError("shape is \(entries["shape"]!), not a tuple of integers")
        }
        (self.descr, self.fortranOrder, self.shape) = (descr, fortranOrder, shape)
    }
}

/// Why a header is malformed.
struct _NPYHeaderError: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// A value in the header dict.
private enum _NPYValue: CustomStringConvertible {
    case string(String), bool(Bool), tuple([Int]), integer(Int)

    var description: String {
        switch self {
        case let .string(s): "'\(s)'"
        case let .bool(b): b ? "True" : "False"
        case let .tuple(t): t.count == 1 ? "(\(t[0]),)" : "(" + t.map(String.init).joined(separator: ", ") + ")"
        case let .integer(n): "\(n)"
        }
    }
}

/// A cursor over the header's bytes that skips Python whitespace between tokens.
private struct _NPYHeaderParser {
    let bytes: ArraySlice<UInt8>
    let allowsLongSuffix: Bool
    private var index: Int

    init(bytes: ArraySlice<UInt8>, allowsLongSuffix: Bool) {
        self.bytes = bytes
        self.allowsLongSuffix = allowsLongSuffix
        index = bytes.startIndex
        skipSpace()
    }

    var offset: Int { index - bytes.startIndex }
    var atEnd: Bool { index == bytes.endIndex }

    private var next: UInt8? { index < bytes.endIndex ? bytes[index] : nil }

    private mutating func skipSpace() {
        // Space, tab, newline, carriage return, form feed: what Python's tokenizer skips inside brackets.
        while let c = next, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0C { index += 1 }
    }

    /// Consumes `c` (and the space after it) if it comes next.
    mutating func consume(_ c: UInt8) -> Bool {
        guard next == c else { return false }
        index += 1
        skipSpace()
        return true
    }

    mutating func expect(_ c: UInt8, _ message: String) throws(_NPYHeaderError) {
        guard consume(c) else { throw _NPYHeaderError("\(message) (at byte \(offset))") }
    }

    /// The text from here to the next delimiter (a bracketed list whole), quoted, for an error message.
    private var token: String {
        let rest = bytes[index...]
        guard let first = rest.first else { return "the end of the header" }
        if first == UInt8(ascii: "["), let close = rest.firstIndex(of: UInt8(ascii: "]")) {
            return "'" + String(decoding: rest[...close].prefix(40), as: UTF8.self) + "'"
        }
        let text = rest.prefix { ![UInt8(ascii: ","), UInt8(ascii: ")"), UInt8(ascii: "}"), 0x20, 0x0A].contains($0) }.prefix(40)
        return "'" + (text.isEmpty ? String(UnicodeScalar(first)) : String(decoding: text, as: UTF8.self)) + "'"
    }

    /// A string in single or double quotes, without escapes.
    mutating func string(what: String) throws(_NPYHeaderError) -> String {
        guard let quote = next, quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else {
            throw _NPYHeaderError("expected \(what) in quotes (at byte \(offset))")
        }
        let start = index + 1
        guard let end = bytes[start...].firstIndex(where: { $0 == quote || $0 == UInt8(ascii: "\\") || $0 == 0x0A }),
              bytes[end] == quote
        else { throw _NPYHeaderError("unterminated or escaped string (at byte \(offset))") }
        index = end + 1
        skipSpace()
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// A string, `True`, `False`, or a tuple of integers.
    mutating func value() throws(_NPYHeaderError) -> _NPYValue {
        switch next {
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return .string(try string(what: "a string"))
        case UInt8(ascii: "("):
            return try tuple()
        case let c? where c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"):
            return .integer(try integer())
        default:
            // A Python name: only True and False are values.
            let name = bytes[index...].prefix { $0 == UInt8(ascii: "_") || ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") || $0 >= 0x30 && $0 <= 0x39 }
            for (word, value) in [("True", true), ("False", false)] where name.elementsEqual(word.utf8) {
                index += name.count
                skipSpace()
                return .bool(value)
            }
            throw _NPYHeaderError("expected a value (a string, True, False or a tuple of integers), got \(token) (at byte \(offset))")
        }
    }

    /// `()`, `(n,)` or `(n, m, ...)` with an optional trailing comma. `(n)` is the integer `n`, as in Python.
    private mutating func tuple() throws(_NPYHeaderError) -> _NPYValue {
        index += 1
        skipSpace()
        var items = [Int]()
        var sawComma = false
        while !consume(UInt8(ascii: ")")) {
            if !items.isEmpty && !sawComma { throw _NPYHeaderError("expected ',' or ')' in a tuple (at byte \(offset))") }
            items.append(try integer())
            sawComma = consume(UInt8(ascii: ","))
        }
        return items.count == 1 && !sawComma ? .integer(items[0]) : .tuple(items)
    }

    /// A non-negative decimal integer without leading zeros (as Python 3 requires), `L`-suffixed in v1/v2.
    private mutating func integer() throws(_NPYHeaderError) -> Int {
        let start = index
        while let c = next, c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") { index += 1 }
        let digits = bytes[start..<index]
        guard !digits.isEmpty else {
            throw _NPYHeaderError("expected a non-negative decimal integer, got \(token) (at byte \(offset))")
        }
        if digits.count > 1 && digits.first == UInt8(ascii: "0") {
            throw _NPYHeaderError("an integer with a leading zero (at byte \(start - bytes.startIndex))")
        }
        if allowsLongSuffix, next == UInt8(ascii: "L") || next == UInt8(ascii: "l") { index += 1 }
        skipSpace()
        guard let value = Int(String(decoding: digits, as: UTF8.self)) else {
            throw _NPYHeaderError("the dimension \(String(decoding: digits, as: UTF8.self)) does not fit in Int")
        }
        return value
    }
}
