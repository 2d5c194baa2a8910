import BudJSON
import PluginSchema
import PluginTesting
import Testing

/// How the ClusterDeploy and ModelBenchmark plugins, loaded from their built libraries, read the
/// events the bud services publish (budmicroframe notifications and budapp's flat
/// `workflow_completed`; see docs/events.md) and check their parameters.
@Suite("Domain plugin events and checks")
struct DomainPluginEventTests {
    /// A budmicroframe notification.
    static func notification(_ kind: String, _ activity: String, _ status: String, message: String = "", result: JSONValue = nil)
        -> JSONValue
    {
        [
            "type": "notification", "notification_type": "event",
            "payload": [
                "type": .string(kind), "event": .string(activity), "workflow_id": "wf-1",
                "content": ["title": "Title", "message": .string(message), "status": .string(status), "result": result],
            ],
        ]
    }

    static let endpoint: JSONValue = ["endpoint_id": "e-1", "endpoint_url": "http://e-1/v1"]

    @Test("deployment_create: completion, failure, ETA, activities and unrelated events")
    func deploymentCreateEvents() async throws {
        let cases: [(JSONValue, EventOutcome)] = [
            (
                Self.notification("perform_deployment", "results", "COMPLETED", result: Self.endpoint),
                .complete(
                    status: .completed,
                    outputs: [
                        "success": true, "endpoint_id": "e-1", "endpoint_url": "http://e-1/v1", "status": "completed",
                        "message": "Endpoint 'llama' deployed successfully",
                    ])
            ),
            (
                Self.notification("deploy_model", "deployment_status", "FAILED", message: "no GPU left"),
                .complete(status: .failed, outputs: ["success": false, "status": "failed", "message": "no GPU left"], error: "no GPU left")
            ),
            (
                Self.notification("perform_deployment", "validation", "FAILED"),
                .complete(
                    status: .failed, outputs: ["success": false, "status": "failed", "message": "Deployment failed"],
                    error: "Deployment failed")
            ),
            (
                ["type": "workflow_completed", "workflow_id": "wf-1", "status": "FAILED", "reason": "quota exceeded"],
                .complete(
                    status: .failed, outputs: ["success": false, "status": "failed", "message": "quota exceeded"], error: "quota exceeded")
            ),
            (Self.notification("perform_deployment", "eta", "RUNNING", message: "7"), .updateProgress(percent: nil, etaSeconds: 420)),
            (Self.notification("perform_deployment", "eta", "RUNNING", message: "soon"), .ignore),
            (
                Self.notification("perform_deployment", "deploy_model", "started", message: "pulling"),
                .updateProgress(percent: 30, etaSeconds: nil, message: "pulling")
            ),
            (
                Self.notification("perform_deployment", "deployment_status", "STARTED", message: "warming"),
                .updateProgress(percent: 60, etaSeconds: nil, message: "warming")
            ),
            (Self.notification("perform_model_extraction", "results", "COMPLETED"), .ignore),
            (Self.notification("perform_deployment", "transfer_model_to_cluster", "RUNNING"), .ignore),
        ]
        try await PluginTestHost.withPlugin(product: "ClusterDeploy") { plugin in
            for (event, expected) in cases {
                let outcome = try await plugin.handleEvent(
                    "deployment_create", externalWorkflowID: "wf-1", event: event, stepOutputs: ["endpoint_name": "llama"])
                #expect(outcome == expected, "\(event)")
            }
        }
    }

    @Test("deployment_delete: the results' namespace, failures, progress")
    func deploymentDeleteEvents() async throws {
        try await PluginTestHost.withPlugin(product: "ClusterDeploy") { plugin in
            let done = try await plugin.handleEvent(
                "deployment_delete", externalWorkflowID: "wf-1",
                event: Self.notification("delete_deployment", "results", "COMPLETED", result: ["namespace": "bud-x", "cluster_id": "c-1"]))
            #expect(
                done
                    == .complete(
                        status: .completed,
                        outputs: [
                            "success": true, "status": "deleted", "namespace": "bud-x", "cluster_id": "c-1",
                            "message": "Deployment 'bud-x' deleted successfully",
                        ]))
            let failed = try await plugin.handleEvent(
                "deployment_delete", externalWorkflowID: "wf-1", event: Self.notification("delete_deployment", "delete_namespace", "FAILED")
            )
            #expect(
                failed
                    == .complete(
                        status: .failed, outputs: ["success": false, "status": "failed", "message": "Deployment deletion failed"],
                        error: "Deployment deletion failed"))
            let progress = try await plugin.handleEvent(
                "deployment_delete", externalWorkflowID: "wf-1",
                event: Self.notification("delete_deployment", "delete_namespace", "STARTED", message: "removing"))
            #expect(progress == .updateProgress(percent: 70, etaSeconds: nil, message: "removing"))
        }
    }

    @Test("model_benchmark: results, a failed activity named, progress")
    func modelBenchmarkEvents() async throws {
        try await PluginTestHost.withPlugin(product: "ModelBenchmark") { plugin in
            let done = try await plugin.handleEvent(
                "model_benchmark", externalWorkflowID: "wf-1",
                event: Self.notification("performance_benchmark", "results", "completed", result: ["benchmark_id": "b-1", "ttft": 40]))
            #expect(
                done
                    == .complete(
                        status: .completed,
                        outputs: [
                            "success": true, "benchmark_id": "b-1", "status": "completed", "results": ["benchmark_id": "b-1", "ttft": 40],
                            "message": "Benchmark completed",
                        ]))
            let failed = try await plugin.handleEvent(
                "model_benchmark", externalWorkflowID: "wf-1",
                event: Self.notification("performance_benchmark", "run_benchmark", "FAILED", message: "OOM"))
            #expect(
                failed
                    == .complete(
                        status: .failed,
                        outputs: ["success": false, "status": "failed", "message": "Title: OOM", "failed_step": "run_benchmark"],
                        error: "Title: OOM"))
            let progress = try await plugin.handleEvent(
                "model_benchmark", externalWorkflowID: "wf-1", event: Self.notification("performance_benchmark", "deploy_model", "STARTED"))
            #expect(progress == .updateProgress(percent: 20, etaSeconds: nil, message: ""))
            let flat = try await plugin.handleEvent(
                "model_benchmark", externalWorkflowID: "wf-1",
                event: ["type": "workflow_completed", "status": "COMPLETED", "result": ["benchmark_id": "b-2"]])
            #expect(
                flat
                    == .complete(
                        status: .completed,
                        outputs: [
                            "success": true, "benchmark_id": "b-2", "status": "completed", "results": ["benchmark_id": "b-2"],
                            "message": "Benchmark completed",
                        ]))
        }
    }

    @Test("model_add and simulation_run: completion, failure, progress")
    func modelOperationsEvents() async throws {
        try await PluginTestHost.withPlugin(product: "ModelOperations") { plugin in
            let saved = try await plugin.handleEvent(
                "model_add", externalWorkflowID: "wf-1",
                event: Self.notification(
                    "perform_model_extraction", "save_model", "COMPLETED", result: ["model_id": "m-1", "model_name": "M"]))
            #expect(
                saved
                    == .complete(
                        status: .completed,
                        outputs: [
                            "success": true, "model_id": "m-1", "model_name": "M", "status": "completed",
                            "message": "Model added successfully",
                        ]))
            let failed = try await plugin.handleEvent(
                "model_add", externalWorkflowID: "wf-1",
                event: Self.notification("perform_model_extraction", "transfer_model", "FAILED", message: "403 gated repo"))
            #expect(
                failed
                    == .complete(
                        status: .failed, outputs: ["success": false, "status": "failed", "message": "403 gated repo"],
                        error: "403 gated repo"))
            #expect(
                try await plugin.handleEvent(
                    "model_add", externalWorkflowID: "wf-1", event: Self.notification("perform_deployment", "results", "COMPLETED"))
                    == .ignore)

            let budsim = { (activity: String, status: String, result: JSONValue) -> JSONValue in
                var event = Self.notification("get_cluster_recommendations", activity, status, result: result)
                if case .object(var members) = event {
                    members["type"] = "get_cluster_recommendations"
                    event = .object(members)
                }
                return event
            }
            let phase = try await plugin.handleEvent(
                "simulation_run", externalWorkflowID: "wf-2", event: budsim("ranking", "COMPLETED", nil))
            #expect(phase == .updateProgress(percent: 95, etaSeconds: nil, message: ""))
            let empty = try await plugin.handleEvent(
                "simulation_run", externalWorkflowID: "wf-2", event: budsim("results", "COMPLETED", ["recommendations": []]))
            #expect(
                empty
                    == .complete(
                        status: .failed,
                        outputs: ["success": false, "status": "failed", "message": "Simulation completed but returned no recommendations"],
                        error: "Simulation completed but returned no recommendations"))
            let top: JSONValue = ["cluster_id": "c-1", "metrics": ["ttft": 40], "chat_template": "chatml"]
            let done = try await plugin.handleEvent(
                "simulation_run", externalWorkflowID: "wf-2", event: budsim("results", "COMPLETED", ["recommendations": [top]]))
            guard case .complete(.completed, let outputs, nil) = done else {
                Issue.record("expected completion, got \(done)")
                return
            }
            #expect(outputs["cluster_id"] == "c-1" && outputs["metrics"]?["ttft"] == 40 && outputs["chat_template"] == "chatml")
            #expect(outputs["top_recommendation"] == top && outputs["recommendations"] == [top])
            #expect(
                try await plugin.validate("simulation_run", params: ["model_id": "m", "target_ttft": 100, "quantization_method": "awq"])
                    == [
                        "SLO targets required: missing target_throughput_per_user, target_e2e_latency",
                        "quantization_method/quantization_type require is_quantization=true",
                    ])
            #expect(
                try await plugin.validate("model_add", params: ["model_uri": "llama", "model_source": "hugging_face"]) == [
                    "Hugging Face model_uri must look like org/model"
                ])
        }
    }

    @Test("parameter checks say what is wrong")
    func parameterChecks() async throws {
        try await PluginTestHost.withPlugin(product: "ClusterDeploy") { plugin in
            #expect(
                try await plugin.validate("deployment_create", params: ["ttft": [300, 100], "hardware_mode": "cheap"]) == [
                    "model_id is required", "project_id is required", "endpoint_name is required",
                    "Either cluster_id (for local models) or credential_id (for cloud models) is required",
                    "hardware_mode must be 'dedicated' or 'shared'", "ttft min value cannot be greater than max value",
                ])
            #expect(
                try await plugin.validate(
                    "deployment_create",
                    params: [
                        "model_id": "m", "project_id": "p", "endpoint_name": "e", "cluster_id": "c", "ttft": nil, "e2e_latency": ["a", 2],
                        "budaiscaler_specification": ["minReplicas": -1],
                    ]) == [
                        "SLO targets are required for dedicated hardware mode: missing ttft, per_session_tokens_per_sec",
                        "e2e_latency values must be numbers", "budaiscaler_specification.minReplicas must be a non-negative integer",
                    ])
            #expect(
                try await plugin.validate("deployment_scale", params: ["endpoint_id": "e", "target_replicas": 101]) == [
                    "target_replicas cannot exceed 100"
                ])
            #expect(
                try await plugin.validate("cluster_health", params: ["cluster_id": "c", "checks": ["disk"]]) == [
                    "checks must be from: nodes, api, storage, network, gpu"
                ])
            let noUser = try await plugin.execute(
                "deployment_create", params: ["model_id": "m", "project_id": "p", "endpoint_name": "e", "credential_id": "k"])
            guard case .failed(let message, let retryable, let outputs) = noUser else {
                Issue.record("expected a failure, got \(noUser)")
                return
            }
            #expect(message.hasPrefix("no user to act as on budapp") && !retryable && outputs["success"] == false)
        }
        try await PluginTestHost.withPlugin(product: "ModelBenchmark") { plugin async throws in
            #expect(
                try await plugin.validate("model_benchmark", params: ["model_id": "m", "cluster_id": "not-a-uuid", "num_prompts": 0]) == [
                    "Invalid cluster_id format: not-a-uuid (expected a UUID)", "num_prompts must be between 1 and 1000",
                ])
        }
    }

    @Test("a bad plugin configuration refuses the plugin with its reason")
    func badConfiguration() async throws {
        await #expect(throws: (any Error).self) {
            try await PluginTestHost.withPlugin(product: "ModelBenchmark", configuration: ["call_timeout_seconds": "soon"]) { _ in }
        }
    }
}
