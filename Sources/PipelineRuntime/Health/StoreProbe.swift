import Foundation
import Logging
import Storage

/// What a probe of the store found.
public struct StoreProbeResult: Sendable, Equatable {
    /// The store answered within the deadline.
    public var answered: Bool
    /// How long it took, when it answered.
    public var latency: Duration?
    /// Whether the store takes writes (as the probe's write, or the last write, found).
    public var writable: Bool
    /// Why the store did not answer, or does not take writes.
    public var error: String?
}

extension ExecutionRuntime {
    /// How long a probe waits for the store.
    public static let probeTimeout: Duration = .seconds(2)

    /// Probes the store within `timeout`: on SQLite a small write (what fails there is writing: a
    /// full disk, a read-only file, a lock held too long); on PostgreSQL a query, and a write too
    /// while writes are known to fail, so that readiness returns as soon as they work again.
    /// Work still queued when the deadline passes is taken out of the queue.
    public func probeStore(timeout: Duration = probeTimeout) async -> StoreProbeResult {
        let store = self.store
        let started = ContinuousClock.now
        let outcome = await readWithin(timeout) { () async throws -> Bool in
            if store.dialect == .sqlite || !store.health.isWritable { return await store.probeWrites() }
            _ = try await store.database.read("SELECT 1 AS answered")
            return store.health.isWritable
        }
        let writable: Bool
        switch outcome {
        case .failure(let failure):
            return StoreProbeResult(answered: false, latency: nil, writable: false, error: failure.message)
        case .success(let result):
            writable = result
        }
        let latency = ContinuousClock.now - started
        var error: String?
        if !writable, case .notWritable(let reason, _) = store.health.current { error = reason }
        if let problem = store.database.storageProblem() {
            return StoreProbeResult(answered: true, latency: latency, writable: false, error: problem)
        }
        return StoreProbeResult(answered: true, latency: latency, writable: writable, error: error)
    }
}

/// Why a probe's query failed.
public struct ProbeFailure: Error, Sendable, Equatable {
    public let message: String
}

/// The outbox's backlog as the probes report it.
public struct OutboxBacklog: Sendable, Equatable {
    public var pending: Int
    public var dead: Int
    /// Seconds since the oldest pending event was written.
    public var oldestPendingAge: Double?
}

extension ExecutionRuntime {
    /// The outbox's backlog, read within `timeout`: the backlog, or why it could not be read (the
    /// store did not answer in time, or a stored row could not be read — logged).
    public func outboxBacklog(timeout: Duration = probeTimeout) async -> Result<OutboxBacklog, ProbeFailure> {
        let store = self.store
        let now = Date()
        let reading = await readWithin(timeout) {
            let backlog = try await store.outbox.backlog()
            return OutboxBacklog(
                pending: backlog.pending, dead: backlog.dead,
                oldestPendingAge: backlog.oldestPending.map { max(0, now.timeIntervalSince($0)) })
        }
        if case .failure(let failure) = reading {
            logger.warning("could not read the outbox's backlog", metadata: ["error": "\(failure.message)"])
        }
        return reading
    }
}
