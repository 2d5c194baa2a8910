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
/// the whole backlog. On PostgreSQL a failure first locks its execution's row, which every
/// transition writing events updates first, so an event written at the same moment is postponed
/// too rather than left due ahead of its head.
public struct OutboxStore: StorePart {
    let database: any Database

    /// How many due events a claim reads, per execution it may claim, to find the executions whose
    /// heads are due: events of one execution lie together in due order, so the window holds the
    /// heads of about `executions` executions when each has this many events waiting.
    static let windowPerExecution = 16

    /// Claims, for `owner` until `claimUntil`, the pending events of up to `executions` executions
    /// whose head is due at `now` and unclaimed — those due longest first, at most
    /// `eventsPerExecution` of each (its oldest). Returns them oldest first.
    ///
    /// Concurrent claims never split an execution's events: on PostgreSQL a claim first locks the
    /// heads it found (skipping any another claim has locked, and re-checking each once locked), and
    /// takes only the events of executions whose head it holds; on SQLite claims run one at a time.
    public func claim(
        owner: String, now: Date, claimUntil: Date, executions: Int, eventsPerExecution: Int = 200
    ) async throws -> [OutboxRecord] {
        let executions = min(max(1, executions), 10_000)
        let eventsPerExecution = min(max(1, eventsPerExecution), 100_000)
        let inSet = { (subquery: String) in
            self.dialect == .postgres ? "= ANY(ARRAY(SELECT \(subquery)))" : "IN (SELECT \(subquery))"
        }
        // `status <> 'DEAD'` equals `status = 'PENDING'` (the table's check allows no other
        // status) but keeps the planner from answering the look-ups by execution with the partial
        // due-order index, which on a large backlog reads every pending event per look-up.
        let heads =
            dialect == .postgres
            ? """
            heads AS (
                SELECT h.execution_id FROM outbox h
                WHERE h.id \(inSet("id FROM candidates"))
                AND h.status = 'PENDING' AND (h.claimed_until IS NULL OR h.claimed_until < $3)
                FOR UPDATE SKIP LOCKED)
            """
            : "heads AS (SELECT execution_id FROM candidates)"
        let sql = """
            WITH due AS (
                SELECT h.id, h.execution_id, h.available_at FROM outbox h
                WHERE h.status = 'PENDING' AND h.available_at <= $3 AND (h.claimed_until IS NULL OR h.claimed_until < $3)
                ORDER BY h.available_at, h.id LIMIT $5),
            candidates AS (
                SELECT d.id, d.execution_id FROM due d
                WHERE d.execution_id IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM outbox e WHERE e.execution_id = d.execution_id AND e.id < d.id AND e.status <> 'DEAD')
                ORDER BY d.available_at, d.id LIMIT $4),
            \(heads),
            events AS (
                SELECT r.id FROM (
                    SELECT o.id, row_number() OVER (PARTITION BY o.execution_id ORDER BY o.id) AS position FROM outbox o
                    WHERE o.execution_id \(inSet("execution_id FROM heads")) AND o.status <> 'DEAD') r
                WHERE r.position <= $6)
            UPDATE outbox SET claimed_by = $1, claimed_until = $2
            WHERE id \(inSet("id FROM events"))
            RETURNING id, execution_id, event_type, payload, attempts, created_at
            """
        let rows = try await database.transaction { session in
            try session.query(
                sql, .text(owner), .date(claimUntil), .date(now), .integer(executions),
                .integer(executions * Self.windowPerExecution), .integer(eventsPerExecution))
        }
        return try rows.map(OutboxRecord.init(row:)).sorted { $0.id < $1.id }
    }

    /// Makes every pending event due no sooner than the pending events written before it for its
    /// execution, and gives up on pending events of no execution. The store keeps this order
    /// itself; this repairs rows it did not write (an older version's, or a hand-made row), which
    /// would otherwise sit due at the front of the due order without being claimable. Returns how
    /// many rows it changed. Reads every pending event: for when a claim found nothing to take.
    public func repairDueOrder() async throws -> Int {
        try await database.transaction { session in
            try session.execute(Self.dueOrderRepair)
                + session.execute(
                    "UPDATE outbox SET status = 'DEAD', last_error = 'the event belongs to no execution' "
                        + "WHERE status = 'PENDING' AND execution_id IS NULL")
        }
    }

    /// The statement of ``repairDueOrder()`` that moves due times (also run by migration 8).
    static let dueOrderRepair = """
        UPDATE outbox SET available_at = d.due FROM (
            SELECT id, max(available_at) OVER (PARTITION BY execution_id ORDER BY id) AS due
            FROM outbox WHERE status = 'PENDING' AND execution_id IS NOT NULL) d
        WHERE outbox.id = d.id AND outbox.available_at < d.due
        """

    /// Hands claimed events back unpublished: due again at once, for any process.
    public func release(ids: [Int], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await database.transaction { session in
            session.enqueue(Self.releasing(ids, owner: owner, dialect: dialect))
        }
    }

    private static func releasing(_ ids: [Int], owner: String, dialect: SQLDialect) -> SQLStatement {
        SQLStatement(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1 AND \(dialect.condition("id", inIntegersOfJSONArray: 2))",
            [.text(owner), .json(.array(ids.map { .int($0) }))])
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
        let dialect = self.dialect
        try await database.transaction { session in
            if dialect == .postgres, let executionID = record.executionID {
                // Waits for a transition of the execution writing events right now, so that the
                // postponement below sees them (a transition updates this row before it writes
                // events, and computes their due time from the events committed before it).
                _ = try session.query("SELECT 1 FROM pipeline_execution WHERE id = $1 FOR UPDATE", .id(executionID))
            }
            let recorded = try session.execute(
                """
                UPDATE outbox SET attempts = attempts + 1, last_error = $1, available_at = $2, status = $3,
                claimed_by = NULL, claimed_until = NULL WHERE id = $4 AND claimed_by = $5
                """,
                .text(String(error.prefix(2000))), .date(retryAt), .text(dead ? "DEAD" : "PENDING"), .integer(record.id),
                .text(owner))
            // Postponed only when the event was still this claim's: else another process holds
            // the execution's events now, and their due times are its business.
            if recorded == 1, !dead, let executionID = record.executionID {
                session.enqueue(
                    SQLStatement(
                        """
                        UPDATE outbox SET available_at = $1
                        WHERE execution_id = $2 AND id > $3 AND status <> 'DEAD' AND available_at < $1
                        """,
                        [.date(retryAt), .id(executionID), .integer(record.id)]))
            }
            if !later.isEmpty { session.enqueue(Self.releasing(later, owner: owner, dialect: dialect)) }
        }
    }

    /// How many events wait to be published, how many were given up on, and when the oldest
    /// waiting one was written.
    public func backlog() async throws -> (pending: Int, dead: Int, oldestPending: Date?) {
        let rows = try await database.read(
            "SELECT status, count(*) AS total, min(created_at) AS oldest FROM outbox GROUP BY status")
        var backlog: (pending: Int, dead: Int, oldestPending: Date?) = (0, 0, nil)
        for row in rows {
            switch row["status"] {
            case "PENDING":
                backlog.pending = try row.int("total")
                backlog.oldestPending = try row.optionalDate("oldest")
            case "DEAD": backlog.dead = try row.int("total")
            default: break
            }
        }
        return backlog
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

    /// When the earliest pending event may next be claimed, if any: when it is due, or when the
    /// claim another process holds on it runs out. A time already past means an event is due but
    /// cannot be claimed (see ``repairDueOrder()``).
    ///
    /// Reads the first events in due order from the index, not the backlog: when every one of them
    /// is held, the answer is the last one's due time (no later event can be claimed sooner) —
    /// early, never late.
    public func nextDue() async throws -> Date? {
        // The open range on the index's first column reads the same rows in the same order; it
        // lets SQLite say so (`SEARCH`, from the front of the index) rather than `SCAN`.
        let rows = try await database.read(
            """
            SELECT available_at, claimed_until FROM outbox WHERE status = 'PENDING' AND available_at >= $2
            ORDER BY available_at, id LIMIT $1
            """,
            .integer(Self.nextDueLookahead), .date(Date(timeIntervalSince1970: 0)))
        var earliest: Date?
        for row in rows {
            let due = try row.date("available_at")
            let claimable = max(due, try row.optionalDate("claimed_until") ?? due)
            earliest = min(earliest ?? claimable, claimable)
        }
        if rows.count == Self.nextDueLookahead, let last = try rows.last?.date("available_at"), let found = earliest {
            return min(found, last)
        }
        return earliest
    }

    /// How many events ``nextDue()`` reads.
    static let nextDueLookahead = 64

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
