import Foundation
import SDPA
import SDPABenchmarkHarness
import Testing

// Charts drawn from small known reports (ChartFixtures.swift), read back with XMLParser: every number
// drawn is checked against the report (after a round trip through its JSON), and bar ends and point
// positions against the chart's own axis ticks.

/// The x of the tick of `panel` at `value`.
private func tickX(_ tree: XMLDocumentTree, panel: Int, value: Double) throws -> Double {
    let tick = tree.all("line", class: "tick").first { $0.attributes["data-panel"] == String(panel) && Double($0.attributes["data-value"]!) == value }
    return try #require(tick?.number("x1"), "no tick at \(value) in panel \(panel)")
}

private func near(_ a: Double?, _ b: Double, _ tolerance: Double = 0.16) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= tolerance
}

// MARK: - KernelThroughput

@Suite("Charts") struct ChartTests {
    @Test func throughputChartGroupsRowsByDtypeAndBiasFamily() throws {
        let (ours, pytorch) = try KnownReports.throughput()
        let chart = try #require(BenchmarkPresentation(report: ours, comparison: pytorch).chart as? RowChart)
        #expect(chart.rows.map(\.group) == ["float32 · no mask", "float32 · causal", "float32 · soft-capping", "float32 · dense mask", "bfloat16 · no mask"])
        #expect(chart.rows.map(\.label) == ["none  L=S=512 E=64", "causal-upper-left  L=S=512 E=64", "softcap:30+causal-upper-left  L=S=512 E=64",
                                            "mask-bool  L=S=512 E=64", "none  L=S=512 E=64"])
        #expect(chart.panels.count == 3)
        #expect(chart.panels[0].cells.map { $0?.value } == [1.5, 0.75, nil, 1.0, 2.0])
        #expect(chart.panels[0].cells[2]?.note == "no counterpart")
        #expect(chart.panels[1].cells.map { $0?.value } == [nil, 2.0, nil, nil, nil])
        #expect(chart.panels[1].cells.map { $0?.note } == ["fused only", nil, "fused only", "materialized only", "fused only"])
        #expect(chart.panels[2].cells.map { $0?.value } == [75, 60, 50, 45, 65])
        #expect(chart.subtitle[0].hasPrefix("Test CPU 9000 · avx2 kernels · 2 threads on 2 processors · peak 200 GFLOP/s (100 per core, measured"))
        #expect(chart.subtitle[1].contains("commit abc1234") && chart.subtitle[1].hasSuffix("compared with PyTorch 2.15.0"))

        // Without PyTorch: no ratio panel, and a footnote says how to get one.
        let alone = try #require(BenchmarkPresentation(report: ours).chart as? RowChart)
        #expect(alone.panels.count == 2 && alone.footnotes.contains { $0.contains("--pytorch") })
    }

    @Test func throughputBarsRunFromOneTimesByTheLogOfTheRatio() throws {
        let (ours, pytorch) = try KnownReports.throughput()
        let tree = try parsedSVG(BenchmarkPresentation(report: ours, comparison: pytorch).chart)
        let bars = tree.all("rect", class: "bar")
        // Ratio panels: bars start at the 1x line and run log2(ratio) tick-spacings (1x to 2x) right, or left when behind.
        for panel in [0, 1] {
            let one = try tickX(tree, panel: panel, value: 1), two = try tickX(tree, panel: panel, value: 2)
            let baseline = tree.all("line", class: "baseline").first { $0.attributes["data-panel"] == String(panel) }
            #expect(near(baseline?.number("x1"), one))
            for bar in bars where bar.attributes["data-panel"] == String(panel) {
                let ratio = try #require(bar.number("data-value"))
                let end = one + (two - one) * log2(ratio)
                #expect(near(bar.number("x"), min(one, end)) && near(bar.number("width"), abs(end - one)), "ratio \(ratio)")
                #expect(bar.attributes["fill"] == (ratio >= 1 ? "#0072B2" : "#D55E00"))
            }
        }
        let ratioBars = bars.filter { $0.attributes["data-panel"] == "0" }
        #expect(ratioBars.map { $0.attributes["data-row"]! } == ["0", "1", "3", "4"])
        #expect(ratioBars.map { $0.number("data-value")! } == [1.5, 0.75, 1, 2])
        #expect(bars.filter { $0.attributes["data-panel"] == "1" }.map { $0.number("data-value")! } == [2])

        // Percent of peak: linear from 0.
        let zero = try tickX(tree, panel: 2, value: 0), hundred = try tickX(tree, panel: 2, value: 100)
        let peakBars = bars.filter { $0.attributes["data-panel"] == "2" }
        #expect(peakBars.map { $0.number("data-value")! } == [75, 60, 50, 45, 65])
        for bar in peakBars {
            #expect(near(bar.number("x"), zero) && near(bar.number("width"), (hundred - zero) * bar.number("data-value")! / 100))
        }
        // Rows top to bottom in order, every panel's bar of a row on the same line.
        let centres = peakBars.map { $0.number("y")! }
        #expect(centres == centres.sorted() && Set(centres).count == centres.count)
        for bar in ratioBars {
            let row = bar.attributes["data-row"]!
            #expect(peakBars.first { $0.attributes["data-row"] == row }?.number("y") == bar.number("y"))
        }
        // Value labels say what the bars show.
        let labels = tree.all("text", class: "value-label").map(\.text)
        #expect(["1.5×", "0.75×", "1×", "2×", "75 %", "45 %"].allSatisfy(labels.contains))
        #expect(tree.all("text", class: "note").map(\.text) == ["no counterpart", "fused only", "fused only", "materialized only", "fused only"])
    }

    // MARK: - DispatchOverhead

    @Test func overheadChartDrawsTheMedianItsSpreadAndTheTarget() throws {
        let presentation = BenchmarkPresentation(report: try KnownReports.dispatch())
        let tree = try parsedSVG(presentation.chart)
        let zero = try tickX(tree, panel: 0, value: 0), hundred = try tickX(tree, panel: 0, value: 100)
        func x(_ ns: Double) -> Double { zero + (hundred - zero) * ns / 100 }
        let target = tree.all("line", class: "reference").first { $0.attributes["data-panel"] == "0" }
        #expect(near(target?.number("x1"), hundred) && target?.attributes["data-value"] == "100")
        #expect(tree.all("text", class: "reference-label").map(\.text).contains("target 100 ns"))

        // Samples 10...50: box 20...40 (quartiles), median 30, whisker 10...50; ahead of the target.
        let boxes = tree.all("rect", class: "box"), medians = tree.all("line", class: "median"), whiskers = tree.all("line", class: "whisker")
        #expect(boxes.count == 2 && medians.count == 2 && whiskers.count == 2)
        #expect(near(boxes[0].number("x"), x(20)) && near(boxes[0].number("width"), x(40) - x(20)) && boxes[0].attributes["fill"] == "#0072B2")
        #expect(near(medians[0].number("x1"), x(30)) && medians[0].attributes["data-value"] == "30")
        #expect(near(whiskers[0].number("x1"), x(10)) && near(whiskers[0].number("x2"), x(50)))
        // Samples 120...400, median 150: over the target; the whisker runs off the axis's end (200 ns) instead of squashing it.
        let axisEnd = try tickX(tree, panel: 0, value: 200)
        #expect(near(boxes[1].number("x"), x(140)) && near(boxes[1].number("width"), x(160) - x(140)) && boxes[1].attributes["fill"] == "#D55E00")
        #expect(near(medians[1].number("x1"), x(150)) && near(whiskers[1].number("x2"), axisEnd))
        #expect(!tree.all("line", class: "tick").contains { $0.attributes["data-panel"] == "0" && $0.number("data-value")! > 200 })

        // Whole calls on a log axis with the 3 us target: 2 us and 3.5 us bars from the axis's start.
        let callBars = tree.all("rect", class: "bar").filter { $0.attributes["data-panel"] == "1" }
        #expect(callBars.map { $0.number("data-value")! } == [2e-6, 3.5e-6])
        let one = try tickX(tree, panel: 1, value: 1e-6), two = try tickX(tree, panel: 1, value: 2e-6)
        for bar in callBars {
            #expect(near(bar.number("x"), one) && near(bar.number("width"), (two - one) * log2(bar.number("data-value")! / 1e-6)))
        }
        #expect(tree.all("line", class: "reference").contains { $0.attributes["data-panel"] == "1" && $0.attributes["data-value"] == "3e-06" })

        #expect(presentation.table.columns.map(\.title) == ["bias", "shape", "entry point", "direct", "overhead", "middle half"])
        #expect(presentation.table.rows[0] == ["none", "B=1 H=1 L=8 S=8 E=16", "2.00 µs", "1.97 µs", "30 ns", "20…40 ns"])
        #expect(presentation.notes == ["tiny calls (L=S=8): largest overhead 150 ns (target <= 100 ns), slowest whole call 3.50 µs (target < 3 us)"])
    }

    // MARK: - Memory and BiasScaling

    @Test func memoryChartPlacesPointsOnLogAxes() throws {
        let presentation = BenchmarkPresentation(report: try KnownReports.memory())
        let chart = try #require(presentation.chart as? LogLogChart)
        #expect(chart.series.map(\.name) == ["causal-lower-right · fused", "causal-lower-right · materialized"])
        #expect(chart.series.map(\.dashed) == [false, true] && chart.series.map(\.style) == [0, 0])
        #expect(chart.footnotes == ["Not drawn: causal-lower-right materialized L=4096: skipped: the mask alone needs 64.0 MiB"])

        let tree = try parsedSVG(chart)
        func tick(_ axis: String, _ value: Double) throws -> Double {
            let line = tree.all("line", class: "\(axis)-tick").first { Double($0.attributes["data-value"]!) == value }
            return try #require(line?.number(axis == "x" ? "x1" : "y1"), "no \(axis) tick at \(value)")
        }
        let (x1024, x2048) = (try tick("x", 1024), try tick("x", 2048))
        // Bytes on powers of two: 1 MiB, 2 MiB, ...
        let mib = 1024.0 * 1024
        let (yOne, yTwo) = (try tick("y", mib), try tick("y", 2 * mib))
        let points = tree.all("circle", class: "point")
        #expect(points.count == 5)
        #expect(points.map { $0.number("data-y")! } == [mib, 2 * mib, 4 * mib, 4 * mib, 16 * mib])
        for point in points {
            let (l, bytes) = (point.number("data-x")!, point.number("data-y")!)
            #expect(near(point.number("cx"), x1024 + (x2048 - x1024) * log2(l / 1024)), "L=\(l)")
            #expect(near(point.number("cy"), yOne + (yTwo - yOne) * log2(bytes / mib)), "\(bytes) bytes")
        }
        // The slope guides are straight lines of slope 1 and 2 in log-log space.
        let guides = tree.all("polyline", class: "guide")
        #expect(guides.count == 2)
        for (guide, slope) in zip(guides, [1.0, 2.0]) {
            let coordinates = guide.attributes["points"]!.split(separator: " ").map { $0.split(separator: ",").map { Double($0)! } }
            let doublings = (coordinates[1][0] - coordinates[0][0]) / (x2048 - x1024)
            let doublingsOfBytes = (coordinates[1][1] - coordinates[0][1]) / (yTwo - yOne)
            #expect(abs(doublingsOfBytes / doublings - slope) < 0.01, "slope \(slope)")
        }
    }

    @Test func biasScalingChartHasASeriesPerBiasAndPath() throws {
        let presentation = BenchmarkPresentation(report: try KnownReports.biasScaling())
        let chart = try #require(presentation.chart as? LogLogChart)
        #expect(chart.series.map(\.name) == ["window:256 · fused", "block-diagonal-causal:… · fused", "block-diagonal-causal:… · one by one",
                                             "causal-upper-left · fused", "causal-upper-left · plugin"])
        #expect(chart.series[0].points.map(\.x) == [512, 1024, 2048] && chart.series[0].points.map(\.y) == [0.001, 0.002, 0.004])
        #expect(Set(chart.series.map(\.style)).count == 5)
        #expect(chart.guides.map(\.slope) == [1, 2] && chart.guides[0].through == .init(x: 512, y: 0.001))
        #expect(presentation.notes.contains { $0.hasPrefix("(b) block-diagonal-causal: packed / one by one = 1.07x (target <= 1.3: met)") })
        _ = try parsedSVG(chart)
    }

    // MARK: - every chart

    @Test func everyChartIsReadableAtFullSize() throws {
        let (ours, pytorch) = try KnownReports.throughput()
        let unknown = try KnownReports.unknownBenchmark()
        let charts: [(String, (any BenchmarkChart)?)] = [
            ("throughput", BenchmarkPresentation(report: ours, comparison: pytorch).chart),
            ("dispatch", BenchmarkPresentation(report: try KnownReports.dispatch()).chart),
            ("memory", BenchmarkPresentation(report: try KnownReports.memory()).chart),
            ("scaling", BenchmarkPresentation(report: try KnownReports.biasScaling(), comparison: nil).chart),
            ("generic", BenchmarkPresentation(report: unknown).chart),
        ]
        let palette: Set<String> = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]  // Okabe–Ito
        for (name, chart) in charts {
            let tree = try parsedSVG(chart)
            #expect(tree.elements.first?.name == "svg" && tree.elements.first?.attributes["xmlns"] == "http://www.w3.org/2000/svg", "\(name)")
            let texts = tree.all("text")
            #expect(texts.count > 5, "\(name)")
            for text in texts {
                let size = try #require(text.inherited("font-size").flatMap(Double.init), "\(name): text without a size")
                #expect(size >= 11, "\(name): '\(text.text)' at \(size) px")
            }
            for element in tree.elements {
                #expect(!element.attributes.values.contains { $0.contains("rotate") }, "\(name): rotated \(element.name)")
            }
            for mark in tree.elements where ["bar", "box", "point", "legend"].contains(mark.attributes["class"] ?? "") {
                #expect(palette.contains(mark.attributes["fill"] ?? ""), "\(name): \(mark.attributes["class"]!) in \(mark.attributes["fill"] ?? "no colour")")
            }
            // The drawing fits its canvas.
            let width = try #require(tree.elements.first?.number("width")), height = try #require(tree.elements.first?.number("height"))
            for element in tree.elements where element.name == "rect" || element.name == "text" {
                if let x = element.number("x") { #expect(x >= 0 && x <= width, "\(name): \(element.name) at x=\(x)") }
                if let y = element.number("y") { #expect(y >= 0 && y <= height, "\(name): \(element.name) at y=\(y)") }
            }
        }
    }

    @Test func aBenchmarkWithoutItsOwnPresentationGetsTimesPerConfiguration() throws {
        let unknown = try KnownReports.unknownBenchmark()
        let presentation = BenchmarkPresentation(report: unknown)
        #expect(presentation.table.rows.map { $0[4] } == ["10.00 ms", "–"])
        let chart = try #require(presentation.chart as? RowChart)
        #expect(chart.panels[0].cells.map { $0?.value } == [0.01, nil] && chart.panels[0].cells[1]?.note == "did not run")
    }

    @Test func embedShowsSentencesPerSecondBesideSentenceTransformers() throws {
        let presentation = BenchmarkPresentation(report: try KnownReports.embed())
        #expect(presentation.table.rows.map { [$0[0], $0[1], $0[3], $0[4]] } == [["padded", "128.0", "100.0", "1.28×"], ["packed", "256.0", "100.0", "2.56×"]])
        let chart = try #require(presentation.chart as? RowChart)
        #expect(chart.panels[0].cells.map { $0?.value } == [128, 256, 100])
    }

    @Test func ratioAndLogScalesPickRoundTicks() {
        #expect(ChartScale.ratio(fitting: [1.1, 1.3]) == .ratio(0.5...2))
        #expect(ChartScale.ratio(fitting: [0.3, 5]).ticks == [0.25, 0.5, 1, 2, 4, 8])
        #expect(ChartScale.ratio(fitting: [1.1, 1.3]).ticks == [0.5, 0.75, 1, 1.25, 1.5, 2])
        #expect(ChartScale.logarithmic(fitting: [2e-6, 3.5e-6]).domain == 1e-6...5e-6)
        #expect(ChartScale.logarithmic(fitting: [2e-6, 3.5e-6]).ticks == [1e-6, 2e-6, 5e-6])
        #expect(ChartScale.logarithmicPowersOfTwo(fitting: [1000, 16384]).ticks == [512, 1024, 2048, 4096, 8192, 16384])
        #expect(ChartScale.linear(fitting: [87]) == .linear(0...100))
        #expect(ChartScale.linear(fitting: [87]).ticks == [0, 20, 40, 60, 80, 100])
        #expect(ChartScale.linear(fitting: [-12, 30]).domain.lowerBound < -12)
        #expect(ChartUnit.seconds.label(3.5e-6) == "3.5 µs" && ChartUnit.times.label(0.75) == "0.75×" && ChartUnit.bytes.label(16 * 1024 * 1024) == "16 MiB")
        #expect(ChartUnit.nanoseconds.label(1500) == "1.5 µs" && ChartUnit.percent.label(64.04) == "64 %")
    }
}
