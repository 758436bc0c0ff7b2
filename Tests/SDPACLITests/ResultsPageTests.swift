import Foundation
import SDPA
import SDPABenchmarkHarness
import Testing

/// The page of the four known reports, KernelThroughput compared with PyTorch.
private func knownPage() throws -> ResultsPage {
    let (ours, pytorch) = try KnownReports.throughput()
    return ResultsPage(reports: [try KnownReports.biasScaling(), try KnownReports.memory(), ours, try KnownReports.dispatch()],
                       comparisons: [pytorch])
}

@Suite("Results page") struct ResultsPageTests {
    @Test func resultsPageIsWellFormedAndSelfContained() throws {
        let html = try knownPage().html()
        let (parsed, error) = XMLDocumentTree.parse(html)
        let tree = try #require(parsed, "not well-formed: \(error ?? "")")
        #expect(html.hasPrefix("<!DOCTYPE html>\n") && tree.elements.first?.name == "html")
        // Nothing is fetched: no scripts, style sheets, images or frames from elsewhere, no absolute links.
        for element in tree.elements {
            #expect(!["script", "link", "img", "iframe", "object", "embed"].contains(element.name), "\(element.name)")
            for (name, value) in element.attributes where ["src", "href"].contains(name) {
                #expect(value.hasPrefix("#"), "\(element.name) \(name)=\(value)")
            }
        }
        #expect(!html.contains("@import") && !html.contains("url("))
    }

    @Test func resultsPageHasEveryBenchmarksChartAndTableUnderTheMachineHeader() throws {
        let page = try knownPage()
        let tree = try #require(XMLDocumentTree.parse(page.html()).tree)
        // In the usual order, whatever order they were given in.
        let sections = tree.all("section")
        #expect(sections.map { $0.attributes["id"] } == ["KernelThroughput", "DispatchOverhead", "Memory", "BiasScaling"])
        #expect(tree.all("a").map { $0.attributes["href"] } == ["#KernelThroughput", "#DispatchOverhead", "#Memory", "#BiasScaling"])
        let charts = tree.all("svg"), tables = tree.all("table")
        #expect(charts.count == 4 && tables.count == 4)
        for (chart, section) in zip(charts, sections) {
            #expect(chart.ancestors.contains { $0.name == "section" && $0.attributes["id"] == section.attributes["id"] })
        }
        // Each table holds its presentation's rows; numbers are right-aligned.
        for (index, report) in page.reports.enumerated() {
            let presentation = BenchmarkPresentation(report: report, comparison: page.comparisons[report.benchmark])
            let rows = tree.all("tr").filter { row in row.ancestors.contains { $0.name == "table" } && row.ancestors.contains { $0.attributes["id"] == report.benchmark } }
            #expect(rows.count == presentation.table.rows.count + 1, "\(report.benchmark)")
            #expect(index < tables.count)
        }
        let cells = tree.all("td").filter { $0.ancestors.contains { $0.attributes["id"] == "KernelThroughput" } }
        #expect(cells.contains { $0.text == "75.0%" && $0.attributes["class"] == "number" })
        #expect(cells.contains { $0.text == "1.50x" })  // the ratio to PyTorch, 150 / 100
        // The header: processor, kernel family, threads, peak, when, at which commit, against which PyTorch.
        let header = Dictionary(uniqueKeysWithValues: zip(tree.all("dt").map(\.text), tree.all("dd").map(\.text)))
        #expect(header["Processor"] == "Test CPU 9000" && header["Kernel family"] == "avx2" && header["Threads"] == "2 on 2 processors")
        #expect(header["Peak"]?.hasPrefix("200 GFLOP/s (100 per core, measured: avx2 FMA loop on one thread × 2)") == true)
        #expect(header["Ran"]?.hasSuffix("at commit abc1234") == true)
        #expect(header["Compared with"] == "PyTorch 2.15.0 (KernelThroughput)")
        // The notes of BiasScaling's targets and DispatchOverhead's.
        #expect(tree.all("pre").map(\.text).contains { $0.contains("packed / one by one = 1.07x") })
        #expect(tree.all("pre").map(\.text).contains { $0.contains("largest overhead 150 ns") })
    }

    @Test func resultsPageReadsAFolderOfReports() throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "sdpa-results-page-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (ours, pytorch) = try KnownReports.throughput()
        try ours.write(to: folder.appending(path: "KernelThroughput.json"))
        try pytorch.write(to: folder.appending(path: "pytorch-KernelThroughput.json"))
        try KnownReports.memory().write(to: folder.appending(path: "Memory.json"))
        // A `--list` output and a file that is not a report: neither becomes a section.
        var list = ours
        list.results = []
        try list.write(to: folder.appending(path: "KernelThroughput.workloads.json"))
        try Data("{\"not\": \"a report\"}".utf8).write(to: folder.appending(path: "notes.json"))

        let page = try ResultsPage(folder: folder)
        #expect(page.reports.map(\.benchmark) == ["KernelThroughput", "Memory"])
        #expect(page.comparisons["KernelThroughput"]?.implementation == "PyTorch 2.15.0")
        #expect(page.unread.count == 1 && page.unread[0].hasPrefix("notes.json: not a benchmark report"))
        let html = page.html()
        #expect(XMLDocumentTree.parse(html).tree != nil)
        #expect(html.contains("<footer><p>Not shown:</p><ul><li>notes.json: not a benchmark report"))

        // No reports: a page that says how to get some.
        #expect(ResultsPage(reports: []).html().contains("No benchmark results yet"))
    }
}
