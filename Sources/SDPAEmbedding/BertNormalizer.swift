import Foundation

/// BERT's text clean-up before word splitting, as Hugging Face `tokenizers`' `BertNormalizer` (the
/// tokenizer sentence-transformers runs) does it, in its order:
///
/// 1. drop NUL, U+FFFD and control characters (general category C*, except tab, newline and
///    carriage return), and turn every whitespace character into a space;
/// 2. put spaces around CJK ideographs, so each becomes a word of its own;
/// 3. strip accents: canonical decomposition (NFD), then drop the nonspacing marks (Mn), so `é` becomes
///    `e` and a Hangul syllable its jamo;
/// 4. lower-case, character by character (Unicode's full mapping without context, as Rust's `to_lowercase`).
///
/// Steps 3 and 4 follow ``lowercase`` unless ``stripAccents`` is set otherwise.
public struct BertNormalizer: Sendable, Hashable {
    /// Lower-case the text (uncased models).
    public var lowercase: Bool
    /// Strip accents; BERT's default is to do it exactly when lower-casing.
    public var stripAccents: Bool
    /// Put spaces around CJK ideographs.
    public var handleChineseCharacters: Bool

    /// A normalizer; `stripAccents` defaults to `lowercase`, as in BERT.
    public init(lowercase: Bool = true, stripAccents: Bool? = nil, handleChineseCharacters: Bool = true) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.handleChineseCharacters = handleChineseCharacters
    }

    /// `text` normalized, as Unicode scalars.
    public func normalize(_ text: String) -> [Unicode.Scalar] {
        var scalars = [Unicode.Scalar]()
        scalars.reserveCapacity(text.unicodeScalars.count)
        for c in text.unicodeScalars {
            if c.value == 0 || c.value == 0xFFFD || Self.isControl(c) { continue }
            if Self.isWhitespace(c) {
                scalars.append(" ")
            } else if handleChineseCharacters && Self.isChineseCharacter(c) {
                scalars += [" ", c, " "]
            } else {
                scalars.append(c)
            }
        }
        if stripAccents {
            var text = String.UnicodeScalarView()
            text.append(contentsOf: scalars)
            scalars = String(text).decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                $0.properties.generalCategory != .nonspacingMark
            }
        }
        if lowercase {
            scalars = scalars.flatMap { c in c.properties.changesWhenLowercased ? Array(c.properties.lowercaseMapping.unicodeScalars) : [c] }
        }
        return scalars
    }

    /// Tab, newline, carriage return and Unicode's White_Space characters.
    public static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        c == "\t" || c == "\n" || c == "\r" || c.properties.isWhitespace
    }

    /// General category Cc, Cf, Co or Cs (control, format, private use, surrogate) other than tab, newline and
    /// carriage return. Not Cn: `tokenizers` keeps unassigned code points (where the original Python drops them).
    public static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        switch c.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT treats as words of their own (`tokenizers`' table, which
    /// starts extension E at U+2B920, not at U+2B820 as the original Python does).
    public static func isChineseCharacter(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// ASCII punctuation and symbols (`!"#$%&'()*+,-./:;<=>?@[\]^_``{|}~`) and Unicode punctuation (P*):
    /// each becomes a word of its own.
    public static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII {
            let v = c.value
            return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
        }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }
}
