import BudServices
import PluginKit

/// Adds a model from Hugging Face, a URL or a disk path: starts budapp's local-model workflow
/// (budmodel downloads and extracts the model) and waits for it to finish.
struct ModelAdd: BudServiceAction, EventHandling {
    static let sources = ["hugging_face", "url", "disk"]

    static let metadata = ActionMetadata(
        type: "model_add",
        name: "Add Model",
        category: "Model Operations",
        description: "Adds a model to the catalogue from Hugging Face, a URL or a disk path and waits until it is extracted.",
        version: "1.2.0",
        icon: "database-plus",
        color: "#10B981",
        params: [
            ParamDefinition(
                name: "model_source", label: "Source", type: .select, defaultValue: "hugging_face",
                options: [
                    SelectOption(label: "Hugging Face", value: "hugging_face"), SelectOption(label: "URL", value: "url"),
                    SelectOption(label: "Disk", value: "disk"),
                ]),
            ParamDefinition(
                name: "model_uri", label: "Model URI", type: .string, description: "org/model, an http(s) URL, or an absolute path",
                required: true, placeholder: "meta-llama/Llama-3.2-1B"),
            ParamDefinition(
                name: "credential_id", label: "Credential", type: .credentialRef, description: "For gated Hugging Face models",
                showWhen: ConditionalVisibility(param: "model_source", equals: "hugging_face")),
            ParamDefinition(name: "model_name", label: "Model Name", type: .string, description: "Default: the URI's last segment"),
            ParamDefinition(name: "description", label: "Description", type: .string),
            ParamDefinition(name: "author", label: "Author", type: .string),
            SharedParams.maxWait(default: 86400, range: 300...172_800),
        ],
        outputs: [
            OutputDefinition(name: "success", type: "boolean", description: "Whether the model was added"),
            OutputDefinition(name: "model_id", type: "string", description: "The new model's id"),
            OutputDefinition(name: "model_name", type: "string", description: "Its name"),
            OutputDefinition(name: "workflow_id", type: "string", description: "budapp's workflow id"),
            OutputDefinition(name: "status", type: "string", description: "running, completed or failed"),
            OutputDefinition(name: "message", type: "string", description: "What happened"),
        ],
        executionMode: .eventDriven,
        timeoutSeconds: 86400,
        idempotent: false,
        requiredServices: ["budapp", "budmodel"],
        examples: [ActionExample(title: "Add from Hugging Face", params: ["model_uri": "meta-llama/Llama-3.2-1B"])]
    )

    let settings: BudServiceSettings

    func validate(params: JSONObject) -> [String] {
        var problems: [String] = []
        let source = params["model_source"]?.stringValue ?? "hugging_face"
        if !Self.sources.contains(source) { problems.append("model_source must be one of: \(Self.sources.joined(separator: ", "))") }
        if let uri = ParamReading.string(params, "model_uri") {
            switch source {
            case "hugging_face" where !uri.contains("/"): problems.append("Hugging Face model_uri must look like org/model")
            case "url" where !(uri.hasPrefix("http://") || uri.hasPrefix("https://")):
                problems.append("URL model_uri must start with http:// or https://")
            case "disk" where !uri.hasPrefix("/"): problems.append("Disk model_uri must be an absolute path")
            default: break
            }
        } else {
            problems.append("model_uri is required")
        }
        if let problem = ParamReading.boundsProblem(params, "max_wait_seconds", 300...172_800) { problems.append(problem) }
        return problems
    }

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let params = request.params
        let uri = ParamReading.string(params, "model_uri") ?? ""
        let name = ParamReading.string(params, "model_name") ?? String(uri.split(separator: "/").last ?? Substring(uri))
        var outputs: JSONObject = [
            "success": false, "model_id": nil, "model_name": .string(name), "workflow_id": nil, "status": "failed", "message": "",
        ]
        try requireValid(params, outputs: outputs)
        let user = try settings.requireActingUser(of: request, outputs: outputs)
        let source = params["model_source"]?.stringValue ?? "hugging_face"
        var body: JSONObject = [
            "workflow_total_steps": 1, "step_number": 1, "trigger_workflow": true, "provider_type": .string(source), "name": .string(name),
            "uri": .string(uri), "description": params["description"] ?? .null, "author": params["author"] ?? .null,
            "callback_topic": .string(callbackTopic),
        ]
        if source == "hugging_face", let credential = ParamReading.string(params, "credential_id") {
            body["proprietary_credential_id"] = .string(credential)
        }
        let answer = try context.requireBudService(
            settings.budappAppID, "POST", "models/local-model-workflow", query: ["user_id": user], body: .object(body),
            timeout: settings.timeout(seconds: 60), failing: "Failed to start adding the model", outputs: outputs)
        guard let workflowID = BudAnswer.workflowID(answer) else {
            let message = "No workflow_id returned from budapp"
            throw StepFailure(message, outputs: outputs.failed(with: message))
        }
        outputs.merge(["workflow_id": .string(workflowID), "status": "running", "message": .string("Adding model \(name)...")])
        context.reportProgress(percent: 5, message: "Model extraction started")
        let wait = ParamReading.integer(params, "max_wait_seconds") ?? 86400
        return .awaitingEvent(externalWorkflowID: workflowID, timeoutSeconds: wait, outputs: outputs)
    }

    func onEvent(_ request: EventRequest, context: StepContext) throws -> EventOutcome {
        let event = BudWorkflowEvent(request.event)
        if event.isWorkflowCompleted {
            return event.isCompleted ? completed(event.result) : .failedWorkflow(event.flatFailureReason("Model extraction failed"))
        }
        if event.type == "model_extraction", event.activity == "results" {
            if event.isCompleted { return completed(event.result) }
            if event.isFailed { return .failedWorkflow(event.failureReason("Model extraction failed")) }
        }
        guard event.workflowKind == "perform_model_extraction", event.type == "notification" || event.type == event.workflowKind else {
            return .ignore
        }
        if event.isFailed { return .failedWorkflow(event.failureReason("Model extraction failed")) }
        if let eta = event.etaSeconds { return .updateProgress(percent: nil, etaSeconds: eta) }
        if event.isCompleted, event.activity == "save_model" || event.activity == "results" { return completed(event.result) }
        return .ignore
    }

    private func completed(_ result: JSONObject) -> EventOutcome {
        .complete(
            status: .completed,
            outputs: [
                "success": true, "model_id": result["model_id"] ?? .null, "model_name": result["model_name"] ?? .null,
                "status": "completed", "message": "Model added successfully",
            ])
    }
}
