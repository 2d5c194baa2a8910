package import CoreMetrics
import DequeModule
import Dispatch
import Foundation
import Synchronization
import Telemetry

/// A bounded set of threads, each owning one database connection, that take work from one
/// shared queue.
///
/// A connection is opened on its thread and never leaves it: work receives it as a parameter, so
/// a connection type that is not `Sendable` (a libpq or SQLite handle) is only ever touched by the
/// thread that owns it, and blocking database calls never run on the caller's executor.
///
/// Callers do not check a connection out: they queue their work and the first free thread runs
/// it. Work therefore costs one hand-over to a database thread and one back, however many callers
/// compete, instead of a wait for a free connection followed by a hand-over. Threads start lazily,
/// up to `maximumConnections`, when work finds none free. A connection that fails to open or is
/// lost is closed; its thread opens a new one for its next work.
///
/// Reads waiting next to each other in the queue are taken together and given to `runReads` as one
/// batch, which a backend sends in one round trip. While a thread is running reads, a new read
/// wakes no other thread: the busy one takes it, with the others that arrive meanwhile, as soon
/// as its batch is done. Under load this turns many wake-ups and round trips into few (thread
/// hand-overs, not the database, are the cost that matters on a small machine). So that a slow
/// read cannot hold the others up, a read left waiting for `readRescueDelay` wakes another thread.
///
/// Transactions can share a commit the same way (`withGroupedTransaction`): those waiting next to
/// each other are taken together, up to `maximumGroup`, and given to `runGroup`, which runs each
/// in its own savepoint of one transaction and commits once (SQLite: one write of the pages they
/// share instead of one per transaction). Each caller gets its own result, and only after the
/// commit.
///
/// The queue is bounded: work that finds `maximumQueuedWork` items waiting fails at once with
/// ``DatabaseError/Kind/notRun`` (the HTTP API answers 503), so a flood of requests costs memory
/// in proportion to the bound, not to the flood. Work whose caller is cancelled while it waits
/// leaves the queue and fails the same way; work already running finishes.
package final class ConnectionPool<Connection>: Sendable {
    package typealias Job = @Sendable (Result<Connection, DatabaseError>) -> Void
    /// Runs independent reads on one connection and returns the outcome of each, in order.
    package typealias ReadRunner = @Sendable (Connection, [[SQLStatement]]) -> [Result<[[Row]], DatabaseError>]
    /// Runs transactions in one commit: each member's `run` inside its own savepoint (undone when
    /// it returns false), then `answer` for every member with `nil` once committed, or with the
    /// error that kept the whole group from committing.
    package typealias GroupRunner = @Sendable (Connection, [GroupedTransaction]) -> Void

    /// A transaction that may share its commit with others.
    package struct GroupedTransaction: Sendable {
        /// Does the transaction's work on the connection; false when it failed and its changes
        /// must be undone.
        package let run: @Sendable (Connection) -> Bool
        /// Answers the caller once the group's outcome is known: `nil` when the group committed
        /// (the caller gets the work's own result), else the error.
        package let answer: @Sendable (DatabaseError?) -> Void
    }

    /// The most transactions one commit takes.
    package static var maximumGroup: Int { 32 }

    /// The most reads one thread takes from the queue at once.
    package static var maximumReadBatch: Int { 32 }
    /// How long a read waits for a busy reading thread before another thread is woken for it.
    private static var readRescueDelay: DispatchTimeInterval { .milliseconds(1) }

    private struct PendingRead {
        let statements: [SQLStatement]
        let deliver: @Sendable (Result<[[Row]], DatabaseError>) -> Void
    }

    private enum Work {
        case job(Job)
        case read(PendingRead)
        case grouped(GroupedTransaction)
    }

    private struct QueuedWork {
        let id: UInt64
        let work: Work
        /// When it was queued, in nanoseconds of uptime (for the queue wait metric).
        let queuedAt: UInt64
    }

    private struct State {
        var queue: Deque<QueuedWork> = []
        /// Threads started and not yet exited.
        var threads = 0
        /// Threads waiting on `wake` (or about to) that no work has been promised to.
        var idle = 0
        /// Threads running a batch of reads.
        var reading = 0
        /// Whether a check for reads left waiting is scheduled.
        var rescueScheduled = false
        var closed = false
    }

    private enum Next {
        case job(Job)
        case reads([PendingRead])
        case group([GroupedTransaction])
        case wait
        case exit
    }

    /// What a caller does after queueing its work.
    private enum Submission {
        case none
        case signal
        case start(number: Int)
        case scheduleRescue
        case refuse(DatabaseError)
    }

    package let maximumConnections: Int
    package let maximumQueuedWork: Int
    private let name: String
    private let lastWorkID = Atomic<UInt64>(0)
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let openConnection: @Sendable () throws(DatabaseError) -> Connection
    private let isHealthy: @Sendable (Connection) -> Bool
    private let closeConnection: @Sendable (Connection) -> Void
    private let runReads: ReadRunner
    private let runGroup: GroupRunner?
    private let metrics: PoolMetrics?

    package init(
        name: String,
        maximumConnections: Int,
        maximumQueuedWork: Int = 10_000,
        open: @escaping @Sendable () throws(DatabaseError) -> Connection,
        isHealthy: @escaping @Sendable (Connection) -> Bool,
        close: @escaping @Sendable (Connection) -> Void,
        runReads: @escaping ReadRunner,
        runGroup: GroupRunner? = nil,
        metrics: PoolMetrics? = nil
    ) {
        self.name = name
        self.maximumConnections = max(1, maximumConnections)
        self.maximumQueuedWork = max(1, maximumQueuedWork)
        self.openConnection = open
        self.isHealthy = isHealthy
        self.closeConnection = close
        self.runReads = runReads
        self.runGroup = runGroup
        self.metrics = metrics
    }

    /// Work waiting for a thread.
    package var queuedCount: Int { state.withLock { $0.queue.count } }

    /// Groups of transactions run so far (one commit each), and the transactions in them.
    package var groupCounts: (groups: Int, transactions: Int) {
        (groupsRun.load(ordering: .relaxed), groupedTransactionsRun.load(ordering: .relaxed))
    }
    private let groupsRun = Atomic<Int>(0)
    private let groupedTransactionsRun = Atomic<Int>(0)

    /// Runs `body` with a connection of the pool, on that connection's thread.
    package func withConnection<Result: Sendable>(_ body: @escaping @Sendable (Connection) throws -> Result) async throws -> Result {
        try await submitCancellably { continuation in
            .job { connection in
                switch connection {
                case .success(let connection): continuation.resume(with: Swift.Result { try body(connection) })
                case .failure(let error): continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Runs `body` as a transaction that may share its commit with others queued next to it (see
    /// the type's description); a pool made without a group runner refuses it. `body` runs inside a savepoint the
    /// runner opened and must leave the transaction to it; an error it throws undoes its changes
    /// only. The result comes after the commit.
    package func withGroupedTransaction<Result: Sendable>(_ body: @escaping @Sendable (Connection) throws -> Result) async throws
        -> Result
    {
        try await submitCancellably { continuation in
            let outcome = Mutex<Swift.Result<Result, any Error>?>(nil)
            return .grouped(
                GroupedTransaction(
                    run: { connection in
                        let result = Swift.Result { try body(connection) }
                        outcome.withLock { $0 = result }
                        if case .success = result { return true }
                        return false
                    },
                    answer: { groupError in
                        if let groupError { return continuation.resume(throwing: groupError) }
                        let result = outcome.withLock { $0 } ?? .failure(DatabaseError.notRun("the transaction was not run"))
                        continuation.resume(with: result)
                    }))
        }
    }

    /// Runs read-only statements, possibly in one batch with other callers' reads.
    package func read(_ statements: [SQLStatement]) async throws -> [[Row]] {
        try await submitCancellably { continuation in
            .read(PendingRead(statements: statements) { continuation.resume(with: $0) })
        }
    }

    /// Queues the work `make` builds around the caller's continuation; a cancellation of the
    /// caller while the work waits takes it out of the queue and fails it.
    private func submitCancellably<Value>(
        _ make: (CheckedContinuation<Value, any Error>) -> Work
    ) async throws -> Value {
        let id = lastWorkID.wrappingAdd(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                submit(make(continuation), id: id)
            }
        } onCancel: {
            cancelQueued(id)
        }
    }

    /// Lets the threads finish the queued work, close their connections and exit; later work fails.
    package func close() {
        let sleepers = state.withLock { state -> Int in
            state.closed = true
            defer { state.idle = 0 }
            return state.idle
        }
        for _ in 0..<sleepers { wake.signal() }
    }

    /// Queues `work` under `id`. A caller already cancelled, a closed pool or a full queue fail
    /// the work at once.
    private func submit(_ work: Work, id: UInt64) {
        let action = state.withLock { state -> Submission in
            guard !state.closed else { return .refuse(.connection("the database is closed")) }
            // Read under the lock the cancellation handler takes: a cancellation either is seen
            // here or finds the work queued.
            guard !Task.isCancelled else { return .refuse(.notRun("the caller was cancelled before the work started")) }
            guard state.queue.count < maximumQueuedWork else {
                return .refuse(.notRun("the database queue is full (\(maximumQueuedWork) waiting)"))
            }
            state.queue.append(QueuedWork(id: id, work: work, queuedAt: metrics == nil ? 0 : DispatchTime.now().uptimeNanoseconds))
            if case .read = work, state.reading > 0 {
                guard !state.rescueScheduled else { return .none }
                state.rescueScheduled = true
                return .scheduleRescue
            }
            return Self.wakeThread(&state, maximum: maximumConnections)
        }
        perform(action, for: work)
    }

    /// Takes cancelled work out of the queue, if no thread has taken it yet, and fails it.
    private func cancelQueued(_ id: UInt64) {
        let removed = state.withLock { state -> Work? in
            guard let index = state.queue.firstIndex(where: { $0.id == id }) else { return nil }
            return state.queue.remove(at: index).work
        }
        if let removed { Self.fail(removed, .notRun("the caller was cancelled before the work started")) }
    }

    private func perform(_ action: Submission, for work: Work?) {
        switch action {
        case .none: break
        case .signal: wake.signal()
        case .start(let number): startThread(number: number)
        case .scheduleRescue:
            DispatchQueue.global().asyncAfter(deadline: .now() + Self.readRescueDelay) { [self] in rescueWaitingReads() }
        case .refuse(let error):
            if let work {
                if error.kind == .notRun, let metrics { metrics.refused.increment() }
                Self.fail(work, error)
            }
        }
    }

    /// Promises queued work to an idle thread, or starts a thread when none is idle and the pool
    /// may grow.
    private static func wakeThread(_ state: inout State, maximum: Int) -> Submission {
        if state.idle > 0 {
            state.idle -= 1
            return .signal
        }
        guard state.threads < maximum else { return .none }
        state.threads += 1
        return .start(number: state.threads)
    }

    /// Wakes a thread for reads still queued behind a busy reading thread.
    private func rescueWaitingReads() {
        let action = state.withLock { state -> Submission in
            state.rescueScheduled = false
            guard !state.closed, !state.queue.isEmpty else { return .none }
            return Self.wakeThread(&state, maximum: maximumConnections)
        }
        perform(action, for: nil)
    }

    private static func fail(_ work: Work, _ error: DatabaseError) {
        switch work {
        case .job(let job): job(.failure(error))
        case .read(let read): read.deliver(.failure(error))
        case .grouped(let transaction): transaction.answer(error)
        }
    }

    /// The next work for a thread; `finishedReads` says that the thread just ran a batch of reads.
    /// With metrics on, `queuedAt` gets when each piece of the work was queued.
    private func nextWork(finishedReads: Bool, queuedAt: inout [UInt64]) -> Next {
        let measured = metrics != nil
        return state.withLock { state -> Next in
            if finishedReads { state.reading -= 1 }
            let popped = state.queue.popFirst()
            if measured, let popped { queuedAt.append(popped.queuedAt) }
            switch popped?.work {
            case .job(let job):
                return .job(job)
            case .grouped(let first):
                var group = [first]
                while group.count < Self.maximumGroup, let next = state.queue.first, case .grouped(let transaction) = next.work {
                    state.queue.removeFirst()
                    group.append(transaction)
                    if measured { queuedAt.append(next.queuedAt) }
                }
                return .group(group)
            case .read(let first):
                var reads = [first]
                while reads.count < Self.maximumReadBatch, let next = state.queue.first, case .read(let read) = next.work {
                    state.queue.removeFirst()
                    reads.append(read)
                    if measured { queuedAt.append(next.queuedAt) }
                }
                state.reading += 1
                return .reads(reads)
            case nil:
                if state.closed {
                    state.threads -= 1
                    return .exit
                }
                state.idle += 1
                return .wait
            }
        }
    }

    private func startThread(number: Int) {
        let thread = Thread { [self] in
            var connection: Connection?
            var finishedReads = false
            var queuedAt: [UInt64] = []
            while true {
                let next = nextWork(finishedReads: finishedReads, queuedAt: &queuedAt)
                finishedReads = false
                if let metrics, !queuedAt.isEmpty {
                    let now = DispatchTime.now().uptimeNanoseconds
                    for stamp in queuedAt { metrics.wait.record(.nanoseconds(Int64(clamping: now &- stamp))) }
                    queuedAt.removeAll(keepingCapacity: true)
                }
                switch next {
                case .exit:
                    if let connection { closeConnection(connection) }
                    return
                case .wait:
                    wake.wait()
                case .job(let job):
                    switch usableConnection(&connection) {
                    case .success(let open):
                        job(.success(open))
                        retireIfBroken(&connection)
                    case .failure(let error): job(.failure(error))
                    }
                case .group(let group):
                    switch usableConnection(&connection) {
                    case .success(let open):
                        if let runGroup {
                            groupsRun.add(1, ordering: .relaxed)
                            groupedTransactionsRun.add(group.count, ordering: .relaxed)
                            runGroup(open, group)
                        } else {
                            for transaction in group { transaction.answer(.notRun("this pool does not run grouped transactions")) }
                        }
                        retireIfBroken(&connection)
                    case .failure(let error):
                        for transaction in group { transaction.answer(error) }
                    }
                case .reads(let reads):
                    finishedReads = true
                    switch usableConnection(&connection) {
                    case .success(let open):
                        let outcomes = runReads(open, reads.map(\.statements))
                        for (index, read) in reads.enumerated() {
                            read.deliver(index < outcomes.count ? outcomes[index] : .failure(.connection("the read was not run")))
                        }
                        retireIfBroken(&connection)
                    case .failure(let error):
                        for read in reads { read.deliver(.failure(error)) }
                    }
                }
            }
        }
        thread.name = "\(name)-\(number)"
        thread.start()
    }

    /// The thread's connection, opened now if it has none.
    private func usableConnection(_ connection: inout Connection?) -> Result<Connection, DatabaseError> {
        if let connection { return .success(connection) }
        do throws(DatabaseError) {
            let opened = try openConnection()
            connection = opened
            return .success(opened)
        } catch {
            return .failure(error)
        }
    }

    /// Closes the thread's connection when it no longer works, so that the next work opens another.
    private func retireIfBroken(_ connection: inout Connection?) {
        guard let open = connection, !isHealthy(open) else { return }
        closeConnection(open)
        connection = nil
    }
}

/// What a pool records: how long work waits for a thread, and work refused on a full queue.
package struct PoolMetrics: Sendable {
    let wait: DurationSeries
    let refused: Counter

    /// `pool` is the label value: `postgres`, `sqlite_writer` or `sqlite_readers`.
    package init(pool: String, factory: any MetricsFactory) {
        wait = DurationFamily(MetricCatalog.databaseQueueWait, factory: factory).series(pool)
        refused = CounterFamily(MetricCatalog.databaseRefused, factory: factory).counter(pool)
    }
}
