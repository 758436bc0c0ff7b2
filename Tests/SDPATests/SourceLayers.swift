import Foundation

/// The SDPA module's folders as layers (`Sources/SDPA/README.md`), read from the Swift sources: which
/// names each folder declares, and which of another folder's names each file uses.
///
/// Read from the text, not the compiler: comments and string literals are blanked (interpolated code
/// kept), a declaration is a non-private `struct`, `class`, `enum`, `protocol`, `typealias`, `actor`,
/// `func`, `let` or `var` at the top level of a file, and a use is any identifier equal to such a name.
/// A name declared in two folders is left out (a use of it could mean either). Members added by an
/// `extension` of another folder's type (`extension Float: _DenseMaskElement`) count too, as uses
/// written `.member`.
struct SourceLayers {
    /// A file's use of a name another folder declares.
    struct Use: Hashable, CustomStringConvertible {
        var file: String, name: String, declaredIn: String
        var description: String { "\(file) uses \(name) (declared in \(declaredIn)/)" }
    }

    /// Folder of each declared name: type and function names, and members of extensions of another folder's types.
    private(set) var declarations: [String: String] = [:]
    private(set) var extensionMembers: [String: String] = [:]
    /// Code (comments and strings blanked) of each file, by path relative to the module's folder.
    private(set) var files: [(path: String, folder: String, code: String)] = []

    /// Reads every `.swift` file under `moduleDirectory`, each belonging to its first-level folder.
    init(moduleDirectory: URL) throws {
        let paths = FileManager.default.enumerator(atPath: moduleDirectory.path)?.compactMap { $0 as? String } ?? []
        var sources: [(path: String, folder: String, code: String)] = []
        for path in paths.sorted() where path.hasSuffix(".swift") && path.contains("/") {
            let text = try String(contentsOf: moduleDirectory.appendingPathComponent(path), encoding: .utf8)
            sources.append((path, String(path.prefix { $0 != "/" }), text))
        }
        self.init(sources: sources)
    }

    /// The layers of `sources`: (path relative to the module folder, its folder, its text).
    init(sources: [(path: String, folder: String, code: String)]) {
        files = sources.map { ($0.path, $0.folder, SourceLayers.codeOnly($0.code)) }
        var declared: [String: Set<String>] = [:]
        var extended: [(folder: String, type: String, members: [String])] = []
        for file in files {
            let (names, extensions) = SourceLayers.topLevelDeclarations(file.code)
            for name in names { declared[name, default: []].insert(file.folder) }
            for (type, members) in extensions { extended.append((file.folder, type, members)) }
        }
        for (name, folders) in declared where folders.count == 1 { declarations[name] = folders.first! }
        var members: [String: Set<String>] = [:]
        for (folder, type, names) in extended where declared[type]?.contains(folder) != true {
            for name in names where declared[name] == nil { members[name, default: []].insert(folder) }
        }
        for (name, folders) in members where folders.count == 1 { extensionMembers[name] = folders.first! }
    }

    /// Every use, by a file in `folder`, of a name declared in one of `forbidden`.
    func uses(from folder: String, of forbidden: Set<String>) -> [Use] {
        var found = Set<Use>()
        for file in files where file.folder == folder {
            for (token, before) in SourceLayers.identifiers(file.code) {
                if let home = declarations[token], home != folder, forbidden.contains(home) {
                    found.insert(Use(file: file.path, name: token, declaredIn: home))
                } else if before == ".", let home = extensionMembers[token], home != folder, forbidden.contains(home) {
                    found.insert(Use(file: file.path, name: token, declaredIn: home))
                }
            }
        }
        return found.sorted { ($0.file, $0.name) < ($1.file, $1.name) }
    }

    /// The ways `code` (comments and strings blanked) reaches the C kernels: an import of `CSDPAKernels`
    /// (any form: `import`, `internal import`, `@_implementationOnly import`) and every `sdpa_` name.
    static func cKernelUses(_ code: String) -> [String] {
        var found: [String] = []
        var previous = ""
        for (token, _) in identifiers(code) {
            if token == "CSDPAKernels", previous == "import" { found.append("import CSDPAKernels") }
            if token.hasPrefix("sdpa_") { found.append(token) }
            previous = token
        }
        return found
    }

    // MARK: - reading Swift text

    private static let modifiers = "(?:(?:public|internal|package|open|final|indirect|nonisolated|static|private|fileprivate)\\s+)*"
    private static let attributes = "(?:@[A-Za-z_]+(?:\\([^)]*\\))?\\s+)*"
    private static let topLevel = try! NSRegularExpression(
        pattern: "^" + attributes + "(" + modifiers + ")(struct|class|enum|protocol|typealias|actor|func|let|var|extension)\\s+([A-Za-z_][A-Za-z0-9_]*)")
    private static let member = try! NSRegularExpression(
        pattern: "^\\s+" + attributes + "(" + modifiers + ")(func|var|let|case)\\s+([A-Za-z_][A-Za-z0-9_]*)")

    /// The names `code` declares at its top level (not private), and the members of each extension in it.
    static func topLevelDeclarations(_ code: String) -> (names: [String], extensions: [(type: String, members: [String])]) {
        var names: [String] = [], extensions: [(type: String, members: [String])] = []
        var depth = 0, inExtension = false
        for line in code.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if depth == 0, let match = firstMatch(topLevel, in: line) {
                let (modifiers, kind, name) = (match[0], match[1], match[2])
                inExtension = kind == "extension"
                if inExtension {
                    extensions.append((name, []))
                } else if !modifiers.contains("private") {
                    names.append(name)
                }
            } else if depth == 1, inExtension, let match = firstMatch(member, in: line), !match[0].contains("private") {
                extensions[extensions.count - 1].members.append(match[2])
            }
            depth += line.filter { $0 == "{" }.count - line.filter { $0 == "}" }.count
        }
        return (names, extensions)
    }

    private static func firstMatch(_ regex: NSRegularExpression, in line: String) -> [String]? {
        let range = NSRange(line.startIndex..., in: line)
        guard let match = regex.firstMatch(in: line, range: range) else { return nil }
        return (1..<match.numberOfRanges).map { n in
            Range(match.range(at: n), in: line).map { String(line[$0]) } ?? ""
        }
    }

    /// Every identifier in `code`, with the character just before it (skipping spaces).
    static func identifiers(_ code: String) -> [(String, Character)] {
        var result: [(String, Character)] = []
        var current = "", before: Character = " ", lastSignificant: Character = " "
        for c in code {
            if c == "_" || c.isLetter || (c.isNumber && !current.isEmpty) {
                if current.isEmpty { before = lastSignificant }
                current.append(c)
            } else {
                if !current.isEmpty { result.append((current, before)); current = ""; lastSignificant = "a" }
                if !c.isWhitespace { lastSignificant = c }
            }
        }
        if !current.isEmpty { result.append((current, before)) }
        return result
    }

    /// `source` with comments and the text of string literals replaced by spaces (newlines kept, so
    /// lines keep their numbers and the top level its column 0); code interpolated into a string is kept.
    static func codeOnly(_ source: String) -> String {
        enum Context { case code(parens: Int), string(multiline: Bool, hashes: Int) }
        let chars = Array(source)
        var out: [Character] = []
        out.reserveCapacity(chars.count)
        var stack: [Context] = [.code(parens: 0)]
        var i = 0
        func starts(_ text: String, at n: Int) -> Bool {
            var k = n
            for c in text {
                guard k < chars.count, chars[k] == c else { return false }
                k += 1
            }
            return true
        }
        func blank(_ c: Character) -> Character { c == "\n" ? "\n" : " " }
        while i < chars.count {
            let c = chars[i]
            switch stack[stack.count - 1] {
            case .code(let parens):
                if starts("//", at: i) {
                    while i < chars.count, chars[i] != "\n" { out.append(" "); i += 1 }
                } else if starts("/*", at: i) {
                    var depth = 0
                    repeat {
                        if starts("/*", at: i) { depth += 1; out += "  "; i += 2 }
                        else if starts("*/", at: i) { depth -= 1; out += "  "; i += 2 }
                        else { out.append(blank(chars[i])); i += 1 }
                    } while depth > 0 && i < chars.count
                } else if c == "\"" || (c == "#" && (i + 1..<chars.count).first { chars[$0] != "#" }.map { chars[$0] == "\"" } == true) {
                    var hashes = 0
                    while chars[i] == "#" { hashes += 1; out.append(" "); i += 1 }
                    let multiline = starts("\"\"\"", at: i)
                    let quote = multiline ? 3 : 1
                    out += Array(repeating: "\"", count: quote)
                    i += quote
                    stack.append(.string(multiline: multiline, hashes: hashes))
                } else {
                    if c == "(" { stack[stack.count - 1] = .code(parens: parens + 1) }
                    if c == ")" {
                        if parens == 0, stack.count > 1 { stack.removeLast(); out.append(c); i += 1; continue }
                        stack[stack.count - 1] = .code(parens: parens - 1)
                    }
                    out.append(c)
                    i += 1
                }
            case .string(let multiline, let hashes):
                let escape = "\\" + String(repeating: "#", count: hashes)
                let close = (multiline ? "\"\"\"" : "\"") + String(repeating: "#", count: hashes)
                if starts(escape + "(", at: i) {
                    out += Array(repeating: " ", count: escape.count) + ["("]
                    i += escape.count + 1
                    stack.append(.code(parens: 0))
                } else if starts(escape, at: i), i + escape.count < chars.count {
                    out += Array(repeating: " ", count: escape.count) + [blank(chars[i + escape.count])]
                    i += escape.count + 1
                } else if starts(close, at: i) {
                    out += Array(close)
                    i += close.count
                    stack.removeLast()
                } else {
                    out.append(blank(c))
                    i += 1
                }
            }
        }
        return String(out)
    }
}
