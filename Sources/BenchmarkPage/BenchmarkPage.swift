import Foundation
import SDPABenchmarkHarness

/// `BenchmarkPage [FOLDER] [--output FILE]`: writes the results page of every benchmark report in
/// FOLDER (default `results`) to FILE (default `FOLDER/index.html`), and redraws each report's chart
/// beside its JSON (`<Name>.svg`) from the JSON, so that page, charts and JSON always agree.
@main
enum BenchmarkPage {
    static let usage = """
        usage: BenchmarkPage [FOLDER] [--output FILE]
          Writes FILE (default FOLDER/index.html): every benchmark report (*.json) in FOLDER (default results),
          its chart and table, compared with the PyTorch report of the same benchmark where there is one; and
          redraws FOLDER/<Name>.svg from each report.
        """

    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        var output: String?
        if let index = arguments.firstIndex(of: "--output") {
            guard index + 1 < arguments.count else { fail("--output needs a file") }
            output = arguments[index + 1]
            arguments.removeSubrange(index...(index + 1))
        }
        if arguments.contains("--help") || arguments.contains("-h") {
            print(usage)
            exit(0)
        }
        guard arguments.count <= 1, !(arguments.first?.hasPrefix("-") ?? false) else { fail("unexpected arguments: \(arguments.joined(separator: " "))") }
        let folder = URL(fileURLWithPath: arguments.first ?? "results", isDirectory: true)
        let page: ResultsPage
        do {
            page = try ResultsPage(folder: folder)
        } catch {
            fail("cannot read \(folder.path): \(error)", status: 1)
        }
        do {
            for report in page.reports {
                let presentation = BenchmarkPresentation(report: report, comparison: page.comparisons[report.benchmark])
                try presentation.chart?.write(to: folder.appending(path: "\(report.benchmark).svg"))
            }
            let url = output.map { URL(fileURLWithPath: $0) } ?? folder.appending(path: "index.html")
            try page.write(to: url)
            print("BenchmarkPage: wrote \(url.path) (\(page.reports.map(\.benchmark).joined(separator: ", ")))")
            for note in page.unread { print("BenchmarkPage: not shown: \(note)") }
        } catch {
            fail("cannot write: \(error)", status: 1)
        }
    }

    static func fail(_ message: String, status: Int32 = 2) -> Never {
        FileHandle.standardError.write(Data("BenchmarkPage: \(message)\n\(status == 2 ? usage + "\n" : "")".utf8))
        exit(status)
    }
}
