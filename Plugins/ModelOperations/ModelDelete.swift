import BudServices
import PluginKit

/// Deletes a model from budapp's catalogue.
struct ModelDelete: BudServiceAction {
    static let metadata = ActionMetadata(
        type: "model_delete",
        name: "Delete Model",
        category: "Model Operations",
        description: "Deletes a model from the catalogue.",
        icon: "trash",
        color: "#EF4444",
        params: [
            ParamDefinition(name: "model_id", label: "Model", type: .modelRef, description: "The model to delete", required: true),
            ParamDefinition(
                name: "force", label: "Force", type: .boolean, description: "Delete even when endpoints use it", defaultValue: false),
        ],
        outputs: [
            OutputDefinition(name: "success", type: "boolean", description: "Whether the model was deleted"),
            OutputDefinition(name: "model_id", type: "string", description: "The deleted model"),
            OutputDefinition(name: "message", type: "string", description: "What happened"),
        ],
        timeoutSeconds: 60,
        idempotent: true,
        requiredServices: ["budapp"],
        examples: [ActionExample(title: "Remove a trial model", params: ["model_id": "{{ steps.add.outputs.model_id }}"])]
    )

    let settings: BudServiceSettings

    func validate(params: JSONObject) -> [String] {
        var problems: [String] = []
        if ParamReading.string(params, "model_id") == nil { problems.append("model_id is required") }
        if let force = params["force"], force != .null, force.boolValue == nil { problems.append("force must be a boolean") }
        return problems
    }

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let modelID = ParamReading.string(request.params, "model_id") ?? ""
        let outputs: JSONObject = ["success": false, "model_id": .string(modelID), "message": ""]
        let problems = validate(params: request.params)
        guard problems.isEmpty else {
            throw StepFailure(
                problems.joined(separator: "; "), outputs: outputs.merging(["message": .string(problems.joined(separator: "; "))]))
        }
        let user = try settings.requireActingUser(of: request, outputs: outputs)
        let force = request.params["force"]?.boolValue ?? false
        do throws(BudServiceError) {
            _ = try context.callBudService(
                settings.budappAppID, "DELETE", ServicePath("models", .value(modelID, name: "model_id")),
                query: ["force": force ? "true" : "false", "user_id": user],
                timeout: settings.timeout(seconds: 30))
        } catch {
            throw error.stepFailure("Failed to delete the model", outputs: outputs.merging(["message": .string(error.description)]))
        }
        return .completed(outputs: outputs.merging(["success": true, "message": "Model deleted successfully"]))
    }
}
