#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reports which step of a long run is under way: a bar redrawn in place on a terminal,
/// one plain line per step otherwise (so logs and pipes stay readable).
public struct ProgressReporter {
    /// The number of steps.
    public let total: Int
    /// Whether the output is a terminal (draw a bar) or not (print lines).
    public let isTerminal: Bool
    private let write: (String) -> Void
    private var completed = 0

    /// A reporter of `total` steps writing through `write`, usually to standard error.
    public init(total: Int, isTerminal: Bool, write: @escaping (String) -> Void) {
        self.total = total
        self.isTerminal = isTerminal
        self.write = write
    }

    /// Whether standard error is a terminal.
    public static var standardErrorIsTerminal: Bool { isatty(2) != 0 }

    /// Announces the next step, `label`.
    public mutating func begin(_ label: String) {
        completed += 1
        if isTerminal {
            let width = 24
            let filled = total > 0 ? width * (completed - 1) / total : 0
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            // Carriage return and erase-line redraw the bar in place.
            write("\r\u{1B}[K[\(bar)] \(completed)/\(total) \(label)")
        } else {
            write("[\(completed)/\(total)] \(label)\n")
        }
    }

    /// Ends the run: clears the bar on a terminal.
    public func finish() {
        if isTerminal { write("\r\u{1B}[K") }
    }
}
