import BudJSON
public import Foundation
import PipelineEngine

/// The outbox: events written by transitions, waiting to be published.
///
/// Claims keep each execution's events in order across processes: an execution's events are
/// claimed only together with its oldest pending one, and only when that one is due and nobody
/// holds it. So while its oldest event waits for a retry, nothing after it goes out.
public struct OutboxStore: StorePart {
    let database: any Database

    /// Claims, for `owner` until `claimUntil`, the pending events of up to `executions` executions
    /// whose oldest pending event is due at `now` — those due longest first, read in due order from
    /// the index on due times. Returns them oldest first.
    public func claim(owner: String, now: Date, claimUntil: Date, executions: Int) async throws -> [OutboxRecord] {
        let sql = """
            UPDATE outbox SET claimed_by = $1, claimed_until = $2
            WHERE id IN (
                SELECT o.id FROM outbox o
                WHERE o.status = 'PENDING' AND (o.claimed_until IS NULL OR o.claimed_until < $3)
                AND o.execution_id IN (
                    SELECT h.execution_id FROM outbox h
                    WHERE h.status = 'PENDING' AND h.available_at <= $3 AND (h.claimed_until IS NULL OR h.claimed_until < $3)
                    AND NOT EXISTS (
                        SELECT 1 FROM outbox e WHERE e.execution_id = h.execution_id AND e.status = 'PENDING' AND e.id < h.id)
                    ORDER BY h.available_at, h.id LIMIT $4)
                ORDER BY o.id \(dialect.skipLocked))
            RETURNING id, execution_id, event_type, payload, attempts, created_at
            """
        let rows = try await database.transaction { session in
            try session.query(sql, .text(owner), .date(claimUntil), .date(now), .integer(max(1, executions)))
        }
        return try rows.map(OutboxRecord.init(row:)).sorted { $0.id < $1.id }
    }

    /// Removes published events.
    public func delivered(ids: [Int], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await database.transaction { session in
            session.enqueue(
                SQLStatement(
                    "DELETE FROM outbox WHERE claimed_by = $1 AND \(dialect.condition("id", inIntegersOfJSONArray: 2))",
                    [.text(owner), .json(.array(ids.map { .int($0) }))]))
        }
    }

    /// Records a failed attempt: the event is tried again at `retryAt`, or given up on (status
    /// `DEAD`, kept for inspection) when `dead`. Later events of its execution claimed with it are
    /// released to wait behind it.
    public func failed(
        _ record: OutboxRecord, owner: String, error: String, retryAt: Date, dead: Bool, releasing later: [Int]
    ) async throws {
        try await database.transaction { session in
            session.enqueue(
                SQLStatement(
                    """
                    UPDATE outbox SET attempts = attempts + 1, last_error = $1, available_at = $2, status = $3,
                    claimed_by = NULL, claimed_until = NULL WHERE id = $4 AND claimed_by = $5
                    """,
                    [
                        .text(String(error.prefix(2000))), .date(retryAt), .text(dead ? "DEAD" : "PENDING"), .integer(record.id),
                        .text(owner),
                    ]
                ))
            if !later.isEmpty {
                session.enqueue(
                    SQLStatement(
                        "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1 AND \(dialect.condition("id", inIntegersOfJSONArray: 2))",
                        [.text(owner), .json(.array(later.map { .int($0) }))]))
            }
        }
    }

    /// How many events wait to be published and how many were given up on.
    public func counts() async throws -> (pending: Int, dead: Int) {
        let rows = try await database.read("SELECT status, count(*) AS total FROM outbox GROUP BY status")
        var counts = (pending: 0, dead: 0)
        for row in rows {
            switch row["status"] {
            case "PENDING": counts.pending = try row.int("total")
            case "DEAD": counts.dead = try row.int("total")
            default: break
            }
        }
        return counts
    }

    /// When the earliest pending event becomes due, if any.
    public func nextDue() async throws -> Date? {
        try await database.read("SELECT min(available_at) AS due FROM outbox WHERE status = 'PENDING'").first?.optionalDate("due")
    }

    /// Outbox events not yet delivered, oldest first.
    public func pending(limit: Int) async throws -> [OutboxRecord] {
        try await database.read(
            "SELECT id, execution_id, event_type, payload, attempts, created_at FROM outbox WHERE status = 'PENDING' ORDER BY id LIMIT $1",
            .integer(max(0, limit))
        ).map(OutboxRecord.init(row:))
    }

    /// One INSERT of `events` for an execution (or none), available at once.
    static func insert(_ events: [OutboxEvent], executionID: ExecutionID?, now: Date) -> SQLStatement {
        var binds: [SQLValue] = [.id(executionID), .date(now)]
        var rows: [String] = []
        for event in events {
            rows.append("($1, $\(binds.count + 1), $\(binds.count + 2), $2, $2)")
            binds += [.text(event.eventType), .json(event.payload)]
        }
        return SQLStatement(
            "INSERT INTO outbox (execution_id, event_type, payload, available_at, created_at) VALUES \(rows.joined(separator: ", "))",
            binds
        )
    }
}
