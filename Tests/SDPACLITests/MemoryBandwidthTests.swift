import SDPABenchmarkHarness
import Testing

@Suite("Memory read bandwidth")
struct MemoryBandwidthTests {
    @Test("reads the whole buffer with the threads asked for, and reports a finite rate", arguments: [1, 2, 3])
    func measures(_ threads: Int) {
        // 1 MiB plus a remainder that is not a whole vector per thread: the last thread takes it.
        let bandwidth = MemoryBandwidth.measure(bytes: (1 << 20) + 4 * 16 * 5, threads: threads, repetitions: 2)
        #expect(bandwidth.bytes == (1 << 20) + 4 * 16 * 5 && bandwidth.threads == threads)
        #expect(bandwidth.bytesPerSecond.isFinite && bandwidth.bytesPerSecond > 0)
        #expect(bandwidth.description.hasSuffix("GB/s read (1 MiB by \(threads) thread\(threads == 1 ? "" : "s"))"))
    }

    @Test("a buffer smaller than one vector still reads one vector")
    func tinyBuffer() {
        let bandwidth = MemoryBandwidth.measure(bytes: 8, threads: 4, repetitions: 1)
        #expect(bandwidth.bytes == 64 && bandwidth.threads == 4 && bandwidth.bytesPerSecond > 0)
    }

    @Test("a read pass reads its whole buffer, rounded down to whole vectors, and times it", arguments: [1, 2, 3])
    func readPass(_ threads: Int) {
        let pass = MemoryBandwidth.ReadPass(bytes: (1 << 20) + 4 * 16 * 5 + 7, threads: threads)
        #expect(pass.bytes == (1 << 20) + 4 * 16 * 5 && pass.threads == threads)
        let seconds = pass.run()
        #expect(seconds.isFinite && seconds > 0)
        #expect(MemoryBandwidth.ReadPass(bytes: 0, threads: 0).bytes == 64)
    }
}
