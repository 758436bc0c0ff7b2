import SDPA
import SDPABenchmarkHarness

/// `sdpa` without arguments: every bias through the materialized and the fused path, how far
/// the two agree, and the benchmark table.
package enum DemoCommand {
    /// The demo's problem size, `[B, H, L, S, E]`; tests run it smaller.
    @TaskLocal package static var shape = BenchCommand.defaultShape

    static func run(output: CommandOutput) throws {
        let s = shape
        let workloads = BiasKind.commandLineKinds.map {
            AttentionWorkload(batch: s[0], heads: s[1], queryLength: s[2], keyLength: s[3], headDim: s[4], bias: $0)
        }
        output.standardOutput("""
            SDPA demo: scaled dot-product attention with attention biases on the CPU.
            Each bias runs twice: materialized (bias.materialize() passed as a TensorBias, an L x S mask the
            kernel reads) and fused (the bias itself: its kernel computes it and skips masked tiles).
            Shape \(workloads[0].shapeDescription), float32. Run 'sdpa --help' for the commands.


            """)
        var agreement = TextTable(columns: [
            .init("bias"), .init("fused path runs on"), .init("max |materialized - fused|", alignment: .right),
        ])
        let (q, k, v) = try workloads[0].makeInputs()
        for workload in workloads {
            guard let bias = try workload.makeBias() else {
                agreement.append([workload.bias, "no mask", "– (one path)"])
                continue
            }
            let fused = try attention(query: q, key: k, value: v, bias: bias)
            let route = try explainSDPA(query: q, key: k, value: v, attnMask: bias)
            let difference: String
            if hasMaterializedForm(bias) {
                let materialized = try attention(query: q, key: k, value: v, bias: TensorBias(try bias.materialize(device: .cpu)))
                difference = MeasurementFormat.scientific(maximumAbsoluteDifference(fused, materialized))
            } else {
                // No mask can stand for a non-additive bias: check it against the math backend instead.
                let reference = try withSDPBackends([.math]) { try attention(query: q, key: k, value: v, bias: bias) }
                difference = MeasurementFormat.scientific(maximumAbsoluteDifference(fused, reference)) + " (vs math)"
            }
            agreement.append([
                workload.bias, route.backend.map { "\($0) backend, bias computed in the kernel" } ?? route.route, difference,
            ])
        }
        output.standardOutput(agreement.rendered() + "\n\n")
        let benchmark = ThroughputBenchmark(plan: MeasurementPlan(warmUpCalls: 1, samples: 5))
        let report = try BenchCommand.measure(benchmark, workloads: workloads, name: "sdpa demo", output: output)
        output.standardOutput(ThroughputTable.summaryLine(report) + "\n" + ThroughputTable.rendered(report.results) + "\n")
    }
}
