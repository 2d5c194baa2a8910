public import BudJSON

/// The input of an action's `on_event` function: an external event for a step that awaits one.
public struct EventRequest: Sendable, Equatable {
    public var action: String
    public var executionID: String
    public var stepID: String
    public var stepExecutionID: String?
    /// The id the step returned with AWAIT_EVENT; the event carried it.
    public var externalWorkflowID: String
    /// The event's `type` field, or `unknown`.
    public var eventType: String
    /// The event, unwrapped from its CloudEvents envelope.
    public var event: JSONValue
    /// The outputs the step stored when it started waiting.
    public var stepOutputs: JSONObject

    public init(
        action: String,
        executionID: String,
        stepID: String,
        stepExecutionID: String? = nil,
        externalWorkflowID: String,
        eventType: String,
        event: JSONValue,
        stepOutputs: JSONObject = [:]
    ) {
        self.action = action
        self.executionID = executionID
        self.stepID = stepID
        self.stepExecutionID = stepExecutionID
        self.externalWorkflowID = externalWorkflowID
        self.eventType = eventType
        self.event = event
        self.stepOutputs = stepOutputs
    }

    public init(json: JSONValue) throws(SchemaError) {
        let reader = try ObjectReader(json)
        self.init(
            action: try reader.string("action") ?? "",
            executionID: try reader.string("execution_id") ?? "",
            stepID: try reader.string("step_id") ?? "",
            stepExecutionID: try reader.string("step_execution_id"),
            externalWorkflowID: try reader.string("external_workflow_id") ?? "",
            eventType: try reader.string("event_type") ?? "unknown",
            event: reader.value("event") ?? .object([:]),
            stepOutputs: try reader.objectMember("step_outputs") ?? [:]
        )
    }

    public var json: JSONValue {
        var object = JSONObject.stepIdentity(action: action, executionID: executionID, stepID: stepID, stepExecutionID: stepExecutionID)
        object["external_workflow_id"] = .string(externalWorkflowID)
        object["event_type"] = .string(eventType)
        object["event"] = event
        object["step_outputs"] = .object(stepOutputs)
        return .object(object)
    }
}
