import BudJSON
import BudPipelineHost
public import Foundation
import Logging
import PipelineEngine
import PluginSchema
import Storage

extension ExecutionRuntime {
    /// Handles an event from `/workflow-events`: the awaiting step whose external id it carries
    /// gets it through its action's `on_event` (complete, progress or ignore, applied like any
    /// other input), then the enabled event triggers of its type fire. An event id seen before
    /// does nothing. Returns once the effects are stored; throws ``InboundEventError/retryLater(_:)``
    /// when the event should be delivered again (nothing was lost by handling it partly: a step it
    /// completed no longer awaits, so a redelivery passes it by).
    public func handle(_ event: InboundEvent, now: Date = Date()) async throws(InboundEventError) -> InboundEventReport {
        var report = InboundEventReport()
        do {
            if let id = event.id, try await store.inboundEventProcessed(id: id) {
                report.duplicate = true
                return report
            }
            if let workflowID = event.workflowID {
                for step in try await store.stepsAwaitingEvent(externalWorkflowID: workflowID) {
                    guard let outcome = try await deliver(event, to: step, externalWorkflowID: workflowID) else { continue }
                    report.routed = true
                    switch outcome {
                    case .complete(let status, let outputs, let error):
                        try await apply(
                            .eventCompletedStep(stepID: step.state.stepID, status: status, outputs: outputs, error: error),
                            to: step.executionID)
                        report.stepCompleted = true
                    case .updateProgress(let percent, let eta, let message):
                        try await apply(
                            .stepProgress(stepID: step.state.stepID, percent: percent, etaSeconds: eta, message: message),
                            to: step.executionID)
                    case .ignore: break
                    }
                }
            }
            report.triggers = try await fireEventTriggers(for: event, now: now)
            if let id = event.id {
                let outcome: JSONValue = [
                    "routed": .bool(report.routed), "step_completed": .bool(report.stepCompleted),
                    "triggers": .int(report.triggers?.count ?? 0),
                ]
                try await store.recordInboundEvent(id: id, source: event.source, type: event.type, outcome: outcome, at: now)
            }
        } catch let error as InboundEventError {
            throw error
        } catch {
            throw .retryLater("\(error)")
        }
        return report
    }

    /// Gives the event to the action of an awaiting step. `nil` when no plugin action can take it
    /// (the action is built in or no longer loaded, or its plugin broke the protocol): the
    /// reference ignores such events too.
    private func deliver(_ event: InboundEvent, to step: StepRecord, externalWorkflowID: String) async throws(InboundEventError)
        -> EventOutcome?
    {
        let metadata: Logger.Metadata = [
            "execution_id": "\(step.executionID)", "step_id": "\(step.state.stepID)", "action": "\(step.state.action)",
        ]
        guard plugins.action(step.state.action) != nil else {
            logger.warning("an event arrived for a step whose action takes no events; ignored", metadata: metadata)
            return nil
        }
        let request = EventRequest(
            action: step.state.action,
            executionID: step.executionID,
            stepID: step.state.stepID,
            stepExecutionID: step.id,
            externalWorkflowID: externalWorkflowID,
            eventType: event.type,
            event: .object(event.body),
            stepOutputs: step.state.outputs ?? [:]
        )
        do {
            return try await plugins.handleEvent(
                request, context: PluginCallContext(executionID: step.executionID, stepID: step.state.stepID),
                timeout: configuration.eventCallTimeout)
        } catch {
            switch error.kind {
            case .retryRequested, .shuttingDown, .timedOut, .timedOutWaiting, .pluginUnhealthy:
                throw .retryLater(error.message)
            case .unknownAction, .protocolViolation, .cancelled:
                logger.warning(
                    "on_event failed; the event is ignored", metadata: metadata.merging(["error": "\(error.message)"]) { $1 })
                return nil
            }
        }
    }

    /// Starts the pipelines of the enabled event triggers for the event's type whose filters all
    /// match (a dotted path of the event equal to the expected value). `nil` for events that cannot
    /// fire triggers: without a type, and `workflow_completed` (as in the reference).
    private func fireEventTriggers(for event: InboundEvent, now: Date) async throws -> [TriggerFiring]? {
        guard event.type != "unknown", event.type != "workflow_completed" else { return nil }
        let triggers = try await store.triggers(EventTriggerRecord.self, matching: TriggerFilter(enabled: true, eventType: event.type))
        var firings: [TriggerFiring] = []
        for trigger in triggers where trigger.filters.allSatisfy({ event.value(atDottedPath: $0.key) ?? .null == $0.value }) {
            var params = trigger.params
            params["event"] = .object(event.body)
            params["_trigger"] = [
                "type": "event", "trigger_id": .string(trigger.id), "trigger_name": .string(trigger.name),
                "event_type": .string(event.type), "triggered_at": .string(SQLTimestamp.format(now)),
            ]
            do {
                let record = try await startSavedPipeline(
                    trigger.pipelineID, ExecutionRequest(dag: .null, params: params, initiator: "event"))
                try await store.recordFiring(EventTriggerRecord.self, id: trigger.id, at: now)
                firings.append(
                    TriggerFiring(
                        triggerID: trigger.id, triggerName: trigger.name, pipelineID: trigger.pipelineID, executionID: record.id, error: nil
                    ))
            } catch let error as ExecutionStartError {
                firings.append(
                    TriggerFiring(
                        triggerID: trigger.id, triggerName: trigger.name, pipelineID: trigger.pipelineID, executionID: nil,
                        error: error.description))
            }
        }
        return firings
    }
}
