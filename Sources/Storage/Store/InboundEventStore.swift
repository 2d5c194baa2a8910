public import BudJSON
public import Foundation

/// Inbound events (`/workflow-events`): the steps waiting for them, the ids already handled, and
/// the events parked until a step waits for them.
public struct InboundEventStore: StorePart {
    let database: any Database

    /// The steps awaiting an event with `externalWorkflowID`, oldest execution first (normally one).
    public func stepsAwaitingEvent(externalWorkflowID: String) async throws -> [StepRecord] {
        try await database.read(
            "SELECT \(StepRecord.columns) FROM step_execution WHERE status = 'AWAITING_EVENT' AND external_workflow_id = $1 "
                + "ORDER BY created_at, id",
            .text(externalWorkflowID)
        ).map(StepRecord.init(row:))
    }

    /// Whether an event with this id was handled before.
    public func isProcessed(id: String) async throws -> Bool {
        try await !database.read("SELECT 1 AS seen FROM processed_inbound_event WHERE event_id = $1", .text(StoredText.key(id))).isEmpty
    }

    /// Remembers that the event `id` was handled and what came of it; a second record of the same
    /// id changes nothing.
    public func recordProcessed(id: String, source: String?, type: String?, outcome: JSONValue, at now: Date) async throws {
        try await database.transaction { session in
            session.enqueue(
                SQLStatement(
                    "INSERT INTO processed_inbound_event (event_id, source, event_type, outcome, processed_at) "
                        + "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
                    [
                        .text(StoredText.key(id)), .optional(source.map { StoredText.truncated($0, to: 255) }, SQLValue.text),
                        .optional(type.map { StoredText.truncated($0, to: 255) }, SQLValue.text), .json(outcome), .date(now),
                    ]
                ))
        }
    }

    /// Forgets handled event ids older than `cutoff`; returns how many.
    @discardableResult
    public func forgetProcessed(processedBefore cutoff: Date) async throws -> Int {
        try await database.transaction { session in
            try session.execute("DELETE FROM processed_inbound_event WHERE processed_at < $1", .date(cutoff))
        }
    }

    /// Keeps an event that no step awaits yet, for ``takeParked(externalWorkflowID:receivedAfter:)``.
    public func park(_ event: ParkedInboundEvent) async throws {
        try await database.transaction { session in
            session.enqueue(
                SQLStatement(
                    "INSERT INTO parked_inbound_event (external_workflow_id, event_id, source, body, received_at) VALUES ($1, $2, $3, $4, $5)",
                    [
                        .text(StoredText.key(event.externalWorkflowID)),
                        .optional(event.eventID.map { StoredText.key($0) }, SQLValue.text),
                        .optional(event.source.map { StoredText.truncated($0, to: 255) }, SQLValue.text), .json(.object(event.body)),
                        .date(event.receivedAt),
                    ]
                ))
        }
    }

    /// Removes and returns, in arrival order, the events parked for `externalWorkflowID` since
    /// `cutoff`. Each is returned to one caller only, however many take at once.
    public func takeParked(externalWorkflowID: String, receivedAfter cutoff: Date) async throws -> [ParkedInboundEvent] {
        let rows = try await database.transaction { session in
            try session.query(
                "DELETE FROM parked_inbound_event WHERE external_workflow_id = $1 AND received_at >= $2 "
                    + "RETURNING id, external_workflow_id, event_id, source, body, received_at",
                .text(StoredText.key(externalWorkflowID)), .date(cutoff))
        }
        let events = try rows.map { row in
            (
                id: try row.int("id"),
                event: ParkedInboundEvent(
                    externalWorkflowID: try row.string("external_workflow_id"), eventID: row["event_id"],
                    source: row["source"], body: try row.json("body").objectValue ?? [:],
                    receivedAt: try row.date("received_at"))
            )
        }
        return events.sorted { $0.id < $1.id }.map(\.event)
    }

    /// Forgets parked events older than `cutoff` (no step came to wait for them); returns how many.
    @discardableResult
    public func forgetParked(receivedBefore cutoff: Date) async throws -> Int {
        try await database.transaction { session in
            try session.execute("DELETE FROM parked_inbound_event WHERE received_at < $1", .date(cutoff))
        }
    }
}

/// An event kept until a step awaits its workflow id.
public struct ParkedInboundEvent: Sendable, Equatable {
    public var externalWorkflowID: String
    public var eventID: String?
    public var source: String?
    /// The event, unwrapped from its envelope.
    public var body: JSONObject
    public var receivedAt: Date

    public init(externalWorkflowID: String, eventID: String?, source: String?, body: JSONObject, receivedAt: Date) {
        self.externalWorkflowID = externalWorkflowID
        self.eventID = eventID
        self.source = source
        self.body = body
        self.receivedAt = receivedAt
    }
}
