/// Lines of a text file: `vocab.txt`, a file of sentences.
public enum TextLines {
    /// The lines of `text`, split at each `"\n"` with a `"\r"` before it dropped (so Windows line ends work),
    /// and no empty last line for a final line break. Splits Unicode scalars, not `Character`s: in Swift
    /// `"\r\n"` is one `Character`, which a split at `"\n"` would not find.
    public static func split(_ text: String) -> [String] {
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            var scalars = String.UnicodeScalarView(line)
            if scalars.last == "\r" { scalars.removeLast() }
            return String(scalars)
        }
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
