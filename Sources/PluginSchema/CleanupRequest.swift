public import BudJSON

/// Why the host abandons a step that is executing or awaiting an event.
public enum CleanupReason: String, Sendable, CaseIterable {
    /// The execution was cancelled.
    case cancelled
    /// The step ran or waited longer than its timeout.
    case timedOut = "timed_out"
}

/// The input of an action's `cleanup` function: undo or stop external work of an abandoned step.
public struct CleanupRequest: Sendable, Equatable {
    public var action: String
    public var executionID: String
    public var stepID: String
    public var stepExecutionID: String?
    /// The id the step returned with AWAIT_EVENT, when it was awaiting one.
    public var externalWorkflowID: String?
    public var reason: CleanupReason

    public init(
        action: String,
        executionID: String,
        stepID: String,
        stepExecutionID: String? = nil,
        externalWorkflowID: String? = nil,
        reason: CleanupReason
    ) {
        self.action = action
        self.executionID = executionID
        self.stepID = stepID
        self.stepExecutionID = stepExecutionID
        self.externalWorkflowID = externalWorkflowID
        self.reason = reason
    }

    public init(json: JSONValue) throws(SchemaError) {
        let reader = try ObjectReader(json)
        let reasonName = try reader.string("reason") ?? CleanupReason.cancelled.rawValue
        guard let reason = CleanupReason(rawValue: reasonName) else {
            throw SchemaError("reason '\(reasonName)' must be cancelled or timed_out")
        }
        self.init(
            action: try reader.string("action") ?? "",
            executionID: try reader.string("execution_id") ?? "",
            stepID: try reader.string("step_id") ?? "",
            stepExecutionID: try reader.string("step_execution_id"),
            externalWorkflowID: try reader.string("external_workflow_id"),
            reason: reason
        )
    }

    public var json: JSONValue {
        var object = JSONObject.stepIdentity(action: action, executionID: executionID, stepID: stepID, stepExecutionID: stepExecutionID)
        object.setIfPresent("external_workflow_id", externalWorkflowID.map(JSONValue.string))
        object["reason"] = .string(reason.rawValue)
        return .object(object)
    }
}
