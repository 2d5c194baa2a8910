public import Foundation

/// Deleting finished executions once they are older than the retention period.
public struct RetentionStore: StorePart {
    let database: any Database

    /// Deletes up to `limit` executions that finished before `cutoff`, with their steps, events,
    /// timers and subscriptions. Never a running one. Returns how many it deleted.
    public func deleteFinished(endedBefore cutoff: Date, limit: Int) async throws -> Int {
        let sql = """
            DELETE FROM pipeline_execution WHERE id IN (
                SELECT id FROM pipeline_execution
                WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND end_time < $1
                ORDER BY end_time LIMIT $2 \(dialect.skipLocked))
            """
        return try await database.transaction { session in
            try session.execute(sql, .date(cutoff), .integer(max(1, limit)))
        }
    }

    /// How many finished executions ended before `cutoff`, and the oldest end time among them.
    public func candidates(endedBefore cutoff: Date) async throws -> (count: Int, oldest: Date?) {
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
