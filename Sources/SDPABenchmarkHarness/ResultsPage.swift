import Foundation

/// The results page (`results/index.html`): every benchmark's chart and table on one self-contained
/// page (inline SVG and CSS, nothing fetched over the network), under a header naming the processor,
/// the kernel family, the threads, the peak, when and at which commit the benchmarks ran, and the
/// PyTorch version they were compared with.
///
/// The page is well-formed XML (XHTML syntax), so that a test can parse it with `XMLParser`.
public struct ResultsPage: Sendable {
    /// This package's reports, one per benchmark, in page order.
    public var reports: [BenchmarkReport]
    /// The reports they are compared with (PyTorch's), by benchmark name.
    public var comparisons: [String: BenchmarkReport]
    /// Files of the folder that were not drawn, and why.
    public var unread: [String]

    /// The benchmarks' usual order on the page; others follow alphabetically.
    static let order = ["KernelThroughput", "DispatchOverhead", "Memory", "BiasScaling"]

    /// A page of `reports` (this package's; the newest per benchmark is kept) compared with
    /// `comparisons` (other implementations' reports, matched by benchmark name).
    public init(reports: [BenchmarkReport], comparisons: [BenchmarkReport] = [], unread: [String] = []) {
        var newest = [String: BenchmarkReport]()
        for report in reports where !report.results.isEmpty {
            if let kept = newest[report.benchmark], kept.date >= report.date { continue }
            newest[report.benchmark] = report
        }
        self.reports = newest.values.sorted { a, b in
            let (ia, ib) = (Self.order.firstIndex(of: a.benchmark) ?? Self.order.count, Self.order.firstIndex(of: b.benchmark) ?? Self.order.count)
            return ia != ib ? ia < ib : a.benchmark < b.benchmark
        }
        var byBenchmark = [String: BenchmarkReport]()
        for report in comparisons where !report.results.isEmpty {
            if let kept = byBenchmark[report.benchmark], kept.date >= report.date { continue }
            byBenchmark[report.benchmark] = report
        }
        self.comparisons = byBenchmark
        self.unread = unread
    }

    /// The page of every report in `folder` (`*.json`, except the `--list` outputs `*.workloads.json`):
    /// reports of `SDPA` are the benchmarks, others (PyTorch's) their comparisons.
    ///
    /// - Throws: the file system's error when the folder cannot be listed.
    public init(folder: URL) throws {
        let files = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" && !$0.lastPathComponent.hasSuffix(".workloads.json") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        var ours = [BenchmarkReport](), theirs = [BenchmarkReport](), unread = [String]()
        for file in files {
            do {
                let report = try BenchmarkReport(contentsOf: file)
                if report.implementation == "SDPA" { ours.append(report) } else { theirs.append(report) }
            } catch {
                unread.append("\(file.lastPathComponent): not a benchmark report (\(error))")
            }
        }
        self.init(reports: ours, comparisons: theirs, unread: unread)
    }

    /// Writes ``html()`` to `url`, creating the folder if needed.
    public func write(to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try html().write(to: url, atomically: true, encoding: .utf8)
    }

    /// The page.
    public func html() -> String {
        var lines = [
            "<!DOCTYPE html>",
            #"<html xmlns="http://www.w3.org/1999/xhtml" lang="en">"#,
            #"<head><meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1"/>"#,
            "<title>SDPA benchmark results</title>",
            "<style>\(Self.css)</style></head>",
            "<body>",
            "<header><h1>SDPA benchmark results</h1>",
        ]
        lines += header()
        if reports.count > 1 {
            lines.append("<nav><ul>" + reports.map { ##"<li><a href="#\##(Self.anchor($0.benchmark))">\##(Self.escaped($0.benchmark))</a></li>"## }
                .joined() + "</ul></nav>")
        }
        lines.append("</header>")
        if reports.isEmpty {
            lines.append("<p>No benchmark results yet: run <code>swift package --allow-writing-to-package-directory benchmark</code>.</p>")
        }
        for report in reports { lines += section(report) }
        if !unread.isEmpty {
            lines.append("<footer><p>Not shown:</p><ul>" + unread.map { "<li>\(Self.escaped($0))</li>" }.joined() + "</ul></footer>")
        }
        lines += ["</body>", "</html>"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The machine of the newest report, and what every report ran against.
    func header() -> [String] {
        guard let newest = reports.max(by: { $0.date < $1.date }) else { return [] }
        let m = newest.machine
        var rows = [
            ("Processor", m.cpuModel ?? "not recorded"),
            ("Kernel family", m.kernelFamily ?? "not recorded"),
            ("Threads", "\(m.threads) on \(m.processors) processor\(m.processors == 1 ? "" : "s")"),
            ("Peak", String(m.peakDescription.dropFirst("peak ".count))),
        ]
        let commits = Array(Set(reports.map { $0.commit ?? "unknown" })).sorted()
        let dates = reports.sorted { $0.date < $1.date }.map(\.readableDate)
        rows.append(("Ran", (dates.first == dates.last ? dates.first! : "\(dates.first!) to \(dates.last!)")
            + " at commit\(commits.count == 1 ? "" : "s") " + commits.joined(separator: ", ")))
        let versions = Array(Set(comparisons.values.map(\.implementation))).sorted()
        if !versions.isEmpty {
            rows.append(("Compared with", versions.joined(separator: ", ") + " (" + comparisons.keys.sorted().joined(separator: ", ") + ")"))
        }
        return [#"<dl class="machine">"#] + rows.map { "<dt>\(Self.escaped($0.0))</dt><dd>\(Self.escaped($0.1))</dd>" } + ["</dl>"]
    }

    /// One benchmark: its question, when it ran (and on what, where that differs from the header's
    /// machine), its chart, its table and notes.
    func section(_ report: BenchmarkReport) -> [String] {
        let comparison = comparisons[report.benchmark]
        let presentation = BenchmarkPresentation(report: report, comparison: comparison)
        let headerMachine = reports.max { $0.date < $1.date }?.machine
        var meta = "Ran \(report.readableDate) at commit \(report.commit ?? "unknown")"
        if report.machine != headerMachine { meta += " on " + report.machine.summary }
        if let comparison { meta += "; compared with \(comparison.implementation), run \(comparison.readableDate)" }
        var lines = [
            #"<section id="\#(Self.anchor(report.benchmark))">"#,
            "<h2>\(Self.escaped(report.benchmark))</h2>",
            #"<p class="question">\#(Self.escaped(presentation.question))</p>"#,
            #"<p class="meta">\#(Self.escaped(meta))</p>"#,
        ]
        if let chart = presentation.chart {
            lines.append(#"<figure class="chart">"#)
            lines.append(chart.svg().trimmingCharacters(in: .whitespacesAndNewlines))
            lines.append("</figure>")
        }
        lines += presentation.preface.map { #"<p class="preface">\#(Self.escaped($0))</p>"# }
        lines.append(Self.tableHTML(presentation.table))
        if !presentation.notes.isEmpty {
            lines.append(#"<pre class="notes">\#(Self.escaped(presentation.notes.joined(separator: "\n")))</pre>"#)
        }
        lines.append("</section>")
        return lines
    }

    /// `table` as an HTML table: numbers right-aligned as in the text, a short row's last cell spanning the rest.
    static func tableHTML(_ table: TextTable) -> String {
        func cellClass(_ c: Int) -> String { table.columns[c].alignment == .right ? #" class="number""# : "" }
        var html = [#"<div class="table"><table>"#, "<thead><tr>"
            + table.columns.indices.map { "<th\(cellClass($0))>\(escaped(table.columns[$0].title))</th>" }.joined() + "</tr></thead>", "<tbody>"]
        for row in table.rows {
            let cells = Array(row.prefix(table.columns.count))
            var tr = "<tr>"
            for (c, cell) in cells.enumerated() {
                let span = c == cells.count - 1 && cells.count < table.columns.count ? #" colspan="\#(table.columns.count - c)""# : ""
                tr += "<td\(cellClass(c))\(span)>\(escaped(cell))</td>"
            }
            html.append(tr + "</tr>")
        }
        html += ["</tbody>", "</table></div>"]
        return html.joined(separator: "\n")
    }

    static func anchor(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber ? $0 : "-" })
    }

    static func escaped(_ text: String) -> String { SVGDocument.escaped(text) }

    /// Kept free of `<` and `&`, so that the page stays well-formed XML.
    static let css = """
        body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 15px; color: #1a1a1a; margin: 24px; max-width: 1500px; }
        h1 { font-size: 26px; margin: 0 0 12px; }
        h2 { font-size: 21px; margin: 36px 0 6px; border-top: 1px solid #ccc; padding-top: 18px; }
        dl.machine { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; margin: 0 0 12px; }
        dl.machine dt { font-weight: bold; }
        dl.machine dd { margin: 0; }
        nav ul { list-style: none; padding: 0; display: flex; gap: 18px; }
        p.question { font-size: 16px; font-style: italic; margin: 4px 0; }
        p.meta, p.preface { color: #555; font-size: 14px; margin: 4px 0; }
        figure.chart { margin: 12px 0; overflow-x: auto; }
        figure.chart svg { display: block; }
        div.table { overflow-x: auto; }
        table { border-collapse: collapse; font-size: 14px; margin: 10px 0; font-variant-numeric: tabular-nums; }
        th, td { padding: 3px 10px; border-bottom: 1px solid #e2e2e2; text-align: left; white-space: nowrap; }
        th { background: #f0f0f0; }
        td.number, th.number { text-align: right; }
        tbody tr:nth-child(even) { background: #fafafa; }
        pre.notes { font-size: 14px; white-space: pre-wrap; }
        """
}
