import Synchronization

/// The work the runtime starts by itself — applying an execution's queued inputs, plugin calls,
/// cleanups, deliveries of parked events — run as child tasks of one task group that
/// ``RuntimeLifecycleService`` owns, so that none of it outlives the service group.
///
/// Work started before the group runs waits for it. ``finish()`` (called by the lifecycle service
/// once the runtime has shut down) stops taking work; the group then returns when the work under
/// way has returned. Cancelling the service cancels the work under way.
final class RuntimeTasks: Sendable {
    typealias Work = @Sendable () async -> Void

    private let queue: AsyncStream<Work>
    private let intake: AsyncStream<Work>.Continuation
    /// Whether ``run()`` runs: its queue takes one reader.
    private let running = Atomic<Bool>(false)

    init() {
        (queue, intake) = AsyncStream.makeStream()
    }

    /// Starts `work` in the group; false, and `work` dropped, once ``finish()`` was called.
    @discardableResult
    func start(_ work: @escaping Work) -> Bool {
        if case .terminated = intake.yield(work) { return false }
        return true
    }

    /// Runs the work started, each piece as a child task, until ``finish()`` and then until the
    /// pieces under way have returned. A second call while one runs returns at once.
    func run() async {
        guard running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        defer { running.store(false, ordering: .releasing) }
        await withDiscardingTaskGroup { group in
            for await work in queue {
                group.addTask { await work() }
            }
        }
    }

    /// Takes no more work.
    func finish() {
        intake.finish()
    }
}
