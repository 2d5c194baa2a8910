public import BudJSON

/// The input of an action's `execute` function: one attempt of one step.
public struct ExecuteRequest: Sendable, Equatable {
    /// The action type being executed.
    public var action: String
    public var executionID: String
    /// The step's id in the DAG.
    public var stepID: String
    /// Id of the stored step record, when there is one.
    public var stepExecutionID: String?
    /// Stable across re-runs of the same step attempt (for example after a host restart): pass it
    /// to external services so a repeated request does not repeat the work.
    public var idempotencyKey: String
    /// 0 for the first attempt, 1 for the first retry, ...
    public var retryCount: Int
    /// The step's parameters with every template resolved.
    public var params: JSONObject
    /// The execution's parameters.
    public var workflowParams: JSONObject
    /// Outputs of the steps that have finished, by step id.
    public var stepOutputs: JSONObject
    /// Time the step may take, when limited.
    public var timeoutSeconds: Int?
    /// The user the execution belongs to, set by the host from the execution's owner (never from
    /// parameters a caller wrote); `nil` for an execution the service started for nobody. A plugin
    /// that acts for a user on another service acts for this one. `workflow_params.user_id` always
    /// equals it (or is absent).
    public var userID: String?

    public init(
        action: String,
        executionID: String,
        stepID: String,
        stepExecutionID: String? = nil,
        idempotencyKey: String,
        retryCount: Int = 0,
        params: JSONObject = [:],
        workflowParams: JSONObject = [:],
        stepOutputs: JSONObject = [:],
        timeoutSeconds: Int? = nil,
        userID: String? = nil
    ) {
        self.action = action
        self.executionID = executionID
        self.stepID = stepID
        self.stepExecutionID = stepExecutionID
        self.idempotencyKey = idempotencyKey
        self.retryCount = retryCount
        self.params = params
        self.workflowParams = workflowParams
        self.stepOutputs = stepOutputs
        self.timeoutSeconds = timeoutSeconds
        self.userID = userID
    }

    public init(json: JSONValue) throws(SchemaError) {
        let reader = try ObjectReader(json)
        self.init(
            action: try reader.string("action") ?? "",
            executionID: try reader.string("execution_id") ?? "",
            stepID: try reader.string("step_id") ?? "",
            stepExecutionID: try reader.string("step_execution_id"),
            idempotencyKey: try reader.string("idempotency_key") ?? "",
            retryCount: try reader.int("retry_count") ?? 0,
            params: try reader.objectMember("params") ?? [:],
            workflowParams: try reader.objectMember("workflow_params") ?? [:],
            stepOutputs: try reader.objectMember("step_outputs") ?? [:],
            timeoutSeconds: try reader.int("timeout_seconds"),
            userID: try reader.string("user_id")
        )
    }

    public var json: JSONValue {
        var object = JSONObject.stepIdentity(action: action, executionID: executionID, stepID: stepID, stepExecutionID: stepExecutionID)
        object["idempotency_key"] = .string(idempotencyKey)
        object["retry_count"] = .int(retryCount)
        object["params"] = .object(params)
        object["workflow_params"] = .object(workflowParams)
        object["step_outputs"] = .object(stepOutputs)
        object["timeout_seconds"] = timeoutSeconds.map(JSONValue.int) ?? .null
        object["user_id"] = userID.map(JSONValue.string) ?? .null
        return .object(object)
    }
}
