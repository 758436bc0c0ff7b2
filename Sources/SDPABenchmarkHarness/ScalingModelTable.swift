import SDPA

/// The scaling model's predictions as `sdpa explain --threads` and the `ThreadScaling` benchmark print
/// them: one row per thread count, and a line on the tiles the bias leaves to compute.
public enum ScalingModelTable {
    /// One row per prediction: threads, items, claims, the largest item, the critical path, speedup and efficiency.
    public static func table(_ predictions: [SDPAScalingPrediction]) -> TextTable {
        var table = TextTable(columns: [
            .init("threads", alignment: .right), .init("items", alignment: .right), .init("split", alignment: .right),
            .init("claims", alignment: .right), .init("largest item", alignment: .right), .init("critical path", alignment: .right),
            .init("speedup", alignment: .right), .init("efficiency", alignment: .right),
        ])
        for p in predictions {
            table.append([
                p.threadsUsed == p.threads ? "\(p.threads)" : "\(p.threads) (\(p.threadsUsed) used)",
                "\(p.workItems)", "\(p.splitItems)", "\(p.claims)", MeasurementFormat.duration(p.largestItem),
                MeasurementFormat.duration(p.criticalPath), MeasurementFormat.fixed(p.speedup, 2) + "x",
                MeasurementFormat.fixed(100 * p.efficiency, 1) + " %",
            ])
        }
        return table
    }

    /// The tiles line: (query head, key tile) pairs, those computed after tile skipping, and the time on one thread.
    public static func tilesLine(_ prediction: SDPAScalingPrediction) -> String {
        let share = prediction.tiles > 0 ? 100 * Double(prediction.visibleTiles) / Double(prediction.tiles) : 0
        return "tiles: \(prediction.tiles) (query head x key tile), \(prediction.visibleTiles) computed after tile skipping "
            + "(\(MeasurementFormat.fixed(share, 1)) %); one thread: \(MeasurementFormat.duration(prediction.oneThread)) modeled"
    }

    /// The whole block: a heading, the table and the tiles line.
    public static func text(_ predictions: [SDPAScalingPrediction]) -> String {
        guard let first = predictions.first else { return "" }
        return """
            scaling model (the fused kernel's own work items at each thread count, the pool's run simulated; \
            modeled times of one core):
            \(table(predictions).rendered().split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
              \(tilesLine(first))
            """
    }
}
