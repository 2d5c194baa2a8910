import BudJSON
import BudServicesSimulator
import DaprSidecar
import Foundation
import Testing
import _BudPipelineTestSupport

/// The domain plugins end to end: `budpipeline serve` loads them by default, they call the
/// simulated bud services through the test Dapr sidecar, and the services' workflow events come
/// back through the sidecar to `/workflow-events`.
@Suite("Domain plugins end to end", .serialized)
struct DomainPluginTests {
    static let token = "domain-test-token"
    static let user = "6f1c0e2a-0b1d-4c3e-9f50-7a6b5c4d3e2f"

    /// Cluster health → deploy → benchmark → scale → notify → tear down, in the spirit of
    /// ml_deployment_dag.json; the README's quick-start runs the same file.
    static func pipeline() throws -> JSONValue {
        try JSONValue(parsing: String(contentsOfFile: Repository.path("docs/examples/deploy-benchmark-notify.json"), encoding: .utf8))
    }

    static let params: JSONValue = [
        "model_id": .string(SimulatorFixtures.modelID), "cluster_id": .string(SimulatorFixtures.clusterID),
        "bud_cluster_id": .string(SimulatorFixtures.budClusterID), "project_id": .string(SimulatorFixtures.projectID),
    ]

    /// A sidecar with the simulated services behind it, and a server wired to both.
    static func withServices(
        _ backend: TestBackend, pluginConfiguration: JSONValue? = nil,
        _ body: (APIServerProcess, DaprSidecar, BudServicesSimulator) async throws -> Void
    ) async throws {
        let sidecar = DaprSidecar(appToken: token)
        let simulator = BudServicesSimulator(sidecar: sidecar, pace: .milliseconds(150))
        simulator.install()
        try await sidecar.start()
        var environment = ["APP_API_TOKEN": token, "DAPR_HTTP_ENDPOINT": try #require(sidecar.endpoint)]
        var configurationFile: URL?
        if let pluginConfiguration {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("plugins-\(UUID().uuidString).json")
            try Data(pluginConfiguration.serialized()).write(to: file)
            environment["BUDPIPELINE_PLUGIN_CONFIG"] = file.path
            configurationFile = file
        }
        defer { configurationFile.map { try? FileManager.default.removeItem(at: $0) } }
        do {
            try await APIServerProcess.with(backend, environment: environment) { server in
                sidecar.appURL = server.baseURL
                try await body(server, sidecar, simulator)
            }
        } catch {
            await sidecar.stop()
            throw error
        }
        await sidecar.stop()
    }

    static func start(_ dag: JSONValue, params: JSONValue = params, on server: APIServerProcess) async throws -> String {
        let started = try await server.send(
            "POST", "/executions/run", json: ["pipeline_definition": dag, "params": params, "user_id": .string(user)])
        #expect(started.status == 201, "\(started.text)")
        return try #require(started.json["execution_id"]?.stringValue)
    }

    static func steps(of executionID: String, on server: APIServerProcess) async throws -> [String: JSONValue] {
        let steps = try await server.send("GET", "/executions/\(executionID)/steps").json["steps"]?.arrayValue ?? []
        return Dictionary(uniqueKeysWithValues: steps.compactMap { step in step["step_id"]?.stringValue.map { ($0, step) } })
    }

    @Test("deploy → benchmark → scale → notify → tear down completes through REST, progress streamed", arguments: TestBackend.available)
    func deployBenchmarkNotify(backend: TestBackend) async throws {
        try await Self.withServices(backend) { server, sidecar, simulator in
            let created = try await server.send(
                "POST", "/pipelines", json: ["dag": try Self.pipeline(), "name": .string("e2e-\(backend)")])
            #expect(created.status == 201, "\(created.text)")
            let pipelineID = try #require(created.json["id"]?.stringValue)
            let started = try await server.send(
                "POST", "/executions", json: ["workflow_id": .string(pipelineID), "params": Self.params, "user_id": .string(Self.user)])
            #expect(started.status == 201, "\(started.text)")
            let executionID = try #require(started.json["execution_id"]?.stringValue)
            let stream = try await server.send("GET", "/executions/\(executionID)/stream")

            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "COMPLETED", "\(execution)")
            let steps = try await Self.steps(of: executionID, on: server)
            #expect(steps.values.allSatisfy { $0["status"] == "COMPLETED" }, "\(steps)")
            let deploy = try #require(steps["deploy"]?["outputs"])
            let endpointID = try #require(deploy["endpoint_id"]?.stringValue)
            #expect(deploy["status"] == "completed" && deploy["success"] == true)
            #expect(deploy["endpoint_url"] == "http://llama-e2e.bud.local/v1")
            let benchmark = try #require(steps["benchmark"]?["outputs"])
            #expect(benchmark["status"] == "completed" && benchmark["results"]?["throughput_tokens_per_sec"] == 1843.5)
            #expect(benchmark["benchmark_id"]?.stringValue?.isEmpty == false)
            #expect(steps["scale"]?["outputs"]?["previous_max_replicas"] == 1 && steps["scale"]?["outputs"]?["target_replicas"] == 2)
            #expect(steps["teardown"]?["outputs"]?["namespace"] == "bud-llama-e2e")
            #expect(steps["health"]?["outputs"]?["status"] == "healthy")
            #expect(simulator.endpoints[endpointID] == nil, "torn down")

            // What the services were asked.
            let calls = sidecar.invocations
            let deployCall = try #require(calls.first { $0.path.hasPrefix("models/deploy-workflow") })
            #expect(deployCall.app == "budapp" && deployCall.path.contains("user_id=\(Self.user)"))
            #expect(deployCall.body["callback_topic"] == "budpipelineEvents" && deployCall.body["endpoint_name"] == "llama-e2e")
            #expect(deployCall.body["deploy_config"]?["ttft"] == [50, 200], "the action's defaults")
            #expect(deployCall.body["simulator_id"]?.stringValue?.isEmpty == false, "smart mode asked budsim first")
            #expect(deployCall.body["tool_calling_parser_type"] == "llama3_json" && deployCall.body["enable_tool_calling"] == true)
            #expect(deployCall.traceparent?.contains(executionID.replacingOccurrences(of: "-", with: "")) == true)
            let run = try #require(calls.first { $0.path.hasPrefix("benchmark/run-workflow") })
            #expect(run.body["bud_cluster_id"]?.stringValue == SimulatorFixtures.budClusterID)
            #expect(run.body["selected_device_type"] == "cuda" && run.body["tp_size"] == 1 && run.body["replicas"] == 4)
            #expect(run.body["nodes"]?.arrayValue?.map { $0["hostname"] } == ["gpu-node-1", "cpu-node-1"])
            let sent = try #require(simulator.notifications.first)
            #expect(sent["subscriber_ids"] == [.string(Self.user)])
            #expect(sent["payload"]?["content"]?["message"] == "http://llama-e2e.bud.local/v1 serves 1843.5 tokens/s")

            // Progress came live: the deployment's ETA event and its activities.
            let events = stream.text.components(separatedBy: "\n\n").compactMap { block -> (String, JSONValue)? in
                let lines = block.split(separator: "\n")
                guard let name = lines.first(where: { $0.hasPrefix("event: ") })?.dropFirst(7),
                    let data = lines.first(where: { $0.hasPrefix("data: ") }).flatMap({ try? JSONValue(parsing: String($0.dropFirst(6))) })
                else { return nil }
                return (String(name), data)
            }
            let progress = events.filter { $0.0 == "workflow_progress" }.compactMap { $0.1["progress"]?.doubleValue }
            #expect(progress == progress.sorted() && progress.count >= 4, "\(progress)")
            #expect(events.contains { $0.0 == "workflow_progress" && ($0.1["eta_seconds"]?.intValue ?? 0) > 0 })
            #expect(events.last?.0 == "workflow_completed")
        }
    }

    @Test("add a model → simulate its serving → delete it completes, each step on its service's events", arguments: TestBackend.available)
    func onboardSimulateDelete(backend: TestBackend) async throws {
        let dag: JSONValue = [
            "name": "onboard",
            "steps": [
                [
                    "id": "add", "name": "Add", "action": "model_add",
                    "params": ["model_uri": "org/model-e2e", "model_source": "hugging_face", "max_wait_seconds": 600],
                ],
                [
                    "id": "size", "name": "Size", "action": "simulation_run", "depends_on": ["add"],
                    "params": [
                        "model_id": "{{ steps.add.outputs.model_id }}", "target_ttft": 200, "target_throughput_per_user": 20,
                        "target_e2e_latency": 30,
                    ],
                ],
                [
                    "id": "remove", "name": "Remove", "action": "model_delete", "depends_on": ["size"],
                    "params": ["model_id": "{{ steps.add.outputs.model_id }}"],
                ],
            ],
        ]
        try await Self.withServices(backend) { server, sidecar, simulator in
            let executionID = try await Self.start(dag, params: [:], on: server)
            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "COMPLETED", "\(execution)")
            let outputs = try #require(execution["final_outputs"])
            let modelID = try #require(outputs["add"]?["model_id"]?.stringValue)
            #expect(outputs["add"]?["model_name"] == "model-e2e")
            #expect(
                outputs["size"]?["tool_calling_parser_type"] == "llama3_json" && outputs["size"]?["recommendations"]?.arrayValue?.count == 1
            )
            #expect(outputs["remove"]?["success"] == true)
            #expect(simulator.models[modelID] == nil, "deleted again")
            let add = try #require(sidecar.invocations.first { $0.path.hasPrefix("models/local-model-workflow") })
            #expect(add.body["callback_topic"] == "budpipelineEvents" && add.body["uri"] == "org/model-e2e")
            let simulate = try #require(sidecar.invocations.first { $0.app == "budsim" })
            #expect(simulate.body["source_topic"] == "budpipelineEvents" && simulate.body["debug"] == false)
            #expect(simulate.body["pretrained_model_uri"] == "org/model-e2e" && simulate.body["target_ttft"] == 200)
        }
    }

    /// A failure and what the failed step's error must say.
    struct FailureCase: CustomStringConvertible, Sendable {
        var description: String
        var operation: BudServicesSimulator.Operation
        var fault: BudServicesSimulator.Fault
        var step: String
        var expectedStatus: String
        var expectedError: String
        var dag: JSONValue
    }

    static func single(_ step: JSONValue) -> JSONValue { ["name": "single", "steps": [step]] }

    static let deployStep: JSONObject = [
        "id": "deploy", "name": "Deploy", "action": "deployment_create",
        "params": [
            "model_id": .string(SimulatorFixtures.modelID), "project_id": .string(SimulatorFixtures.projectID), "endpoint_name": "fails",
            "cluster_id": .string(SimulatorFixtures.clusterID),
        ],
    ]

    static let benchmarkStep: JSONObject = [
        "id": "benchmark", "name": "Benchmark", "action": "model_benchmark",
        "params": ["model_id": .string(SimulatorFixtures.modelID), "cluster_id": .string(SimulatorFixtures.clusterID)],
    ]

    static let failures: [FailureCase] = [
        FailureCase(
            description: "budapp answers 4xx", operation: .deploy, fault: .status(422, message: "endpoint name 'fails' is already in use"),
            step: "deploy", expectedStatus: "FAILED",
            expectedError: "Failed to start the deployment: budapp answered HTTP 422: endpoint name 'fails' is already in use",
            dag: single(.object(deployStep))),
        FailureCase(
            description: "budapp answers 5xx", operation: .benchmark, fault: .status(503, message: "budapp is restarting"),
            step: "benchmark",
            expectedStatus: "FAILED", expectedError: "Failed to start the benchmark: budapp answered HTTP 503: budapp is restarting",
            dag: single(.object(benchmarkStep))),
        FailureCase(
            description: "budcluster times out", operation: .clusterNodes, fault: .slow(.seconds(4)), step: "benchmark",
            expectedStatus: "FAILED",
            expectedError: "Failed to list the nodes of cluster \(SimulatorFixtures.budClusterID): budcluster did not answer",
            dag: single(.object(benchmarkStep))),
        FailureCase(
            description: "the workflow reports failure", operation: .deploy,
            fault: .workflowFails(message: "Insufficient GPU memory on gpu-node-1"), step: "deploy", expectedStatus: "FAILED",
            expectedError: "Insufficient GPU memory on gpu-node-1", dag: single(.object(deployStep))),
        FailureCase(
            description: "the completion event never comes", operation: .benchmark, fault: .silentWorkflow, step: "benchmark",
            expectedStatus: "TIMEOUT", expectedError: "Step timed out waiting for event from workflow",
            dag: single(.object(benchmarkStep.merging(["timeout_seconds": 2])))),
        FailureCase(
            description: "budapp keeps failing: the circuit opens", operation: .clusterLookup,
            fault: .status(500, message: "database is down"),
            step: "benchmark", expectedStatus: "FAILED", expectedError: "budapp did not answer: circuit open for budapp",
            dag: single(
                .object(
                    benchmarkStep.merging([
                        "on_failure": "retry", "retry": ["max_attempts": 6, "backoff_seconds": 1, "backoff_multiplier": 1],
                    ])))),
    ]

    @Test("each failure ends FAILED with its cause and leaves nothing running", arguments: TestBackend.available)
    func failurePaths(backend: TestBackend) async throws {
        try await Self.withServices(backend, pluginConfiguration: ["model_benchmark": ["call_timeout_seconds": 1]]) {
            server, _, simulator in
            for failure in Self.failures {
                simulator.clearFaults()
                simulator.inject(failure.fault, into: failure.operation)
                let executionID = try await Self.start(failure.dag, on: server)
                guard let execution = try? await server.finished(executionID) else {
                    Issue.record("\(failure): the execution did not finish: \(try await Self.steps(of: executionID, on: server))")
                    continue
                }
                #expect(execution["status"] == "FAILED", "\(failure): \(execution)")
                let message = execution["error_info"]?["message"]?.stringValue ?? ""
                #expect(message.contains(failure.expectedError), "\(failure): error_info says '\(message)'")
                let steps = try await Self.steps(of: executionID, on: server)
                let step = try #require(steps[failure.step], "\(failure)")
                #expect(step["status"]?.stringValue == failure.expectedStatus, "\(failure): \(step)")
                #expect(step["error_message"]?.stringValue?.contains(failure.expectedError) == true, "\(failure): \(step)")
                #expect(step["outputs"]?["success"] == false, "\(failure): consistent outputs \(step)")
                #expect(!steps.values.contains { ["RUNNING", "PENDING", "RETRYING"].contains($0["status"]?.stringValue ?? "") })
            }
        }
    }
}
