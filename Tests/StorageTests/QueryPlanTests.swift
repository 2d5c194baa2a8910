import BudJSON
import Foundation
import PipelineEngine
import Storage
import Synchronization
import Testing
import _BudPipelineTestSupport

/// The statements the runtime runs for every execution are served by indexes: none reads a table
/// of per-execution rows from end to end. The statements are those the store runs for a few
/// executions. PostgreSQL plans them against tables holding as many rows as a busy server's (tens
/// of thousands of executions, analysed), where an unindexed lookup costs what it costs in
/// production; SQLite, without statistics, plans for large tables anyway.
@Suite("Query plans")
struct QueryPlanTests {
    /// Tables that grow with the number of executions.
    static let perExecutionTables: Set<String> = [
        "pipeline_execution", "step_execution", "progress_event", "execution_timer", "execution_subscription", "outbox",
        "parked_inbound_event", "processed_inbound_event",
    ]

    @Test("the runtime's statements read no per-execution table whole", arguments: TestBackend.available)
    func hotStatementsUseIndexes(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let recorder = RecordingDatabase(base: test.database)
            try await Self.runHotPaths(on: PipelineStore(database: recorder))
            let statements = recorder.distinctStatements
            #expect(statements.count > 30, "the workload ran \(statements.count) distinct statements")
            if backend == .postgres { try await Self.fillLikeABusyServer(test.database) }
            var scans: [String] = []
            for statement in statements {
                let tables =
                    backend == .postgres
                    ? try await Self.postgresFullScans(of: statement, in: test.database)
                    : try await Self.sqliteFullScans(of: statement, in: test.database)
                for table in tables where Self.perExecutionTables.contains(table) {
                    scans.append("\(table): \(statement.sql.split(separator: "\n").joined(separator: " "))")
                }
            }
            #expect(scans.isEmpty, "full scans:\n\(scans.joined(separator: "\n"))")
        }
    }

    static func postgresFullScans(of statement: SQLStatement, in database: any Database) async throws -> [String] {
        let plan = try await database.transaction { session in
            try session.query(SQLStatement("EXPLAIN (FORMAT JSON) " + statement.sql, statement.binds))
        }
        return fullScans(in: try JSONValue(parsing: try #require(plan.first?["QUERY PLAN"])))
    }

    /// The tables SQLite's plan reads with `SCAN` (whole, in table or index order) rather than
    /// `SEARCH` (through an index, by key). The plan names a table by its alias when it has one.
    static func sqliteFullScans(of statement: SQLStatement, in database: any Database) async throws -> [String] {
        let plan = try await database.transaction { session in
            try session.query(SQLStatement("EXPLAIN QUERY PLAN " + statement.sql, statement.binds))
        }
        let tables = tableAliases(in: statement.sql)
        return plan.compactMap { row in
            guard let detail = row["detail"], detail.hasPrefix("SCAN "), let name = detail.dropFirst(5).split(separator: " ").first
            else { return nil }
            return tables[String(name)] ?? String(name)
        }
    }

    /// `alias → table` for every `FROM table alias` and `JOIN table alias` in `sql`.
    static func tableAliases(in sql: String) -> [String: String] {
        let words = sql.split(whereSeparator: { $0.isWhitespace || $0 == "(" || $0 == ")" || $0 == "," }).map(String.init)
        var aliases: [String: String] = [:]
        for index in words.indices.dropLast(2) where ["FROM", "JOIN"].contains(words[index].uppercased()) {
            let table = words[index + 1]
            let next = words[index + 2].uppercased() == "AS" && index + 3 < words.count ? words[index + 3] : words[index + 2]
            if next.allSatisfy({ $0.isLetter || $0 == "_" }), !["WHERE", "ORDER", "GROUP", "LIMIT", "SET"].contains(next.uppercased()) {
                aliases[next] = table
            }
        }
        return aliases
    }

    @Test("every foreign key has an index that starts with its columns", .enabled(if: TestPostgres.isAvailable))
    func foreignKeysAreIndexed() async throws {
        try await TestDatabase.with(.postgres) { test in
            // Deleting a referenced row (retention deletes executions) looks up the referencing
            // rows through the foreign key's columns; without an index, once per deleted row.
            let unindexed = try await test.database.read(
                """
                SELECT CAST(c.conrelid AS regclass) AS referencing, c.conname AS name FROM pg_constraint c
                WHERE c.contype = 'f' AND NOT EXISTS (
                    SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid
                    AND (CAST(string_to_array(CAST(i.indkey AS text), ' ') AS int2[]))[1:array_length(c.conkey, 1)] = c.conkey)
                """
            ).map { "\($0["referencing"] ?? "?").\($0["name"] ?? "?")" }
            #expect(unindexed.isEmpty, "foreign keys without an index: \(unindexed)")
        }
    }

    @Test("a claim reads a bounded part of a large publishing backlog", .enabled(if: TestPostgres.isAvailable))
    func claimReadsABoundedPartOfTheBacklog() async throws {
        try await TestDatabase.with(.postgres) { test in
            // Statistics taken while the outbox held a few events, all claimed, then a backlog of 2,000
            // executions × 15 due events, written interleaved as concurrent executions write them:
            // what a publisher that fell behind meets before autovacuum analyses the outbox again.
            // The claim used to plan for a small table and read the whole backlog once per due
            // event (20 s for this one).
            try await test.database.withSession { session in
                try session.executeScript(
                    """
                    INSERT INTO pipeline_execution (id, pipeline_definition, initiator, status, created_at, updated_at)
                    SELECT gen_random_uuid(), '{}', 'bulk', 'RUNNING', now(), now() FROM generate_series(1, 2000);
                    INSERT INTO outbox (execution_id, event_type, payload, available_at, created_at, claimed_by, claimed_until)
                    SELECT id, 'step_started', '{}', now() - interval '1 hour', now(), 'other', now() + interval '1 minute'
                    FROM pipeline_execution LIMIT 20;
                    ANALYZE;
                    DELETE FROM outbox;
                    INSERT INTO outbox (execution_id, event_type, payload, available_at, created_at)
                    SELECT e.id, 'step_completed', '{}', now() - interval '1 hour' + (k * 2000 + e.n) * interval '1 millisecond', now()
                    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM pipeline_execution) e, generate_series(1, 15) AS k
                    ORDER BY k, e.n;
                    """)
            }
            let recorder = RecordingDatabase(base: test.database)
            let now = Date()
            let claimed = try await PipelineStore(database: recorder).outbox.claim(
                owner: "w", now: now, claimUntil: now.addingTimeInterval(15), executions: 50)
            #expect(Set(claimed.compactMap(\.executionID)).count == 50)
            let claim = try #require(recorder.distinctStatements.first { $0.sql.contains("UPDATE outbox SET claimed_by") })
            // The next claim, measured: the buffers it touched, its children's included. Claiming
            // 750 events (50 executions × 15) touches about 10,000, most of them to update the
            // rows and their indexes; planned for a small table it touched 96,000.
            let plan = try await test.database.transaction { session in
                try session.query(SQLStatement("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + claim.sql, claim.binds))
            }
            let root = try JSONValue(parsing: try #require(plan.first?["QUERY PLAN"]))
            let top = try #require(root.arrayValue?.first?.objectValue?["Plan"]?.objectValue)
            let buffers = (top["Shared Hit Blocks"]?.intValue ?? 0) + (top["Shared Read Blocks"]?.intValue ?? 0)
            #expect(buffers > 0 && buffers < 15_000, "the claim touched \(buffers) buffers")
        }
    }

    /// What the runtime does with the store over an execution's life, on a few executions.
    static func runHotPaths(on store: PipelineStore) async throws {
        let base = StoreFixtures.base
        let definition = StoreFixtures.definition()
        try await store.definitions.insert(definition)
        var executions: [NewExecution] = []
        for index in 0..<3 {
            var new = StoreFixtures.execution(
                pipelineID: definition.id,
                timers: [.set(key: "wait", dueAt: base.addingTimeInterval(Double(index)), claimedBy: nil, claimedUntil: nil)])
            new.record.definitionSnapshot["retry_of"] = index == 2 ? .string(executions[0].record.id.rawValue) : nil
            try await store.executions.insert(new)
            try await store.executions.apply(StoreFixtures.startTransition(executionID: new.record.id))
            executions.append(new)
        }
        let id = executions[0].record.id
        let later = base.addingTimeInterval(120)

        _ = try await store.definitions.find(id: definition.id)
        _ = try await store.definitions.summary(id: definition.id)
        _ = try await store.executions.find(id: id)
        _ = try await store.executions.findWithSteps(id: id)
        _ = try await store.executions.steps(executionID: id)
        _ = try await store.executions.callbackTopics(executionID: id)
        _ = try await store.executions.progressEvents(executionID: id)
        _ = try await store.executions.progressEvents(executionID: id, matching: ProgressEventFilter(), limit: 10, offset: 0)
        _ = try await store.executions.retry(of: id)
        _ = try await store.executions.notificationOptions(of: executions.map(\.record.id))

        let claimed = try await store.outbox.claim(owner: "w", now: later, claimUntil: later.addingTimeInterval(15), executions: 10)
        if let first = claimed.first {
            try await store.outbox.failed(
                first, owner: "w", error: "down", retryAt: later, dead: false, releasing: claimed.dropFirst().map(\.id))
        }
        let again = try await store.outbox.claim(owner: "w", now: later, claimUntil: later.addingTimeInterval(15), executions: 10)
        try await store.outbox.delivered(ids: again.map(\.id), owner: "w")
        _ = try await store.outbox.nextDue()

        _ = try await store.timers.claimDue(owner: "w", now: later, claimUntil: later.addingTimeInterval(2), limit: 10)
        _ = try await store.timers.due(executionID: id, key: "wait")
        _ = try await store.timers.list(executionID: id)

        try await store.leases.renew(owner: "worker-1", steps: [(id, "a")], until: later)
        _ = try await store.leases.claimExpired(
            owner: "w", now: later.addingTimeInterval(60), until: later.addingTimeInterval(90), limit: 10)
        try await store.leases.release(owner: "w", executionID: id, stepID: "a", now: later)

        _ = try await store.inboundEvents.stepsAwaitingEvent(externalWorkflowID: "approval:1")
        _ = try await store.inboundEvents.isProcessed(id: "event-1")
        try await store.inboundEvents.recordProcessed(id: "event-1", source: "test", type: "approval", outcome: [:], at: later)
        try await store.inboundEvents.park(
            ParkedInboundEvent(externalWorkflowID: "approval:2", eventID: "event-2", source: nil, body: [:], receivedAt: later))
        _ = try await store.inboundEvents.takeParked(externalWorkflowID: "approval:2", receivedAfter: base)
        try await store.inboundEvents.forgetProcessed(processedBefore: base)
        try await store.inboundEvents.forgetParked(receivedBefore: base)

        try await store.interruptions.record(executionID: executions[1].record.id, stepIDs: ["a"])
        try await store.interruptions.record(executionID: executions[1].record.id, stepIDs: [])
        try await store.interruptions.quarantine(
            executionID: executions[1].record.id, reason: "kept dying", notifications: [OutboxEvent(eventType: "x", payload: [:])],
            now: later)

        _ = try await store.triggers.claimDueSchedules(owner: "w", now: later, claimUntil: later.addingTimeInterval(60), limit: 10)
        _ = try await store.retention.candidates(endedBefore: later.addingTimeInterval(1))
        _ = try await store.retention.deleteFinished(endedBefore: later.addingTimeInterval(1), limit: 10)
    }

    /// Adds the rows of a server that ran 20,000 executions, 2,000 of them still running, with a
    /// publishing backlog, then has PostgreSQL analyse them.
    static func fillLikeABusyServer(_ database: any Database) async throws {
        try await database.withSession { session in
            try session.executeScript(
                """
                INSERT INTO pipeline_execution (id, pipeline_definition, initiator, status, start_time, end_time, created_at, updated_at)
                SELECT gen_random_uuid(), '{}', 'bulk', CASE WHEN n % 10 = 0 THEN 'RUNNING' ELSE 'COMPLETED' END,
                    now() - n * interval '1 second', CASE WHEN n % 10 = 0 THEN NULL ELSE now() - n * interval '1 second' END,
                    now() - n * interval '1 second', now()
                FROM generate_series(1, 20000) AS n;
                INSERT INTO step_execution (id, execution_id, step_id, step_name, status, sequence_number, created_at, updated_at,
                    lease_owner, lease_expires_at)
                SELECT gen_random_uuid(), e.id, 's' || k, 'Step ' || k, CASE WHEN e.status = 'RUNNING' AND k = 1 THEN 'RUNNING' ELSE 'COMPLETED' END,
                    k, e.created_at, e.updated_at, CASE WHEN e.status = 'RUNNING' AND k = 1 THEN 'bulk' END,
                    CASE WHEN e.status = 'RUNNING' AND k = 1 THEN now() + interval '30 seconds' END
                FROM pipeline_execution e, generate_series(1, 3) AS k WHERE e.initiator = 'bulk';
                INSERT INTO progress_event (id, execution_id, event_type, progress_percentage, timestamp, sequence_number, created_at)
                SELECT gen_random_uuid(), e.id, 'workflow_progress', 10 * k, e.created_at, k, e.created_at
                FROM pipeline_execution e, generate_series(1, 5) AS k WHERE e.initiator = 'bulk';
                INSERT INTO execution_subscription (id, execution_id, callback_topic, subscription_time, created_at)
                SELECT gen_random_uuid(), id, 'topic', created_at, created_at FROM pipeline_execution WHERE initiator = 'bulk';
                INSERT INTO execution_timer (execution_id, timer_key, due_at, created_at)
                SELECT id, 'step_deadline:s1:0', now() + interval '1 hour', created_at FROM pipeline_execution
                WHERE initiator = 'bulk' AND status = 'RUNNING';
                INSERT INTO outbox (execution_id, event_type, payload, status, available_at, created_at)
                SELECT e.id, 'step_completed', '{}', CASE WHEN k = 3 THEN 'DEAD' ELSE 'PENDING' END,
                    now() + interval '1 minute', e.created_at
                FROM pipeline_execution e, generate_series(1, 3) AS k WHERE e.initiator = 'bulk' AND e.status = 'RUNNING';
                INSERT INTO processed_inbound_event (event_id, processed_at)
                SELECT 'bulk-' || n, now() - n * interval '1 second' FROM generate_series(1, 20000) AS n;
                INSERT INTO parked_inbound_event (external_workflow_id, event_id, body, received_at)
                SELECT 'bulk:' || n, 'bulk-parked-' || n, '{}', now() - n * interval '1 second' FROM generate_series(1, 5000) AS n;
                ANALYZE;
                """)
        }
    }

    /// The tables a plan reads whole: a sequential scan, or an index scan with no condition on
    /// the index that is not cut short by a `LIMIT` above it (which reads the first rows only).
    static func fullScans(in plan: JSONValue) -> [String] {
        var tables: [String] = []
        func visit(_ node: JSONValue, underLimit: Bool) {
            switch node {
            case .array(let items): items.forEach { visit($0, underLimit: underLimit) }
            case .object(let fields):
                let type = fields["Node Type"]?.stringValue
                if let table = fields["Relation Name"]?.stringValue {
                    let unconditionedIndexScan =
                        (type == "Index Scan" || type == "Index Only Scan") && fields["Index Cond"] == nil && !underLimit
                    if type == "Seq Scan" || unconditionedIndexScan { tables.append(table) }
                }
                let limited = underLimit || type == "Limit"
                fields.values.forEach { visit($0, underLimit: limited) }
            default: break
            }
        }
        visit(plan, underLimit: false)
        return tables
    }
}

/// A database that remembers every statement run through it, then hands it to `base`.
final class RecordingDatabase: Database {
    let base: any Database
    private let log = StatementLog()

    init(base: any Database) { self.base = base }

    /// The statements run so far, each SQL text once (with the parameters it first had).
    var distinctStatements: [SQLStatement] { log.distinct }

    var dialect: SQLDialect { base.dialect }

    func transaction<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result {
        let log = log
        return try await base.transaction { session in try body(RecordingSession(base: session, log: log)) }
    }

    func read(_ statements: [SQLStatement]) async throws -> [[Row]] {
        statements.forEach(log.record)
        return try await base.read(statements)
    }

    func withSession<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result {
        let log = log
        return try await base.withSession { session in try body(RecordingSession(base: session, log: log)) }
    }

    func serverVersion() async throws -> String { try await base.serverVersion() }

    func close() async { await base.close() }
}

/// The statements a ``RecordingDatabase`` saw, shared by its sessions.
final class StatementLog: Sendable {
    private let statements = Mutex<[SQLStatement]>([])

    func record(_ statement: SQLStatement) { statements.withLock { $0.append(statement) } }

    var distinct: [SQLStatement] {
        var seen: Set<String> = []
        return statements.withLock { $0 }.filter { seen.insert($0.sql).inserted }
    }
}

private struct RecordingSession: DatabaseSession {
    let base: any DatabaseSession
    let log: StatementLog

    func query(_ statement: SQLStatement) throws -> [Row] {
        log.record(statement)
        return try base.query(statement)
    }

    func execute(_ statement: SQLStatement) throws -> Int {
        log.record(statement)
        return try base.execute(statement)
    }

    func enqueue(_ statement: SQLStatement, expectedRows: Int?, conflictMessage: String) {
        log.record(statement)
        base.enqueue(statement, expectedRows: expectedRows, conflictMessage: conflictMessage)
    }

    func executeScript(_ sql: String) throws { try base.executeScript(sql) }
}
