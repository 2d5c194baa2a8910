public import Foundation
public import PipelineEngine

/// Execution timers, claimed when due so that one process fires each. On PostgreSQL a claim skips
/// rows another process has locked; SQLite has one writer, which serialises claims.
public struct TimerStore: StorePart {
    let database: any Database

    /// Claims up to `limit` timers that are due at `now` and not claimed by a live process, for
    /// `owner` until `claimUntil`. Returns them earliest first.
    public func claimDue(owner: String, now: Date, claimUntil: Date, limit: Int) async throws -> [TimerRecord] {
        let sql = """
            UPDATE execution_timer SET claimed_by = $1, claimed_until = $2
            WHERE (execution_id, timer_key) IN (
                SELECT execution_id, timer_key FROM execution_timer
                WHERE due_at <= $3 AND (claimed_until IS NULL OR claimed_until < $3)
                ORDER BY due_at LIMIT $4 \(dialect.skipLocked))
            RETURNING execution_id, timer_key, due_at
            """
        let rows = try await database.transaction { session in
            try session.query(sql, .text(owner), .date(claimUntil), .date(now), .integer(max(1, limit)))
        }
        return try rows.map {
            TimerRecord(
                executionID: try $0.id("execution_id"), key: try $0.string("timer_key"), dueAt: try $0.date("due_at"))
        }
        .sorted { $0.dueAt < $1.dueAt }
    }

    /// How many timers are due at `now` and not yet handled (by any process), and when the
    /// earliest of them came due: the runnable work the store holds.
    public func dueSummary(now: Date) async throws -> (count: Int, earliest: Date?) {
        let row = try await database.read(
            "SELECT count(*) AS due, min(due_at) AS earliest FROM execution_timer WHERE due_at <= $1", .date(now)
        ).first
        return (try row?.int("due") ?? 0, try row?.optionalDate("earliest"))
    }

    /// When the timer fires now, if it still exists.
    public func due(executionID: ExecutionID, key: String) async throws -> Date? {
        try await database.read(
            "SELECT due_at FROM execution_timer WHERE execution_id = $1 AND timer_key = $2", .id(executionID), .text(key)
        ).first?.date("due_at")
    }

    /// Every timer of an execution, earliest first.
    public func list(executionID: ExecutionID) async throws -> [TimerRecord] {
        try await database.read(
            "SELECT execution_id, timer_key, due_at FROM execution_timer WHERE execution_id = $1 ORDER BY due_at",
            .id(executionID)
        )
        .map {
            TimerRecord(
                executionID: try $0.id("execution_id"), key: try $0.string("timer_key"), dueAt: try $0.date("due_at"))
        }
    }
}
