import BudJSON
public import Foundation
public import PipelineEngine

/// Claims on running steps: renewed while their process lives, taken over when they expire.
public struct LeaseStore: StorePart {
    let database: any Database

    /// Extends the claims `owner` holds on the given running steps until `until`; returns how
    /// many it still held.
    @discardableResult
    public func renew(owner: String, steps: [(executionID: ExecutionID, stepID: String)], until: Date) async throws -> Int {
        guard !steps.isEmpty else { return 0 }
        let list = JSONValue.array(steps.map { .array([.string($0.executionID.rawValue), .string($0.stepID)]) })
        // On PostgreSQL the executions' ids also go in as an array, so that the index on
        // (execution_id, step_id) finds the steps instead of the whole table being read.
        let steps =
            dialect == .postgres
            ? "execution_id = ANY(ARRAY(SELECT CAST(pair->>0 AS uuid) FROM json_array_elements(CAST($3 AS json)) AS pair)) "
                + "AND (execution_id, step_id) IN (SELECT CAST(pair->>0 AS uuid), pair->>1 FROM json_array_elements(CAST($3 AS json)) AS pair)"
            : "(execution_id, step_id) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($3))"
        return try await database.transaction { session in
            try session.execute(
                "UPDATE step_execution SET lease_expires_at = $2 WHERE lease_owner = $1 AND status = 'RUNNING' AND \(steps)",
                .text(owner), .date(until), .json(list)
            )
        }
    }

    /// Takes over up to `limit` running steps whose claim expired before `now` (their process
    /// died or lost the database): `owner` holds them until `until` and runs them again.
    public func claimExpired(owner: String, now: Date, until: Date, limit: Int) async throws -> [LeasedStep] {
        let sql = """
            UPDATE step_execution SET lease_owner = $1, lease_expires_at = $2
            WHERE status = 'RUNNING' AND lease_expires_at < $3 AND id IN (
                SELECT id FROM step_execution WHERE status = 'RUNNING' AND lease_expires_at < $3
                ORDER BY lease_expires_at LIMIT $4 \(dialect.skipLocked))
            RETURNING execution_id, step_id, retry_count, dispatch, interruptions
            """
        let rows = try await database.transaction { session in
            try session.query(sql, .text(owner), .date(until), .date(now), .integer(max(1, limit)))
        }
        return try rows.map { row in
            LeasedStep(
                executionID: try row.id("execution_id"),
                stepID: try row.string("step_id"),
                attempt: try row.int("retry_count"),
                dispatch: try row.optionalJSON("dispatch"),
                interruptions: try row.int("interruptions")
            )
        }
    }

    /// Gives up `owner`'s claim on a running step at once, so that any process takes it over.
    public func release(owner: String, executionID: ExecutionID, stepID: String, now: Date) async throws {
        try await database.transaction { session in
            try session.execute(
                "UPDATE step_execution SET lease_expires_at = $4 WHERE execution_id = $1 AND step_id = $2 AND lease_owner = $3 AND status = 'RUNNING'",
                .id(executionID), .text(stepID), .text(owner), .date(now)
            )
        }
    }
}
