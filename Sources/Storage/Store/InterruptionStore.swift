import BudJSON
public import Foundation
public import PipelineEngine

/// What the store keeps of processes that died at work (see docs/operations.md, "Crash loops").
public struct InterruptionStore: StorePart {
    let database: any Database

    /// Counts one more death of a process while it worked on `stepIDs` of the execution, or on the
    /// execution itself when `stepIDs` is empty. Unknown ids change nothing.
    public func record(executionID: ExecutionID, stepIDs: [String]) async throws {
        try await database.transaction { session in
            if stepIDs.isEmpty {
                try session.execute(
                    "UPDATE pipeline_execution SET interruptions = interruptions + 1 WHERE id = $1", .id(executionID))
            }
            for stepID in stepIDs {
                try session.execute(
                    "UPDATE step_execution SET interruptions = interruptions + 1 WHERE execution_id = $1 AND step_id = $2",
                    .id(executionID), .text(stepID))
            }
        }
    }

    /// Ends an execution that processes kept dying on, without running it through the engine
    /// again: the execution is FAILED with `reason`, its steps that were being worked on when the
    /// processes died FAILED with it, its other unfinished steps CANCELLED, its timers and claims
    /// dropped, and `notifications` queued in the outbox — all in one transaction. Returns false
    /// when the execution had finished already (nothing is changed then).
    @discardableResult
    public func quarantine(executionID: ExecutionID, reason: String, notifications: [OutboxEvent], now: Date) async throws -> Bool {
        let info: JSONValue = ["error": .string(reason), "message": .string(reason)]
        return try await database.transaction { session in
            let ended = try session.execute(
                """
                UPDATE pipeline_execution SET status = 'FAILED', end_time = $2, error_info = $3, updated_at = $2, version = version + 1
                WHERE id = $1 AND status IN ('PENDING', 'RUNNING')
                """,
                .id(executionID), .date(now), .json(info))
            guard ended == 1 else { return false }
            try session.execute(
                """
                UPDATE step_execution SET
                    status = CASE WHEN interruptions > 0 THEN 'FAILED' ELSE 'CANCELLED' END,
                    error_message = CASE WHEN interruptions > 0 THEN $2 ELSE 'Execution stopped: its process kept dying' END,
                    end_time = $3, awaiting_event = $4, lease_owner = NULL, lease_expires_at = NULL, dispatch = NULL,
                    updated_at = $3, version = version + 1
                WHERE execution_id = $1 AND status IN ('PENDING', 'RUNNING', 'AWAITING_EVENT', 'RETRYING')
                """,
                .id(executionID), .text(reason), .date(now), .bool(false))
            try session.execute("DELETE FROM execution_timer WHERE execution_id = $1", .id(executionID))
            if !notifications.isEmpty {
                let insert = OutboxStore.insert(notifications, executionID: executionID, now: now, dialect: dialect)
                try session.execute(insert)
            }
            return true
        }
    }
}
