import BudJSON
import Foundation
import PipelineEngine

/// The SQL that writes executions: the statements of a new execution and of one transition.
/// Pure functions of their input: nothing here touches the database.
enum ExecutionStatements {
    /// A statement and, when it must change an exact number of rows, that number and the conflict
    /// message otherwise.
    typealias GuardedStatement = (statement: SQLStatement, expectation: (rows: Int, message: String)?)

    static func transition(_ transition: ExecutionTransition, dialect: SQLDialect) -> [GuardedStatement] {
        let id = SQLValue.id(transition.executionID)
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
        statements += consumedTimerDeletes(of: transition)
        for step in transition.steps { statements.append((stepUpdate(step, executionID: id, now: now), nil)) }
        return statements + records(of: transition, dialect: dialect).map { ($0, nil) }
    }

    /// Deletes of the timers a transition handled, each of which must still be as it fired.
    private static func consumedTimerDeletes(of transition: ExecutionTransition) -> [GuardedStatement] {
        transition.consumedTimers.map { timer in
            (
                SQLStatement(
                    "DELETE FROM execution_timer WHERE execution_id = $1 AND timer_key = $2 AND due_at = $3",
                    [.id(transition.executionID), .text(timer.key), .date(timer.dueAt)]
                ),
                (1, "timer \(timer.key) of execution \(transition.executionID) was moved or removed")
            )
        }
    }

    /// The rows a transition adds besides the execution and its steps: timers, progress events and
    /// outbox events.
    private static func records(of transition: ExecutionTransition, dialect: SQLDialect) -> [SQLStatement] {
        let id = SQLValue.id(transition.executionID)
        let now = SQLValue.date(transition.now)
        var statements = transition.timers.map { timerStatement($0, executionID: id, now: now) }
        if !transition.progressEvents.isEmpty { statements.append(progressEventInsert(transition.progressEvents)) }
        if !transition.outbox.isEmpty {
            statements.append(
                OutboxStore.insert(transition.outbox, executionID: transition.executionID, now: transition.now, dialect: dialect))
        }
        return statements
    }

    /// The statements of a new execution stored together with its first transition, as one: the
    /// execution and its steps are inserted as the transition leaves them (no row is written twice),
    /// then the transition's timers, progress and outbox events. The transition must be planned on
    /// the new execution (`expectedVersion` its version); timers it consumes must be among the new
    /// execution's.
    static func insert(_ new: NewExecution, startedBy transition: ExecutionTransition, dialect: SQLDialect) -> [GuardedStatement] {
        var started = new
        let execution = transition.execution
        started.record.version = transition.expectedVersion + 1
        started.record.status = execution.status
        started.record.startTime = execution.startedAt
        started.record.endTime = execution.endedAt
        started.record.progress = execution.progress
        started.record.finalOutputs = execution.outputs
        started.record.errorInfo = execution.errorInfo
        started.record.eventSequence = transition.eventSequence
        started.record.updatedAt = transition.now
        var writes: [String: StepWrite] = [:]
        for write in transition.steps { writes[write.state.stepID] = write }
        for index in started.steps.indices {
            guard let write = writes[started.steps[index].state.stepID] else { continue }
            started.steps[index].state = write.state
            started.steps[index].version += 1
            started.steps[index].updatedAt = transition.now
            started.steps[index].leaseOwner = write.lease?.owner
            started.steps[index].leaseExpiresAt = write.lease?.expiresAt
            started.steps[index].dispatch = write.lease?.dispatch
        }
        var statements: [GuardedStatement] = insert(started).map { ($0, nil) }
        statements += consumedTimerDeletes(of: transition)
        return statements + records(of: transition, dialect: dialect).map { ($0, nil) }
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
                .text(event.id), .id(event.executionID), .text(event.kind.rawValue), .double(event.progress),
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

    static func insert(_ new: NewExecution) -> [SQLStatement] {
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
                    .id(record.id), .integer(record.version), .id(record.pipelineID),
                    .json(.object(record.definitionSnapshot)),
                    .text(record.initiator), .optional(record.startTime, SQLValue.date), .optional(record.endTime, SQLValue.date),
                    .text(record.status.rawValue), .double(record.progress), .optional(record.finalOutputs) { SQLValue.json(.object($0)) },
                    .optional(record.errorInfo) { SQLValue.json(.object($0)) }, .optional(record.subscriberIDs, SQLValue.text),
                    .optional(record.payloadType, SQLValue.text), .optional(record.notificationWorkflowID, SQLValue.text),
                    .integer(record.eventSequence), .date(record.createdAt), .date(record.updatedAt),
                    .optional(record.userID, SQLValue.text), .id(record.retryOf),
                ]
            )
        ]
        let stepColumns =
            "id, execution_id, version, step_id, step_name, status, sequence_number, handler_type, retry_count, created_at, updated_at, "
            + "start_time, end_time, outputs, progress_percentage, eta_seconds, error_message, awaiting_event, external_workflow_id, "
            + "timeout_at, failure_tolerated, dispatch, lease_owner, lease_expires_at"
        let columnsPerStep = 24
        for chunk in stride(from: 0, to: new.steps.count, by: 100).map({ Array(new.steps[$0..<min($0 + 100, new.steps.count)]) }) {
            var binds: [SQLValue] = []
            var rows: [String] = []
            for step in chunk {
                let base = binds.count
                rows.append("(" + (1...columnsPerStep).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
                let state = step.state
                binds += [
                    .text(step.id), .id(step.executionID), .integer(step.version), .text(state.stepID), .text(state.name),
                    .text(state.status.rawValue), .integer(state.sequence), .text(state.action), .integer(state.attempt),
                    .date(step.createdAt), .date(step.updatedAt), .optional(state.startedAt, SQLValue.date),
                    .optional(state.endedAt, SQLValue.date), .optional(state.outputs) { SQLValue.json(.object($0)) },
                    .double(state.progress), .optional(state.etaSeconds, SQLValue.integer), .optional(state.error, SQLValue.text),
                    .bool(state.isAwaitingEvent), .optional(state.externalWorkflowID, SQLValue.text),
                    .optional(state.deadline, SQLValue.date), .bool(state.failureTolerated), .optional(step.dispatch, SQLValue.json),
                    .optional(step.leaseOwner, SQLValue.text), .optional(step.leaseExpiresAt, SQLValue.date),
                ]
            }
            statements.append(
                SQLStatement("INSERT INTO step_execution (\(stepColumns)) VALUES \(rows.joined(separator: ", "))", binds))
        }
        for topic in new.callbackTopics {
            statements.append(
                SQLStatement(
                    "INSERT INTO execution_subscription (id, execution_id, callback_topic, subscription_time, created_at) VALUES ($1, $2, $3, $4, $4)",
                    [.text(UUIDText.random()), .id(record.id), .text(topic), .date(record.createdAt)]
                )
            )
        }
        for timer in new.timers {
            statements.append(timerStatement(timer, executionID: .id(record.id), now: .date(record.createdAt)))
        }
        return statements
    }
}
