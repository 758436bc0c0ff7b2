import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The elements of an XML document (an SVG chart, the results page) as Foundation's `XMLParser`
/// reads it: parsing fails on anything that is not well-formed.
final class XMLDocumentTree: NSObject, XMLParserDelegate {
    /// One element: its name, attributes, the text directly inside it, and its ancestors' names and attributes.
    struct Element {
        var name: String
        var attributes: [String: String]
        var text: String
        var ancestors: [(name: String, attributes: [String: String])]

        /// The attribute `name` of this element or else its nearest ancestor that has one (SVG inheritance).
        func inherited(_ name: String) -> String? {
            attributes[name] ?? ancestors.reversed().lazy.compactMap { $0.attributes[name] }.first
        }

        /// A numeric attribute.
        func number(_ name: String) -> Double? { attributes[name].flatMap(Double.init) }
    }

    private(set) var elements: [Element] = []
    private var open: [Int] = []
    private(set) var error: String?

    /// Parses `text`; `nil` with the parser's error when it is not well-formed.
    static func parse(_ text: String) -> (tree: XMLDocumentTree?, error: String?) {
        let tree = XMLDocumentTree()
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = tree
        guard parser.parse() else { return (nil, "\(parser.parserError.map { "\($0)" } ?? "unknown error") at line \(parser.lineNumber)") }
        return (tree, nil)
    }

    /// The elements called `name` whose `class` is `cssClass` (any class when `nil`), in document order.
    func all(_ name: String, class cssClass: String? = nil) -> [Element] {
        elements.filter { $0.name == name && (cssClass == nil || $0.attributes["class"] == cssClass) }
    }

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        let ancestors = open.map { (elements[$0].name, elements[$0].attributes) }
        elements.append(Element(name: elementName, attributes: attributes, text: "", ancestors: ancestors))
        open.append(elements.count - 1)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        open.removeLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let current = open.last { elements[current].text += string }
    }
}
