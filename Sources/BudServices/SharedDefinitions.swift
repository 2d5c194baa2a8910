public import PluginKit

/// Parameter definitions several domain actions declare alike.
public enum SharedParams {
    /// `hardware_mode`: `dedicated` (default) or `shared` GPUs.
    public static func hardwareMode(group: String? = nil) -> ParamDefinition {
        ParamDefinition(
            name: "hardware_mode", label: "Hardware Mode", type: .select, description: "Dedicated GPUs or shared ones",
            defaultValue: "dedicated",
            options: [SelectOption(label: "Dedicated", value: "dedicated"), SelectOption(label: "Shared", value: "shared")], group: group)
    }

    /// `max_wait_seconds`: how long an event-driven action waits for its workflow.
    public static func maxWait(default seconds: Int, range: ClosedRange<Int>) -> ParamDefinition {
        ParamDefinition(
            name: "max_wait_seconds", label: "Max Wait (seconds)", type: .number, description: "How long to wait for the workflow",
            defaultValue: .int(seconds), validation: ValidationRules(min: Double(range.lowerBound), max: Double(range.upperBound)))
    }
}

extension EventOutcome {
    /// The step fails for `reason`, its outputs saying so (`success` false, `status` failed,
    /// `message`), plus `extra`.
    public static func failedWorkflow(_ reason: String, extra: JSONObject = [:]) -> EventOutcome {
        let outputs: JSONObject = ["success": false, "status": "failed", "message": .string(reason)]
        return .complete(status: .failed, outputs: outputs.merging(extra), error: reason)
    }
}

/// A domain action that calls the bud services: it is created from the service settings read
/// from the plugin's configuration.
public protocol BudServiceAction: ParameterValidating {
    init(settings: BudServiceSettings)
}

extension BudServiceAction {
    public init(configuration: PluginConfiguration) throws {
        self.init(settings: try BudServiceSettings(configuration: configuration))
    }
}

extension BudServiceAction {
    /// Fails the step, with `outputs` marked failed, when `params` have problems.
    public func requireValid(_ params: JSONObject, outputs: JSONObject) throws(StepFailure) {
        let problems = validate(params: params)
        guard problems.isEmpty else {
            let message = problems.joined(separator: "; ")
            throw StepFailure(message, outputs: outputs.failed(with: message))
        }
    }
}

/// Reading what budapp answers when it starts a workflow.
public enum BudAnswer {
    /// The started workflow's id: `data.workflow_id`, else the top-level `workflow_id`; `nil` when
    /// absent or empty.
    public static func workflowID(_ answer: JSONValue) -> String? {
        let id = answer["data"]?["workflow_id"]?.stringValue ?? answer["workflow_id"]?.stringValue
        return id?.isEmpty == false ? id : nil
    }
}
