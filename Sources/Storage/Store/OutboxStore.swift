import BudJSON
public import Foundation
import PipelineEngine

/// The outbox: events written by transitions, waiting to be published.
///
/// Claims keep each execution's events in order across processes: an execution's events are
/// claimed only together with its oldest pending one (its *head*), and only when the head is due
/// and nobody holds it. So while its head waits for a retry, nothing after it goes out.
///
/// The store keeps one more rule so that claims stay cheap whatever the backlog: an execution's
/// pending events are due in the order they were written (an event written while an earlier one
/// waits for a retry becomes due with it, and a failure postpones the events behind it too). So
/// reading pending events in due order meets every execution's head before its later events, and
/// a claim reads a bounded window from the front of the due-order index (migration 7) instead of
/// the whole backlog.
public struct OutboxStore: StorePart {
    let database: any Database

    /// How many due events a claim reads, per execution it may claim, to find the executions whose
    /// heads are due: events of one execution lie together in due order, so the window holds the
    /// heads of about `executions` executions when each has this many events waiting.
    static let windowPerExecution = 16

    /// Claims, for `owner` until `claimUntil`, the pending events of up to `executions` executions
    /// whose head is due at `now` and unclaimed — those due longest first. Returns them oldest first.
    public func claim(owner: String, now: Date, claimUntil: Date, executions: Int) async throws -> [OutboxRecord] {
        let executions = min(max(1, executions), 10_000)
        // `status <> 'DEAD'` equals `status = 'PENDING'` (the table's check allows no other
        // status) but keeps the planner from answering the look-ups by execution with the partial
        // due-order index, which on a large backlog reads every pending event per look-up.
        let heads = """
            SELECT w.execution_id FROM (
                SELECT h.id, h.execution_id, h.available_at FROM outbox h
                WHERE h.status = 'PENDING' AND h.available_at <= $3 AND (h.claimed_until IS NULL OR h.claimed_until < $3)
                ORDER BY h.available_at, h.id LIMIT $5) w
            WHERE w.execution_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM outbox e WHERE e.execution_id = w.execution_id AND e.id < w.id AND e.status <> 'DEAD')
            ORDER BY w.available_at, w.id LIMIT $4
            """
        let inHeads = dialect == .postgres ? "= ANY(ARRAY(\(heads)))" : "IN (\(heads))"
        let sql = """
            UPDATE outbox SET claimed_by = $1, claimed_until = $2
            WHERE id IN (
                SELECT o.id FROM outbox o
                WHERE o.execution_id \(inHeads)
                AND o.status <> 'DEAD' AND (o.claimed_until IS NULL OR o.claimed_until < $3)
                ORDER BY o.id \(dialect.skipLocked))
            RETURNING id, execution_id, event_type, payload, attempts, created_at
            """
        let rows = try await database.transaction { session in
            try session.query(
                sql, .text(owner), .date(claimUntil), .date(now), .integer(executions),
                .integer(executions * Self.windowPerExecution))
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
    /// released to wait behind it, and the execution's later events become due no sooner than it.
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
            if !dead, let executionID = record.executionID {
                session.enqueue(
                    SQLStatement(
                        """
                        UPDATE outbox SET available_at = $1
                        WHERE execution_id = $2 AND id > $3 AND status <> 'DEAD' AND available_at < $1
                        """,
                        [.date(retryAt), .id(executionID), .integer(record.id)]))
            }
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

    /// One INSERT of `events` for an execution (or none), due at once — or, when an earlier event of
    /// the execution waits for a retry, when that one is due: events become due in the order they
    /// were written.
    static func insert(_ events: [OutboxEvent], executionID: ExecutionID, now: Date, dialect: SQLDialect) -> SQLStatement {
        var binds: [SQLValue] = [.id(executionID), .date(now)]
        var rows: [String] = []
        let latestPending = "(SELECT max(p.available_at) FROM outbox p WHERE p.execution_id = $1 AND p.status <> 'DEAD')"
        // PostgreSQL's GREATEST skips a NULL (no pending event); SQLite's max(a, b) would be NULL.
        let due = dialect == .postgres ? "GREATEST($2, \(latestPending))" : "max($2, coalesce(\(latestPending), $2))"
        for event in events {
            rows.append("($1, $\(binds.count + 1), $\(binds.count + 2), \(due), $2)")
            binds += [.text(event.eventType), .json(event.payload)]
        }
        return SQLStatement(
            "INSERT INTO outbox (execution_id, event_type, payload, available_at, created_at) VALUES \(rows.joined(separator: ", "))",
            binds
        )
    }
}
