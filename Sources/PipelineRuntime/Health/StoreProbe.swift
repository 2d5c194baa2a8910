import Foundation
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
        let outcome = await withTimeout(timeout) { () async -> Result<Bool, ProbeFailure> in
            do {
                if store.dialect == .sqlite || !store.health.isWritable { return .success(await store.probeWrites()) }
                _ = try await store.database.read("SELECT 1 AS answered")
                return .success(store.health.isWritable)
            } catch {
                return .failure(ProbeFailure(message: "\(error)"))
            }
        }
        let writable: Bool
        switch outcome {
        case nil:
            return StoreProbeResult(
                answered: false, latency: nil, writable: false,
                error: "the database did not answer within \(timeout.components.seconds) s")
        case .failure(let failure)?:
            return StoreProbeResult(answered: false, latency: nil, writable: false, error: failure.message)
        case .success(let result)?:
            writable = result
        }
        let latency = ContinuousClock.now - started
        var error: String?
        if !writable, case .notWritable(let reason, _) = store.health.current { error = reason }
        return StoreProbeResult(answered: true, latency: latency, writable: writable, error: error)
    }
}

/// Why a probe's query failed.
struct ProbeFailure: Error {
    let message: String
}

/// The outbox's backlog as the probes report it.
public struct OutboxBacklog: Sendable, Equatable {
    public var pending: Int
    public var dead: Int
    /// Seconds since the oldest pending event was written.
    public var oldestPendingAge: Double?
}

extension ExecutionRuntime {
    /// The outbox's backlog, read within `timeout`; `nil` when the store did not answer.
    public func outboxBacklog(timeout: Duration = probeTimeout) async -> OutboxBacklog? {
        let store = self.store
        let now = Date()
        guard let backlog = await withTimeout(timeout, { try await store.outbox.backlog() }) else { return nil }
        return OutboxBacklog(
            pending: backlog.pending, dead: backlog.dead, oldestPendingAge: backlog.oldestPending.map { max(0, now.timeIntervalSince($0)) })
    }
}
