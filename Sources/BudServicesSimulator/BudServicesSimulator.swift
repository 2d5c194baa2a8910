public import BudJSON
public import DaprSidecar
import Foundation
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A local stand-in for the bud services the domain plugins call — budapp, budcluster, budsim and
/// budnotify — behind the test Dapr sidecar.
///
/// It answers service invocations in the shapes those services answer, and runs the workflows
/// they start as the real ones report them: it publishes the progress and completion
/// notifications to `budpipelineEvents` through the sidecar's publish API, which delivers them to
/// BudPipeline's `/workflow-events`. Faults can be injected per operation: an HTTP error, a slow
/// answer, a workflow that fails, or one that never reports back.
public final class BudServicesSimulator: Sendable {
    /// A simulated service route.
    public enum Operation: String, Sendable, CaseIterable {
        /// budapp `GET models/{id}`.
        case modelLookup = "model_lookup"
        /// budapp `POST models/local-model-workflow` and the extraction it starts.
        case modelAdd = "model_add"
        /// budapp `DELETE models/{id}`.
        case modelDelete = "model_delete"
        /// budapp `POST models/deploy-workflow` and the deployment it starts.
        case deploy
        /// budapp `POST endpoints/{id}/delete-workflow` and the deletion it starts.
        case delete
        /// budapp `GET|PUT endpoints/{id}/autoscale`.
        case autoscale
        /// budapp `GET clusters/{id}` and `GET clusters/clusters`.
        case clusterLookup = "cluster_lookup"
        /// budapp `POST benchmark/node-configurations`.
        case nodeConfigurations = "node_configurations"
        /// budapp `POST benchmark/run-workflow` and the benchmark it starts.
        case benchmark
        /// budcluster `GET cluster/{id}/health`.
        case clusterHealth = "cluster_health"
        /// budcluster `GET cluster/{id}/nodes`.
        case clusterNodes = "cluster_nodes"
        /// budsim `POST simulator/run` (answered at once with `debug: true`, else run as a workflow).
        case simulate
        /// budnotify `POST notifications`.
        case notify
    }

    /// What goes wrong with an operation.
    public enum Fault: Sendable, Equatable {
        /// The service answers this HTTP status with an error body carrying `message`.
        case status(Int, message: String)
        /// The service answers only after this long (longer than the caller waits: a timeout).
        case slow(Duration)
        /// The workflow starts, then reports failure with `message`.
        case workflowFails(message: String)
        /// The workflow starts and never reports back.
        case silentWorkflow
    }

    private struct State {
        var faults: [Operation: Fault] = [:]
        var endpoints: [String: JSONObject] = [:]
        var models: [String: JSONValue] = [SimulatorFixtures.modelID: SimulatorFixtures.model]
        var notifications: [JSONValue] = []
        var published: [JSONValue] = []
    }

    private let state = Mutex(State())
    private let sidecar: DaprSidecar
    /// The pub/sub component and topic completion events go to.
    public let pubsub: String
    public let topic: String
    /// The pause before each event of a running workflow.
    public let pace: Duration

    public init(sidecar: DaprSidecar, pubsub: String = "pubsub", topic: String = "budpipelineEvents", pace: Duration = .milliseconds(300)) {
        self.sidecar = sidecar
        self.pubsub = pubsub
        self.topic = topic
        self.pace = pace
    }

    /// Registers the simulated apps with the sidecar under their default app ids.
    public func install() {
        sidecar.handleInvocations(of: "budapp") { await self.budapp($0) }
        sidecar.handleInvocations(of: "budcluster") { await self.budcluster($0) }
        sidecar.handleInvocations(of: "budsim") { await self.budsim($0) }
        sidecar.handleInvocations(of: "budnotify") { await self.budnotify($0) }
    }

    // MARK: Steering and observing

    /// Makes `operation` misbehave until ``clearFaults()``.
    public func inject(_ fault: Fault, into operation: Operation) {
        state.withLock { $0.faults[operation] = fault }
    }

    public func clearFaults() {
        state.withLock { $0.faults = [:] }
    }

    /// The notification requests budnotify received, in arrival order.
    public var notifications: [JSONValue] { state.withLock { $0.notifications } }

    /// The events published to ``topic``, in order.
    public var publishedEvents: [JSONValue] { state.withLock { $0.published } }

    /// The models in the catalogue, by id (the fixture model and those added).
    public var models: [String: JSONValue] { state.withLock { $0.models } }

    /// The endpoints deployed and not deleted, by id.
    public var endpoints: [String: JSONObject] { state.withLock { $0.endpoints } }

    // MARK: Apps

    private typealias Answer = (status: Int, body: JSONValue)

    private func budapp(_ call: DaprSidecar.Invocation) async -> Answer {
        let (path, query) = Self.split(call.path)
        let parts = path.split(separator: "/").map(String.init)
        guard query["user_id"]?.isEmpty == false else { return Self.error(422, "user_id is required") }
        switch (call.method, parts.count, parts.first) {
        case ("POST", 2, "models") where parts[1] == "local-model-workflow":
            return await startModelExtraction(call, user: query["user_id"] ?? "")
        case ("GET", 2, "models"):
            if let fault = await fault(.modelLookup) { return fault }
            guard let model = state.withLock({ $0.models[parts[1]] }) else { return Self.error(404, "Model not found") }
            return (200, ["object": "model.get", "model": model])
        case ("DELETE", 2, "models"):
            if let fault = await fault(.modelDelete) { return fault }
            guard state.withLock({ $0.models.removeValue(forKey: parts[1]) }) != nil else { return Self.error(404, "Model not found") }
            return (200, ["object": "info", "message": "Model deleted successfully"])
        case ("POST", 2, "models") where parts[1] == "deploy-workflow":
            return await startDeployment(call)
        case ("POST", 3, "endpoints") where parts[2] == "delete-workflow":
            return await startDeletion(endpointID: parts[1], user: query["user_id"] ?? "")
        case (_, 3, "endpoints") where parts[2] == "autoscale":
            return await autoscale(endpointID: parts[1], method: call.method, body: call.body)
        case ("GET", 2, "clusters"):
            if let fault = await fault(.clusterLookup) { return fault }
            if parts[1] == "clusters" { return (200, ["object": "cluster.list", "clusters": [SimulatorFixtures.cluster]]) }
            return parts[1] == SimulatorFixtures.clusterID
                ? (200, ["object": "cluster.get", "cluster": SimulatorFixtures.cluster]) : Self.error(404, "Cluster not found")
        case ("POST", 2, "benchmark") where parts[1] == "node-configurations":
            if let fault = await fault(.nodeConfigurations) { return fault }
            return (200, ["object": "benchmark.node_configurations", "device_configurations": SimulatorFixtures.deviceConfigurations])
        case ("POST", 2, "benchmark") where parts[1] == "run-workflow":
            return await startBenchmark(call, user: query["user_id"] ?? "")
        default:
            return Self.error(404, "Not Found: \(call.method) \(path)")
        }
    }

    private func budcluster(_ call: DaprSidecar.Invocation) async -> Answer {
        let (path, query) = Self.split(call.path)
        let parts = path.split(separator: "/").map(String.init)
        guard call.method == "GET", parts.count == 3, parts[0] == "cluster" else { return Self.error(404, "Not Found: \(path)") }
        guard parts[1] == SimulatorFixtures.budClusterID else { return Self.error(404, "Cluster not found") }
        switch parts[2] {
        case "health":
            if let fault = await fault(.clusterHealth) { return fault }
            let checks = (query["checks"] ?? "nodes,api").split(separator: ",").map(String.init)
            let data = JSONObject(checks.map { ($0, ["healthy": true, "message": .string("\($0) healthy")]) })
            return (200, ["object": "cluster.health", "data": .object(data)])
        case "nodes":
            if let fault = await fault(.clusterNodes) { return fault }
            return (200, ["object": "cluster.nodes", "param": ["nodes": SimulatorFixtures.nodes]])
        default:
            return Self.error(404, "Not Found: \(path)")
        }
    }

    private func budsim(_ call: DaprSidecar.Invocation) async -> Answer {
        guard call.method == "POST", Self.split(call.path).path == "simulator/run" else { return Self.error(404, "Not Found") }
        if let fault = await fault(.simulate) { return fault }
        guard call.body["pretrained_model_uri"]?.stringValue?.isEmpty == false else {
            return Self.error(422, "pretrained_model_uri is required")
        }
        let workflowID = Self.newID()
        guard call.body["debug"] == false else {
            return (200, ["workflow_id": .string(workflowID), "recommendations": [SimulatorFixtures.recommendation]])
        }
        // Called directly by BudPipeline, budsim publishes without subscribers: the top-level
        // type is the workflow kind.
        run(
            workflowID, operation: .simulate, user: nil, kind: "get_cluster_recommendations", source: "budsim", failure: "Simulation failed"
        ) {
            [
                .event("validation", status: "COMPLETED", message: "Inputs are valid"),
                .event("hardware_selection", status: "STARTED", message: "Choosing hardware"),
                .event("performance_estimation", status: "STARTED", message: "Estimating performance"),
                .results(
                    status: "COMPLETED", message: "Recommendations ready", result: ["recommendations": [SimulatorFixtures.recommendation]]),
            ]
        } completed: {
        }
        return (200, ["workflow_id": .string(workflowID), "status": "RUNNING"])
    }

    private func budnotify(_ call: DaprSidecar.Invocation) async -> Answer {
        guard call.method == "POST", Self.split(call.path).path == "notifications" else { return Self.error(404, "Not Found") }
        if let fault = await fault(.notify) { return fault }
        guard call.body["subscriber_ids"] != nil, call.body["payload"] != nil else {
            return Self.error(422, "subscriber_ids and payload are required")
        }
        state.withLock { $0.notifications.append(call.body) }
        return (200, ["object": "info", "message": "Notification triggered"])
    }

    // MARK: Workflows

    private func startDeployment(_ call: DaprSidecar.Invocation) async -> Answer {
        if let fault = await fault(.deploy) { return fault }
        let body = call.body
        guard let modelID = body["model_id"]?.stringValue, state.withLock({ $0.models[modelID] != nil }) else {
            return Self.error(404, "Model not found")
        }
        guard body["project_id"]?.stringValue == SimulatorFixtures.projectID else { return Self.error(404, "Project not found") }
        if let cluster = body["cluster_id"]?.stringValue, cluster != SimulatorFixtures.clusterID {
            return Self.error(404, "Cluster not found")
        }
        let workflowID = Self.newID()
        let endpointID = Self.newID()
        let name = body["endpoint_name"]?.stringValue ?? "endpoint"
        let user = Self.split(call.path).query["user_id"] ?? ""
        let kind = "perform_deployment"
        run(workflowID, operation: .deploy, user: user, kind: kind, source: "budcluster", failure: "Deployment failed") {
            [
                .event("eta", status: "RUNNING", message: "2"),
                .event("deploy_model", status: "STARTED", message: "Deploying \(name)"),
                .event("deployment_status", status: "STARTED", message: "Waiting for the engine to serve"),
                .results(
                    status: "COMPLETED", message: "Deployment \(name) is ready",
                    result: ["endpoint_id": .string(endpointID), "endpoint_url": .string("http://\(name).bud.local/v1")]),
            ]
        } completed: {
            self.state.withLock {
                $0.endpoints[endpointID] = ["name": .string(name), "namespace": .string("bud-\(name)"), "minReplicas": 1, "maxReplicas": 1]
            }
        }
        return (
            200,
            [
                "object": "workflow.get", "code": 200, "message": "Deployment workflow started",
                "data": ["workflow_id": .string(workflowID), "status": "in_progress", "current_step": 1, "total_steps": 1],
            ]
        )
    }

    private func startModelExtraction(_ call: DaprSidecar.Invocation, user: String) async -> Answer {
        if let fault = await fault(.modelAdd) { return fault }
        guard let uri = call.body["uri"]?.stringValue, !uri.isEmpty else { return Self.error(422, "uri is required") }
        guard call.body["callback_topic"]?.stringValue?.isEmpty == false else { return Self.error(422, "callback_topic is required") }
        let workflowID = Self.newID()
        let modelID = Self.newID()
        let name = call.body["name"]?.stringValue ?? String(uri.split(separator: "/").last ?? "model")
        let model: JSONValue = [
            "id": .string(modelID), "name": .string(name), "provider_type": call.body["provider_type"] ?? "hugging_face",
            "local_path": .string(uri), "uri": .string(uri), "supported_endpoints": ["chat": ["enabled": true]],
        ]
        run(
            workflowID, operation: .modelAdd, user: user, kind: "perform_model_extraction", source: "budmodel",
            failure: "Model extraction failed"
        ) {
            [
                .event("eta", status: "RUNNING", message: "1"),
                .event("transfer_model", status: "STARTED", message: "Downloading \(uri)"),
                .event("save_model", status: "RUNNING", message: "Saving"),
                .results(
                    status: "COMPLETED", message: "Model extraction completed",
                    result: ["model_id": .string(modelID), "model_name": .string(name)]),
            ]
        } completed: {
            self.state.withLock { $0.models[modelID] = model }
        }
        return (200, ["object": "workflow.get", "code": 200, "data": ["workflow_id": .string(workflowID), "status": "in_progress"]])
    }

    private func startDeletion(endpointID: String, user: String) async -> Answer {
        if let fault = await fault(.delete) { return fault }
        guard let endpoint = state.withLock({ $0.endpoints[endpointID] }) else { return Self.error(404, "Endpoint not found") }
        let workflowID = Self.newID()
        run(
            workflowID, operation: .delete, user: user, kind: "delete_deployment", source: "budcluster",
            failure: "Deployment deletion failed"
        ) {
            [
                .event("deployment_deletion_status", status: "STARTED", message: "Deleting"),
                .results(
                    status: "COMPLETED", message: "Deployment deleted",
                    result: ["namespace": endpoint["namespace"] ?? .null, "cluster_id": .string(SimulatorFixtures.budClusterID)]),
            ]
        } completed: {
            _ = self.state.withLock { $0.endpoints.removeValue(forKey: endpointID) }
        }
        return (
            200, ["object": "workflow.get", "code": 200, "message": "Deployment deletion initiated", "workflow_id": .string(workflowID)]
        )
    }

    private func autoscale(endpointID: String, method: String, body: JSONValue) async -> Answer {
        if let fault = await fault(.autoscale) { return fault }
        guard let endpoint = state.withLock({ $0.endpoints[endpointID] }) else { return Self.error(404, "Endpoint not found") }
        switch method {
        case "GET":
            let config: JSONObject = [
                "enabled": true, "minReplicas": endpoint["minReplicas"] ?? 1, "maxReplicas": endpoint["maxReplicas"] ?? 1,
                "scalingStrategy": "BudScaler",
            ]
            return (200, ["object": "endpoint.autoscale", "budaiscaler_config": .object(config)])
        case "PUT":
            guard let spec = body["budaiscaler_specification"]?.objectValue else {
                return Self.error(422, "budaiscaler_specification is required")
            }
            state.withLock {
                $0.endpoints[endpointID]?["minReplicas"] = spec["minReplicas"] ?? 1
                $0.endpoints[endpointID]?["maxReplicas"] = spec["maxReplicas"] ?? 1
            }
            return (200, ["object": "endpoint.autoscale", "message": "Autoscale configuration updated"])
        default:
            return Self.error(405, "Method Not Allowed")
        }
    }

    private func startBenchmark(_ call: DaprSidecar.Invocation, user: String) async -> Answer {
        if let fault = await fault(.benchmark) { return fault }
        guard let modelID = call.body["model_id"]?.stringValue, state.withLock({ $0.models[modelID] != nil }) else {
            return Self.error(404, "Model not found")
        }
        guard call.body["cluster_id"]?.stringValue == SimulatorFixtures.clusterID,
            call.body["bud_cluster_id"]?.stringValue == SimulatorFixtures.budClusterID
        else { return Self.error(404, "Cluster not found") }
        let workflowID = Self.newID()
        var result = SimulatorFixtures.benchmarkResult
        result["benchmark_id"] = .string(Self.newID())
        result["concurrent_requests"] = call.body["concurrent_requests"] ?? 1
        let finalResult = result
        run(workflowID, operation: .benchmark, user: user, kind: "performance_benchmark", source: "budcluster", failure: "Benchmark failed")
        {
            [
                .event("eta", status: "RUNNING", message: "3"),
                .event("deploy_model", status: "STARTED", message: "Deploying the model for the benchmark"),
                .event("run_benchmark", status: "STARTED", message: "Running \(call.body["num_prompts"]?.intValue ?? 10) prompts"),
                .results(status: "COMPLETED", message: "Benchmark completed", result: finalResult),
            ]
        } completed: {
        }
        return (200, ["object": "workflow.get", "code": 200, "data": ["workflow_id": .string(workflowID), "status": "in_progress"]])
    }

    /// One notification of a running workflow.
    private enum Report {
        case event(String, status: String, message: String)
        case results(status: String, message: String, result: JSONObject)
    }

    /// Publishes a workflow's notifications one per ``pace``; a failing workflow reports failure
    /// after its first event, a silent one nothing at all. `completed` runs just before a
    /// successful result is published.
    private func run(
        _ workflowID: String, operation: Operation, user: String?, kind: String, source: String, failure: String,
        reports: @escaping @Sendable () -> [Report], completed: @escaping @Sendable () -> Void
    ) {
        let fault = state.withLock { $0.faults[operation] }
        // Unstructured on purpose: a simulated workflow goes on after the request that started
        // it was answered, as the real service's does.
        Task {
            var plan = reports()
            switch fault {
            case .workflowFails(let message)?: plan = plan.prefix(1) + [.results(status: "FAILED", message: message, result: [:])]
            case .silentWorkflow?: plan = []
            default: break
            }
            for report in plan {
                try? await Task.sleep(for: pace)
                let (event, status, message, result): (String, String, String, JSONObject) =
                    switch report {
                    case .event(let event, let status, let message): (event, status, message, [:])
                    case .results(let status, let message, let result): ("results", status, message, result)
                    }
                // The service's own records change before it reports the result.
                if event == "results", status == "COMPLETED" { completed() }
                await publish(
                    workflowID: workflowID, user: user, kind: kind, source: source, event: event, status: status,
                    title: status == "FAILED" ? failure : event, message: message, result: result)
            }
        }
    }

    /// Publishes a notification as budmicroframe does: the notification itself is the CloudEvent
    /// (`application/cloudevents+json`), its id, source and type given as publish metadata. With
    /// subscribers its type is `notification`; without (`user` nil), the workflow kind.
    private func publish(
        workflowID: String, user: String?, kind: String, source: String, event: String, status: String, title: String, message: String,
        result: JSONObject
    ) async {
        let notification: JSONValue = [
            "notification_type": "event", "name": "bud-internal", "subscriber_ids": user.map(JSONValue.string) ?? .null, "actor": nil,
            "topic_keys": nil, "type": .string(user == nil ? kind : "notification"), "source_topic": "budAppMessages",
            "payload": [
                "category": "internal", "type": .string(kind), "event": .string(event), "workflow_id": .string(workflowID),
                "source": .string(source),
                "content": [
                    "title": .string(title), "message": .string(message), "status": .string(status),
                    "result": result.isEmpty ? nil : .object(result), "primary_action": nil, "secondary_action": nil,
                ],
            ],
        ]
        state.withLock { $0.published.append(notification) }
        guard let endpoint = sidecar.endpoint,
            let url = URL(
                string: "\(endpoint)/v1.0/publish/\(pubsub)/\(topic)?metadata.cloudevent.id=\(Self.newID())"
                    + "&metadata.cloudevent.source=\(source)&metadata.cloudevent.type=\(user == nil ? kind : "notification")")
        else { return }
        var request = URLRequest(url: url, timeoutInterval: 10)
        request.httpMethod = "POST"
        request.httpBody = Data(notification.serialized())
        request.setValue("application/cloudevents+json", forHTTPHeaderField: "Content-Type")
        _ = try? await URLSession.shared.data(for: request)
    }

    // MARK: Helpers

    /// The injected fault's answer for `operation`, after its delay; `nil` to answer normally.
    private func fault(_ operation: Operation) async -> Answer? {
        switch state.withLock({ $0.faults[operation] }) {
        case .status(let status, let message)?: return Self.error(status, message)
        case .slow(let delay)?:
            try? await Task.sleep(for: delay)
            return nil
        default: return nil
        }
    }

    /// budapp's error envelope.
    private static func error(_ status: Int, _ message: String) -> Answer {
        (status, ["object": "error", "code": .int(status), "message": .string(message), "type": "simulated"])
    }

    private static func split(_ path: String) -> (path: String, query: [String: String]) {
        let parts = path.split(separator: "?", maxSplits: 1)
        var query: [String: String] = [:]
        for item in parts.count > 1 ? parts[1].split(separator: "&") : [] {
            let pair = item.split(separator: "=", maxSplits: 1)
            let value = pair.count > 1 ? String(pair[1]).removingPercentEncoding ?? String(pair[1]) : ""
            query[String(pair[0])] = value
        }
        return (String(parts.first ?? ""), query)
    }

    private static func newID() -> String { UUID().uuidString.lowercased() }
}
