import Foundation
import Testing

/// `sdpa explain --threads`: the scaling model's table under the explanation, for any thread count.
@Suite("sdpa explain --threads")
struct ExplainScalingTests {
    @Test("prints a row per thread count, the threads a call can use, and the tiles left after skipping")
    func printsTheModel() {
        let causal = sdpa(["explain", "--shape", "1,8,8192,8192,64", "--bias", "causal-upper-left", "--threads", "2,64,128"])
        #expect(causal.status == 0, "\(causal.standardError)")
        let rows = causal.standardOutput.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for threads in ["2", "64", "128"] {
            #expect(rows.contains { $0.hasPrefix(threads + " ") && $0.hasSuffix("%") }, "no row for \(threads): \(causal.standardOutput)")
        }
        #expect(causal.standardOutput.contains("scaling model (") && causal.standardOutput.contains("computed after tile skipping (51."),
                "\(causal.standardOutput)")
        // One decoding sequence of 8 key/value heads: 64 items (8 key ranges each), so 128 threads use 64.
        let decode = sdpa(["explain", "--shape", "1,32,1,8192,128", "--kv-heads", "8", "--enable-gqa", "--threads", "128"])
        #expect(decode.status == 0 && decode.standardOutput.contains("128 (64 used)"), "\(decode.standardOutput)\(decode.standardError)")
        // Inputs the fused kernel does not take are modeled as if it did, and say so.
        let math = sdpa(["explain", "--shape", "1,2,16,32,8", "--dtype", "float64", "--threads", "4"])
        #expect(math.standardOutput.contains("(these inputs do not run on the fused kernel; the model below is what it would do with them)"))
        #expect(!sdpa(["explain", "--shape", "1,2,16,32,8"]).standardOutput.contains("scaling model"))
    }
}
