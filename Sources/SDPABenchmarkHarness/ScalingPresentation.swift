import Foundation

extension BenchmarkPresentation {
    /// `Memory`: the table of peak memory per configuration, and peak extra memory against L on
    /// logarithmic axes, fused (solid) against materialized (dashed), with slope guides.
    static func memory(_ report: BenchmarkReport) -> BenchmarkPresentation {
        var table = TextTable(columns: [
            .init("L=S"), .init("bias"), .init("path"), .init("peak extra", alignment: .right),
            .init("peak resident", alignment: .right), .init("time", alignment: .right), .init("note"),
        ])
        for r in report.results {
            table.append([
                "\(r.workload.queryLength)", r.workload.bias, r.path,
                MeasurementFormat.optional(r.peakExtraBytes, MeasurementFormat.bytes),
                MeasurementFormat.optional(r.peakResidentBytes, MeasurementFormat.bytes),
                MeasurementFormat.optional(r.timing?.medianSeconds, MeasurementFormat.duration), r.note ?? "",
            ])
        }
        let series = lengthSeries(report.results, prefix: "", metric: { $0.peakExtraBytes.map(Double.init) }, stylePerBias: true)
        let skipped = report.results.filter { $0.peakExtraBytes == nil }
            .map { "\($0.workload.bias) \($0.path) L=\($0.workload.queryLength): \($0.note ?? "not measured")" }
        let shape = sharedBatchAndHeads(report.results.map(\.workload)).map { "\($0) E=\(report.results[0].workload.headDim), L = S" } ?? "L = S"
        let chart = LogLogChart(
            title: "\(report.benchmark): peak extra memory of one call against sequence length (\(shape))",
            subtitle: chartSubtitle(report, comparison: nil), xLabel: "L = S (tokens)", yLabel: "peak extra resident memory",
            xUnit: .count, yUnit: .bytes, series: series, guides: slopeGuides(series),
            footnotes: skipped.map { "Not drawn: \($0)" })
        return BenchmarkPresentation(
            question: "How much memory does one call need as L grows, with the bias fused into the kernel against a materialized mask?",
            preface: ["one call per process, \(shape); peak extra = resident memory at the call's peak minus before it"],
            table: table, chart: chart)
    }

    /// `BiasScaling`: the throughput table and the targets' figures, and time per call against L on
    /// logarithmic axes per bias and path (PyTorch's beside them), with slope guides: a cost linear in
    /// L is a line parallel to the slope-1 guide.
    static func biasScaling(_ report: BenchmarkReport, comparison: BenchmarkReport?) -> BenchmarkPresentation {
        let metric = { (r: BenchmarkResult) in r.timing?.medianSeconds }
        var series = lengthSeries(report.results, prefix: "", metric: metric)
        let guides = slopeGuides(series)
        if let comparison {
            series += lengthSeries(comparison.results, prefix: "\(comparison.implementation) · ", metric: metric, firstStyle: series.count)
        }
        let chart = LogLogChart(
            title: "\(report.benchmark): time per call against sequence length, per bias",
            subtitle: chartSubtitle(report, comparison: comparison), xLabel: "L = S (tokens)", yLabel: "median time per call",
            xUnit: .count, yUnit: .seconds, series: series, guides: guides,
            footnotes: ["On log axes a cost linear in L runs parallel to the slope-1 guide, a quadratic one to the slope-2 guide."])
        return BenchmarkPresentation(
            question: "Does a sliding window cost time linear in L; do packed sequences cost what they cost one by one; "
                + "does a plugin bias run as fast as the built-in one?",
            preface: [ThroughputTable.summaryLine(report)],
            table: ThroughputTable.table(report.results, comparison: comparison),
            notes: biasScalingSummary(report.figures ?? [:]), chart: chart)
    }

    /// One series per (bias, path) of `results`, points (L, metric) in L order; spellings with long
    /// argument lists are shortened (`block-diagonal-causal:…`). Materialized paths are dashed; with
    /// `stylePerBias` a bias's paths share a colour and marker, else every series has its own.
    static func lengthSeries(_ results: [BenchmarkResult], prefix: String, metric: (BenchmarkResult) -> Double?,
                             stylePerBias: Bool = false, firstStyle: Int = 0) -> [LogLogChart.Series] {
        var keys = [String](), points = [String: [(Double, Double)]](), styles = [String: Int](), seriesStyles = [String: Int]()
        for r in results {
            let bias = r.workload.bias.count > 26 ? String(r.workload.bias.prefix { $0 != ":" }) + ":…" : r.workload.bias
            let key = "\(prefix)\(bias) · \(r.path)"
            if points[key] == nil {
                keys.append(key)
                points[key] = []
            }
            let styleKey = stylePerBias ? bias : key
            if styles[styleKey] == nil { styles[styleKey] = firstStyle + styles.count }
            seriesStyles[key] = styles[styleKey]
            if let value = metric(r) { points[key]!.append((Double(r.workload.queryLength), value)) }
        }
        let materialized = [AttentionPath.materialized.rawValue, AttentionPath.materializedIncludingBuild.rawValue]
        return keys.map { key in
            LogLogChart.Series(name: key, points: points[key]!.sorted { $0.0 < $1.0 }, style: seriesStyles[key]!,
                               dashed: materialized.contains { key.hasSuffix(" · " + $0) })
        }
    }

    /// Slope-1 and slope-2 guides through the first point of the first series with two or more points.
    static func slopeGuides(_ series: [LogLogChart.Series]) -> [LogLogChart.Guide] {
        guard let anchor = series.first(where: { $0.points.count >= 2 })?.points.first else { return [] }
        return [.init(label: "slope 1: linear in L", slope: 1, through: (anchor.x, anchor.y)),
                .init(label: "slope 2: quadratic in L", slope: 2, through: (anchor.x, anchor.y))]
    }

    /// `BiasScaling`'s targets, from the figures its run derived.
    static func biasScalingSummary(_ figures: [String: Double]) -> [String] {
        func f(_ name: String, _ digits: Int = 2) -> String { figures[name].map { MeasurementFormat.fixed($0, digits) } ?? "–" }
        var lines = [String]()
        if figures["window.slopeNanosecondsPerToken"] != nil {
            // Quadratic cost would make the time per token grow with L (8x over 2048...16384); linear keeps it flat.
            let growth = figures["window.perTokenGrowth"] ?? .infinity
            let linear = (figures["window.rSquared"] ?? 0) >= 0.95 && growth <= 1.25 && growth >= 0.75
            lines.append("(a) window:256, fastest samples: slope \(f("window.slopeNanosecondsPerToken", 1)) ns per token (all 8 heads), "
                + "intercept \(f("window.interceptMilliseconds")) ms, R^2 \(f("window.rSquared", 4)), "
                + "time per token grows \(f("window.perTokenGrowth"))x from the shortest to the longest L "
                + "(1 = linear, L ratio = quadratic): \(linear ? "linear" : "NOT linear")")
            let speedups = figures.keys.filter { $0.hasSuffix("speedupOverPyTorch") && $0.hasPrefix("window") }.sorted()
            for key in speedups { lines.append("    \(key): \(f(key))x (target >= 5x at L=8192)") }
        }
        if let ratio = figures["blockDiagonal.ratioToOneByOne"] {
            lines.append("(b) block-diagonal-causal: packed / one by one = \(f("blockDiagonal.ratioToOneByOne"))x (target <= 1.3: \(ratio <= 1.3 ? "met" : "missed"))"
                + (figures["blockDiagonal.speedupOverPyTorch"].map { ", \(MeasurementFormat.fixed($0, 2))x faster than PyTorch (target >= 5x)" } ?? ""))
        }
        if let ratio = figures["plugin.ratioToBuiltIn"] {
            lines.append("(c) plugin causal / built-in causal-upper-left = \(f("plugin.ratioToBuiltIn"))x median, "
                + "\(f("plugin.ratioToBuiltInMin"))x fastest (target <= 1.15: \(ratio <= 1.15 ? "met" : "missed"))")
        }
        return lines
    }
}
