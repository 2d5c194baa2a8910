public import Foundation
import Synchronization
import Telemetry

/// Whether the database takes writes, as the last write found: healthy until a write fails
/// because the database cannot store anything (``DatabaseError/unavailable(_:)``, a lost
/// connection), and healthy again once a write succeeds. `/ready` and `/health` report it.
public final class StorageHealth: Sendable {
    public enum State: Sendable, Equatable {
        case writable
        /// Writes fail since `since`, for `reason`.
        case notWritable(reason: String, since: Date)
    }

    private let state = Mutex(State.writable)

    public init() {}

    public var current: State { state.withLock { $0 } }

    public var isWritable: Bool { current == .writable }

    /// Records the outcome of a write.
    func record(_ outcome: Result<Void, any Error>) {
        switch outcome {
        case .success:
            state.withLock { $0 = .writable }
        case .failure(let error as DatabaseError) where error.kind == .unavailable || error.kind == .connection:
            let message = error.message
            state.withLock { state in
                if case .notWritable(_, let since) = state {
                    state = .notWritable(reason: message, since: since)
                } else {
                    state = .notWritable(reason: message, since: Date())
                }
            }
        case .failure:
            break
        }
    }
}

/// A database whose writes are watched by a ``StorageHealth``.
/// With `errors`, failed operations are counted by kind.
struct MonitoredDatabase: Database {
    let base: any Database
    let health: StorageHealth
    var errors: CounterFamily? = nil

    var dialect: SQLDialect { base.dialect }

    func transaction<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result {
        do {
            let result = try await base.transaction(body)
            health.record(.success(()))
            return result
        } catch {
            health.record(.failure(error))
            count(error, operation: "transaction")
            throw error
        }
    }

    func read(_ statements: [SQLStatement]) async throws -> [[Row]] {
        do {
            return try await base.read(statements)
        } catch {
            count(error, operation: "read")
            throw error
        }
    }

    /// Work a caller gave up on (a probe past its deadline) is no database error.
    private func count(_ error: any Error, operation: String) {
        guard let errors, !Task.isCancelled else { return }
        errors.increment(operation, (error as? DatabaseError)?.kind.metricLabel ?? "other")
    }

    func withSession<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result {
        try await base.withSession(body)
    }

    func serverVersion() async throws -> String {
        try await base.serverVersion()
    }

    func storageProblem() -> String? {
        base.storageProblem()
    }

    func joinCluster(workerID: String) async throws -> (any ClusterLink)? {
        try await base.joinCluster(workerID: workerID)
    }

    func close() async {
        await base.close()
    }
}

extension DatabaseError.Kind {
    /// The kind as a metric label: `unique_violation`, `not_run`, …
    var metricLabel: String {
        switch self {
        case .uniqueViolation: "unique_violation"
        case .notRun: "not_run"
        default: rawValue
        }
    }
}
