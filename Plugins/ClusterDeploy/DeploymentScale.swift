import BudServices
import PluginKit

/// Sets a deployment's replica count through budapp's autoscale settings, keeping the rest of its
/// autoscaler configuration.
struct DeploymentScale: BudServiceAction {
    /// Autoscaler settings kept from the current configuration when the replica count changes.
    static let preservedSettings = [
        "scalingStrategy", "metricsSources", "gpuConfig", "costConfig", "predictionConfig", "scheduleHints", "multiCluster", "behavior",
    ]

    static let metadata = ActionMetadata(
        type: "deployment_scale",
        name: "Scale Deployment",
        category: "Deployment",
        description: "Scales a deployment to a fixed number of replicas.",
        icon: "arrows-alt",
        color: "#722ED1",
        params: [
            ParamDefinition(
                name: "endpoint_id", label: "Endpoint", type: .endpointRef, description: "The endpoint to scale", required: true),
            ParamDefinition(
                name: "target_replicas", label: "Target Replicas", type: .number, description: "How many replicas to run", required: true,
                defaultValue: 1, validation: ValidationRules(min: 0, max: 100)),
        ],
        outputs: [
            OutputDefinition(name: "success", type: "boolean", description: "Whether budapp accepted the new scale"),
            OutputDefinition(name: "endpoint_id", type: "string", description: "The scaled endpoint"),
            OutputDefinition(name: "target_replicas", type: "number", description: "The replica count set"),
            OutputDefinition(name: "previous_min_replicas", type: "number", description: "minReplicas before"),
            OutputDefinition(name: "previous_max_replicas", type: "number", description: "maxReplicas before"),
            OutputDefinition(name: "scaling_strategy", type: "string", description: "The autoscaler's strategy, kept"),
            OutputDefinition(name: "message", type: "string", description: "What happened"),
        ],
        timeoutSeconds: 120,
        idempotent: true,
        requiredServices: ["budapp"],
        examples: [
            ActionExample(title: "Scale to three", params: ["endpoint_id": "{{ steps.deploy.outputs.endpoint_id }}", "target_replicas": 3])
        ]
    )

    let settings: BudServiceSettings

    func validate(params: JSONObject) -> [String] {
        var problems: [String] = []
        if ParamReading.string(params, "endpoint_id") == nil { problems.append("endpoint_id is required") }
        switch params["target_replicas"] {
        case nil, .null?: problems.append("target_replicas is required")
        case let value?:
            if let replicas = ParamReading.integer(value) {
                if replicas < 0 { problems.append("target_replicas must be non-negative") }
                if replicas > 100 { problems.append("target_replicas cannot exceed 100") }
            } else {
                problems.append("target_replicas must be a valid number")
            }
        }
        return problems
    }

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let endpointID = ParamReading.string(request.params, "endpoint_id") ?? ""
        let replicas = ParamReading.integer(request.params, "target_replicas")
        var outputs: JSONObject = [
            "success": false, "endpoint_id": .string(endpointID), "target_replicas": replicas.map(JSONValue.int) ?? .null,
            "previous_min_replicas": nil, "previous_max_replicas": nil, "scaling_strategy": nil, "message": "",
        ]
        let problems = validate(params: request.params)
        guard problems.isEmpty, let replicas else {
            throw StepFailure(
                problems.joined(separator: "; "), outputs: outputs.merging(["message": .string(problems.joined(separator: "; "))]))
        }
        let user = try settings.requireActingUser(of: request, outputs: outputs)
        let path = ServicePath("endpoints", .value(endpointID, name: "endpoint_id"), "autoscale")
        var current = JSONObject()
        do throws(BudServiceError) {
            let answer = try context.callBudService(
                settings.budappAppID, "GET", path, query: ["user_id": user], timeout: settings.timeout(seconds: 30))
            current = answer["budaiscaler_config"]?.objectValue ?? answer["data"]?["budaiscaler_config"]?.objectValue ?? [:]
        } catch {
            context.log(.warning, "could not read the current autoscale settings of \(endpointID), setting replicas only: \(error)")
        }
        var specification: JSONObject = ["enabled": true, "minReplicas": .int(replicas), "maxReplicas": .int(replicas)]
        for name in Self.preservedSettings { if let value = current[name] { specification[name] = value } }
        do throws(BudServiceError) {
            _ = try context.callBudService(
                settings.budappAppID, "PUT", path, query: ["user_id": user], body: ["budaiscaler_specification": .object(specification)],
                timeout: settings.timeout(seconds: 60))
        } catch {
            throw error.stepFailure("Failed to scale the deployment", outputs: outputs.merging(["message": .string(error.description)]))
        }
        outputs.merge([
            "success": true, "previous_min_replicas": current["minReplicas"] ?? .null,
            "previous_max_replicas": current["maxReplicas"] ?? .null,
            "scaling_strategy": current["scalingStrategy"] ?? .null, "message": .string("Scaled deployment to \(replicas) replicas"),
        ])
        return .completed(outputs: outputs)
    }
}
