public import BudJSON
public import Foundation
public import PipelineEngine

/// A new execution with its steps, stored in one transaction.
public struct NewExecution: Sendable {
    public var record: ExecutionRecord
    public var steps: [StepRecord]
    /// Topics to publish the execution's progress to (table `execution_subscription`).
    public var callbackTopics: [String]
    /// Timers to create with it (the runtime's `start`).
    public var timers: [TimerChange]

    public init(record: ExecutionRecord, steps: [StepRecord], callbackTopics: [String] = [], timers: [TimerChange] = []) {
        self.record = record
        self.steps = steps
        self.callbackTopics = callbackTopics
        self.timers = timers
    }
}

/// A change to an execution's timers.
public enum TimerChange: Sendable, Equatable {
    /// Creates the timer or moves it to `dueAt`. `claimedBy` marks it as handled by that process
    /// until `claimedUntil`, so that others leave it alone while that process is alive.
    case set(key: String, dueAt: Date, claimedBy: String?, claimedUntil: Date?)
    case cancel(key: String)
}

/// A step row to write in a transition.
public struct StepWrite: Sendable, Equatable {
    public var state: StepState
    /// For a step the transition dispatches to a plugin: who runs it, until when, and the request.
    public var lease: Lease?

    public struct Lease: Sendable, Equatable {
        public var owner: String
        public var expiresAt: Date
        public var dispatch: JSONValue

        public init(owner: String, expiresAt: Date, dispatch: JSONValue) {
            self.owner = owner
            self.expiresAt = expiresAt
            self.dispatch = dispatch
        }
    }

    public init(state: StepState, lease: Lease? = nil) {
        self.state = state
        self.lease = lease
    }
}

/// Everything one engine transition changes, written in one transaction: the execution row (its
/// version moves from `expectedVersion` to the next), the changed steps, timers, progress events and
/// outbox events.
public struct ExecutionTransition: Sendable {
    public var executionID: String
    public var expectedVersion: Int
    public var execution: ExecutionSnapshot
    public var eventSequence: Int
    public var steps: [StepWrite]
    public var timers: [TimerChange]
    /// Timers that fired and were handled: each must still be due at the time it fired, else the
    /// transition is stale and conflicts.
    public var consumedTimers: [TimerRecord]
    public var progressEvents: [ProgressEventRecord]
    public var outbox: [OutboxEvent]
    public var now: Date

    public init(
        executionID: String,
        expectedVersion: Int,
        execution: ExecutionSnapshot,
        eventSequence: Int,
        steps: [StepWrite] = [],
        timers: [TimerChange] = [],
        consumedTimers: [TimerRecord] = [],
        progressEvents: [ProgressEventRecord] = [],
        outbox: [OutboxEvent] = [],
        now: Date
    ) {
        self.executionID = executionID
        self.expectedVersion = expectedVersion
        self.execution = execution
        self.eventSequence = eventSequence
        self.steps = steps
        self.timers = timers
        self.consumedTimers = consumedTimers
        self.progressEvents = progressEvents
        self.outbox = outbox
        self.now = now
    }
}

extension PipelineStore {
    // MARK: Creating and reading executions

    /// Stores a new execution, its steps, subscriptions and timers together.
    public func insertExecution(_ new: NewExecution) async throws {
        let statements = Self.insertStatements(new)
        try await database.transaction { session in
            for statement in statements { session.enqueue(statement) }
        }
    }

    /// The execution and its steps (in definition order), read together.
    public func executionWithSteps(id: String) async throws -> (execution: ExecutionRecord, steps: [StepRecord])? {
        let results = try await database.read([
            SQLStatement("SELECT \(Self.executionColumns) FROM pipeline_execution WHERE id = $1", [.text(id)]),
            SQLStatement("SELECT \(Self.stepColumns) FROM step_execution WHERE execution_id = $1 ORDER BY sequence_number", [.text(id)]),
        ])
        guard let row = results[0].first else { return nil }
        return (try Self.execution(row), try results[1].map(Self.step))
    }

    /// The execution that retries `executionID`, if it was retried: there is at most one, the
    /// insert of a second fails with ``DatabaseError/uniqueViolation(_:)``.
    public func retryExecution(of executionID: String) async throws -> ExecutionRecord? {
        try await database.read("SELECT \(Self.executionColumns) FROM pipeline_execution WHERE retry_of = $1", .text(executionID)).first
            .map(Self.execution)
    }

    public func execution(id: String) async throws -> ExecutionRecord? {
        try await database.read("SELECT \(Self.executionColumns) FROM pipeline_execution WHERE id = $1", .text(id)).first.map(
            Self.execution)
    }

    /// The steps of an execution in definition order.
    public func steps(executionID: String) async throws -> [StepRecord] {
        try await database.read(
            "SELECT \(Self.stepColumns) FROM step_execution WHERE execution_id = $1 ORDER BY sequence_number", .text(executionID)
        ).map(Self.step)
    }

    /// The callback topics an execution publishes to, in the order they were given.
    public func callbackTopics(executionID: String) async throws -> [String] {
        try await database.read(
            "SELECT callback_topic FROM execution_subscription WHERE execution_id = $1 ORDER BY subscription_time, callback_topic",
            .text(executionID)
        ).map { try $0.string("callback_topic") }
    }

    /// How many executions are in each status.
    public func executionCounts() async throws -> [ExecutionStatus: Int] {
        var counts: [ExecutionStatus: Int] = [:]
        for row in try await database.read("SELECT status, count(*) AS total FROM pipeline_execution GROUP BY status") {
            if let status = ExecutionStatus(rawValue: try row.string("status")) { counts[status] = try row.int("total") }
        }
        return counts
    }

    /// The progress history of an execution, oldest first.
    public func progressEvents(executionID: String) async throws -> [ProgressEventRecord] {
        try await database.read(
            "SELECT \(Self.progressEventColumns) FROM progress_event WHERE execution_id = $1 ORDER BY sequence_number", .text(executionID)
        ).map(Self.progressEvent)
    }

    /// Outbox events not yet delivered, oldest first.
    public func pendingOutbox(limit: Int) async throws -> [OutboxRecord] {
        try await database.read(
            "SELECT id, execution_id, event_type, payload, attempts, created_at FROM outbox WHERE status = 'PENDING' ORDER BY id LIMIT $1",
            .integer(max(0, limit))
        ).map(Self.outboxRecord)
    }

    // MARK: Transitions

    /// Writes one transition. Throws ``DatabaseError/conflict(_:)`` — and writes nothing — when
    /// the execution is no longer at `expectedVersion` or a consumed timer was moved or removed.
    public func apply(_ transition: ExecutionTransition) async throws {
        let statements = Self.transitionStatements(transition)
        try await database.transaction { session in
            for (statement, expectation) in statements {
                session.enqueue(statement, expectedRows: expectation?.rows, conflictMessage: expectation?.message ?? "")
            }
        }
    }

    /// A statement and, when it must change an exact number of rows, that number and the conflict
    /// message otherwise.
    typealias GuardedStatement = (statement: SQLStatement, expectation: (rows: Int, message: String)?)

    static func transitionStatements(_ transition: ExecutionTransition) -> [GuardedStatement] {
        let id = SQLValue.text(transition.executionID)
        let now = SQLValue.date(transition.now)
        let execution = transition.execution
        var statements: [GuardedStatement] = [
            (
                SQLStatement(
                    """
                    UPDATE pipeline_execution SET version = version + 1, status = $3, start_time = $4, end_time = $5,
                        progress_percentage = $6, final_outputs = $7, error_info = $8, event_sequence = $9, updated_at = $10
                    WHERE id = $1 AND version = $2
                    """,
                    [
                        id, .integer(transition.expectedVersion), .text(execution.status.rawValue),
                        .optional(execution.startedAt, SQLValue.date),
                        .optional(execution.endedAt, SQLValue.date), .double(execution.progress),
                        .optional(execution.outputs) { SQLValue.json(.object($0)) },
                        .optional(execution.errorInfo) { SQLValue.json(.object($0)) },
                        .integer(transition.eventSequence), now,
                    ]
                ),
                (1, "execution \(transition.executionID) changed since version \(transition.expectedVersion)")
            )
        ]
        for timer in transition.consumedTimers {
            statements.append(
                (
                    SQLStatement(
                        "DELETE FROM execution_timer WHERE execution_id = $1 AND timer_key = $2 AND due_at = $3",
                        [id, .text(timer.key), .date(timer.dueAt)]
                    ),
                    (1, "timer \(timer.key) of execution \(transition.executionID) was moved or removed")
                )
            )
        }
        for step in transition.steps { statements.append((stepUpdate(step, executionID: id, now: now), nil)) }
        for timer in transition.timers { statements.append((timerStatement(timer, executionID: id, now: now), nil)) }
        if !transition.progressEvents.isEmpty { statements.append((progressEventInsert(transition.progressEvents), nil)) }
        if !transition.outbox.isEmpty {
            statements.append((outboxInsert(transition.outbox, executionID: transition.executionID, now: transition.now), nil))
        }
        return statements
    }

    private static func stepUpdate(_ write: StepWrite, executionID: SQLValue, now: SQLValue) -> SQLStatement {
        let state = write.state
        var binds: [SQLValue] = [
            executionID, .text(state.stepID), .text(state.status.rawValue), .integer(state.attempt),
            .optional(state.startedAt, SQLValue.date),
            .optional(state.endedAt, SQLValue.date), .double(state.progress), .optional(state.etaSeconds, SQLValue.integer),
            .optional(state.outputs) { SQLValue.json(.object($0)) }, .optional(state.error, SQLValue.text), .bool(state.isAwaitingEvent),
            .optional(state.externalWorkflowID, SQLValue.text), .optional(state.deadline, SQLValue.date), .bool(state.failureTolerated),
            now,
        ]
        let assignments =
            "status = $3, retry_count = $4, start_time = $5, end_time = $6, progress_percentage = $7, eta_seconds = $8, outputs = $9, "
            + "error_message = $10, awaiting_event = $11, external_workflow_id = $12, timeout_at = $13, failure_tolerated = $14, "
            + "updated_at = $15, version = version + 1"
        if let lease = write.lease {
            binds += [.text(lease.owner), .date(lease.expiresAt), .json(lease.dispatch)]
            return SQLStatement(
                "UPDATE step_execution SET \(assignments), lease_owner = $16, lease_expires_at = $17, dispatch = $18 "
                    + "WHERE execution_id = $1 AND step_id = $2",
                binds
            )
        }
        // A step that keeps running keeps its claim; any other drops it.
        binds.append(.bool(state.status == .running))
        return SQLStatement(
            "UPDATE step_execution SET \(assignments), "
                + "lease_owner = CASE WHEN $16 THEN lease_owner ELSE NULL END, "
                + "lease_expires_at = CASE WHEN $16 THEN lease_expires_at ELSE NULL END, "
                + "dispatch = CASE WHEN $16 THEN dispatch ELSE NULL END "
                + "WHERE execution_id = $1 AND step_id = $2",
            binds
        )
    }

    static func timerStatement(_ change: TimerChange, executionID: SQLValue, now: SQLValue) -> SQLStatement {
        switch change {
        case .set(let key, let dueAt, let claimedBy, let claimedUntil):
            return SQLStatement(
                """
                INSERT INTO execution_timer (execution_id, timer_key, due_at, claimed_by, claimed_until, created_at)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (execution_id, timer_key) DO UPDATE
                SET due_at = excluded.due_at, claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until
                """,
                [executionID, .text(key), .date(dueAt), .optional(claimedBy, SQLValue.text), .optional(claimedUntil, SQLValue.date), now]
            )
        case .cancel(let key):
            return SQLStatement("DELETE FROM execution_timer WHERE execution_id = $1 AND timer_key = $2", [executionID, .text(key)])
        }
    }

    private static func progressEventInsert(_ events: [ProgressEventRecord]) -> SQLStatement {
        var binds: [SQLValue] = []
        var rows: [String] = []
        for event in events {
            let base = binds.count
            rows.append("(" + (1...10).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
            binds += [
                .text(event.id), .text(event.executionID), .text(event.kind.rawValue), .double(event.progress),
                .optional(event.etaSeconds, SQLValue.integer), .optional(event.currentStepDescription, SQLValue.text),
                .optional(event.details) { SQLValue.json(.object($0)) }, .date(event.timestamp), .integer(event.sequenceNumber),
                .date(event.createdAt),
            ]
        }
        return SQLStatement(
            "INSERT INTO progress_event (id, execution_id, event_type, progress_percentage, eta_seconds, current_step_desc, "
                + "event_details, timestamp, sequence_number, created_at) VALUES \(rows.joined(separator: ", "))",
            binds
        )
    }

    static func outboxInsert(_ events: [OutboxEvent], executionID: String?, now: Date) -> SQLStatement {
        var binds: [SQLValue] = [.optional(executionID, SQLValue.text), .date(now)]
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

    static func insertStatements(_ new: NewExecution) -> [SQLStatement] {
        let record = new.record
        var statements = [
            SQLStatement(
                """
                INSERT INTO pipeline_execution (id, version, pipeline_id, pipeline_definition, initiator, start_time, end_time, status,
                    progress_percentage, final_outputs, error_info, subscriber_ids, payload_type, notification_workflow_id, event_sequence,
                    created_at, updated_at, user_id, retry_of)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
                """,
                [
                    .text(record.id), .integer(record.version), .optional(record.pipelineID, SQLValue.text),
                    .json(.object(record.definitionSnapshot)),
                    .text(record.initiator), .optional(record.startTime, SQLValue.date), .optional(record.endTime, SQLValue.date),
                    .text(record.status.rawValue), .double(record.progress), .optional(record.finalOutputs) { SQLValue.json(.object($0)) },
                    .optional(record.errorInfo) { SQLValue.json(.object($0)) }, .optional(record.subscriberIDs, SQLValue.text),
                    .optional(record.payloadType, SQLValue.text), .optional(record.notificationWorkflowID, SQLValue.text),
                    .integer(record.eventSequence), .date(record.createdAt), .date(record.updatedAt),
                    .optional(record.userID, SQLValue.text), .optional(record.retryOf, SQLValue.text),
                ]
            )
        ]
        let columnsPerStep = 14
        for chunk in stride(from: 0, to: new.steps.count, by: 100).map({ Array(new.steps[$0..<min($0 + 100, new.steps.count)]) }) {
            var binds: [SQLValue] = []
            var rows: [String] = []
            for step in chunk {
                let base = binds.count
                rows.append("(" + (1...columnsPerStep).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
                binds += [
                    .text(step.id), .text(step.executionID), .text(step.state.stepID), .text(step.state.name),
                    .text(step.state.status.rawValue),
                    .integer(step.state.sequence), .text(step.state.action), .integer(step.state.attempt), .date(step.createdAt),
                    .date(step.updatedAt), step.state.startedAt.map(SQLValue.date) ?? .null,
                    step.state.endedAt.map(SQLValue.date) ?? .null, step.state.outputs.map { .json(.object($0)) } ?? .null,
                    .double(step.state.progress),
                ]
            }
            statements.append(
                SQLStatement(
                    "INSERT INTO step_execution (id, execution_id, step_id, step_name, status, sequence_number, handler_type, retry_count, "
                        + "created_at, updated_at, start_time, end_time, outputs, progress_percentage) VALUES \(rows.joined(separator: ", "))",
                    binds
                )
            )
        }
        for topic in new.callbackTopics {
            statements.append(
                SQLStatement(
                    "INSERT INTO execution_subscription (id, execution_id, callback_topic, subscription_time, created_at) VALUES ($1, $2, $3, $4, $4)",
                    [.text(UUID().uuidString.lowercased()), .text(record.id), .text(topic), .date(record.createdAt)]
                )
            )
        }
        for timer in new.timers { statements.append(timerStatement(timer, executionID: .text(record.id), now: .date(record.createdAt))) }
        return statements
    }

    // MARK: Decoding

    static let progressEventColumns =
        "id, execution_id, event_type, progress_percentage, eta_seconds, current_step_desc, event_details, timestamp, sequence_number, created_at"

    static let executionColumns =
        "id, version, pipeline_id, pipeline_definition, initiator, start_time, end_time, status, progress_percentage, final_outputs, "
        + "error_info, subscriber_ids, payload_type, notification_workflow_id, event_sequence, created_at, updated_at, interruptions, "
        + "user_id"

    static let stepColumns =
        "id, execution_id, version, step_id, step_name, status, start_time, end_time, progress_percentage, eta_seconds, outputs, "
        + "error_message, retry_count, sequence_number, external_workflow_id, handler_type, timeout_at, failure_tolerated, dispatch, "
        + "lease_owner, lease_expires_at, created_at, updated_at, interruptions"

    static func execution(_ row: Row) throws -> ExecutionRecord {
        ExecutionRecord(
            id: try row.string("id"),
            version: try row.int("version"),
            pipelineID: row["pipeline_id"],
            definitionSnapshot: try row.json("pipeline_definition").objectValue ?? [:],
            initiator: try row.string("initiator"),
            status: try row.value("status", as: ExecutionStatus.self),
            startTime: try row.optionalDate("start_time"),
            endTime: try row.optionalDate("end_time"),
            progress: try row.double("progress_percentage"),
            finalOutputs: try row.optionalJSON("final_outputs")?.objectValue,
            errorInfo: try row.optionalJSON("error_info")?.objectValue,
            subscriberIDs: row["subscriber_ids"],
            payloadType: row["payload_type"],
            notificationWorkflowID: row["notification_workflow_id"],
            eventSequence: try row.int("event_sequence"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"),
            interruptions: try row.int("interruptions"),
            userID: row["user_id"]
        )
    }

    static func step(_ row: Row) throws -> StepRecord {
        var state = StepState(
            stepID: try row.string("step_id"),
            name: try row.string("step_name"),
            action: row["handler_type"] ?? "",
            sequence: try row.int("sequence_number")
        )
        state.status = try row.value("status", as: StepStatus.self)
        state.attempt = try row.int("retry_count")
        state.startedAt = try row.optionalDate("start_time")
        state.endedAt = try row.optionalDate("end_time")
        state.outputs = try row.optionalJSON("outputs")?.objectValue
        state.error = row["error_message"]
        state.progress = try row.double("progress_percentage")
        state.etaSeconds = try row.optionalInt("eta_seconds")
        state.externalWorkflowID = row["external_workflow_id"]
        state.deadline = try row.optionalDate("timeout_at")
        state.failureTolerated = try row.bool("failure_tolerated")
        return StepRecord(
            id: try row.string("id"),
            executionID: try row.string("execution_id"),
            version: try row.int("version"),
            state: state,
            dispatch: try row.optionalJSON("dispatch"),
            leaseOwner: row["lease_owner"],
            leaseExpiresAt: try row.optionalDate("lease_expires_at"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"),
            interruptions: try row.int("interruptions")
        )
    }

    static func progressEvent(_ row: Row) throws -> ProgressEventRecord {
        ProgressEventRecord(
            id: try row.string("id"),
            executionID: try row.string("execution_id"),
            kind: try row.value("event_type", as: ProgressEventRecord.Kind.self),
            progress: try row.double("progress_percentage"),
            etaSeconds: try row.optionalInt("eta_seconds"),
            currentStepDescription: row["current_step_desc"],
            details: try row.optionalJSON("event_details")?.objectValue,
            timestamp: try row.date("timestamp"),
            sequenceNumber: try row.int("sequence_number"),
            createdAt: try row.date("created_at")
        )
    }
}
