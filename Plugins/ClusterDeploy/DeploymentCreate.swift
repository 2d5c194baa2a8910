import BudServices
import PluginKit

/// Deploys a model to a cluster (or a cloud model through a credential) by starting budapp's
/// deploy workflow, then waits for budcluster's completion event.
///
/// For a local model with SLO targets it first asks budsim for a recommended configuration
/// ("smart mode") and passes the recommendation on to budapp.
struct DeploymentCreate: BudServiceAction, EventHandling {
    static let sloTargets = ["ttft", "per_session_tokens_per_sec", "e2e_latency"]
    static let parserParams = ["tool_calling_parser_type", "reasoning_parser_type", "chat_template"]
    static let hardwareModes = ["dedicated", "shared"]
    static let workflowKinds: Set<String> = ["deploy_model", "perform_deployment"]
    static let defaultWaitSeconds = 600

    static let metadata = ActionMetadata(
        type: "deployment_create",
        name: "Deploy Model",
        category: "Deployment",
        description: "Deploys a model to a cluster as an inference endpoint and waits until it serves.",
        version: "1.6.0",
        icon: "rocket",
        color: "#10B981",
        params: [
            ParamDefinition(name: "model_id", label: "Model", type: .modelRef, description: "The model to deploy", required: true),
            ParamDefinition(
                name: "project_id", label: "Project", type: .projectRef, description: "The project the endpoint belongs to", required: true),
            ParamDefinition(
                name: "endpoint_name", label: "Endpoint Name", type: .string, description: "Name of the new endpoint", required: true,
                placeholder: "my-model-endpoint", validation: ValidationRules(minLength: 1, maxLength: 100)),
            ParamDefinition(
                name: "cluster_id", label: "Cluster", type: .clusterRef, description: "Target cluster (required for local models)"),
            ParamDefinition(
                name: "credential_id", label: "Credential", type: .credentialRef,
                description: "Provider credential (required for cloud models)"),
            SharedParams.hardwareMode(),
            ParamDefinition(
                name: "concurrent_requests", label: "Concurrent Requests", type: .number, required: true, defaultValue: 1,
                validation: ValidationRules(min: 1, max: 1000), group: "Performance"),
            ParamDefinition(
                name: "avg_sequence_length", label: "Average Output Tokens", type: .number, required: true, defaultValue: 512,
                validation: ValidationRules(min: 1, max: 10000), group: "Performance"),
            ParamDefinition(
                name: "avg_context_length", label: "Average Input Tokens", type: .number, required: true, defaultValue: 4096,
                validation: ValidationRules(min: 1, max: 200_000), group: "Performance"),
            ParamDefinition(
                name: "ttft", label: "Time to First Token (ms)", type: .range, description: "[min, max] in milliseconds",
                defaultValue: [50, 200], validation: ValidationRules(min: 10, max: 10000), group: "SLO Targets"),
            ParamDefinition(
                name: "per_session_tokens_per_sec", label: "Tokens per Second per Session", type: .range, description: "[min, max]",
                defaultValue: [10, 50], validation: ValidationRules(min: 1, max: 500), group: "SLO Targets"),
            ParamDefinition(
                name: "e2e_latency", label: "End-to-End Latency (s)", type: .range, description: "[min, max] in seconds",
                defaultValue: [10, 60], validation: ValidationRules(min: 1, max: 600), group: "SLO Targets"),
            ParamDefinition(
                name: "budaiscaler_specification", label: "Autoscaling", type: .json,
                description: "Autoscaler specification (minReplicas, maxReplicas, scalingStrategy, ...)", group: "Scaling"),
        ],
        outputs: [
            OutputDefinition(name: "success", type: "boolean", description: "Whether the endpoint was deployed"),
            OutputDefinition(name: "endpoint_id", type: "string", description: "The new endpoint's id"),
            OutputDefinition(name: "endpoint_url", type: "string", description: "Where the endpoint serves"),
            OutputDefinition(name: "endpoint_name", type: "string", description: "The endpoint's name"),
            OutputDefinition(name: "workflow_id", type: "string", description: "budapp's deployment workflow id"),
            OutputDefinition(name: "status", type: "string", description: "deploying, completed or failed"),
            OutputDefinition(name: "message", type: "string", description: "What happened"),
        ],
        executionMode: .eventDriven,
        timeoutSeconds: defaultWaitSeconds,
        idempotent: false,
        requiredServices: ["budapp"],
        examples: [
            ActionExample(
                title: "Deploy to a cluster",
                params: [
                    "model_id": "{{ params.model_id }}", "project_id": "{{ params.project_id }}", "endpoint_name": "llama-prod",
                    "cluster_id": "{{ params.cluster_id }}",
                ])
        ]
    )

    let settings: BudServiceSettings

    func validate(params: JSONObject) -> [String] {
        var problems: [String] = []
        for name in ["model_id", "project_id", "endpoint_name"] where ParamReading.string(params, name) == nil {
            problems.append("\(name) is required")
        }
        let clusterID = ParamReading.string(params, "cluster_id")
        if clusterID == nil && ParamReading.string(params, "credential_id") == nil {
            problems.append("Either cluster_id (for local models) or credential_id (for cloud models) is required")
        }
        let mode = params["hardware_mode"]?.stringValue ?? "dedicated"
        if !Self.hardwareModes.contains(mode) { problems.append("hardware_mode must be 'dedicated' or 'shared'") }
        if clusterID != nil && mode == "dedicated" {
            let missing = Self.sloTargets.filter { !Self.isSet(params[$0]) }
            if !missing.isEmpty {
                problems.append("SLO targets are required for dedicated hardware mode: missing \(missing.joined(separator: ", "))")
            }
        }
        for name in Self.sloTargets where Self.isSet(params[name]) {
            if let problem = Self.rangeProblem(name, params[name]) { problems.append(problem) }
        }
        for (name, bounds) in [("concurrent_requests", 1...1000), ("avg_sequence_length", 1...10000), ("avg_context_length", 1...200_000)] {
            if let problem = ParamReading.boundsProblem(params, name, bounds) { problems.append(problem) }
        }
        problems.append(contentsOf: Self.autoscalerProblems(params["budaiscaler_specification"]))
        return problems
    }

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let params = request.params
        let endpointName = ParamReading.string(params, "endpoint_name") ?? ""
        var outputs: JSONObject = [
            "success": false, "endpoint_id": nil, "endpoint_url": nil, "endpoint_name": .string(endpointName), "workflow_id": nil,
            "status": "failed", "message": "",
        ]
        try requireValid(params, outputs: outputs)
        let user = try settings.requireActingUser(of: request, outputs: outputs)

        var body: JSONObject = [
            "workflow_total_steps": 1, "step_number": 1, "trigger_workflow": true,
            "model_id": params["model_id"] ?? .null, "project_id": params["project_id"] ?? .null, "endpoint_name": .string(endpointName),
            "deploy_config": .object(
                JSONObject(
                    ["concurrent_requests", "avg_sequence_length", "avg_context_length"].map { ($0, params[$0] ?? .null) }
                        + Self.sloTargets.compactMap { name in params[name].map { (name, $0) } })),
            "callback_topic": .string(callbackTopic),
        ]
        for name in [
            "cluster_id", "credential_id", "hardware_mode", "budaiscaler_specification", "supports_lora", "supports_pipeline_parallelism",
        ]
            + Self.parserParams
        {
            if let value = params[name], Self.isSet(value) { body[name] = value }
        }
        if Self.isSmartMode(params) {
            try recommend(into: &body, request: request, user: user, context: context, outputs: outputs)
        }
        if body["tool_calling_parser_type"] != nil { body["enable_tool_calling"] = true }
        if body["reasoning_parser_type"] != nil { body["enable_reasoning"] = true }

        let answer = try context.requireBudService(
            settings.budappAppID, "POST", "models/deploy-workflow", query: ["user_id": user], body: .object(body),
            timeout: settings.timeout(seconds: 120), failing: "Failed to start the deployment", outputs: outputs)
        let data = answer["data"]
        let workflowID = BudAnswer.workflowID(answer)
        let status = (data?["status"]?.stringValue ?? answer["status"]?.stringValue ?? "").lowercased()
        outputs["workflow_id"] = workflowID.map(JSONValue.string) ?? .null
        if status == "completed" {
            let progress = data?["progress"]
            outputs.merge([
                "success": true, "endpoint_id": progress?["endpoint_id"] ?? .null, "endpoint_url": progress?["endpoint_url"] ?? .null,
                "status": "completed", "message": .string("Endpoint '\(endpointName)' deployed successfully"),
            ])
            return .completed(outputs: outputs)
        }
        guard let workflowID else {
            throw StepFailure(
                "budapp started no deployment workflow: its answer has no workflow_id",
                outputs: outputs.failed(with: "budapp started no deployment workflow"))
        }
        // `success` stays false until the completion event says otherwise: a step that times out
        // waiting keeps these outputs.
        outputs["status"] = "deploying"
        outputs["message"] = "Model deployment in progress..."
        context.reportProgress(percent: 5, message: "Deployment workflow \(workflowID) started")
        context.log(.info, "deployment of '\(endpointName)' started as budapp workflow \(workflowID)")
        return .awaitingEvent(
            externalWorkflowID: workflowID, timeoutSeconds: request.timeoutSeconds ?? Self.defaultWaitSeconds, outputs: outputs)
    }

    func onEvent(_ request: EventRequest, context: StepContext) throws -> EventOutcome {
        let event = BudWorkflowEvent(request.event)
        let name = request.stepOutputs["endpoint_name"]?.stringValue ?? ""
        if event.isWorkflowCompleted {
            return event.isCompleted
                ? completed(event.result, name: name) : .failedWorkflow(event.flatFailureReason("Deployment workflow failed"))
        }
        guard let kind = event.workflowKind, Self.workflowKinds.contains(kind), event.type == "notification" || event.type == kind else {
            return .ignore
        }
        if let eta = event.etaSeconds { return .updateProgress(percent: nil, etaSeconds: eta) }
        let activity = event.activity ?? ""
        if ["results", "deploy_model", "deployment_status"].contains(activity) || event.isFailed {
            if event.isCompleted { return completed(event.result, name: name) }
            if event.isFailed { return .failedWorkflow(event.failureReason("Deployment failed")) }
        }
        if event.isStarted, let percent = ["deploy_model": 30.0, "deployment_status": 60.0][activity] {
            return .updateProgress(percent: percent, etaSeconds: nil, message: event.message ?? activity)
        }
        return .ignore
    }

    // MARK: Smart mode

    /// Whether budsim is asked first: a local deployment whose SLO targets are all set (or that
    /// shares hardware) and whose parser settings are not given.
    static func isSmartMode(_ params: JSONObject) -> Bool {
        guard ParamReading.string(params, "cluster_id") != nil else { return false }
        let mode = params["hardware_mode"]?.stringValue ?? "dedicated"
        guard mode != "dedicated" || sloTargets.allSatisfy({ isSet(params[$0]) }) else { return false }
        return !parserParams.contains { isSet(params[$0]) }
    }

    /// Asks budsim for a configuration and copies its recommendation into the deploy request.
    /// A model that cannot be looked up, a cloud model, or a model without a path skips this;
    /// no recommendation fails a dedicated deployment and is passed over for a shared one.
    private func recommend(
        into body: inout JSONObject, request: ExecuteRequest, user: String, context: StepContext, outputs: JSONObject
    ) throws(StepFailure) {
        let params = request.params
        let modelID = ParamReading.string(params, "model_id") ?? ""
        guard ParamReading.isUUID(modelID) else { return }
        let model: JSONValue
        do throws(BudServiceError) {
            let answer = try context.callBudService(
                settings.budappAppID, "GET", ServicePath("models", .value(modelID, name: "model_id")), query: ["user_id": user],
                timeout: settings.timeout(seconds: 30))
            model = answer["model"] ?? answer["data"] ?? .null
        } catch {
            context.log(.warning, "model \(modelID) lookup failed, deploying without a simulation: \(error)")
            return
        }
        let path = BudModel.path(model)
        guard model["provider_type"]?.stringValue?.uppercased() != "CLOUD_MODEL", let path else { return }
        let mode = params["hardware_mode"]?.stringValue ?? "dedicated"
        var simulation: JSONObject = [
            "pretrained_model_uri": .string(path), "input_tokens": params["avg_context_length"] ?? 4096,
            "output_tokens": params["avg_sequence_length"] ?? 512, "concurrency": params["concurrent_requests"] ?? 1,
            "target_ttft": params["ttft"]?[0] ?? 0, "target_throughput_per_user": params["per_session_tokens_per_sec"]?[1] ?? 0,
            "target_e2e_latency": params["e2e_latency"]?[0] ?? 0, "is_proprietary_model": false, "hardware_mode": .string(mode),
            "debug": true, "cluster_id": params["cluster_id"] ?? .null,
        ]
        if let endpoints = Self.modelEndpoints(model["supported_endpoints"]) { simulation["model_endpoints"] = .string(endpoints) }
        let answer: JSONValue
        do throws(BudServiceError) {
            answer = try context.callBudService(
                settings.budsimAppID, "POST", "simulator/run", body: .object(simulation), timeout: settings.timeout(seconds: 120))
        } catch {
            try Self.passOver(error.description, mode: mode, context: context, outputs: outputs)
            return
        }
        if let simulatorID = answer["workflow_id"]?.stringValue { body["simulator_id"] = .string(simulatorID) }
        guard let recommendation = answer["recommendations"]?[0]?.objectValue else {
            try Self.passOver("budsim made no recommendation", mode: mode, context: context, outputs: outputs)
            return
        }
        for name in Self.parserParams + ["supports_lora", "supports_pipeline_parallelism"] where body[name] == nil {
            if let value = recommendation[name], Self.isSet(value) { body[name] = value }
        }
    }

    /// A missing recommendation: fatal for dedicated hardware, logged for shared.
    private static func passOver(_ reason: String, mode: String, context: StepContext, outputs: JSONObject) throws(StepFailure) {
        guard mode == "shared" else {
            throw StepFailure("Simulation failed: \(reason)", outputs: outputs.failed(with: "Simulation failed: \(reason)"))
        }
        context.log(.warning, "no simulation for a shared deployment, going on without one: \(reason)")
    }

    /// budsim's `model_endpoints` from the model's supported endpoints: `LLM` for chat,
    /// `EMBEDDING` for embedding, classify, rerank and moderation.
    static func modelEndpoints(_ supported: JSONValue?) -> String? {
        let enabled: [String]
        switch supported {
        case .array(let items)?: enabled = items.compactMap(\.stringValue)
        case .object(let members)?: enabled = members.compactMap { key, value in value == true || value["enabled"] == true ? key : nil }
        default: return nil
        }
        var kinds = Set<String>()
        for name in enabled.map({ $0.lowercased() }) {
            if name == "chat" { kinds.insert("LLM") }
            if ["embedding", "classify", "rerank", "moderation"].contains(name) { kinds.insert("EMBEDDING") }
        }
        return kinds.isEmpty ? nil : kinds.sorted().joined(separator: ",")
    }

    // MARK: Outcomes

    private func completed(_ result: JSONObject, name: String) -> EventOutcome {
        .complete(
            status: .completed,
            outputs: [
                "success": true, "endpoint_id": result["endpoint_id"] ?? .null, "endpoint_url": result["endpoint_url"] ?? .null,
                "status": "completed", "message": .string("Endpoint '\(name)' deployed successfully"),
            ])
    }

    // MARK: Parameter checks

    /// A value that counts as given (Python truthiness): not null, empty, zero or false.
    static func isSet(_ value: JSONValue?) -> Bool {
        switch value {
        case nil, .null?, .bool(false)?: false
        case .string(let text)?: !text.isEmpty
        case .array(let items)?: !items.isEmpty
        case .object(let members)?: !members.isEmpty
        case .int(let number)?: number != 0
        case .double(let number)?: number != 0
        default: true
        }
    }

    static func rangeProblem(_ name: String, _ value: JSONValue?) -> String? {
        guard let items = value?.arrayValue, items.count == 2 else { return "\(name) must be a [min, max] array" }
        guard let low = items[0].doubleValue, let high = items[1].doubleValue else { return "\(name) values must be numbers" }
        return low > high ? "\(name) min value cannot be greater than max value" : nil
    }

    static func autoscalerProblems(_ value: JSONValue?) -> [String] {
        guard let value, value != .null else { return [] }
        guard let spec = value.objectValue else { return ["budaiscaler_specification must be an object"] }
        var problems: [String] = []
        if let minimum = spec["minReplicas"], (minimum.intValue ?? -1) < 0 {
            problems.append("budaiscaler_specification.minReplicas must be a non-negative integer")
        }
        if let maximum = spec["maxReplicas"], (maximum.intValue ?? 0) < 1 {
            problems.append("budaiscaler_specification.maxReplicas must be a positive integer")
        }
        return problems
    }
}
