@_spi(Testing) import SDPA
import SDPATestSupport
import Testing

/// The scaling model: the pool's simulated schedule, and predictions that agree with the work they
/// describe (issue 20's targets are held in SDPACLITests' ScalingTargetTests).
@Suite("Scaling model")
struct ScalingModelTests {
    @Test("the simulation hands each claim to the earliest free thread, ties to the lowest, and the last finisher of a split group merges it")
    func simulatedSchedule() {
        let items = [5.0, 3, 2, 2].map { _ScheduleSimulation.Item(cost: $0, splitGroup: -1) }
        let claims = (0..<4).map { $0..<($0 + 1) }
        // Thread 0: 5, then 2 at 5 (both free at 5: the lower index) = 7; thread 1: 3, 2 = 5.
        let whole = _ScheduleSimulation(items: items, claims: claims, merges: [], splits: [], threads: 2)
        #expect(whole.criticalPath == 7 && whole.busy == [7, 5])
        // One claim of two items runs on one thread.
        let grouped = _ScheduleSimulation(items: items, claims: [0..<2, 2..<3, 3..<4], merges: [], splits: [], threads: 2)
        #expect(grouped.criticalPath == 8 && grouped.busy == [8, 4])
        // Items 2 and 3 are one split group: thread 1 finishes it last (at 5 + 2 = 7 after thread 0's 5 + 2)…
        var split = items
        (split[2].splitGroup, split[3].splitGroup) = (0, 0)
        let merged = _ScheduleSimulation(items: split, claims: claims, merges: [10], splits: [2], threads: 2)
        // …thread 0 takes item 2 (5 → 7), thread 1 item 3 (3 → 5): thread 0 finished last, so it merges: 17.
        #expect(merged.criticalPath == 17 && merged.busy == [17, 5])
        #expect(_ScheduleSimulation(items: items, claims: claims, merges: [], splits: [], threads: 1).criticalPath == 12)
    }

    @Test("a prediction is bounded by the work over the threads and by its largest item, and one thread takes all the work",
          arguments: [
            (AttentionShape(batch: 1, queryHeads: 8, keyValueHeads: 8, queryLength: 1000, keyLength: 1000, headDim: 64, valueHeadDim: 64), "causal"),
            (AttentionShape(batch: 2, queryHeads: 8, keyValueHeads: 2, queryLength: 1, keyLength: 5000, headDim: 128, valueHeadDim: 128), "none"),
            (AttentionShape(batch: 1, queryHeads: 4, keyValueHeads: 4, queryLength: 300, keyLength: 700, headDim: 32, valueHeadDim: 16), "window"),
          ])
    func predictionIsConsistent(_ shape: AttentionShape, _ bias: String) throws {
        let mask: (any AttnBias)? = switch bias {
        case "causal": causalUpperLeft(shape.queryLength, shape.keyLength)
        case "window": SlidingWindowBias(seqLenQ: shape.queryLength, seqLenKV: shape.keyLength, left: 64)
        default: nil
        }
        let predictions = try predictSDPAScaling(shape: shape, attnMask: mask, enableGQA: shape.groupSize > 1, threads: [1, 2, 7, 64, 300])
        let one = predictions[0]
        #expect(one.threadsUsed == 1 && abs(one.criticalPath - one.work) <= 1e-9 * one.work && one.speedup == 1)
        for p in predictions {
            #expect(p.threadsUsed <= min(p.threads, 256) && p.threadsUsed <= p.claims && p.claims <= p.workItems)
            #expect(p.criticalPath >= p.work / Double(p.threadsUsed) * (1 - 1e-9), "\(p)")
            #expect(p.criticalPath >= p.largestItem && p.speedup <= Double(p.threadsUsed) * (1 + 1e-9), "\(p)")
            #expect(p.visibleTiles <= p.tiles && p.visibleTiles > 0)
            // Splitting and grouping change the work a little, never by much.
            #expect(abs(p.work - one.work) <= 0.1 * one.work, "\(p) against \(one)")
        }
        if bias == "causal" { #expect(Double(one.visibleTiles) < 0.6 * Double(one.tiles)) }
    }

    @Test("a dense mask is modeled through the kernel's own dense-mask reader")
    func denseMask() throws {
        let shape = AttentionShape(batch: 1, queryHeads: 2, keyValueHeads: 2, queryLength: 200, keyLength: 300, headDim: 16, valueHeadDim: 16)
        let mask = try causalUpperLeft(200, 300).materialize(device: .cpu)
        let dense = try predictSDPAScaling(shape: shape, attnMask: TensorBias(mask), threads: [2])[0]
        let fused = try predictSDPAScaling(shape: shape, attnMask: causalUpperLeft(200, 300), threads: [2])[0]
        #expect(dense.visibleTiles == fused.visibleTiles && dense.tiles == fused.tiles)
    }

    @Test("bad thread counts, isCausal with a bias and a mismatched bias are errors")
    func rejectsBadArguments() {
        let shape = AttentionShape(batch: 1, queryHeads: 2, keyValueHeads: 2, queryLength: 8, keyLength: 8, headDim: 16, valueHeadDim: 16)
        #expect(throws: SDPAError.invalidArgument(argument: "threads", value: "0", reason: "a thread count is at least 1")) {
            try predictSDPAScaling(shape: shape, threads: [2, 0])
        }
        #expect(throws: SDPAError.self) { try predictSDPAScaling(shape: shape, attnMask: causalUpperLeft(8, 8), isCausal: true, threads: [2]) }
        #expect(throws: SDPAError.self) { try predictSDPAScaling(shape: shape, attnMask: causalUpperLeft(9, 8), threads: [2]) }
        let empty = AttentionShape(batch: 1, queryHeads: 2, keyValueHeads: 2, queryLength: 0, keyLength: 8, headDim: 16, valueHeadDim: 16)
        #expect((try? predictSDPAScaling(shape: empty, threads: [4]))?.first?.workItems == 0)
    }
}
