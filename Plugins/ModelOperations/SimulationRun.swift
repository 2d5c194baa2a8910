import BudServices
import PluginKit

/// Asks budsim which hardware and engine configuration serves a model within SLO targets, and
/// waits for its recommendations.
struct SimulationRun: BudServiceAction, EventHandling {
    static let sloTargets = ["target_ttft", "target_throughput_per_user", "target_e2e_latency"]
    /// The progress each budsim phase stands for.
    static let phaseProgress: [String: Double] = [
        "validation": 10, "hardware_selection": 25, "engine_configuration": 50, "performance_estimation": 75, "ranking": 90,
    ]
    static let recommendationSettings = [
        "tool_calling_parser_type", "reasoning_parser_type", "chat_template", "supports_lora", "supports_pipeline_parallelism",
    ]

    static let metadata = ActionMetadata(
        type: "simulation_run",
        name: "Run Simulation",
        category: "Simulation",
        description: "Simulates serving a model to recommend hardware and engine settings that meet SLO targets.",
        icon: "beaker",
        color: "#8B5CF6",
        params: [
            ParamDefinition(name: "model_id", label: "Model", type: .modelRef, required: true),
            ParamDefinition(
                name: "input_tokens", label: "Input Tokens", type: .number, required: true, defaultValue: 4096,
                validation: ValidationRules(min: 1, max: 200_000), group: "Workload"),
            ParamDefinition(
                name: "output_tokens", label: "Output Tokens", type: .number, required: true, defaultValue: 512,
                validation: ValidationRules(min: 1, max: 50000), group: "Workload"),
            ParamDefinition(
                name: "concurrency", label: "Concurrency", type: .number, required: true, defaultValue: 1,
                validation: ValidationRules(min: 1, max: 1000), group: "Workload"),
            ParamDefinition(
                name: "target_ttft", label: "Target TTFT (ms)", type: .number, required: true,
                validation: ValidationRules(min: 1, max: 60000),
                group: "SLO Targets"),
            ParamDefinition(
                name: "target_throughput_per_user", label: "Target Tokens/s per User", type: .number, required: true,
                validation: ValidationRules(min: 1, max: 1000), group: "SLO Targets"),
            ParamDefinition(
                name: "target_e2e_latency", label: "Target End-to-End Latency (s)", type: .number, required: true,
                validation: ValidationRules(min: 1, max: 600), group: "SLO Targets"),
            ParamDefinition(name: "cluster_id", label: "Cluster", type: .clusterRef, description: "Limit the search to one cluster"),
            ParamDefinition(
                name: "simulation_method", label: "Method", type: .select,
                options: [SelectOption(label: "Regressor", value: "regressor"), SelectOption(label: "Heuristic", value: "heuristic")]),
            SharedParams.hardwareMode(),
            ParamDefinition(name: "model_endpoints", label: "Model Endpoints", type: .string, placeholder: "LLM"),
            ParamDefinition(
                name: "model_max_context_length", label: "Max Context Length", type: .number,
                validation: ValidationRules(min: 1, max: 1_000_000)),
            ParamDefinition(name: "is_quantization", label: "Quantize", type: .boolean, defaultValue: false, group: "Quantization"),
            ParamDefinition(
                name: "quantization_method", label: "Quantization Method", type: .string, group: "Quantization",
                showWhen: ConditionalVisibility(param: "is_quantization", equals: true)),
            ParamDefinition(
                name: "quantization_type", label: "Quantization Type", type: .string, group: "Quantization",
                showWhen: ConditionalVisibility(param: "is_quantization", equals: true)),
            SharedParams.maxWait(default: 1800, range: 60...7200),
        ],
        outputs: [
            OutputDefinition(name: "success", type: "boolean", description: "Whether budsim recommended something"),
            OutputDefinition(name: "workflow_id", type: "string", description: "budsim's workflow id"),
            OutputDefinition(name: "status", type: "string", description: "running, completed or failed"),
            OutputDefinition(name: "recommendations", type: "array", description: "Every recommendation, best first"),
            OutputDefinition(name: "top_recommendation", type: "object", description: "The best one"),
            OutputDefinition(name: "cluster_id", type: "string", description: "The best one's cluster"),
            OutputDefinition(
                name: "metrics", type: "object",
                description: "The best one's ttft, throughput_per_user, e2e_latency, error_rate, cost_per_million_tokens"),
            OutputDefinition(name: "tool_calling_parser_type", type: "string", description: "For deployment_create"),
            OutputDefinition(name: "reasoning_parser_type", type: "string", description: "For deployment_create"),
            OutputDefinition(name: "chat_template", type: "string", description: "For deployment_create"),
            OutputDefinition(name: "supports_lora", type: "boolean", description: "For deployment_create"),
            OutputDefinition(name: "supports_pipeline_parallelism", type: "boolean", description: "For deployment_create"),
            OutputDefinition(name: "message", type: "string", description: "What happened"),
        ],
        executionMode: .eventDriven,
        timeoutSeconds: 1800,
        idempotent: true,
        requiredServices: ["budsim"],
        examples: [
            ActionExample(
                title: "Size a chat deployment",
                params: [
                    "model_id": "{{ params.model_id }}", "target_ttft": 200, "target_throughput_per_user": 20, "target_e2e_latency": 30,
                ])
        ]
    )

    let settings: BudServiceSettings

    func validate(params: JSONObject) -> [String] {
        var problems: [String] = []
        if ParamReading.string(params, "model_id") == nil { problems.append("model_id is required") }
        let missing = Self.sloTargets.filter { params[$0] == nil || params[$0] == .null }
        if !missing.isEmpty { problems.append("SLO targets required: missing \(missing.joined(separator: ", "))") }
        let bounds: [(String, ClosedRange<Int>)] = [
            ("input_tokens", 1...200_000), ("output_tokens", 1...50000), ("concurrency", 1...1000), ("target_ttft", 1...60000),
            ("target_throughput_per_user", 1...1000), ("target_e2e_latency", 1...600), ("model_max_context_length", 1...1_000_000),
            ("max_wait_seconds", 60...7200),
        ]
        for (name, range) in bounds { if let problem = ParamReading.boundsProblem(params, name, range) { problems.append(problem) } }
        if let method = params["simulation_method"]?.stringValue, !["regressor", "heuristic"].contains(method) {
            problems.append("simulation_method must be 'regressor' or 'heuristic'")
        }
        if let mode = params["hardware_mode"]?.stringValue, !["dedicated", "shared"].contains(mode) {
            problems.append("hardware_mode must be 'dedicated' or 'shared'")
        }
        let quantizes = params["is_quantization"]?.boolValue ?? false
        if !quantizes, ParamReading.string(params, "quantization_method") != nil || ParamReading.string(params, "quantization_type") != nil
        {
            problems.append("quantization_method/quantization_type require is_quantization=true")
        }
        return problems
    }

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let params = request.params
        var outputs: JSONObject = ["success": false, "workflow_id": nil, "status": "failed", "recommendations": [], "message": ""]
        try requireValid(params, outputs: outputs)
        let user = try settings.requireActingUser(of: request, outputs: outputs)
        let modelID = ParamReading.string(params, "model_id") ?? ""
        let found = try context.requireBudService(
            settings.budappAppID, "GET", ServicePath("models", .value(modelID, name: "model_id")), query: ["user_id": user],
            timeout: settings.timeout(seconds: 30),
            failing: "Failed to look up model \(modelID)", outputs: outputs)
        let model = found["model"] ?? found["data"] ?? .null
        guard let path = BudModel.path(model) else {
            let message = "Could not resolve model URI from model_id \(modelID)"
            throw StepFailure(message, outputs: outputs.failed(with: message))
        }
        var body: JSONObject = [
            "pretrained_model_uri": .string(path), "input_tokens": params["input_tokens"] ?? 4096,
            "output_tokens": params["output_tokens"] ?? 512,
            "concurrency": params["concurrency"] ?? 1, "is_proprietary_model": false,
            "hardware_mode": params["hardware_mode"] ?? "dedicated",
            "debug": false, "source_topic": .string(callbackTopic),
        ]
        if let url = model["huggingface_url"]?.stringValue { body["model_uri"] = .string(url) }
        for name in Self.sloTargets + ["cluster_id", "simulation_method", "model_endpoints", "model_max_context_length"] {
            if let value = params[name], value != .null, value != "" { body[name] = value }
        }
        if params["is_quantization"]?.boolValue == true {
            body["is_quantization"] = true
            for name in ["quantization_method", "quantization_type"] { if let value = params[name], value != .null { body[name] = value } }
        }
        let answer = try context.requireBudService(
            settings.budsimAppID, "POST", "simulator/run", body: .object(body), timeout: settings.timeout(seconds: 120),
            failing: "Failed to start the simulation", outputs: outputs)
        guard let workflowID = answer["workflow_id"]?.stringValue, !workflowID.isEmpty else {
            let message = "BudSim did not return a workflow_id"
            throw StepFailure(message, outputs: outputs.failed(with: message))
        }
        outputs.merge(["workflow_id": .string(workflowID), "status": "running", "message": "Simulation running..."])
        let wait = ParamReading.integer(params, "max_wait_seconds") ?? 1800
        return .awaitingEvent(externalWorkflowID: workflowID, timeoutSeconds: wait, outputs: outputs)
    }

    func onEvent(_ request: EventRequest, context: StepContext) throws -> EventOutcome {
        let event = BudWorkflowEvent(request.event)
        guard event.type != "workflow_metadata" else { return .ignore }
        let activity = event.activity ?? ""
        if activity == "results", event.isCompleted {
            let recommendations = event.result["recommendations"]?.arrayValue ?? []
            guard let top = recommendations.first else { return .failedWorkflow("Simulation completed but returned no recommendations") }
            return completed(recommendations, top: top)
        }
        if event.isFailed { return .failedWorkflow(event.failureReason("Simulation failed")) }
        if let eta = event.etaSeconds { return .updateProgress(percent: nil, etaSeconds: eta) }
        if let base = Self.phaseProgress[activity] {
            return .updateProgress(
                percent: min(95, base + (event.isCompleted ? 5 : 0)), etaSeconds: nil, message: event.message ?? activity)
        }
        return .ignore
    }

    private func completed(_ recommendations: [JSONValue], top: JSONValue) -> EventOutcome {
        let metrics = top["metrics"]
        var outputs: JSONObject = [
            "success": true, "status": "completed", "recommendations": .array(recommendations), "top_recommendation": top,
            "cluster_id": top["cluster_id"] ?? .null,
            "metrics": [
                "ttft": metrics?["ttft"] ?? .null, "throughput_per_user": metrics?["throughput_per_user"] ?? .null,
                "e2e_latency": metrics?["e2e_latency"] ?? .null, "error_rate": metrics?["error_rate"] ?? .null,
                "cost_per_million_tokens": metrics?["cost_per_million_tokens"] ?? .null,
            ],
            "message": .string("Simulation recommended \(recommendations.count) configuration(s)"),
        ]
        for name in Self.recommendationSettings { outputs[name] = top[name] ?? .null }
        return .complete(status: .completed, outputs: outputs)
    }
}
