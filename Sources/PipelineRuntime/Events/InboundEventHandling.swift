import BudJSON
import BudPipelineHost
public import Foundation
public import InboundEvents
import Logging
import PipelineEngine
import PluginSchema
import Storage
import Telemetry

extension ExecutionRuntime {
    /// Handles an event from `/workflow-events`: the awaiting step whose external id it carries
    /// gets it through its action's `on_event` (complete, progress or ignore, applied like any
    /// other input), then the enabled event triggers of its type fire. An event whose workflow id
    /// no step awaits yet is parked for the step that will
    /// (``RuntimeConfiguration/parkedEventWindow``). An event id seen before does nothing. Returns
    /// once the effects are stored; throws ``InboundEventError/retryLater(_:)`` when the event
    /// should be delivered again (nothing was lost by handling it partly: a step it completed no
    /// longer awaits, so a redelivery passes it by).
    public func handle(_ event: InboundEvent, now: Date = Date()) async throws(InboundEventError) -> InboundEventReport {
        do {
            let report = try await handleUncounted(event, now: now)
            if metrics.enabled { metrics.inboundEvents.increment(report.outcomeLabel) }
            return report
        } catch {
            if metrics.enabled { metrics.inboundEvents.increment("retry_later") }
            throw error
        }
    }

    /// Counts an event that never reached the runtime: `malformed` (not an event any service
    /// sends) is the only such outcome.
    public func countInboundEvent(outcome: String) {
        if metrics.enabled { metrics.inboundEvents.increment(outcome) }
    }

    private func handleUncounted(_ event: InboundEvent, now: Date) async throws(InboundEventError) -> InboundEventReport {
        var report = InboundEventReport()
        // Deaths of earlier processes are counted before any step is given to its plugin again.
        await countInterruptionsAtStart()
        do {
            if let id = event.id, try await store.inboundEvents.isProcessed(id: id) {
                report.duplicate = true
                return report
            }
            if let workflowID = event.workflowID {
                let steps = try await store.inboundEvents.stepsAwaitingEvent(externalWorkflowID: workflowID)
                if steps.isEmpty {
                    try await park(event, workflowID: workflowID, now: now)
                    report.parked = true
                } else {
                    try await route(event, to: steps, workflowID: workflowID, report: &report)
                }
            }
            report.triggers = try await fireEventTriggers(for: event, now: now)
            if let id = event.id {
                let outcome: JSONValue = [
                    "routed": .bool(report.routed), "step_completed": .bool(report.stepCompleted),
                    "triggers": .int(report.triggers?.count ?? 0),
                ]
                try await store.inboundEvents.recordProcessed(id: id, source: event.source, type: event.type, outcome: outcome, at: now)
            }
        } catch let error as InboundEventError {
            throw error
        } catch {
            throw .retryLater("\(error)")
        }
        return report
    }

    /// Gives the event to the actions of the steps awaiting `workflowID` and applies what they make
    /// of it. `stepCompleted` says whether the event finished a step as stored: an event that lost
    /// a race (another event, a timeout or a cancellation settled the step first) is routed but
    /// completes nothing.
    private func route(
        _ event: InboundEvent, to steps: [StepRecord], workflowID: String, report: inout InboundEventReport
    ) async throws {
        for step in steps {
            if step.interruptions >= configuration.interruptionLimit {
                // The process died on this step too often: fail it without calling its plugin.
                let message = interruptionMessage(count: step.interruptions, action: step.state.action)
                report.routed = true
                if try await apply(.stepInterrupted(stepID: step.state.stepID, error: message), to: step.executionID) {
                    report.stepCompleted = true
                }
                continue
            }
            guard let outcome = try await deliver(event, to: step, externalWorkflowID: workflowID) else { continue }
            report.routed = true
            switch outcome {
            case .complete(let status, let outputs, let error):
                let completion = ExecutionInput.eventCompletedStep(
                    stepID: step.state.stepID, status: status, outputs: outputs, error: error)
                if try await apply(completion, to: step.executionID) { report.stepCompleted = true }
            case .updateProgress(let percent, let eta, let message):
                try await apply(
                    .stepProgress(stepID: step.state.stepID, percent: percent, etaSeconds: eta, message: message), to: step.executionID)
            case .ignore: break
            }
        }
    }

    /// Keeps an event no step awaits yet. Should a step have started waiting meanwhile (and
    /// looked for parked events before this one was stored), it is handed over at once.
    private func park(_ event: InboundEvent, workflowID: String, now: Date) async throws {
        try await store.inboundEvents.park(
            ParkedInboundEvent(externalWorkflowID: workflowID, eventID: event.id, source: event.source, body: event.body, receivedAt: now))
        if try await !store.inboundEvents.stepsAwaitingEvent(externalWorkflowID: workflowID).isEmpty {
            await deliverParkedEvents(for: workflowID)
        }
    }

    /// Hands the events parked for `workflowID` to the steps now awaiting it, oldest first. Called
    /// after a step starts waiting. An event whose handling fails for now is parked again.
    func deliverParkedEvents(for workflowID: String) async {
        let now = Date()
        let parked: [ParkedInboundEvent]
        do {
            parked = try await store.inboundEvents.takeParked(
                externalWorkflowID: workflowID, receivedAfter: now.addingTimeInterval(-(configuration.parkedEventWindow / .seconds(1))))
        } catch {
            logger.warning("could not read parked events", metadata: ["workflow_id": "\(workflowID)", "error": "\(error)"])
            return
        }
        for (index, entry) in parked.enumerated() {
            let event = InboundEvent(parked: entry)
            var report = InboundEventReport()
            do {
                let steps = try await store.inboundEvents.stepsAwaitingEvent(externalWorkflowID: workflowID)
                try await route(event, to: steps, workflowID: workflowID, report: &report)
                logger.debug(
                    "parked event delivered",
                    metadata: ["workflow_id": "\(workflowID)", "routed": "\(report.routed)", "step_completed": "\(report.stepCompleted)"])
            } catch {
                logger.warning(
                    "a parked event could not be delivered yet; parked again",
                    metadata: ["workflow_id": "\(workflowID)", "error": "\(error)"])
                for later in parked[index...] { try? await store.inboundEvents.park(later) }
                return
            }
        }
    }

    /// Gives the event to the action of an awaiting step. `nil` when no plugin action can take it
    /// (the action is built in or no longer loaded): the event is ignored and the step keeps
    /// waiting. When the plugin breaks the protocol (its answer is not a valid outcome), the event
    /// fails the step with the plugin's fault as the reason, rather than being lost while the step
    /// waits on.
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
            executionID: step.executionID.rawValue,
            stepID: step.state.stepID,
            stepExecutionID: step.id,
            externalWorkflowID: externalWorkflowID,
            eventType: event.type,
            event: .object(event.body),
            stepOutputs: step.state.outputs ?? [:]
        )
        do {
            return try await plugins.handleEvent(
                request, context: PluginCallContext(executionID: step.executionID.rawValue, stepID: step.state.stepID),
                timeout: configuration.eventCallTimeout)
        } catch {
            switch error.kind {
            case .retryRequested, .shuttingDown, .timedOut, .timedOutWaiting, .pluginUnhealthy, .pluginCrashed:
                throw .retryLater(error.message)
            case .protocolViolation:
                logger.error(
                    "on_event broke the plugin protocol; the step fails", metadata: metadata.merging(["error": "\(error.message)"]) { $1 })
                return .complete(status: .failed, outputs: [:], error: error.message)
            case .unknownAction, .cancelled:
                logger.warning(
                    "on_event failed; the event is ignored", metadata: metadata.merging(["error": "\(error.message)"]) { $1 })
                return nil
            }
        }
    }

    /// Starts the pipelines of the enabled event triggers for the event's type whose filters all
    /// match (a dotted path of the event equal to the expected value). `nil` for events that cannot
    /// fire triggers: without a type, and `workflow_completed`, which reports on awaited work and is
    /// not an event type a trigger can name.
    ///
    /// A trigger a user owns fires only for events about that user (``InboundEvent/userID``):
    /// otherwise any user could receive every other user's events in its own runs. The service's
    /// triggers (no owner) fire for every event.
    private func fireEventTriggers(for event: InboundEvent, now: Date) async throws -> [TriggerFiring]? {
        guard event.type != "unknown", event.type != "workflow_completed" else { return nil }
        let triggers = try await store.triggers.list(EventTriggerRecord.self, matching: TriggerFilter(enabled: true, eventType: event.type))
        let eventUser = event.userID
        var firings: [TriggerFiring] = []
        for trigger in triggers
        where (trigger.userID == nil || trigger.userID?.lowercased() == eventUser)
            && trigger.filters.allSatisfy({ event.value(atDottedPath: $0.key) ?? .null == $0.value })
        {
            var params = trigger.params
            params["event"] = .object(event.body)
            params["_trigger"] = [
                "type": "event", "trigger_id": .string(trigger.id), "trigger_name": .string(trigger.name),
                "event_type": .string(event.type), "triggered_at": .string(SQLTimestamp.format(now)),
            ]
            do {
                let record = try await startSavedPipeline(
                    trigger.pipelineID, ExecutionRequest(dag: .null, params: params, initiator: "event", ownerID: trigger.userID))
                try await store.triggers.recordFiring(EventTriggerRecord.self, id: trigger.id, at: now)
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
