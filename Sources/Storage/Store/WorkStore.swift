import BudJSON
public import Foundation

/// The queries through which processes share work: timer claims, step leases, retention.
/// On PostgreSQL, claims skip rows another process has locked (`FOR UPDATE SKIP LOCKED`); SQLite
/// has one writer, which serialises them.
extension PipelineStore {
    private var skipLocked: String { dialect == .postgres ? "FOR UPDATE SKIP LOCKED" : "" }

    // MARK: Timers

    /// Claims up to `limit` timers that are due at `now` and not claimed by a live process, for
    /// `owner` until `claimUntil`. Returns them earliest first.
    public func claimDueTimers(owner: String, now: Date, claimUntil: Date, limit: Int) async throws -> [TimerRecord] {
        let sql = """
            UPDATE execution_timer SET claimed_by = $1, claimed_until = $2
            WHERE (execution_id, timer_key) IN (
                SELECT execution_id, timer_key FROM execution_timer
                WHERE due_at <= $3 AND (claimed_until IS NULL OR claimed_until < $3)
                ORDER BY due_at LIMIT $4 \(skipLocked))
            RETURNING execution_id, timer_key, due_at
            """
        let rows = try await database.transaction { session in
            try session.query(sql, .text(owner), .date(claimUntil), .date(now), .integer(max(1, limit)))
        }
        return try rows.map {
            TimerRecord(executionID: try $0.string("execution_id"), key: try $0.string("timer_key"), dueAt: try $0.date("due_at"))
        }
        .sorted { $0.dueAt < $1.dueAt }
    }

    /// When the timer fires now, if it still exists.
    public func timerDue(executionID: String, key: String) async throws -> Date? {
        try await database.read(
            "SELECT due_at FROM execution_timer WHERE execution_id = $1 AND timer_key = $2", .text(executionID), .text(key)
        ).first?.date("due_at")
    }

    /// Every timer of an execution, earliest first.
    public func timers(executionID: String) async throws -> [TimerRecord] {
        try await database.read(
            "SELECT execution_id, timer_key, due_at FROM execution_timer WHERE execution_id = $1 ORDER BY due_at", .text(executionID)
        )
        .map { TimerRecord(executionID: try $0.string("execution_id"), key: try $0.string("timer_key"), dueAt: try $0.date("due_at")) }
    }

    // MARK: Step leases

    /// Extends the claims `owner` holds on the given running steps until `until`; returns how
    /// many it still held.
    @discardableResult
    public func renewLeases(owner: String, steps: [(executionID: String, stepID: String)], until: Date) async throws -> Int {
        guard !steps.isEmpty else { return 0 }
        let list = JSONValue.array(steps.map { .array([.string($0.executionID), .string($0.stepID)]) })
        let pairs =
            dialect == .postgres
            ? "SELECT CAST(pair->>0 AS uuid), pair->>1 FROM json_array_elements(CAST($3 AS json)) AS pair"
            : "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($3)"
        return try await database.transaction { session in
            try session.execute(
                """
                UPDATE step_execution SET lease_expires_at = $2
                WHERE lease_owner = $1 AND status = 'RUNNING' AND (execution_id, step_id) IN (\(pairs))
                """,
                .text(owner), .date(until), .json(list)
            )
        }
    }

    /// Takes over up to `limit` running steps whose claim expired before `now` (their process
    /// died or lost the database): `owner` holds them until `until` and runs them again.
    public func claimExpiredLeases(owner: String, now: Date, until: Date, limit: Int) async throws -> [LeasedStep] {
        let sql = """
            UPDATE step_execution SET lease_owner = $1, lease_expires_at = $2
            WHERE status = 'RUNNING' AND lease_expires_at < $3 AND id IN (
                SELECT id FROM step_execution WHERE status = 'RUNNING' AND lease_expires_at < $3
                ORDER BY lease_expires_at LIMIT $4 \(skipLocked))
            RETURNING execution_id, step_id, retry_count, dispatch, interruptions
            """
        let rows = try await database.transaction { session in
            try session.query(sql, .text(owner), .date(until), .date(now), .integer(max(1, limit)))
        }
        return try rows.map { row in
            LeasedStep(
                executionID: try row.string("execution_id"),
                stepID: try row.string("step_id"),
                attempt: try row.int("retry_count"),
                dispatch: try row.optionalJSON("dispatch"),
                interruptions: try row.int("interruptions")
            )
        }
    }

    /// Gives up `owner`'s claim on a running step at once, so that any process takes it over.
    public func releaseLease(owner: String, executionID: String, stepID: String, now: Date) async throws {
        try await database.transaction { session in
            try session.execute(
                "UPDATE step_execution SET lease_expires_at = $4 WHERE execution_id = $1 AND step_id = $2 AND lease_owner = $3 AND status = 'RUNNING'",
                .text(executionID), .text(stepID), .text(owner), .date(now)
            )
        }
    }

    // MARK: Retention

    /// Deletes up to `limit` executions that finished before `cutoff`, with their steps, events,
    /// timers and subscriptions. Never a running one. Returns how many it deleted.
    public func deleteFinishedExecutions(endedBefore cutoff: Date, limit: Int) async throws -> Int {
        let sql = """
            DELETE FROM pipeline_execution WHERE id IN (
                SELECT id FROM pipeline_execution
                WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND end_time < $1
                ORDER BY end_time LIMIT $2 \(skipLocked))
            """
        return try await database.transaction { session in
            try session.execute(sql, .date(cutoff), .integer(max(1, limit)))
        }
    }

    /// How many finished executions ended before `cutoff`, and the oldest end time among them.
    public func retentionCandidates(endedBefore cutoff: Date) async throws -> (count: Int, oldest: Date?) {
        let row = try await database.read(
            """
            SELECT count(*) AS total, min(end_time) AS oldest FROM pipeline_execution
            WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND end_time < $1
            """,
            .date(cutoff)
        ).first
        return (try row?.int("total") ?? 0, try row?.optionalDate("oldest"))
    }
}
