import BudJSON
import InboundEvents
public import PipelineEngine
import Storage

extension InboundEvent {
    /// An event parked until a step awaited its workflow id.
    init(parked: ParkedInboundEvent) {
        self.init(id: parked.eventID, source: parked.source, body: parked.body, workflowID: parked.externalWorkflowID)
    }
}

/// What handling an inbound event did.
public struct InboundEventReport: Sendable, Equatable {
    /// An awaiting step's action saw the event.
    public var routed = false
    /// The event finished that step.
    public var stepCompleted = false
    /// The event id was handled before; nothing was done.
    public var duplicate = false
    /// No step awaited the event's workflow id yet: the event is kept for the step that will.
    public var parked = false
    /// Event triggers fired by the event; `nil` when its type cannot fire triggers.
    public var triggers: [TriggerFiring]?

    public init() {}

    /// The outcome the metrics count the event as.
    var outcomeLabel: String {
        if duplicate { return "duplicate" }
        if stepCompleted { return "step_completed" }
        if routed { return "routed" }
        if parked { return "parked" }
        return "unrouted"
    }
}

/// One event trigger that an event matched.
public struct TriggerFiring: Sendable, Equatable {
    public var triggerID: String
    public var triggerName: String
    public var pipelineID: PipelineID
    /// The execution started, or `nil` when it could not start.
    public var executionID: ExecutionID?
    public var error: String?

    public init(triggerID: String, triggerName: String, pipelineID: PipelineID, executionID: ExecutionID?, error: String?) {
        self.triggerID = triggerID
        self.triggerName = triggerName
        self.pipelineID = pipelineID
        self.executionID = executionID
        self.error = error
    }
}
