import BudJSON
import Foundation
import PipelineEngine
import Storage

/// Turns the engine's events into what a transition stores: outbox events for publishing and the
/// progress history the API lists; and every event, for the live streams of this process.
struct EventRecords {
    let executionID: ExecutionID
    let pipelineID: PipelineID?
    /// Whether the execution has topics to publish to. Without, nothing goes to the outbox.
    let publishes: Bool
    let now: Date
    /// The last progress event number written; advanced by each progress event made.
    var sequence: Int
    var progressEvents: [ProgressEventRecord] = []
    /// The events to publish: those that make notifications, when the execution has topics.
    var outbox: [OutboxEvent] = []
    /// Every event, in order, for the in-process bus once the transition is committed.
    var live: [OutboxEvent] = []

    init(executionID: ExecutionID, pipelineID: PipelineID?, publishes: Bool, now: Date, sequence: Int) {
        self.executionID = executionID
        self.pipelineID = pipelineID
        self.publishes = publishes
        self.now = now
        self.sequence = sequence
    }

    /// Records a transition's events in order; `execution` is the execution's state after it.
    ///
    /// A step's completion is recorded with the progress the execution reached through it (the
    /// progress report that follows it), not the transition's final progress: when one transition
    /// settles several steps, the stored percentages still never go down.
    mutating func record(_ events: [EngineEvent], execution: ExecutionSnapshot) {
        var progressAfter = [Double](repeating: execution.progress, count: events.count)
        var next = execution.progress
        for index in events.indices.reversed() {
            progressAfter[index] = next
            if case .progress(let percent, _, _) = events[index] { next = percent }
        }
        for (event, progress) in zip(events, progressAfter) { record(event, progress: progress, execution: execution) }
    }

    /// Records one event; `execution` is the execution's state after the transition, `progress`
    /// its progress as of this event.
    private mutating func record(_ event: EngineEvent, progress reached: Double, execution: ExecutionSnapshot) {
        var payload: JSONObject = ["execution_id": .string(executionID.rawValue), "timestamp": .string(SQLTimestamp.format(now))]
        if let pipelineID { payload["pipeline_id"] = .string(pipelineID.rawValue) }
        let type: String
        switch event {
        case .executionStarted:
            type = "execution_started"
        case .stepStarted(let stepID, let name, let sequence, let attempt):
            type = "step_started"
            payload.merge([
                "step_id": .string(stepID), "step_name": .string(name), "sequence_number": .int(sequence), "attempt": .int(attempt),
            ])
        case .stepCompleted(let stepID, let name, let outputs, let duration):
            type = "step_completed"
            payload.merge([
                "step_id": .string(stepID), "step_name": .string(name), "outputs": .object(outputs),
                "duration_seconds": duration.map(JSONValue.double) ?? .null, "progress": .double(reached),
            ])
            progress(
                .stepCompleted, percent: reached, eta: nil, description: "Completed: \(name)",
                details: [
                    "step_id": .string(stepID), "step_name": .string(name), "duration_seconds": duration.map(JSONValue.double) ?? .null,
                ])
        case .stepFailed(let stepID, let name, let status, let error, let tolerated):
            type = "step_failed"
            payload.merge([
                "step_id": .string(stepID), "step_name": .string(name), "status": .string(status.rawValue), "error": .string(error),
                "tolerated": .bool(tolerated),
            ])
        case .stepSkipped(let stepID, let name, let reason):
            type = "step_skipped"
            payload.merge(["step_id": .string(stepID), "step_name": .string(name), "reason": .string(reason)])
        case .stepRetrying(let stepID, let name, let nextAttempt, let delay, let error):
            type = "step_retrying"
            payload.merge([
                "step_id": .string(stepID), "step_name": .string(name), "next_attempt": .int(nextAttempt), "delay_seconds": .double(delay),
                "error": .string(error),
            ])
        case .stepAwaitingEvent(let stepID, let name, let externalID):
            type = "step_awaiting_event"
            payload.merge(["step_id": .string(stepID), "step_name": .string(name), "external_workflow_id": .string(externalID)])
        case .progress(let percent, let eta, let stepID):
            type = "workflow_progress"
            payload.merge([
                "progress": .double(percent), "eta_seconds": eta.map(JSONValue.int) ?? .null,
                "step_id": stepID.map(JSONValue.string) ?? .null,
            ])
            // One stored row per change: an ETA report is one `eta_update` (it holds the percentage
            // too); a percentage that a row of this transition already holds (a step's completion)
            // is not stored again.
            let details: JSONObject = stepID.map { ["step_id": .string($0)] } ?? [:]
            if let eta {
                progress(.etaUpdate, percent: percent, eta: eta, description: nil, details: details.merging(["reason": "step_report"]))
            } else if progressEvents.last?.progress != min(100, max(0, percent)) {
                progress(.workflowProgress, percent: percent, eta: nil, description: nil, details: details)
            }
        case .executionCompleted(let outputs, let stepOutputs):
            type = "workflow_completed"
            payload.merge(["outputs": .object(outputs), "step_outputs": .object(stepOutputs), "success": true])
            finished(success: true, message: "Completed", execution: execution)
        case .executionFailed(let error):
            type = "workflow_failed"
            payload.merge(["error": .string(error), "success": false])
            finished(success: false, message: error, execution: execution)
        case .executionCancelled(let reason):
            type = "workflow_cancelled"
            payload.merge(["reason": .string(reason), "success": false])
            finished(success: false, message: reason, execution: execution)
        }
        payload["type"] = .string(type)
        let event = OutboxEvent(eventType: type, payload: .object(payload))
        live.append(event)
        if publishes, Notifications.notifiedEventTypes.contains(type) { outbox.append(event) }
    }

    private mutating func finished(success: Bool, message: String, execution: ExecutionSnapshot) {
        progress(
            .workflowCompleted, percent: success ? 100 : execution.progress, eta: 0, description: message,
            details: [
                "success": .bool(success), "status": .string(execution.status.rawValue),
                "completed_at": .string(SQLTimestamp.format(execution.endedAt ?? now)),
            ])
    }

    private mutating func progress(
        _ kind: ProgressEventRecord.Kind,
        percent: Double,
        eta: Int?,
        description: String?,
        details: JSONObject
    ) {
        sequence += 1
        progressEvents.append(
            ProgressEventRecord(
                id: UUIDText.random(),
                executionID: executionID,
                kind: kind,
                progress: min(100, max(0, percent)),
                etaSeconds: eta.map { max(0, $0) },
                currentStepDescription: description.map { StoredText.truncated($0, to: 500) },
                details: details,
                timestamp: now,
                sequenceNumber: sequence,
                createdAt: now
            )
        )
    }
}

extension JSONObject {
    fileprivate mutating func merge(_ other: JSONObject) {
        self = merging(other)
    }
}
