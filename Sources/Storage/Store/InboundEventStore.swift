public import BudJSON
public import Foundation

/// Inbound events (`/workflow-events`): the steps waiting for them and the ids already handled.
extension PipelineStore {
    /// The steps awaiting an event with `externalWorkflowID`, oldest execution first (normally one).
    public func stepsAwaitingEvent(externalWorkflowID: String) async throws -> [StepRecord] {
        try await database.read(
            "SELECT \(Self.stepColumns) FROM step_execution WHERE status = 'AWAITING_EVENT' AND external_workflow_id = $1 "
                + "ORDER BY created_at, id",
            .text(externalWorkflowID)
        ).map(Self.step)
    }

    /// Whether an event with this id was handled before.
    public func inboundEventProcessed(id: String) async throws -> Bool {
        try await !database.read("SELECT 1 AS seen FROM processed_inbound_event WHERE event_id = $1", .text(id)).isEmpty
    }

    /// Remembers that the event `id` was handled and what came of it; a second record of the same
    /// id changes nothing.
    public func recordInboundEvent(id: String, source: String?, type: String?, outcome: JSONValue, at now: Date) async throws {
        try await database.transaction { session in
            session.enqueue(
                SQLStatement(
                    "INSERT INTO processed_inbound_event (event_id, source, event_type, outcome, processed_at) "
                        + "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
                    [
                        .text(String(id.prefix(255))), .optional(source.map { String($0.prefix(255)) }, SQLValue.text),
                        .optional(type.map { String($0.prefix(255)) }, SQLValue.text), .json(outcome), .date(now),
                    ]
                ))
        }
    }

    /// Forgets handled event ids older than `cutoff`; returns how many.
    @discardableResult
    public func forgetInboundEvents(processedBefore cutoff: Date) async throws -> Int {
        try await database.transaction { session in
            try session.execute("DELETE FROM processed_inbound_event WHERE processed_at < $1", .date(cutoff))
        }
    }
}
