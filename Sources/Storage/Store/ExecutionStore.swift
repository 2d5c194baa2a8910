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
    public var executionID: ExecutionID
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
        executionID: ExecutionID,
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

/// Which executions a listing returns; `nil` fields do not filter.
public struct ExecutionFilter: Sendable, Equatable {
    public var pipelineID: PipelineID?
    public var status: ExecutionStatus?
    public var initiator: String?
    /// Created at or after.
    public var createdFrom: Date?
    /// Created at or before.
    public var createdUntil: Date?
    /// Only this user's executions.
    public var ownerID: String?

    public init(
        pipelineID: PipelineID? = nil, status: ExecutionStatus? = nil, initiator: String? = nil, createdFrom: Date? = nil,
        createdUntil: Date? = nil, ownerID: String? = nil
    ) {
        self.ownerID = ownerID
        self.pipelineID = pipelineID
        self.status = status
        self.initiator = initiator
        self.createdFrom = createdFrom
        self.createdUntil = createdUntil
    }
}

/// Which progress events a listing returns; `nil` fields do not filter.
public struct ProgressEventFilter: Sendable, Equatable {
    public var kind: ProgressEventRecord.Kind?
    /// Timestamp at or after.
    public var from: Date?
    /// Timestamp at or before.
    public var until: Date?

    public init(kind: ProgressEventRecord.Kind? = nil, from: Date? = nil, until: Date? = nil) {
        self.kind = kind
        self.from = from
        self.until = until
    }
}

/// Executions with their steps and progress history: created whole, changed one engine
/// transition at a time under optimistic locking, and listed for the API.
public struct ExecutionStore: StorePart {
    let database: any Database

    // MARK: Creating and reading executions

    /// Stores a new execution, its steps, subscriptions and timers together.
    public func insert(_ new: NewExecution) async throws {
        let statements = ExecutionStatements.insert(new)
        try await database.transaction { session in
            for statement in statements { session.enqueue(statement) }
        }
    }

    /// Stores a new execution already moved on by its first transition (planned on it as new), in
    /// one transaction: what ``insert(_:)`` then ``apply(_:)`` would store, without writing the
    /// execution and its steps twice.
    public func insert(_ new: NewExecution, startedBy transition: ExecutionTransition) async throws {
        let statements = ExecutionStatements.insert(new, startedBy: transition, dialect: dialect)
        try await database.transaction { session in
            for (statement, expectation) in statements {
                session.enqueue(statement, expectedRows: expectation?.rows, conflictMessage: expectation?.message ?? "")
            }
        }
    }

    /// The execution and its steps (in definition order), read together.
    public func findWithSteps(id: ExecutionID) async throws -> (execution: ExecutionRecord, steps: [StepRecord])? {
        try await find(id: id, withCallbackTopics: false).map { ($0.execution, $0.steps) }
    }

    /// The execution, its steps and its callback topics, read together: what resuming it needs.
    public func findForResuming(id: ExecutionID) async throws -> (
        execution: ExecutionRecord, steps: [StepRecord], callbackTopics: [String]
    )? {
        try await find(id: id, withCallbackTopics: true)
    }

    private func find(id: ExecutionID, withCallbackTopics: Bool) async throws -> (
        execution: ExecutionRecord, steps: [StepRecord], callbackTopics: [String]
    )? {
        var statements = [
            SQLStatement("SELECT \(ExecutionRecord.columns) FROM pipeline_execution WHERE id = $1", [.id(id)]),
            SQLStatement(
                "SELECT \(StepRecord.columns) FROM step_execution WHERE execution_id = $1 ORDER BY sequence_number", [.id(id)]),
        ]
        if withCallbackTopics { statements.append(Self.callbackTopicsStatement(id)) }
        let results = try await database.read(statements)
        guard let row = results[0].first else { return nil }
        let topics = try results.dropFirst(2).first?.map { try $0.string("callback_topic") } ?? []
        return (try ExecutionRecord(row: row), try results[1].map(StepRecord.init(row:)), topics)
    }

    /// The execution that retries `executionID`, if it was retried: there is at most one, the
    /// insert of a second fails with ``DatabaseError/uniqueViolation(_:)``.
    public func retry(of executionID: ExecutionID) async throws -> ExecutionRecord? {
        try await database.read(
            "SELECT \(ExecutionRecord.columns) FROM pipeline_execution WHERE retry_of = $1", .id(executionID)
        ).first
            .map(ExecutionRecord.init(row:))
    }

    /// The execution, or `nil` when it does not exist.
    public func find(id: ExecutionID) async throws -> ExecutionRecord? {
        try await database.read("SELECT \(ExecutionRecord.columns) FROM pipeline_execution WHERE id = $1", .id(id)).first.map(
            ExecutionRecord.init(row:))
    }

    /// The steps of an execution in definition order.
    public func steps(executionID: ExecutionID) async throws -> [StepRecord] {
        try await database.read(
            "SELECT \(StepRecord.columns) FROM step_execution WHERE execution_id = $1 ORDER BY sequence_number", .id(executionID)
        ).map(StepRecord.init(row:))
    }

    /// The callback topics an execution publishes to, in the order they were given.
    public func callbackTopics(executionID: ExecutionID) async throws -> [String] {
        try await database.read(Self.callbackTopicsStatement(executionID)).map { try $0.string("callback_topic") }
    }

    /// The notification options of the executions among `ids` that exist, read in one round trip.
    public func notificationOptions(of ids: [ExecutionID]) async throws -> [ExecutionID: NotificationOptionsRecord] {
        guard !ids.isEmpty else { return [:] }
        let list = SQLValue.json(.array(ids.map { .string($0.rawValue) }))
        let results = try await database.read([
            SQLStatement(
                """
                SELECT id, subscriber_ids, payload_type, notification_workflow_id,
                    \(dialect.jsonText(of: "pipeline_definition", key: "trace_parent")) AS trace_parent
                FROM pipeline_execution
                WHERE \(dialect.condition("id", inIDsOfJSONArray: 1))
                """, [list]),
            SQLStatement(
                """
                SELECT execution_id, callback_topic FROM execution_subscription
                WHERE \(dialect.condition("execution_id", inIDsOfJSONArray: 1))
                ORDER BY execution_id, subscription_time, callback_topic
                """, [list]),
        ])
        var options: [ExecutionID: NotificationOptionsRecord] = [:]
        for row in results[0] {
            let id = try row.id("id") as ExecutionID
            options[id] = NotificationOptionsRecord(
                executionID: id, callbackTopics: [], subscriberIDs: row["subscriber_ids"], payloadType: row["payload_type"],
                notificationWorkflowID: row["notification_workflow_id"], traceParent: row["trace_parent"])
        }
        for row in results.dropFirst().first ?? [] {
            let id = try row.id("execution_id") as ExecutionID
            options[id]?.callbackTopics.append(try row.string("callback_topic"))
        }
        return options
    }

    private static func callbackTopicsStatement(_ executionID: ExecutionID) -> SQLStatement {
        SQLStatement(
            "SELECT callback_topic FROM execution_subscription WHERE execution_id = $1 ORDER BY subscription_time, callback_topic",
            [.id(executionID)])
    }

    /// How many executions are in each status.
    public func counts() async throws -> [ExecutionStatus: Int] {
        var counts: [ExecutionStatus: Int] = [:]
        for row in try await database.read("SELECT status, count(*) AS total FROM pipeline_execution GROUP BY status") {
            if let status = ExecutionStatus(rawValue: try row.string("status")) { counts[status] = try row.int("total") }
        }
        return counts
    }

    /// The progress history of an execution, oldest first.
    public func progressEvents(executionID: ExecutionID) async throws -> [ProgressEventRecord] {
        try await database.read(
            "SELECT \(ProgressEventRecord.columns) FROM progress_event WHERE execution_id = $1 ORDER BY sequence_number",
            .id(executionID)
        ).map(ProgressEventRecord.init(row:))
    }

    // MARK: Transitions

    /// Writes one transition. Throws ``DatabaseError/conflict(_:)`` — and writes nothing — when
    /// the execution is no longer at `expectedVersion` or a consumed timer was moved or removed.
    public func apply(_ transition: ExecutionTransition) async throws {
        let statements = ExecutionStatements.transition(transition, dialect: dialect)
        try await database.transaction { session in
            for (statement, expectation) in statements {
                session.enqueue(statement, expectedRows: expectation?.rows, conflictMessage: expectation?.message ?? "")
            }
        }
    }

    // MARK: Listings for the API

    /// Executions newest first, a page at a time, and how many match in all.
    public func list(matching filter: ExecutionFilter, limit: Int, offset: Int) async throws -> (
        records: [ExecutionRecord], total: Int
    ) {
        var conditions = SQLConditions()
        if let pipelineID = filter.pipelineID { conditions.add("pipeline_id =", .id(pipelineID)) }
        if let status = filter.status { conditions.add("status =", .text(status.rawValue)) }
        if let initiator = filter.initiator { conditions.add("initiator =", .text(initiator)) }
        if let from = filter.createdFrom { conditions.add("created_at >=", .date(from)) }
        if let until = filter.createdUntil { conditions.add("created_at <=", .date(until)) }
        if let ownerID = filter.ownerID { conditions.add("user_id =", .text(ownerID)) }
        let whereClause = conditions.whereClause
        let filterBinds = conditions.binds
        let results = try await database.read([
            SQLStatement(
                "SELECT \(ExecutionRecord.columns) FROM pipeline_execution \(whereClause) ORDER BY created_at DESC, id "
                    + "LIMIT $\(filterBinds.count + 1) OFFSET $\(filterBinds.count + 2)",
                filterBinds + [.integer(max(0, limit)), .integer(max(0, offset))]
            ),
            SQLStatement("SELECT count(*) AS total FROM pipeline_execution \(whereClause)", filterBinds),
        ])
        return (try results[0].map(ExecutionRecord.init(row:)), try results[1].first?.int("total") ?? 0)
    }

    /// Progress events of an execution, newest first, a page at a time, and how many match in all.
    public func progressEvents(executionID: ExecutionID, matching filter: ProgressEventFilter, limit: Int, offset: Int) async throws -> (
        events: [ProgressEventRecord], total: Int
    ) {
        var conditions = SQLConditions()
        conditions.add("execution_id =", .id(executionID))
        if let kind = filter.kind { conditions.add("event_type =", .text(kind.rawValue)) }
        if let from = filter.from { conditions.add("timestamp >=", .date(from)) }
        if let until = filter.until { conditions.add("timestamp <=", .date(until)) }
        let whereClause = conditions.whereClause
        let filterBinds = conditions.binds
        let results = try await database.read([
            SQLStatement(
                "SELECT \(ProgressEventRecord.columns) FROM progress_event \(whereClause) ORDER BY sequence_number DESC "
                    + "LIMIT $\(filterBinds.count + 1) OFFSET $\(filterBinds.count + 2)",
                filterBinds + [.integer(max(0, limit)), .integer(max(0, offset))]
            ),
            SQLStatement("SELECT count(*) AS total FROM progress_event \(whereClause)", filterBinds),
        ])
        return (try results[0].map(ProgressEventRecord.init(row:)), try results[1].first?.int("total") ?? 0)
    }
}
