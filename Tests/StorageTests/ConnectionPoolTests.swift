import Dispatch
import Storage
import Synchronization
import Testing

/// The pool's queue on its own: a connection that is just a number, so that the tests can hold
/// the pool's only thread and look at what waits behind it.
@Suite("Connection pool queue")
struct ConnectionPoolTests {
    /// A pool of one thread whose connection is a number, and a way to hold that thread.
    final class HeldPool: Sendable {
        let pool: ConnectionPool<Int>
        let release = DispatchSemaphore(value: 0)
        let holding = Atomic<Bool>(false)
        let ran = Mutex<[String]>([])

        init(maximumQueuedWork: Int) {
            pool = ConnectionPool(
                name: "test-pool", maximumConnections: 1, maximumQueuedWork: maximumQueuedWork, open: { 1 }, isHealthy: { _ in true },
                close: { _ in }, runReads: { _, reads in reads.map { _ in .success([]) } })
        }

        /// Occupies the pool's thread until `release` is signalled.
        func hold() async -> Task<Void, any Error> {
            let holder = Task {
                try await pool.withConnection { [self] _ in
                    holding.store(true, ordering: .releasing)
                    release.wait()
                }
            }
            while !holding.load(ordering: .acquiring) { await Task.yield() }
            return holder
        }

        func work(_ name: String) async throws {
            try await pool.withConnection { [self] _ in ran.withLock { $0.append(name) } }
        }
    }

    @Test func aFullQueueRefusesWorkAtOnce() async throws {
        let held = HeldPool(maximumQueuedWork: 2)
        let holder = await held.hold()
        let waiting = (0..<2).map { index in Task { try await held.work("queued \(index)") } }
        while held.pool.queuedCount < 2 { await Task.yield() }
        let refusal = await #expect(throws: DatabaseError.self) { try await held.work("overflow") }
        #expect(refusal?.kind == .notRun)
        #expect(refusal?.message.contains("full") == true)
        held.release.signal()
        try await holder.value
        for task in waiting { try await task.value }
        #expect(held.ran.withLock { $0 }.sorted() == ["queued 0", "queued 1"])
        held.pool.close()
    }

    @Test func cancelledWaitingWorkLeavesTheQueueAndNeverRuns() async throws {
        let held = HeldPool(maximumQueuedWork: 100)
        let holder = await held.hold()
        let cancelled = Task { try await held.work("cancelled") }
        // Cancelled once it waits in the queue, while the pool's thread is still held.
        while held.pool.queuedCount == 0 { await Task.yield() }
        cancelled.cancel()
        let outcome = await cancelled.result
        #expect(throws: DatabaseError.self) { try outcome.get() }
        if case .failure(let error as DatabaseError) = outcome { #expect(error.kind == .notRun) }
        held.release.signal()
        try await holder.value
        try await held.work("after")
        #expect(held.ran.withLock { $0 } == ["after"])
        held.pool.close()
    }

    @Test func workOfAnAlreadyCancelledTaskIsNotRun() async throws {
        let held = HeldPool(maximumQueuedWork: 100)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await held.work("cancelled")
        }
        await #expect(throws: DatabaseError.self) { try await task.value }
        #expect(held.ran.withLock { $0 }.isEmpty)
        held.pool.close()
    }

    @Test func aClosedPoolRefusesWork() async throws {
        let held = HeldPool(maximumQueuedWork: 100)
        held.pool.close()
        let error = await #expect(throws: DatabaseError.self) { try await held.work("late") }
        #expect(error?.kind == .connection)
    }
}
