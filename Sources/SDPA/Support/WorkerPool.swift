import Foundation

#if canImport(Synchronization)
import Synchronization

/// Helper threads that stay awake for a moment after each call, so that calls following one another
/// (the layers of a model, the steps of decoding) find the second core ready instead of waking it.
///
/// `DispatchQueue.concurrentPerform` parks its workers between calls, and waking one can cost about what
/// a small attention call's work does (the profile is in `Benchmarks/HISTORY.md`, "Dispatch overhead").
/// Here a helper spins on an atomic for ``spin`` after its last job before it parks, as OpenMP's workers do.
///
/// A job is a closure that every participating thread runs once and that takes its work from a shared
/// queue, so a helper that arrives late may simply stay out: the caller closes the job once its own
/// run returns and waits only for the helpers already inside.
@available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *)
final class _WorkerPool: @unchecked Sendable {
    /// One helper per other processor, started on first use.
    static let shared = _WorkerPool(helpers: SDPAThreads.processorCount - 1)

    /// How long a helper spins for the next job before it parks.
    static let spin = Duration.microseconds(200)

    let helpers: Int
    /// Bumped once per job; helpers watch it.
    private let generation = Atomic<Int>(0)
    /// Whether the current job still takes helpers.
    private let open = Atomic<Bool>(false)
    /// Helpers between deciding to join the current job and leaving it.
    private let active = Atomic<Int>(0)
    /// One job at a time: a caller that finds the pool taken uses GCD instead.
    private let taken = Atomic<Bool>(false)
    private let parking = NSCondition()
    /// Written by the caller before it opens the job, read by helpers only while it is open.
    private var job: (() -> Void)?
    private var width = 0

    init(helpers: Int) {
        self.helpers = Swift.max(0, helpers)
        for index in 0..<self.helpers {
            let thread = Thread { [unowned self] in self.serve(helper: index + 1) }
            thread.name = "SDPA worker \(index + 1)"
            thread.start()
        }
    }

    /// Runs `body` on the calling thread and on up to `threads - 1` helpers at once; returns `false`,
    /// having run nothing, when the pool is busy with another caller or has too few helpers.
    func run(threads: Int, _ body: () -> Void) -> Bool {
        guard threads - 1 <= helpers, taken.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        withoutActuallyEscaping(body) { body in
            (job, width) = (body, threads)
            open.store(true, ordering: .sequentiallyConsistent)
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            parking.lock()
            parking.broadcast()
            parking.unlock()
            body()
            // Late helpers stay out from here on; those inside finish their share of the queue.
            open.store(false, ordering: .sequentiallyConsistent)
            while active.load(ordering: .sequentiallyConsistent) > 0 {}
            job = nil
        }
        taken.store(false, ordering: .releasing)
        return true
    }

    private func serve(helper index: Int) {
        var seen = generation.load(ordering: .acquiring)
        while true {
            var current = generation.load(ordering: .acquiring)
            if current == seen {
                let clock = ContinuousClock(), deadline = clock.now + Self.spin
                var spins = 0
                while current == seen {
                    spins &+= 1
                    if spins & 255 == 0 && clock.now > deadline {
                        parking.lock()
                        while generation.load(ordering: .acquiring) == seen { parking.wait() }
                        parking.unlock()
                    }
                    current = generation.load(ordering: .acquiring)
                }
            }
            seen = current
            // Announce, then look: the caller closes, then looks (both sequentially consistent), so
            // either it waits for this helper or this helper sees the job closed.
            active.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if open.load(ordering: .sequentiallyConsistent), index < width, let job { job() }
            active.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        }
    }
}
#endif
