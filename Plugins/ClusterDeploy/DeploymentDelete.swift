import BudServices
import PluginKit

/// Deletes a deployment by starting budapp's delete workflow, then waits for budcluster to report
/// the namespace gone.
struct DeploymentDelete: BudServiceAction, EventHandling {
    static let metadata = ActionMetadata(
        type: "deployment_delete",
        name: "Delete Deployment",
        category: "Deployment",
        description: "Deletes a deployed endpoint and waits until its resources are gone.",
        icon: "trash",
        color: "#EF4444",
        params: [
            ParamDefinition(
                name: "endpoint_id", label: "Endpoint", type: .endpointRef, description: "The endpoint to delete", required: true),
            ParamDefinition(
                name: "force", label: "Force Delete", type: .boolean, description: "Passed to budapp (which does not use it yet)",
                defaultValue: false),
            SharedParams.maxWait(default: 300, range: 30...600),
        ],
        outputs: [
            OutputDefinition(name: "success", type: "boolean", description: "Whether the deployment is deleted"),
            OutputDefinition(name: "endpoint_id", type: "string", description: "The deleted endpoint"),
            OutputDefinition(name: "namespace", type: "string", description: "The Kubernetes namespace removed (when reported)"),
            OutputDefinition(name: "cluster_id", type: "string", description: "The cluster it ran on (when reported)"),
            OutputDefinition(name: "status", type: "string", description: "deleting, deleted or failed"),
            OutputDefinition(name: "message", type: "string", description: "What happened"),
        ],
        executionMode: .eventDriven,
        timeoutSeconds: 300,
        idempotent: true,
        requiredServices: ["budapp"],
        examples: [ActionExample(title: "Remove a canary", params: ["endpoint_id": "{{ steps.deploy.outputs.endpoint_id }}"])]
    )

    let settings: BudServiceSettings

    func validate(params: JSONObject) -> [String] {
        var problems: [String] = []
        if ParamReading.string(params, "endpoint_id") == nil { problems.append("endpoint_id is required") }
        if let problem = ParamReading.boundsProblem(params, "max_wait_seconds", 30...600) { problems.append(problem) }
        if let force = params["force"], force != .null, force.boolValue == nil { problems.append("force must be a boolean") }
        return problems
    }

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let endpointID = ParamReading.string(request.params, "endpoint_id") ?? ""
        var outputs: JSONObject = [
            "success": false, "endpoint_id": .string(endpointID), "namespace": nil, "cluster_id": nil, "status": "failed", "message": "",
        ]
        try requireValid(request.params, outputs: outputs)
        let user = try settings.requireActingUser(of: request, outputs: outputs)
        let answer = try context.requireBudService(
            settings.budappAppID, "POST", ServicePath("endpoints", .value(endpointID, name: "endpoint_id"), "delete-workflow"),
            query: ["user_id": user],
            body: ["callback_topic": .string(callbackTopic), "force": .bool(request.params["force"]?.boolValue ?? false)],
            timeout: settings.timeout(seconds: 60), failing: "Failed to start the deletion", outputs: outputs)
        let wait = ParamReading.integer(request.params, "max_wait_seconds") ?? 300
        let message = answer["message"]?.stringValue ?? ""
        // budapp answers a delete it started without a workflow id with "... initiated": its events
        // then carry the endpoint id.
        guard let key = BudAnswer.workflowID(answer) ?? (message.lowercased().contains("initiated") ? endpointID : nil) else {
            outputs.merge(["success": true, "status": "deleted", "message": .string(message.isEmpty ? "Deployment deleted" : message)])
            return .completed(outputs: outputs)
        }
        outputs.merge(["status": "deleting", "message": "Deployment deletion in progress..."])
        context.reportProgress(percent: 5, message: "Deletion of endpoint \(endpointID) started")
        return .awaitingEvent(externalWorkflowID: key, timeoutSeconds: wait, outputs: outputs)
    }

    func onEvent(_ request: EventRequest, context: StepContext) throws -> EventOutcome {
        let event = BudWorkflowEvent(request.event)
        if event.isWorkflowCompleted {
            return event.isCompleted ? deleted(event.result) : .failedWorkflow(event.flatFailureReason("Deployment deletion failed"))
        }
        guard event.type == "notification" || event.type == event.workflowKind else { return .ignore }
        if event.isFailed { return .failedWorkflow(event.failureReason("Deployment deletion failed")) }
        if let eta = event.etaSeconds { return .updateProgress(percent: nil, etaSeconds: eta) }
        let activity = event.activity ?? ""
        if event.isCompleted, activity == "results" || activity == "deployment_deletion_status" { return deleted(event.result) }
        if event.isStarted, let percent = ["deployment_deletion_status": 30.0, "delete_namespace": 70.0][activity] {
            return .updateProgress(percent: percent, etaSeconds: nil, message: event.message ?? activity)
        }
        return .ignore
    }

    private func deleted(_ result: JSONObject) -> EventOutcome {
        let namespace = result["namespace"]?.stringValue
        return .complete(
            status: .completed,
            outputs: [
                "success": true, "status": "deleted", "namespace": namespace.map(JSONValue.string) ?? .null,
                "cluster_id": result["cluster_id"] ?? .null,
                "message": .string(namespace.map { "Deployment '\($0)' deleted successfully" } ?? "Deployment deleted successfully"),
            ])
    }
}
