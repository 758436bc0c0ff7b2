extension BenchmarkPresentation {
    /// `Decode` and `sdpa bench --decode`: the generic table of times (each row's note says what its
    /// time means), then the derived figures: bandwidth, times against reading K and V once, tokens per
    /// second, and the ratios to PyTorch when compared.
    static func decode(_ report: BenchmarkReport, comparison: BenchmarkReport?) -> BenchmarkPresentation {
        var presentation = generic(report, comparison: comparison)
        presentation.question = "How close to memory speed does decoding run, alone and in a continuous batch?"
        presentation.notes = (report.figures ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key): \(Swift.abs($0.value) >= 100 || $0.value == 0 ? MeasurementFormat.fixed($0.value, 0) : Swift.abs($0.value) >= 0.01 ? MeasurementFormat.fixed($0.value, 3) : MeasurementFormat.scientific($0.value))" }
        return presentation
    }
}
