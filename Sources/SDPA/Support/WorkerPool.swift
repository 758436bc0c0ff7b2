import Foundation

#if canImport(Synchronization)
import Synchronization

/// Helper threads that stay awake for a moment after each call, so that calls following one another
/// (the layers of a model, the steps of decoding) find the other cores ready instead of waking them.
///
/// `DispatchQueue.concurrentPerform` parks its workers between calls, and waking one can cost about what
/// a small attention call's work does (the profile is in `Benchmarks/HISTORY.md`, "Dispatch overhead").
/// Here a helper spins on an atomic for ``spinNanoseconds`` after its last job before it parks, as OpenMP's workers do
/// (``SDPAThreads/helperSpin`` sets it, as `KMP_BLOCKTIME` / `OMP_WAIT_POLICY` set theirs).
///
/// Built for many helpers (up to ``_maximumThreads`` threads in a job, whatever the processor count):
/// - Helpers start when a job first asks for them, so a two-thread process keeps one.
/// - Only helpers that have a processor of their own spin (`index < processorCount`); the others park
///   at once, so 64 threads asked for on two cores do not spin against the threads doing the work.
/// - Each helper parks on a condition of its own, and the job wakes the parked ones as a binary tree
///   (the caller wakes helpers 1 and 2, helper `i` wakes `2i + 1` and `2i + 2`): no herd on one lock,
///   and waking 255 helpers takes eight steps, not 255.
/// - A job's width and generation are one atomic word that spinning helpers read; a helper outside the
///   width touches nothing shared. Joining and leaving are flags of the helper's own, not a counter all
///   of them add to.
///
/// A job is a closure that every participating thread runs once with its index and that takes its work
/// from a shared queue, so a helper that arrives late may simply stay out: the caller closes the job
/// once its own run returns and waits only for the helpers already inside.
@available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *)
final class _WorkerPool: @unchecked Sendable {
    static let shared = _WorkerPool(processors: SDPAThreads.processorCount)

    /// How long a helper that has a processor of its own spins for the next job before it parks, in
    /// nanoseconds: 200 µs unless `SDPA_SPIN_MICROSECONDS` says otherwise at start-up, or
    /// ``SDPAThreads/helperSpin`` since. Read by each helper when its last job ends.
    let spinNanoseconds = Atomic<Int>(_WorkerPool.startUpSpinNanoseconds)

    /// 200 µs, or `SDPA_SPIN_MICROSECONDS` when it is a whole number of microseconds from 0 (park at once), at most
    /// 10⁶ (a second; more counts as a second).
    static var startUpSpinNanoseconds: Int {
        if let text = ProcessInfo.processInfo.environment["SDPA_SPIN_MICROSECONDS"], let micro = Int(text), micro >= 0 {
            return nanoseconds(clamping: .microseconds(Swift.min(micro, 1_000_000)))
        }
        return 200_000
    }

    /// `spin` in nanoseconds, clamped to 0…1 s (a negative duration is none).
    static func nanoseconds(clamping spin: Duration) -> Int {
        spin <= .zero ? 0 : spin >= .seconds(1) ? 1_000_000_000 : Int(spin.components.attoseconds / 1_000_000_000)
    }

    /// Whether helper 1 (the first to join a job, and one that spins between jobs on two or more processors)
    /// is parked now: for tests of ``spinNanoseconds``. `false` before it starts.
    var isFirstHelperParked: Bool { helpers[0].parked.load(ordering: .relaxed) }

    /// Low bits of ``announcement``: the job's width (at most ``_maximumThreads``).
    private static let widthBits = 10

    /// One helper's flags and its place to park, each on cache lines of its own.
    private final class Helper: @unchecked Sendable {
        /// Set while the helper is inside a job (from before it looks whether the job is open).
        let busy = Atomic<Bool>(false)
        /// Set while the helper waits on ``condition``.
        let parked = Atomic<Bool>(false)
        let condition = NSCondition()
        /// Keeps the next helper's flags off this one's cache line.
        private let padding: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    /// Processors of this machine: helpers below this index spin between jobs, the others park.
    private let processors: Int
    /// Helper `i` (`1..<_maximumThreads`) is `helpers[i - 1]`; its thread starts on first use.
    private let helpers: [Helper]
    /// Helpers whose thread has started; changed only by the caller holding ``taken``.
    private var started = 0
    /// The latest job: its generation (high bits) and width (low ``widthBits`` bits).
    private let announcement = Atomic<Int>(0)
    /// Whether the latest job still takes helpers.
    private let open = Atomic<Bool>(false)
    /// One job at a time: a caller that finds the pool taken uses GCD instead.
    private let taken = Atomic<Bool>(false)
    /// Written by the caller before it announces the job, read by helpers only while it is open.
    private var job: ((Int) -> Void)?

    init(processors: Int) {
        self.processors = Swift.max(1, processors)
        helpers = (1..<_maximumThreads).map { _ in Helper() }
    }

    /// Runs `body(0)` on the calling thread and `body(i)` on helpers `i` of `1..<threads` at once (those
    /// that join before the caller's own run returns); returns `false`, having run nothing, when the pool
    /// is busy with another caller.
    func run(threads: Int, _ body: (Int) -> Void) -> Bool {
        guard taken.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        let width = Swift.min(Swift.max(1, threads), _maximumThreads)
        let previous = announcement.load(ordering: .relaxed)
        let current = ((previous >> Self.widthBits) &+ 1) << Self.widthBits | width
        while started < width - 1 {
            // A new helper looks for jobs announced after `previous`, this one included.
            let index = started + 1
            let thread = Thread { [unowned self] in self.serve(helper: index, seen: previous) }
            thread.name = "SDPA worker \(index)"
            thread.start()
            started += 1
        }
        withoutActuallyEscaping(body) { body in
            job = body
            // Announce, then open: a helper that finds the job open also finds it announced.
            announcement.store(current, ordering: .sequentiallyConsistent)
            open.store(true, ordering: .sequentiallyConsistent)
            wakeChildren(of: 0, width: width)
            body(0)
            // Late helpers stay out from here on; those inside finish their share of the queue.
            open.store(false, ordering: .sequentiallyConsistent)
            for index in 1..<width { waitUntilIdle(helpers[index - 1]) }
            job = nil
        }
        taken.store(false, ordering: .releasing)
        return true
    }

    /// Waits, spinning and then yielding its processor, until `helper` is outside the job.
    private func waitUntilIdle(_ helper: Helper) {
        var spins = 0
        while helper.busy.load(ordering: .sequentiallyConsistent) {
            spins &+= 1
            // With more threads than processors the helper may need this one to finish.
            if spins > 1000 { sched_yield() }
        }
    }

    /// Wakes the parked ones among the helpers that `node` wakes in the job's tree (`2 node + 1` and
    /// `2 node + 2`, below `width`). Called after the job is announced: a helper that parks after this
    /// looks has not yet read the announcement, and will see it (both sequentially consistent).
    private func wakeChildren(of node: Int, width: Int) {
        for child in (2 * node + 1)...(2 * node + 2) where child < width {
            let helper = helpers[child - 1]
            if helper.parked.load(ordering: .sequentiallyConsistent) {
                helper.condition.lock()
                helper.condition.signal()
                helper.condition.unlock()
            }
        }
    }

    /// Helper `index`'s loop: wait for a job announced after `seen`, join it if it is within the job's
    /// width and still open, and repeat.
    private func serve(helper index: Int, seen: Int) {
        let me = helpers[index - 1]
        var seen = seen
        while true {
            let current = nextAnnouncement(after: seen, helper: me, spinning: index < processors)
            seen = current
            let width = current & (1 << Self.widthBits - 1)
            guard index < width else { continue }
            wakeChildren(of: index, width: width)
            // Announce, then look: the caller closes, then looks (both sequentially consistent), so either
            // it waits for this helper or this helper sees the job closed. A job announced since is not
            // this one: this helper takes it on the next turn of the loop.
            me.busy.store(true, ordering: .sequentiallyConsistent)
            if open.load(ordering: .sequentiallyConsistent), announcement.load(ordering: .sequentiallyConsistent) == current, let job {
                job(index)
            }
            me.busy.store(false, ordering: .releasing)
        }
    }

    /// The announcement once it differs from `seen`: spinning for ``spinNanoseconds`` first when `spinning`, then
    /// parked on the helper's own condition.
    private func nextAnnouncement(after seen: Int, helper: Helper, spinning: Bool) -> Int {
        var current = announcement.load(ordering: .acquiring)
        if current != seen { return current }
        let spin = spinNanoseconds.load(ordering: .relaxed)
        if spinning && spin > 0 {
            let clock = ContinuousClock(), deadline = clock.now + .nanoseconds(spin)
            var spins = 0
            while current == seen {
                spins &+= 1
                if spins & 255 == 0 && clock.now > deadline { break }
                current = announcement.load(ordering: .acquiring)
            }
            if current != seen { return current }
        }
        helper.condition.lock()
        helper.parked.store(true, ordering: .sequentiallyConsistent)
        current = announcement.load(ordering: .sequentiallyConsistent)
        while current == seen {
            helper.condition.wait()
            current = announcement.load(ordering: .sequentiallyConsistent)
        }
        helper.parked.store(false, ordering: .relaxed)
        helper.condition.unlock()
        return current
    }
}
#endif
