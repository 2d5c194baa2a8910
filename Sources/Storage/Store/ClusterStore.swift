public import Foundation

/// The work a process gone from the group had claimed, handed back (see ``ClusterLink``).
public struct ClusterStore: StorePart {
    let database: any Database

    /// What ``releaseClaims(of:now:)`` handed back.
    public struct ReleasedClaims: Sendable, Equatable {
        public var steps = 0
        public var timers = 0
        public var events = 0
        public var schedules = 0

        public var total: Int { steps + timers + events + schedules }
    }

    /// Ends every claim `workerID` holds — running steps, timers, outbox events, schedules — as of
    /// just before `now`, so that the next look of any process takes them over, unless a live
    /// member of the group still works as `workerID` (a process restarted with a fixed worker id:
    /// its claims are its own). Nothing is changed but the claims' expiry: a step taken over runs
    /// again with its idempotency key, as after any expired claim.
    public func releaseClaims(of workerID: String, now: Date) async throws -> ReleasedClaims {
        let expired = SQLValue.date(now.addingTimeInterval(-1))
        return try await database.transaction { session in
            let live = try session.query("SELECT count(*) AS members FROM cluster_member WHERE worker_id = $1", .text(workerID))
            guard try (live.first?.int("members") ?? 0) == 0 else { return ReleasedClaims() }
            var released = ReleasedClaims()
            released.steps = try session.execute(
                "UPDATE step_execution SET lease_expires_at = $2 WHERE lease_owner = $1 AND status = 'RUNNING' AND lease_expires_at > $2",
                .text(workerID), expired)
            released.timers = try session.execute(
                "UPDATE execution_timer SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1", .text(workerID))
            released.events = try session.execute(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1 AND status = 'PENDING'", .text(workerID))
            released.schedules = try session.execute(
                "UPDATE schedule SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1", .text(workerID))
            return released
        }
    }
}
