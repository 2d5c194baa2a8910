import BudServices
import PluginKit

/// The Model Benchmark plugin: runs a performance benchmark of a model on a cluster through budapp
/// and waits for budcluster's results.
@c(bp_plugin_entry_v1)
public func modelBenchmarkPluginEntry(_ host: UnsafeRawPointer?) -> UnsafeRawPointer? {
    PluginExport.entry(host: host, manifest: modelBenchmarkManifest, handlers: [RunModelBenchmark.self])
}

let modelBenchmarkManifest = PluginManifest(
    name: "model_benchmark", version: "1.0.0", description: "Benchmarks a model's serving performance on a cluster through budapp.")

/// Benchmarks a model on a cluster: resolves the cluster, picks its nodes and a device and
/// parallelism budapp supports, starts budapp's benchmark workflow and waits for the results.
struct RunModelBenchmark: BudServiceAction, EventHandling {
    static let devicePriority = ["cuda", "hpu", "cpu_high", "cpu"]
    static let defaultWaitSeconds = 1200

    static let metadata = ActionMetadata(
        type: "model_benchmark",
        name: "Benchmark Model",
        category: "Model Operations",
        description: "Measures a model's latency and throughput on a cluster and returns the results.",
        icon: "chart-bar",
        color: "#3B82F6",
        params: [
            ParamDefinition(name: "model_id", label: "Model", type: .modelRef, description: "The model to benchmark", required: true),
            ParamDefinition(
                name: "cluster_id", label: "Cluster", type: .clusterRef, description: "Where to run it (a UUID)", required: true),
            ParamDefinition(
                name: "benchmark_name", label: "Benchmark Name", type: .string, defaultValue: "auto-benchmark",
                validation: ValidationRules(minLength: 1, maxLength: 50)),
            ParamDefinition(
                name: "concurrent_requests", label: "Concurrent Requests", type: .number, defaultValue: 1,
                validation: ValidationRules(min: 1, max: 100), group: "Load"),
            ParamDefinition(
                name: "max_input_tokens", label: "Max Input Tokens", type: .number, defaultValue: 1024,
                validation: ValidationRules(min: 1, max: 128_000), group: "Load"),
            ParamDefinition(
                name: "max_output_tokens", label: "Max Output Tokens", type: .number, defaultValue: 512,
                validation: ValidationRules(min: 1, max: 32000), group: "Load"),
            ParamDefinition(
                name: "num_prompts", label: "Number of Prompts", type: .number, defaultValue: 10,
                validation: ValidationRules(min: 1, max: 1000), group: "Load"),
            SharedParams.hardwareMode(group: "Hardware"),
            ParamDefinition(
                name: "selected_device_type", label: "Device Type", type: .select, description: "Default: the best the cluster offers",
                options: [
                    SelectOption(label: "CUDA", value: "cuda"), SelectOption(label: "HPU", value: "hpu"),
                    SelectOption(label: "CPU", value: "cpu"),
                ],
                group: "Hardware"),
            ParamDefinition(
                name: "tp_size", label: "Tensor Parallelism", type: .number, validation: ValidationRules(min: 1, max: 16), group: "Hardware"
            ),
            ParamDefinition(
                name: "pp_size", label: "Pipeline Parallelism", type: .number, validation: ValidationRules(min: 1, max: 16),
                group: "Hardware"),
            ParamDefinition(
                name: "replicas", label: "Replicas", type: .number, validation: ValidationRules(min: 1, max: 32), group: "Hardware"),
            SharedParams.maxWait(default: 1200, range: 60...7200),
        ],
        outputs: [
            OutputDefinition(name: "success", type: "boolean", description: "Whether the benchmark finished"),
            OutputDefinition(name: "benchmark_id", type: "string", description: "budapp's benchmark id"),
            OutputDefinition(name: "workflow_id", type: "string", description: "budapp's benchmark workflow id"),
            OutputDefinition(name: "status", type: "string", description: "running, completed or failed"),
            OutputDefinition(name: "results", type: "object", description: "The benchmark's results as budcluster reported them"),
            OutputDefinition(name: "message", type: "string", description: "What happened"),
            OutputDefinition(name: "failed_step", type: "string", description: "The benchmark activity that failed, when one did"),
        ],
        executionMode: .eventDriven,
        timeoutSeconds: defaultWaitSeconds,
        idempotent: true,
        requiredServices: ["budapp", "budcluster"],
        examples: [
            ActionExample(
                title: "Benchmark after deploying",
                params: ["model_id": "{{ params.model_id }}", "cluster_id": "{{ params.cluster_id }}", "concurrent_requests": 8])
        ]
    )

    let settings: BudServiceSettings

    func validate(params: JSONObject) -> [String] {
        var problems: [String] = []
        if ParamReading.string(params, "model_id") == nil { problems.append("model_id is required") }
        if let cluster = ParamReading.string(params, "cluster_id") {
            if !ParamReading.isUUID(cluster) { problems.append("Invalid cluster_id format: \(cluster) (expected a UUID)") }
        } else {
            problems.append("cluster_id is required")
        }
        if let name = params["benchmark_name"]?.stringValue, name.count > 50 {
            problems.append(
                "benchmark_name must be at most 50 characters (it becomes part of a Kubernetes namespace, limited to 63), got \(name.count)"
            )
        }
        let bounds: [(String, ClosedRange<Int>)] = [
            ("concurrent_requests", 1...100), ("max_input_tokens", 1...128_000), ("max_output_tokens", 1...32000),
            ("num_prompts", 1...1000),
            ("tp_size", 1...16), ("pp_size", 1...16), ("replicas", 1...32), ("max_wait_seconds", 60...7200),
        ]
        for (name, range) in bounds { if let problem = ParamReading.boundsProblem(params, name, range) { problems.append(problem) } }
        if let mode = params["hardware_mode"]?.stringValue, !["dedicated", "shared"].contains(mode) {
            problems.append("hardware_mode must be 'dedicated' or 'shared'")
        }
        return problems
    }

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let params = request.params
        var outputs: JSONObject = [
            "success": false, "benchmark_id": nil, "workflow_id": nil, "status": "failed", "results": [:], "message": "",
            "failed_step": nil,
        ]
        try requireValid(params, outputs: outputs)
        let user = try settings.requireActingUser(of: request, outputs: outputs)
        let calls = BenchmarkCalls(settings: settings, context: context, user: user, outputs: outputs)
        let cluster = try calls.resolveCluster(ParamReading.string(params, "cluster_id") ?? "")
        let nodes = try calls.nodes(ofCluster: cluster.budClusterID)
        let configuration = try calls.deviceConfiguration(request: request, budappClusterID: cluster.budappClusterID, nodes: nodes)
        context.reportProgress(
            percent: 5, message: "Benchmarking on \(configuration.deviceType), TP \(configuration.tpSize) × PP \(configuration.ppSize)")

        var body: JSONObject = [
            "workflow_total_steps": 1, "step_number": 1, "trigger_workflow": true, "model_id": params["model_id"] ?? .null,
            "cluster_id": .string(cluster.budappClusterID), "bud_cluster_id": .string(cluster.budClusterID), "nodes": .array(nodes),
            "name": params["benchmark_name"] ?? "auto-benchmark", "tags": [],
            "description": .string("Automated benchmark from workflow step \(request.stepID)"), "eval_with": "configuration",
            "concurrent_requests": params["concurrent_requests"] ?? 1, "max_input_tokens": params["max_input_tokens"] ?? 1024,
            "max_output_tokens": params["max_output_tokens"] ?? 512, "hardware_mode": params["hardware_mode"] ?? "dedicated",
            "selected_device_type": .string(configuration.deviceType), "tp_size": .int(configuration.tpSize),
            "pp_size": .int(configuration.ppSize), "replicas": .int(configuration.replicas), "num_prompts": params["num_prompts"] ?? 10,
            "user_confirmation": true, "run_as_simulation": false, "callback_topic": .string(callbackTopic),
        ]
        for name in ["prompt", "prompt_tokens"] { if let value = params[name], value != .null { body[name] = value } }
        let answer = try context.requireBudService(
            settings.budappAppID, "POST", "benchmark/run-workflow", query: ["user_id": user], body: .object(body),
            timeout: settings.timeout(seconds: 60), failing: "Failed to start the benchmark", outputs: outputs)
        guard let workflowID = BudAnswer.workflowID(answer) else {
            let message = "budapp started no benchmark workflow: its answer has no workflow_id"
            throw StepFailure(message, outputs: outputs.failed(with: message))
        }
        outputs.merge(["workflow_id": .string(workflowID), "status": "running", "message": "Benchmark running..."])
        context.log(.info, "benchmark started as budapp workflow \(workflowID) on cluster \(cluster.budClusterID)")
        let wait = ParamReading.integer(params, "max_wait_seconds") ?? Self.defaultWaitSeconds
        return .awaitingEvent(externalWorkflowID: workflowID, timeoutSeconds: wait, outputs: outputs)
    }

    func onEvent(_ request: EventRequest, context: StepContext) throws -> EventOutcome {
        let event = BudWorkflowEvent(request.event)
        if event.isWorkflowCompleted {
            guard event.isCompleted else { return failure(event.flatFailureReason("Benchmark workflow failed")) }
            return completed(event.result)
        }
        guard event.type == "performance_benchmark" || event.type == "notification" else { return .ignore }
        let activity = event.activity ?? ""
        if activity == "results" {
            if event.isCompleted { return completed(event.result) }
            if event.isFailed { return failure(event.failureReason("Benchmark failed")) }
        }
        if event.isFailed {
            let detail = [event.title, event.message ?? event.error].compactMap { $0 }.joined(separator: ": ")
            return failure(detail.isEmpty ? "Benchmark failed during \(activity)" : detail, failedStep: activity)
        }
        if let eta = event.etaSeconds { return .updateProgress(percent: nil, etaSeconds: eta) }
        if event.isStarted, let percent = ["deploy_model": 20.0, "run_benchmark": 50.0, "run_performance_benchmark": 50.0][activity] {
            return .updateProgress(percent: percent, etaSeconds: nil, message: event.message ?? activity)
        }
        return .ignore
    }

    private func completed(_ result: JSONObject) -> EventOutcome {
        .complete(
            status: .completed,
            outputs: [
                "success": true, "benchmark_id": result["benchmark_id"] ?? result["id"] ?? .null, "status": "completed",
                "results": .object(result), "message": "Benchmark completed",
            ])
    }

    private func failure(_ reason: String, failedStep: String? = nil) -> EventOutcome {
        .failedWorkflow(reason, extra: ["failed_step": failedStep.map(JSONValue.string) ?? .null])
    }
}
