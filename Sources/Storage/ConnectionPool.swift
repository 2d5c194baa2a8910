import DequeModule
import Dispatch
import Foundation
import Synchronization

/// A thread that owns one database connection and runs work on it, one job at a time.
///
/// The connection is opened on the thread and never leaves it: jobs receive it as a parameter, so a
/// connection type that is not `Sendable` (a libpq or SQLite handle) is only ever touched by the
/// thread that owns it. Blocking database calls therefore never run on the caller's executor.
package final class ConnectionThread<Connection>: Sendable {
    package typealias Job = @Sendable (Result<Connection, DatabaseError>) -> Void

    private struct State {
        var jobs: Deque<Job> = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    /// Cleared when the connection failed to open or was lost: the pool then discards the thread.
    private let usable = Atomic<Bool>(true)

    /// Starts the thread; it opens its connection with `open` before running the first job.
    package init(
        name: String,
        open: @escaping @Sendable () throws(DatabaseError) -> Connection,
        isHealthy: @escaping @Sendable (Connection) -> Bool,
        close: @escaping @Sendable (Connection) -> Void
    ) {
        let thread = Thread { [self] in
            let connection: Result<Connection, DatabaseError>
            do throws(DatabaseError) {
                connection = .success(try open())
            } catch {
                connection = .failure(error)
                usable.store(false, ordering: .releasing)
            }
            while let job = nextJob() {
                job(connection)
                if case .success(let open) = connection, !isHealthy(open) { usable.store(false, ordering: .releasing) }
            }
            if case .success(let open) = connection { close(open) }
        }
        thread.name = name
        thread.start()
    }

    /// Whether the connection opened and still works.
    package var isUsable: Bool { usable.load(ordering: .acquiring) }

    /// Runs `body` on the thread with the connection and returns its result.
    package func run<Result: Sendable>(_ body: @escaping @Sendable (Connection) throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            enqueue { connection in
                switch connection {
                case .success(let connection): continuation.resume(with: Swift.Result { try body(connection) })
                case .failure(let error): continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Lets the thread finish its queued jobs, close the connection and exit.
    package func stop() {
        state.withLock { $0.stopping = true }
        wake.signal()
    }

    private func enqueue(_ job: @escaping Job) {
        let accepted = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.jobs.append(job)
            return true
        }
        if accepted {
            wake.signal()
        } else {
            job(.failure(.connection("the database is closed")))
        }
    }

    private func nextJob() -> Job? {
        while true {
            let next = state.withLock { state -> (job: Job?, exit: Bool) in
                if let job = state.jobs.popFirst() { return (job, false) }
                return (nil, state.stopping)
            }
            if let job = next.job { return job }
            if next.exit { return nil }
            wake.wait()
        }
    }
}

/// A bounded set of connection threads handed out one caller at a time.
///
/// Connections open lazily, up to `maximumConnections`; callers beyond that wait in order. A
/// connection that failed or was lost is discarded when returned, and the next caller opens a new one.
package final class ConnectionPool<Connection>: Sendable {
    package typealias Thread = ConnectionThread<Connection>

    private struct State {
        var idle: [Thread] = []
        var open = 0
        var waiters: Deque<CheckedContinuation<Thread?, Never>> = []
        var closed = false
        var nextThreadNumber = 0
    }

    package let maximumConnections: Int
    private let name: String
    private let state = Mutex(State())
    private let openConnection: @Sendable () throws(DatabaseError) -> Connection
    private let isHealthy: @Sendable (Connection) -> Bool
    private let closeConnection: @Sendable (Connection) -> Void

    package init(
        name: String,
        maximumConnections: Int,
        open: @escaping @Sendable () throws(DatabaseError) -> Connection,
        isHealthy: @escaping @Sendable (Connection) -> Bool,
        close: @escaping @Sendable (Connection) -> Void
    ) {
        self.name = name
        self.maximumConnections = max(1, maximumConnections)
        self.openConnection = open
        self.isHealthy = isHealthy
        self.closeConnection = close
    }

    /// Runs `body` with a connection of the pool, on that connection's thread.
    package func withConnection<Result: Sendable>(_ body: @escaping @Sendable (Connection) throws -> Result) async throws -> Result {
        guard let thread = await acquire() else { throw DatabaseError.connection("the database is closed") }
        defer { release(thread) }
        return try await thread.run(body)
    }

    /// Stops every connection; callers waiting for one get an error.
    package func close() {
        let (idle, waiters) = state.withLock { state -> ([Thread], Deque<CheckedContinuation<Thread?, Never>>) in
            state.closed = true
            defer {
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for thread in idle { thread.stop() }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    private enum Acquisition {
        case ready(Thread)
        case create(number: Int)
        case wait
        case closed
    }

    private func acquire() async -> Thread? {
        let acquisition = state.withLock { state -> Acquisition in
            if state.closed { return .closed }
            if let thread = state.idle.popLast() { return .ready(thread) }
            guard state.open < maximumConnections else { return .wait }
            state.open += 1
            state.nextThreadNumber += 1
            return .create(number: state.nextThreadNumber)
        }
        switch acquisition {
        case .ready(let thread): return thread
        case .closed: return nil
        case .create(let number):
            return Thread(name: "\(name)-\(number)", open: openConnection, isHealthy: isHealthy, close: closeConnection)
        case .wait:
            return await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.closed { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume(returning: nil) }
            }
        }
    }

    private enum Release {
        case handOver(CheckedContinuation<Thread?, Never>, Thread)
        case create(CheckedContinuation<Thread?, Never>, number: Int)
        case keep
        case stop
    }

    private func release(_ thread: Thread) {
        let usable = thread.isUsable
        let next = state.withLock { state -> Release in
            if state.closed {
                state.open -= 1
                return .stop
            }
            if usable {
                if let waiter = state.waiters.popFirst() { return .handOver(waiter, thread) }
                state.idle.append(thread)
                return .keep
            }
            // A broken connection: replace it for the next waiter, if any.
            if let waiter = state.waiters.popFirst() {
                state.nextThreadNumber += 1
                return .create(waiter, number: state.nextThreadNumber)
            }
            state.open -= 1
            return .stop
        }
        switch next {
        case .handOver(let waiter, let thread): waiter.resume(returning: thread)
        case .keep: break
        case .stop: thread.stop()
        case .create(let waiter, let number):
            thread.stop()
            waiter.resume(returning: Thread(name: "\(name)-\(number)", open: openConnection, isHealthy: isHealthy, close: closeConnection))
        }
    }
}
